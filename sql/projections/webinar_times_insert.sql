-- The schedule is the times[] of the winning layer: changed, else created, else rest (the
-- REST item's times have the webhooks' shape: startTime, endTime). A layer without a times
-- array gives way to the next, as every column of webinars does.
INSERT INTO webinar_times (webinar_key, start_time, end_time)
SELECT DISTINCT w.webinar_key, _timestamptz(t.v ->> 'startTime'), _timestamptz(t.v ->> 'endTime')
FROM webinars w
JOIN (SELECT DISTINCT s.wk AS webinar_key
      FROM pg_temp.turnout_stage s
      WHERE s.name IN ('webinar.created', 'webinar.changed', 'turnout.webinar.snapshot')) k ON k.webinar_key = w.webinar_key
CROSS JOIN LATERAL jsonb_array_elements(CASE
        WHEN jsonb_typeof(w.changed -> 'times') = 'array' THEN w.changed -> 'times'
        WHEN jsonb_typeof(w.created -> 'times') = 'array' THEN w.created -> 'times'
        WHEN jsonb_typeof(w.rest -> 'times') = 'array' THEN w.rest -> 'times'
        ELSE '[]'::jsonb
    END) AS t (v)
