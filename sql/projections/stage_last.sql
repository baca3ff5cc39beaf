-- How many rows the chunk staged and the log position of its last one (the next cursor).
SELECT (SELECT count(*) FROM pg_temp.turnout_stage), s.tx::text, s.pos
FROM pg_temp.turnout_stage s
ORDER BY s.tx DESC, s.pos DESC
LIMIT 1
