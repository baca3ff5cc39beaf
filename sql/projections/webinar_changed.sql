-- The changed layer of webinars: the webinar.changed with the greatest offset. It carries
-- no timestamp, so updated_at is when it was received.
INSERT INTO webinars AS w (webinar_key, changed, changed_offset, updated_at)
SELECT DISTINCT ON (s.wk)
       s.wk, s.p, s.pos, s.received_at
FROM pg_temp.turnout_stage s
WHERE s.name = 'webinar.changed'
ORDER BY s.wk, s.pos DESC
ON CONFLICT (webinar_key) DO UPDATE
    SET changed = excluded.changed, changed_offset = excluded.changed_offset, updated_at = excluded.updated_at
    WHERE w.changed_offset IS NULL OR excluded.changed_offset > w.changed_offset
