-- Stages events from a source subquery of (epoch, tx, pos, received_at, p), p the parsed payload:
-- stage_from_events.sql for the events of a live apply, stage_from_log.sql for a chunk of
-- the log in a rebuild (the Go code puts it in place of the placeholder below). Each field
-- is extracted here, once per event.
--
-- The casts that can fail (a malformed date or joinTime) are applied to the events of the
-- kind that carries the field, and to every such event: an event that fails one fails the
-- apply the same way in a live apply and in a rebuild, wherever it ranks in its chunk.
INSERT INTO {{stage}} (
    epoch, tx, pos, received_at, name, wk, rk, ts, p, event_key, session_key, join_time,
    email, first_name, last_name, organization, job_title, phone, industry, comments,
    registration_date, registration_source, status, join_url, responses,
    webinar_title, experience_type, recurrence_type)
SELECT e.epoch, e.tx, e.pos, e.received_at,
       e.p ->> 'eventName', e.p ->> 'webinarKey', e.p ->> 'registrantKey',
       coalesce((e.p ->> 'timestamp')::timestamptz, '-infinity'),
       CASE WHEN e.p ->> 'eventName' IN ('webinar.created', 'webinar.changed',
                                         'turnout.session.snapshot', 'turnout.attendance.snapshot',
                                         'turnout.registrant.snapshot') THEN e.p END,
       e.p ->> 'eventKey', e.p ->> 'sessionKey',
       -- joinTime (epoch milliseconds), else the event timestamp, else receive time.
       CASE WHEN e.p ->> 'eventName' = 'registrant.joined' THEN
           coalesce(timestamptz 'epoch' + (e.p ->> 'joinTime')::bigint * interval '1 millisecond',
                    nullif((e.p ->> 'timestamp')::timestamptz, '-infinity'),
                    e.received_at)
       END,
       e.p ->> 'email', e.p ->> 'firstName', e.p ->> 'lastName',
       e.p ->> 'organization', e.p ->> 'jobTitle', e.p ->> 'phone',
       e.p ->> 'industry', e.p ->> 'comments',
       CASE WHEN e.p ->> 'eventName' IN ('registrant.added', 'registrant.joined') THEN
           (e.p ->> 'registrationDate')::timestamptz
       END,
       e.p ->> 'registrationSource', e.p ->> 'status', e.p ->> 'joinUrl', e.p -> 'responses',
       -- The webinar fields of the stub layer, as text: registrants.sql builds the stub
       -- object for the one winning event per webinar, not for every event.
       e.p ->> 'webinarTitle', e.p ->> 'experienceType', e.p ->> 'recurrenceType'
FROM ({{source}}) e
