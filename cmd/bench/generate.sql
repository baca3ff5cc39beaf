-- Events $1..$2 of the replay benchmark's synthetic stream, as the rows ingest stores in the
-- event log (raw JSON with live GoTo's bare numeric keys): uuid, payload, metadata,
-- transaction_id. replay.go appends them with an INSERT into eventlog.Table, which this file
-- does not name (only internal/eventlog names the log's tables). The stream: 1,000
-- webinar.created, 200 webinar.changed, then registrant.added and registrant.joined in a 2:1
-- ratio (every joined event is for the registrant added just before it), over 1,000 webinars.
--
-- Not internal/scenario, on purpose: the benchmarks need logs of 500,000 to 1,000,000 events,
-- generated inside PostgreSQL in one statement per chunk, without sending every payload from
-- the client; and a benchmark needs no exact expected figures. Only the benchmark's own test
-- (ceiling_test.go) uses this stream; the other tests use scenario.
SELECT gen_random_uuid()::text, e.payload, '{"signature_verified":"true"}'::json, pg_current_xact_id()
FROM generate_series($1::bigint, $2::bigint) AS g
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN g <= 1000 THEN json_build_object(
            'eventName', 'webinar.created', 'eventVersion', '1.0.0', 'product', 'g2w', 'eventKey', 'replay-' || g,
            'webinarKey', 9100000000000000000 + g, 'organizerKey', 8100000000000000001, 'accountKey', 7100000000000000001,
            'webinarTitle', 'Webinar ' || g, 'description', 'Synthetic webinar', 'experienceType', 'CLASSIC',
            'recurrenceType', 'single_session', 'webinarCreationDate', '2026-10-01T09:00:00Z', 'status', 'NEW',
            'timeZone', 'Europe/London',
            'times', json_build_array(json_build_object('startTime', '2026-12-01T15:00:00Z', 'endTime', '2026-12-01T16:00:00Z')))
        WHEN g <= 1200 THEN json_build_object(
            'eventName', 'webinar.changed', 'eventVersion', '1.0.0', 'product', 'g2w', 'eventKey', 'replay-' || g,
            'webinarKey', 9100000000000000000 + (g - 1000), 'webinarTitle', 'Webinar ' || (g - 1000) || ' (moved)',
            'experienceType', 'CLASSIC', 'recurrenceType', 'single_session', 'status', 'UPDATED', 'timeZone', 'Europe/London',
            'times', json_build_array(json_build_object('startTime', '2026-12-02T15:00:00Z', 'endTime', '2026-12-02T16:00:00Z')))
        WHEN g % 3 = 0 THEN json_build_object(
            'eventName', 'registrant.joined', 'eventVersion', '1.0.0', 'product', 'g2w', 'eventKey', 'replay-' || g,
            'webinarKey', 9100000000000000001 + ((g - 1) % 1000), 'sessionKey', 6100000000000000001 + ((g - 1) % 1000),
            'registrantKey', 5100000000000000000 + (g - 1), 'webinarTitle', 'Webinar',
            'firstName', 'Zoë', 'lastName', 'Nguyễn', 'email', 'r' || (g - 1) || '@example.com',
            'joinTime', 1795100000000 + g, 'timestamp', to_char((timestamptz '2026-12-01 15:00:00Z' + g * interval '1 ms') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
        ELSE json_build_object(
            'eventName', 'registrant.added', 'eventVersion', '1.0.0', 'product', 'g2w', 'eventKey', 'replay-' || g,
            'webinarKey', 9100000000000000001 + (g % 1000), 'registrantKey', 5100000000000000000 + g,
            'webinarTitle', 'Webinar', 'experienceType', 'CLASSIC', 'recurrenceType', 'single_session',
            'firstName', 'Zoë', 'lastName', 'Nguyễn', 'email', 'r' || g || '@example.com', 'organization', 'Example Ltd',
            'jobTitle', 'Analyst', 'registrationDate', '2026-11-20T10:15:29Z', 'status', 'APPROVED',
            'registrationSource', (ARRAY['Email', 'LinkedIn', 'Website', 'Partner'])[1 + g % 4],
            'joinUrl', 'https://global.gotowebinar.com/join/' || g,
            'responses', json_build_array(json_build_object('question', 'Role?', 'answer', 'Analyst')),
            'timestamp', to_char((timestamptz '2026-11-20 10:00:00Z' + g * interval '1 ms') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
    END AS payload
) AS e;
