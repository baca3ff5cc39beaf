-- Registrant events, in one statement: the joins rows, the registrants rows (attributes and
-- first_join), and the webinar rows they touch (the stub layer and both counters). Each
-- row is written once per statement: folding these into one statement saves writing every
-- registrant row a second time (first_join) and every webinar row three times per chunk.
--
-- 1. inserted: one joins row per registrant.joined, identified by eventKey, so re-applying
--    is a no-op.
-- 2. ranked/win: per (webinar, registrant), the attribute winner among the staged events by
--    (src_rank, src_ts, src_offset) — a registrant.added (rank 2) beats a registrant.joined
--    (rank 1, which only knows email and names); then the later event timestamp (missing =
--    oldest); then the later offset — and the earliest join_time among the joins this
--    statement inserted. The inserted joins enter the same sort as rank 0 rows (never the
--    winner: their registrant.joined event is staged too), so one sort serves DISTINCT ON
--    and the window min, whatever the planner estimates (no join to mis-plan).
-- 3. upserted: insert, or update the stored row: the attributes if the winner is newer,
--    first_join if the chunk's earliest join is earlier (LEAST ignores NULL). ON CONFLICT DO
--    UPDATE may touch a row only once per statement, hence one source row per key.
-- 4. counted: per webinar, the registrant rows this statement inserted (xmax = 0 marks a
--    fresh insert) and the registrants it gave a first join: inserted with one, or updated
--    from a row whose first_join was NULL. "prev" is the registrants row as the statement's
--    snapshot sees it, i.e. before this statement's update (RETURNING shows only the new
--    row); it is looked up only for updated rows that now have a first join.
-- 5. stub: per webinar, the webinar fields of the registrant event with the greatest
--    (timestamp, offset), for webinars known only from registrant events.
-- 6. the webinars upsert creates the webinar row if needed, moves the stub layer if the
--    chunk's is newer, and adds the counts.
WITH inserted AS (
    INSERT INTO joins (event_key, log_offset, webinar_key, session_key, registrant_key, join_time)
    SELECT s.event_key, s.pos, s.wk, s.session_key, s.rk, s.join_time
    FROM pg_temp.turnout_stage s
    WHERE s.name = 'registrant.joined'
    ON CONFLICT (event_key) DO NOTHING
    RETURNING webinar_key, registrant_key, join_time
), ranked AS (
    SELECT s.wk AS webinar_key, s.rk AS registrant_key,
           CASE s.name WHEN 'registrant.added' THEN 2 ELSE 1 END::smallint AS src_rank,
           s.ts AS src_ts, s.pos AS src_offset, NULL::timestamptz AS join_time,
           s.email, s.first_name, s.last_name, s.organization, s.job_title, s.phone,
           s.industry, s.comments, s.registration_date, s.registration_source, s.status,
           s.join_url, s.responses
    FROM pg_temp.turnout_stage s
    WHERE s.name IN ('registrant.added', 'registrant.joined')
    UNION ALL
    SELECT i.webinar_key, i.registrant_key, 0::smallint, NULL, NULL, i.join_time,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM inserted i
), win AS (
    SELECT DISTINCT ON (r.webinar_key, r.registrant_key)
           r.*,
           -- Ordered (over the whole partition all the same) like DISTINCT ON, so that
           -- one sort serves both.
           min(r.join_time) OVER (PARTITION BY r.webinar_key, r.registrant_key
                                  ORDER BY r.src_rank DESC, r.src_ts DESC, r.src_offset DESC
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS first_join
    FROM ranked r
    ORDER BY r.webinar_key, r.registrant_key, r.src_rank DESC, r.src_ts DESC, r.src_offset DESC
), upserted AS (
    INSERT INTO registrants AS r (
        webinar_key, registrant_key, email, first_name, last_name, organization, job_title,
        phone, industry, comments, registration_date, registration_source, status, join_url,
        responses, first_join, src_rank, src_ts, src_offset)
    SELECT w.webinar_key, w.registrant_key, w.email, w.first_name, w.last_name,
           w.organization, w.job_title, w.phone, w.industry, w.comments, w.registration_date,
           w.registration_source, w.status, w.join_url, w.responses, w.first_join,
           w.src_rank, w.src_ts, w.src_offset
    FROM win w
    ON CONFLICT (webinar_key, registrant_key) DO UPDATE
        -- Each attribute: the winner's if it is newer than the stored row's, else unchanged.
        SET email               = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.email ELSE r.email END,
            first_name          = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.first_name ELSE r.first_name END,
            last_name           = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.last_name ELSE r.last_name END,
            organization        = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.organization ELSE r.organization END,
            job_title           = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.job_title ELSE r.job_title END,
            phone               = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.phone ELSE r.phone END,
            industry            = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.industry ELSE r.industry END,
            comments            = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.comments ELSE r.comments END,
            registration_date   = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.registration_date ELSE r.registration_date END,
            registration_source = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.registration_source ELSE r.registration_source END,
            status              = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.status ELSE r.status END,
            join_url            = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.join_url ELSE r.join_url END,
            responses           = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.responses ELSE r.responses END,
            -- The order key last: the CASEs above compare against the stored one.
            src_rank            = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.src_rank ELSE r.src_rank END,
            src_ts              = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.src_ts ELSE r.src_ts END,
            src_offset          = CASE WHEN (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset) THEN excluded.src_offset ELSE r.src_offset END,
            first_join          = LEAST(r.first_join, excluded.first_join)
        WHERE (excluded.src_rank, excluded.src_ts, excluded.src_offset) > (r.src_rank, r.src_ts, r.src_offset)
           OR excluded.first_join < r.first_join
           OR (r.first_join IS NULL AND excluded.first_join IS NOT NULL)
    RETURNING r.webinar_key, r.registrant_key, r.xmax = 0 AS inserted, r.first_join IS NOT NULL AS attended
), counted AS (
    SELECT u.webinar_key,
           count(*) FILTER (WHERE u.inserted) AS registrants,
           count(*) FILTER (WHERE u.attended AND (u.inserted OR prev.first_join IS NULL)) AS attendees
    FROM upserted u
    -- A LATERAL subquery with LIMIT, not a join or an EXISTS: the planner cannot turn it
    -- into a hash over the whole registrants table (which it did for NOT EXISTS, on a guess
    -- of how many rows upserted returns); it probes the primary key once per row that needs
    -- it, and the one-time filter skips the probe for the rest.
    LEFT JOIN LATERAL (
        SELECT p.first_join
        FROM registrants p
        WHERE NOT u.inserted AND u.attended
          AND p.webinar_key = u.webinar_key AND p.registrant_key = u.registrant_key
        LIMIT 1
    ) prev ON true
    GROUP BY u.webinar_key
), stub AS (
    SELECT DISTINCT ON (s.wk) s.wk AS webinar_key, s.ts, s.pos,
           s.webinar_title, s.experience_type, s.recurrence_type
    FROM pg_temp.turnout_stage s
    WHERE s.name IN ('registrant.added', 'registrant.joined')
    ORDER BY s.wk, s.ts DESC, s.pos DESC
)
INSERT INTO webinars AS w (webinar_key, stub, stub_ts, stub_offset, registrant_count, attendee_count)
SELECT st.webinar_key,
       -- Only webinar fields: the webinars table holds no personal data. Absent fields are
       -- left out, so that the webinars columns fall through to the next layer. Built here,
       -- for the winners only: DISTINCT ON computes its select list before it sorts.
       jsonb_strip_nulls(jsonb_build_object(
           'webinarTitle', st.webinar_title,
           'experienceType', st.experience_type,
           'recurrenceType', st.recurrence_type)),
       st.ts, st.pos, coalesce(c.registrants, 0), coalesce(c.attendees, 0)
FROM stub st
LEFT JOIN counted c ON c.webinar_key = st.webinar_key
ON CONFLICT (webinar_key) DO UPDATE
    SET stub             = CASE WHEN w.stub_offset IS NULL OR (excluded.stub_ts, excluded.stub_offset) > (w.stub_ts, w.stub_offset) THEN excluded.stub ELSE w.stub END,
        stub_ts          = CASE WHEN w.stub_offset IS NULL OR (excluded.stub_ts, excluded.stub_offset) > (w.stub_ts, w.stub_offset) THEN excluded.stub_ts ELSE w.stub_ts END,
        stub_offset      = CASE WHEN w.stub_offset IS NULL OR (excluded.stub_ts, excluded.stub_offset) > (w.stub_ts, w.stub_offset) THEN excluded.stub_offset ELSE w.stub_offset END,
        registrant_count = w.registrant_count + excluded.registrant_count,
        attendee_count   = w.attendee_count + excluded.attendee_count
    WHERE w.stub_offset IS NULL
       OR (excluded.stub_ts, excluded.stub_offset) > (w.stub_ts, w.stub_offset)
       OR excluded.registrant_count > 0
       OR excluded.attendee_count > 0
