-- The created layer of webinars: the webinar.created with the greatest offset.
INSERT INTO webinars AS w (webinar_key, created, created_offset, created_at)
SELECT DISTINCT ON (s.wk)
       s.wk, s.p, s.pos, _timestamptz(s.p ->> 'webinarCreationDate')
FROM pg_temp.turnout_stage s
WHERE s.name = 'webinar.created'
ORDER BY s.wk, s.pos DESC
ON CONFLICT (webinar_key) DO UPDATE
    SET created = excluded.created, created_offset = excluded.created_offset, created_at = excluded.created_at
    WHERE w.created_offset IS NULL OR excluded.created_offset > w.created_offset
