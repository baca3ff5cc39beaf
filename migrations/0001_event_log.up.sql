-- The event log: the Watermill SQL topic table for the topic "gotowebinar_events".
--
-- Columns up to transaction_id are exactly what watermill-sql's DefaultPostgreSQLSchema
-- writes and reads (we create them here instead of letting Watermill auto-initialise, so the
-- schema is versioned and reviewed). The extra columns make the log queryable without
-- parsing JSON and are filled by defaults or generated from payload/metadata, so the
-- publisher's INSERT does not need to know about them.
--
-- Log order is ("transaction_id", "offset"), the order the Watermill subscriber reads in;
-- "offset" alone is the append order and is what projections use to break ties.
CREATE TABLE watermill_gotowebinar_events (
    "offset"           BIGSERIAL,
    "uuid"             VARCHAR(36) NOT NULL,
    "created_at"       TIMESTAMP   NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- JSON (not JSONB) keeps the delivery's bytes exactly as received.
    "payload"          JSON        DEFAULT NULL,
    "metadata"         JSON        DEFAULT NULL,
    "transaction_id"   xid8        NOT NULL,
    received_at        timestamptz NOT NULL DEFAULT now(),
    event_name         text GENERATED ALWAYS AS (payload ->> 'eventName') STORED,
    event_key          text GENERATED ALWAYS AS (payload ->> 'eventKey') STORED,
    signature_verified boolean GENERATED ALWAYS AS ((metadata ->> 'signature_verified')::boolean) STORED,
    PRIMARY KEY ("transaction_id", "offset")
);

COMMENT ON TABLE watermill_gotowebinar_events IS
    'Turnout event log: every accepted GoToWebinar delivery, raw, append-only. See README "Event log contract".';

-- Append-only: the pipeline never updates or deletes the log. The only sanctioned exception
-- is a GDPR erasure, which must opt in for its own transaction with
-- SET LOCAL turnout.allow_log_redaction = 'on'.
CREATE FUNCTION turnout_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('turnout.allow_log_redaction', true), '') = 'on' AND TG_OP = 'UPDATE' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the event log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER append_only_rows BEFORE UPDATE OR DELETE ON watermill_gotowebinar_events
    FOR EACH ROW EXECUTE FUNCTION turnout_log_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON watermill_gotowebinar_events
    FOR EACH STATEMENT EXECUTE FUNCTION turnout_log_append_only();

-- Consumer positions, exactly as watermill-sql's DefaultPostgreSQLOffsetsAdapter expects.
CREATE TABLE watermill_offsets_gotowebinar_events (
    consumer_group                VARCHAR(255) NOT NULL,
    offset_acked                  BIGINT,
    last_processed_transaction_id xid8 NOT NULL,
    PRIMARY KEY (consumer_group)
);

-- Deduplication by GoTo's eventKey, written in the same transaction as the log row, so a
-- redelivery (or a racing copy) of a stored event is acknowledged and stored once.
CREATE TABLE ingest_event_keys (
    event_key   text PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Authentic deliveries that could not be accepted into the log (malformed, invalid against
-- the spec, or of a version we do not understand yet). Kept so nothing authentic is lost.
CREATE TABLE ingest_quarantine (
    id                 bigserial PRIMARY KEY,
    received_at        timestamptz NOT NULL DEFAULT now(),
    reason             text        NOT NULL,
    detail             text        NOT NULL,
    signature_verified boolean     NOT NULL,
    headers            jsonb       NOT NULL,
    -- bytea, not json: quarantined bodies are by definition not trusted to be valid JSON or UTF-8.
    body               bytea       NOT NULL
);
CREATE INDEX ingest_quarantine_received_at ON ingest_quarantine (received_at);
