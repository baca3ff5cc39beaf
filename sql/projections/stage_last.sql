-- How many rows the chunk staged, how many of each kind the projection statements read (a
-- rebuild skips the statements with nothing to do), and the log position of the last row
-- (the next cursor).
SELECT c.n, c.created, c.changed, c.registrant, s.epoch, s.tx::text, s.pos
FROM (SELECT count(*) AS n,
             count(*) FILTER (WHERE name = 'webinar.created') AS created,
             count(*) FILTER (WHERE name = 'webinar.changed') AS changed,
             count(*) FILTER (WHERE name IN ('registrant.added', 'registrant.joined')) AS registrant
      FROM pg_temp.turnout_stage) c
CROSS JOIN (SELECT s.epoch, s.tx, s.pos
            FROM pg_temp.turnout_stage s
            ORDER BY s.epoch DESC, s.tx DESC, s.pos DESC
            LIMIT 1) s
