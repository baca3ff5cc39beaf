-- The stub layer of webinars, from registrant events: the webinar fields of the event with
-- the greatest (timestamp, offset); a missing timestamp counts as oldest. Only webinar
-- fields are kept: the webinars table holds no personal data.
INSERT INTO {{schema}}.webinars AS w (webinar_key, stub, stub_ts, stub_offset)
SELECT DISTINCT ON (s.wk)
       s.wk,
       jsonb_strip_nulls(jsonb_build_object(
           'webinarTitle', s.p -> 'webinarTitle',
           'experienceType', s.p -> 'experienceType',
           'recurrenceType', s.p -> 'recurrenceType')),
       s.ts,
       s.pos
FROM pg_temp.turnout_stage s
WHERE s.name IN ('registrant.added', 'registrant.joined')
ORDER BY s.wk, s.ts DESC, s.pos DESC
ON CONFLICT (webinar_key) DO UPDATE
    SET stub = excluded.stub, stub_ts = excluded.stub_ts, stub_offset = excluded.stub_offset
    WHERE w.stub_offset IS NULL
       OR (excluded.stub_ts, excluded.stub_offset) > (w.stub_ts, w.stub_offset)
