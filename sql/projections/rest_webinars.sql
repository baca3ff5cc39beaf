-- The rest layer of webinars: the REST item (payload.snapshot, as GoTo sent it) of reconcile's
-- turnout.webinar.snapshot with the greatest log offset. reconcile appends a snapshot only
-- when what it fetched changed, so the later one in the log is the later fetch. The item is
-- stored whole; schema.sql's generated columns read it below the webhook layers, leniently
-- (_string, _key), so no field value can fail the event (issue 10).
INSERT INTO webinars AS w (webinar_key, rest, rest_offset)
SELECT DISTINCT ON (s.wk)
       s.wk, s.p -> 'snapshot', s.pos
FROM pg_temp.turnout_stage s
WHERE s.name = 'turnout.webinar.snapshot'
ORDER BY s.wk, s.pos DESC
ON CONFLICT (webinar_key) DO UPDATE
    SET rest = excluded.rest, rest_offset = excluded.rest_offset
    WHERE w.rest_offset IS NULL OR excluded.rest_offset > w.rest_offset
