-- Joins: one row per registrant.joined, identified by eventKey, so re-applying is a no-op.
-- join_time is joinTime (epoch milliseconds), else the event timestamp, else receive time.
--
-- Then, for the joins this statement actually inserted, registrants.first_join moves to the
-- earliest join; "prev" is the same registrants row as seen by the statement's snapshot
-- (before this statement's update), so prev.first_join IS NULL marks a registrant's first
-- ever join, which is counted into webinars.attendee_count. The registrant row exists:
-- registrants.sql ran first for the same staged events.
WITH inserted AS (
    INSERT INTO {{schema}}.joins (event_key, log_offset, webinar_key, session_key, registrant_key, join_time)
    SELECT s.p ->> 'eventKey', s.pos, s.wk, s.p ->> 'sessionKey', s.rk,
           coalesce(timestamptz 'epoch' + (s.p ->> 'joinTime')::bigint * interval '1 millisecond',
                    nullif(s.ts, '-infinity'),
                    s.received_at)
    FROM pg_temp.turnout_stage s
    WHERE s.name = 'registrant.joined'
    ON CONFLICT (event_key) DO NOTHING
    RETURNING webinar_key, registrant_key, join_time
), attended AS (
    UPDATE {{schema}}.registrants r
    SET first_join = LEAST(r.first_join, j.first_join) -- LEAST ignores NULL
    FROM (SELECT i.webinar_key, i.registrant_key, min(i.join_time) AS first_join
          FROM inserted i
          GROUP BY i.webinar_key, i.registrant_key) j
    JOIN {{schema}}.registrants prev
      ON prev.webinar_key = j.webinar_key AND prev.registrant_key = j.registrant_key
    WHERE r.webinar_key = j.webinar_key AND r.registrant_key = j.registrant_key
      AND (r.first_join IS NULL OR r.first_join > j.first_join)
    RETURNING r.webinar_key, prev.first_join IS NULL AS first_time
)
UPDATE {{schema}}.webinars w
SET attendee_count = w.attendee_count + n.n
FROM (SELECT a.webinar_key, count(*) AS n FROM attended a WHERE a.first_time GROUP BY a.webinar_key) n
WHERE w.webinar_key = n.webinar_key
