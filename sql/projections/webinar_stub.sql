-- The stub layer of webinars, from registrant events: the webinar fields of the event with
-- the greatest (timestamp, offset); a missing timestamp counts as oldest. Only webinar
-- fields are kept: the webinars table holds no personal data.
INSERT INTO {{schema}}.webinars AS w (webinar_key, stub, stub_ts, stub_offset)
SELECT win.wk,
       jsonb_strip_nulls(jsonb_build_object(
           'webinarTitle', s.p -> 'webinarTitle',
           'experienceType', s.p -> 'experienceType',
           'recurrenceType', s.p -> 'recurrenceType')),
       win.ts,
       win.pos
-- Pick the winners on narrow rows, then fetch just their payloads by ctid: sorting whole
-- staged rows (payload included) for DISTINCT ON cost more than the rest of the statement.
FROM (SELECT DISTINCT ON (s.wk) s.wk, s.ts, s.pos, s.ctid AS row_id
      FROM pg_temp.turnout_stage s
      WHERE s.name IN ('registrant.added', 'registrant.joined')
      ORDER BY s.wk, s.ts DESC, s.pos DESC) win
JOIN pg_temp.turnout_stage s ON s.ctid = win.row_id
ON CONFLICT (webinar_key) DO UPDATE
    SET stub = excluded.stub, stub_ts = excluded.stub_ts, stub_offset = excluded.stub_offset
    WHERE w.stub_offset IS NULL
       OR (excluded.stub_ts, excluded.stub_offset) > (w.stub_ts, w.stub_offset)
