-- The staging table every apply reads from: one row per event, its payload parsed to jsonb
-- once, and every field a projection statement reads extracted and typed once, by the
-- staging INSERT (stage_insert.sql), so that no later statement touches jsonb. The whole
-- payload is kept (p) only for the webinar events, whose layers store it: a rebuild chunk is
-- mostly registrant events, and carrying their payloads through every scan and sort of the
-- chunk cost more than extracting their fields up front.
-- TEMP (per connection, no WAL) and created lazily; IF NOT EXISTS because the connection
-- may already have it. If the creating (sub)transaction rolls back, so does the creation,
-- and the next apply creates it again. Schema-independent: it only holds log rows.
CREATE TEMP TABLE IF NOT EXISTS turnout_stage (
    -- The log position (epoch, tx, pos); epoch and tx are NULL for the events of a live
    -- apply passed by the caller.
    epoch               integer,
    tx                  xid8,
    pos                 bigint      NOT NULL,
    received_at         timestamptz NOT NULL,
    name                text,
    wk                  text,
    rk                  text,
    -- The event timestamp; a missing one is -infinity, the oldest.
    ts                  timestamptz NOT NULL,
    -- webinar.created and webinar.changed, and reconcile's snapshots.
    p                   jsonb,
    -- registrant.joined only: the joins row.
    event_key           text,
    session_key         text,
    join_time           timestamptz,
    -- registrant.added and registrant.joined only: the registrants row and the webinar
    -- stub layer.
    email               text,
    first_name          text,
    last_name           text,
    organization        text,
    job_title           text,
    phone               text,
    industry            text,
    comments            text,
    registration_date   timestamptz,
    registration_source text,
    status              text,
    join_url            text,
    responses           jsonb,
    webinar_title       text,
    experience_type     text,
    recurrence_type     text
) ON COMMIT DELETE ROWS
