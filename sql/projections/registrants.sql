-- Registrant attributes, last writer wins on (src_rank, src_ts, src_offset): a
-- registrant.added (rank 2) beats a registrant.joined (rank 1, which only knows email and
-- names); then the later event timestamp (missing = oldest); then the later offset.
-- DISTINCT ON picks the winner inside the batch (ON CONFLICT DO UPDATE may touch a row only
-- once per statement); the WHERE picks between it and the stored row.
--
-- The final UPDATE counts the (webinar, registrant) rows this statement inserted (xmax = 0
-- marks a fresh insert, as opposed to an ON CONFLICT update) into webinars.registrant_count.
-- The webinar row exists: webinar_stub.sql ran first for the same staged events.
WITH src AS (
    SELECT DISTINCT ON (e.webinar_key, e.registrant_key) e.*
    FROM (SELECT s.wk    AS webinar_key,
                 s.rk AS registrant_key,
                 CASE s.name WHEN 'registrant.added' THEN 2 ELSE 1 END::smallint AS src_rank,
                 s.ts AS src_ts,
                 s.pos AS src_offset,
                 s.name,
                 s.p
          FROM pg_temp.turnout_stage s
          WHERE s.name IN ('registrant.added', 'registrant.joined')) e
    ORDER BY e.webinar_key, e.registrant_key, e.src_rank DESC, e.src_ts DESC, e.src_offset DESC
), upserted AS (
    INSERT INTO {{schema}}.registrants AS r (
        webinar_key, registrant_key, email, first_name, last_name, organization, job_title,
        phone, industry, comments, registration_date, registration_source, status, join_url,
        responses, src_rank, src_ts, src_offset)
    SELECT src.webinar_key, src.registrant_key,
           src.p ->> 'email', src.p ->> 'firstName', src.p ->> 'lastName',
           src.p ->> 'organization', src.p ->> 'jobTitle', src.p ->> 'phone',
           src.p ->> 'industry', src.p ->> 'comments',
           (src.p ->> 'registrationDate')::timestamptz, src.p ->> 'registrationSource',
           src.p ->> 'status', src.p ->> 'joinUrl', src.p -> 'responses',
           src.src_rank, src.src_ts, src.src_offset
    FROM src
    ON CONFLICT (webinar_key, registrant_key) DO UPDATE
        SET email = excluded.email, first_name = excluded.first_name, last_name = excluded.last_name,
            organization = excluded.organization, job_title = excluded.job_title,
            phone = excluded.phone, industry = excluded.industry, comments = excluded.comments,
            registration_date = excluded.registration_date,
            registration_source = excluded.registration_source, status = excluded.status,
            join_url = excluded.join_url, responses = excluded.responses,
            src_rank = excluded.src_rank, src_ts = excluded.src_ts, src_offset = excluded.src_offset
        WHERE (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset)
    RETURNING r.webinar_key, r.xmax = 0 AS inserted
)
UPDATE {{schema}}.webinars w
SET registrant_count = w.registrant_count + n.n
FROM (SELECT u.webinar_key, count(*) AS n FROM upserted u WHERE u.inserted GROUP BY u.webinar_key) n
WHERE w.webinar_key = n.webinar_key
