-- The staging table every apply reads from: one row per event, the payload parsed to jsonb
-- once, and the fields every statement sorts or joins on extracted once (generated columns
-- for the immutable ->> lookups; ts is set by the staging INSERTs because the text ->
-- timestamptz cast is not immutable).
-- TEMP (per connection, no WAL) and created lazily; IF NOT EXISTS because the connection
-- may already have it. If the creating (sub)transaction rolls back, so does the creation,
-- and the next apply creates it again. Schema-independent: it only holds log rows.
CREATE TEMP TABLE IF NOT EXISTS turnout_stage (
    tx          xid8,
    pos         bigint      NOT NULL,
    received_at timestamptz NOT NULL,
    p           jsonb       NOT NULL,
    -- The event timestamp; a missing one is -infinity, the oldest.
    ts          timestamptz NOT NULL,
    name        text GENERATED ALWAYS AS (p ->> 'eventName') STORED,
    wk          text GENERATED ALWAYS AS (p ->> 'webinarKey') STORED,
    rk          text GENERATED ALWAYS AS (p ->> 'registrantKey') STORED
) ON COMMIT DELETE ROWS
