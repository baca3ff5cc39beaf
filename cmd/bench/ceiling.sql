-- The performance ceiling for rebuilds: ONE statement that builds registrants straight from
-- the log's registrant.added rows (no staging, no counters, no other tables). For a log of
-- registrant.added events it yields exactly the rows a rebuild does (TestCeilingMatchesRebuild).
-- It reads the log's rows from a CTE e (pos, p: the offset and the payload as jsonb) that
-- ceiling.go puts in front (ceilingSource), since only internal/eventlog names the log's table.
INSERT INTO bench_ceiling.registrants AS r (
    webinar_key, registrant_key, email, first_name, last_name, organization, job_title,
    phone, industry, comments, registration_date, registration_source, status, join_url,
    responses, src_rank, src_ts, src_offset)
SELECT DISTINCT ON (e.p ->> 'webinarKey', e.p ->> 'registrantKey')
       e.p ->> 'webinarKey', e.p ->> 'registrantKey',
       e.p ->> 'email', e.p ->> 'firstName', e.p ->> 'lastName',
       e.p ->> 'organization', e.p ->> 'jobTitle', e.p ->> 'phone',
       e.p ->> 'industry', e.p ->> 'comments',
       (e.p ->> 'registrationDate')::timestamptz, e.p ->> 'registrationSource',
       e.p ->> 'status', e.p ->> 'joinUrl', e.p -> 'responses',
       2::smallint, coalesce((e.p ->> 'timestamp')::timestamptz, '-infinity'), e.pos
FROM e
ORDER BY e.p ->> 'webinarKey', e.p ->> 'registrantKey',
         coalesce((e.p ->> 'timestamp')::timestamptz, '-infinity') DESC, e.pos DESC
ON CONFLICT (webinar_key, registrant_key) DO UPDATE
    SET email = excluded.email, first_name = excluded.first_name, last_name = excluded.last_name,
        organization = excluded.organization, job_title = excluded.job_title,
        phone = excluded.phone, industry = excluded.industry, comments = excluded.comments,
        registration_date = excluded.registration_date,
        registration_source = excluded.registration_source, status = excluded.status,
        join_url = excluded.join_url, responses = excluded.responses,
        src_rank = excluded.src_rank, src_ts = excluded.src_ts, src_offset = excluded.src_offset
    WHERE (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset)
