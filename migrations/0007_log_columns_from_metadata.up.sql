-- The log's event_name and event_key, generated from the metadata ingest writes with every
-- row instead of from the payload (issue 14). Forward only: every row is kept as it is.
--
-- Why: a generated column is computed at each INSERT, and `payload ->> 'eventKey'` makes
-- PostgreSQL parse the whole raw delivery (about 1 KiB, a json column: parsed again for
-- each column) where the metadata is a few short members. ingest writes metadata
-- event_name and event_key (eventlog.NewMessage) with exactly the values domain.Accept read
-- from the payload (eventKey and eventName are JSON strings there, so ->> yields the same
-- text from either). Rows without them (written by hand or by tools, metadata '{}' or
-- NULL) fall back to the payload, so every existing row keeps the value it has; coalesce
-- only evaluates the payload when the metadata lacks the member.
--
-- PostgreSQL 15 cannot change a generation expression in place: the columns are dropped
-- and added again in one ALTER TABLE, which rewrites the log once under an ACCESS
-- EXCLUSIVE lock (ingest answers 503 meanwhile and GoTo retries; a rewrite of a million
-- rows takes seconds). Dropping them drops nothing else: no index, view or constraint
-- uses them. The columns move to the end of the table; everything names its columns.
ALTER TABLE public.watermill_gotowebinar_events
    DROP COLUMN event_name,
    DROP COLUMN event_key,
    ADD COLUMN event_name text GENERATED ALWAYS AS (coalesce(metadata ->> 'event_name', payload ->> 'eventName')) STORED,
    ADD COLUMN event_key  text GENERATED ALWAYS AS (coalesce(metadata ->> 'event_key', payload ->> 'eventKey')) STORED;
