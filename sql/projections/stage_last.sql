-- How many rows the chunk staged, how many of each kind the projection statements read (a
-- rebuild skips the statements with nothing to do), and the log position of the last row
-- (the next cursor).
SELECT c.n, c.created, c.changed, c.registrant, c.webinar_snapshot, c.session_snapshot, c.attendance_snapshot, c.registrant_snapshot,
       s.epoch, s.tx::text, s.pos
FROM (SELECT count(*) AS n,
             count(*) FILTER (WHERE name = 'webinar.created') AS created,
             count(*) FILTER (WHERE name = 'webinar.changed') AS changed,
             count(*) FILTER (WHERE name IN ('registrant.added', 'registrant.joined')) AS registrant,
             -- reconcile's snapshots (rest_webinars.sql, rest_snapshots.sql, rest_registrants.sql).
             count(*) FILTER (WHERE name = 'turnout.webinar.snapshot') AS webinar_snapshot,
             count(*) FILTER (WHERE name = 'turnout.session.snapshot') AS session_snapshot,
             count(*) FILTER (WHERE name = 'turnout.attendance.snapshot') AS attendance_snapshot,
             count(*) FILTER (WHERE name = 'turnout.registrant.snapshot') AS registrant_snapshot
      FROM pg_temp.turnout_stage) c
CROSS JOIN (SELECT s.epoch, s.tx, s.pos
            FROM pg_temp.turnout_stage s
            ORDER BY s.epoch DESC, s.tx DESC, s.pos DESC
            LIMIT 1) s
