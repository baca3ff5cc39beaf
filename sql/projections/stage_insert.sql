-- Stages events from a source subquery of (epoch, tx, pos, received_at, p), p the parsed payload,
-- into the session's staging table. Each field is extracted here, once per event.
--
-- As written, the file is the live apply's statement: it reads the events passed by the
-- caller and fills pg_temp.turnout_stage. Two regions are marked the way River's
-- sqlctemplate marks them, /* TEMPLATE_BEGIN: name */ default /* TEMPLATE_END */, and
-- internal/projections swaps them: "source" for stage_from_log.sql (a chunk of the log, in a
-- rebuild or a live batch read from the log), "stage" for a rebuild's prefetch table.
--
-- No field value can fail the statement: the lenient parsers of schema.sql (_timestamptz,
-- _epoch_ms) give NULL for what does not parse, and the rest of the event applies.
INSERT INTO /* TEMPLATE_BEGIN: stage */ pg_temp.turnout_stage /* TEMPLATE_END */ (
    epoch, tx, pos, received_at, name, wk, rk, ts, p, event_key, session_key, join_time,
    email, first_name, last_name, organization, job_title, phone, industry, comments,
    registration_date, registration_source, status, join_url, responses,
    webinar_title, experience_type, recurrence_type)
SELECT e.epoch, e.tx, e.pos, e.received_at,
       e.p ->> 'eventName', e.p ->> 'webinarKey', e.p ->> 'registrantKey',
       coalesce(_timestamptz(e.p ->> 'timestamp'), '-infinity'),
       CASE WHEN e.p ->> 'eventName' IN ('webinar.created', 'webinar.changed', 'turnout.webinar.snapshot',
                                         'turnout.session.snapshot', 'turnout.attendance.snapshot',
                                         'turnout.registrant.snapshot') THEN e.p END,
       e.p ->> 'eventKey', e.p ->> 'sessionKey',
       -- joinTime (epoch milliseconds), else the event timestamp, else receive time.
       CASE WHEN e.p ->> 'eventName' = 'registrant.joined' THEN
           coalesce(_epoch_ms(e.p ->> 'joinTime'),
                    nullif(_timestamptz(e.p ->> 'timestamp'), '-infinity'),
                    e.received_at)
       END,
       e.p ->> 'email', e.p ->> 'firstName', e.p ->> 'lastName',
       e.p ->> 'organization', e.p ->> 'jobTitle', e.p ->> 'phone',
       e.p ->> 'industry', e.p ->> 'comments',
       CASE WHEN e.p ->> 'eventName' IN ('registrant.added', 'registrant.joined') THEN
           _timestamptz(e.p ->> 'registrationDate')
       END,
       e.p ->> 'registrationSource', e.p ->> 'status', e.p ->> 'joinUrl', e.p -> 'responses',
       -- The webinar fields of the stub layer, as text: registrants.sql builds the stub
       -- object for the one winning event per webinar, not for every event.
       e.p ->> 'webinarTitle', e.p ->> 'experienceType', e.p ->> 'recurrenceType'
FROM (/* TEMPLATE_BEGIN: source */
-- The events passed by the caller of a live apply: $1 offsets, $2 receive times, $3 raw
-- payloads. OFFSET 0 keeps the subquery from being flattened into this INSERT, which
-- would parse each payload once per field.
SELECT NULL::integer AS epoch, NULL::xid8 AS tx, u.pos, u.received_at, _jsonb(u.payload::json) AS p
FROM unnest($1::bigint[], $2::timestamptz[], $3::text[]) AS u (pos, received_at, payload)
OFFSET 0
/* TEMPLATE_END */) e
