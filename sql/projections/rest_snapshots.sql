-- REST snapshots (reconcile's turnout.session.snapshot and turnout.attendance.snapshot), in
-- one statement:
-- 1. sess: per session, the staged snapshot with the greatest log offset, upserted into
--    sessions if newer than the stored one.
-- 2. att: the same per attendee into session_attendees; RETURNING gives the rows that
--    changed (an upsert whose WHERE is false returns nothing).
-- 3. gone/the INSERT: the changed attendees' interval rows are replaced. All parts of one
--    statement see the same snapshot, so the DELETE removes only the old rows, never the
--    ones the INSERT adds.
-- The snapshot's own fields are under payload.snapshot, as GoTo sent them. A field value
-- PostgreSQL cannot take is NULL (0 seconds, no intervals), never a failed event (issue 10).
WITH sess AS (
    INSERT INTO sessions AS t (webinar_key, session_key, start_time, end_time, registrants_attended, src_offset)
    SELECT DISTINCT ON (s.wk, s.session_key)
           s.wk, s.session_key,
           _timestamptz(s.p -> 'snapshot' ->> 'startTime'),
           _timestamptz(s.p -> 'snapshot' ->> 'endTime'),
           CASE WHEN s.p -> 'snapshot' ->> 'registrantsAttended' ~ '^\d{1,9}$' THEN (s.p -> 'snapshot' ->> 'registrantsAttended')::integer END,
           s.pos
    FROM pg_temp.turnout_stage s
    WHERE s.name = 'turnout.session.snapshot'
    ORDER BY s.wk, s.session_key, s.pos DESC
    ON CONFLICT (webinar_key, session_key) DO UPDATE
        SET start_time = excluded.start_time, end_time = excluded.end_time,
            registrants_attended = excluded.registrants_attended, src_offset = excluded.src_offset
        WHERE excluded.src_offset > t.src_offset
    RETURNING t.session_key
), att AS (
    INSERT INTO session_attendees AS t (webinar_key, session_key, registrant_key, attendance_seconds, intervals, src_offset)
    SELECT DISTINCT ON (s.wk, s.session_key, s.rk)
           s.wk, s.session_key, s.rk,
           coalesce(CASE WHEN s.p -> 'snapshot' ->> 'attendanceTimeInSeconds' ~ '^\d{1,9}$' THEN (s.p -> 'snapshot' ->> 'attendanceTimeInSeconds')::integer END, 0),
           CASE WHEN jsonb_typeof(s.p -> 'snapshot' -> 'attendance') = 'array' THEN s.p -> 'snapshot' -> 'attendance' ELSE '[]' END,
           s.pos
    FROM pg_temp.turnout_stage s
    WHERE s.name = 'turnout.attendance.snapshot'
    ORDER BY s.wk, s.session_key, s.rk, s.pos DESC
    ON CONFLICT (webinar_key, session_key, registrant_key) DO UPDATE
        SET attendance_seconds = excluded.attendance_seconds, intervals = excluded.intervals,
            src_offset = excluded.src_offset
        WHERE excluded.src_offset > t.src_offset
    RETURNING t.webinar_key, t.session_key, t.registrant_key, t.intervals
), gone AS (
    DELETE FROM attendance a
    USING att
    WHERE a.webinar_key = att.webinar_key AND a.session_key = att.session_key
      AND a.registrant_key = att.registrant_key
)
INSERT INTO attendance (webinar_key, session_key, registrant_key, join_time, leave_time)
SELECT att.webinar_key, att.session_key, att.registrant_key,
       _timestamptz(i ->> 'joinTime'), _timestamptz(i ->> 'leaveTime')
FROM att, jsonb_array_elements(att.intervals) i
WHERE _timestamptz(i ->> 'joinTime') IS NOT NULL
