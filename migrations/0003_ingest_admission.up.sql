-- Re-admission and the unverified store (issue 10). Forward only: every existing row of
-- every table is kept as it is.
--
-- Quarantined deliveries gain when and by which `ingest requeue` run they were admitted
-- into the log; a quarantine row is never deleted by the pipeline (only `projector
-- forget` removes personal data from it).
ALTER TABLE ingest_quarantine
    ADD COLUMN admitted_at timestamptz,
    ADD COLUMN admitted_by text;

-- Deliveries whose signature did not verify (or, with the timestamp rules on, whose
-- timestamp was missing, stale or unparseable). They never enter the log and never claim
-- an eventKey; `ingest requeue` re-verifies them with the keys configured at the time and
-- admits those that now pass. Bounded by ingest (rows and bytes, oldest evicted first),
-- because anyone can send them. Same body/headers shape as ingest_quarantine, so erasure
-- (`projector forget`) treats both alike.
CREATE TABLE ingest_unverified (
    id          bigserial   PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    -- why it did not verify: missing, bad, stale, bad_timestamp, missing_timestamp
    reason      text        NOT NULL,
    headers     jsonb       NOT NULL,
    -- bytea: an unverified body is not trusted to be JSON or UTF-8.
    body        bytea       NOT NULL,
    -- what the row costs against the store's byte bound (body and headers).
    size_bytes  integer     NOT NULL,
    admitted_at timestamptz,
    admitted_by text
);
CREATE INDEX ingest_unverified_received_at ON ingest_unverified (received_at);

-- Ingest keeps and evicts unverified deliveries: it inserts them, and its eviction pass
-- reads only ids and sizes, never bodies or headers. `ingest requeue` reads both stores
-- and marks rows admitted: it runs as the database owner (like `projector forget`), so
-- the service role still cannot read a stored body.
GRANT INSERT, DELETE ON ingest_unverified TO turnout_ingest;
GRANT SELECT (id, size_bytes) ON ingest_unverified TO turnout_ingest;
GRANT USAGE ON SEQUENCE ingest_unverified_id_seq TO turnout_ingest;
