-- REST snapshots into registrants (reconcile's turnout.registrant.snapshot and
-- turnout.attendance.snapshot), in one statement shaped like registrants.sql:
--
-- The rule: webhooks always win a registrant's attributes; REST only fills in. A registrant
-- snapshot ranks 0 and an attendance snapshot -1, below every webhook (registrant.added 2,
-- registrant.joined 1), so no REST snapshot ever overwrites what a webhook set, whatever
-- their order; among REST snapshots the later in the log wins. A registrant known only from
-- REST (its registrant.added was missed) is created, and an attendee known only from REST
-- (its registrant.joined was missed) counts as attended, with its first join from the
-- snapshot's intervals. first_join is the earliest join from any source.
--
-- 1. ranked/win: per (webinar, registrant), the attribute winner among the staged snapshots
--    and the earliest join among the attendance snapshots.
-- 2. upserted: insert, or update the stored row's attributes if the winner ranks above it,
--    and first_join if earlier.
-- 3. counted: per webinar, rows inserted, and rows that gained a first join (see
--    registrants.sql for why "prev" is a LATERAL probe).
-- 4. the webinars upsert creates the webinar row if needed (a webinar known only from REST
--    has no title until a webhook or its webinar snapshot, rest_webinars.sql, tells it) and adds
--    the counts.
WITH ranked AS (
    SELECT s.wk AS webinar_key, s.rk AS registrant_key,
           CASE s.name WHEN 'turnout.registrant.snapshot' THEN 0 ELSE -1 END::smallint AS src_rank,
           s.pos AS src_offset,
           s.p -> 'snapshot' ->> 'email' AS email,
           s.p -> 'snapshot' ->> 'firstName' AS first_name,
           s.p -> 'snapshot' ->> 'lastName' AS last_name,
           CASE WHEN s.name = 'turnout.registrant.snapshot' THEN _timestamptz(s.p -> 'snapshot' ->> 'registrationDate') END AS registration_date,
           CASE WHEN s.name = 'turnout.registrant.snapshot' THEN s.p -> 'snapshot' ->> 'status' END AS status,
           CASE WHEN s.name = 'turnout.registrant.snapshot' THEN s.p -> 'snapshot' ->> 'joinUrl' END AS join_url,
           CASE WHEN s.name = 'turnout.attendance.snapshot' THEN
               (SELECT min(_timestamptz(i ->> 'joinTime'))
                FROM jsonb_array_elements(CASE WHEN jsonb_typeof(s.p -> 'snapshot' -> 'attendance') = 'array'
                                               THEN s.p -> 'snapshot' -> 'attendance' ELSE '[]' END) i)
           END AS join_time
    FROM pg_temp.turnout_stage s
    WHERE s.name IN ('turnout.registrant.snapshot', 'turnout.attendance.snapshot')
), win AS (
    SELECT DISTINCT ON (r.webinar_key, r.registrant_key)
           r.*,
           min(r.join_time) OVER (PARTITION BY r.webinar_key, r.registrant_key) AS first_join
    FROM ranked r
    ORDER BY r.webinar_key, r.registrant_key, r.src_rank DESC, r.src_offset DESC
), upserted AS (
    INSERT INTO registrants AS r (
        webinar_key, registrant_key, email, first_name, last_name, registration_date, status,
        join_url, first_join, src_rank, src_ts, src_offset)
    SELECT w.webinar_key, w.registrant_key, w.email, w.first_name, w.last_name,
           w.registration_date, w.status, w.join_url, w.first_join,
           w.src_rank, '-infinity', w.src_offset
    FROM win w
    ON CONFLICT (webinar_key, registrant_key) DO UPDATE
        -- Only rows whose winner is itself a REST snapshot can rank below: a webhook's
        -- attributes are never touched.
        SET email             = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.email ELSE r.email END,
            first_name        = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.first_name ELSE r.first_name END,
            last_name         = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.last_name ELSE r.last_name END,
            registration_date = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.registration_date ELSE r.registration_date END,
            status            = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.status ELSE r.status END,
            join_url          = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.join_url ELSE r.join_url END,
            -- The order key last: the CASEs above compare against the stored one.
            src_rank          = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.src_rank ELSE r.src_rank END,
            src_ts            = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.src_ts ELSE r.src_ts END,
            src_offset        = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.src_offset ELSE r.src_offset END,
            first_join        = LEAST(r.first_join, excluded.first_join)
        WHERE (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset)
           OR excluded.first_join < r.first_join
           OR (r.first_join IS NULL AND excluded.first_join IS NOT NULL)
    RETURNING r.webinar_key, r.registrant_key, r.xmax = 0 AS inserted, r.first_join IS NOT NULL AS attended
), counted AS (
    SELECT u.webinar_key,
           count(*) FILTER (WHERE u.inserted) AS registrants,
           count(*) FILTER (WHERE u.attended AND (u.inserted OR prev.first_join IS NULL)) AS attendees
    FROM upserted u
    LEFT JOIN LATERAL (
        SELECT p.first_join
        FROM registrants p
        WHERE NOT u.inserted AND u.attended
          AND p.webinar_key = u.webinar_key AND p.registrant_key = u.registrant_key
        LIMIT 1
    ) prev ON true
    GROUP BY u.webinar_key
)
INSERT INTO webinars AS w (webinar_key, registrant_count, attendee_count)
SELECT c.webinar_key, c.registrants, c.attendees
FROM counted c
ON CONFLICT (webinar_key) DO UPDATE
    SET registrant_count = w.registrant_count + excluded.registrant_count,
        attendee_count   = w.attendee_count + excluded.attendee_count
    WHERE excluded.registrant_count > 0 OR excluded.attendee_count > 0
