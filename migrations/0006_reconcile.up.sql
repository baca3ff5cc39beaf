-- Reconciliation's progress (cmd/reconcile): which runs over GoToWebinar's REST reporting API
-- were started and finished, and which webinars each run has already appended to the log.
-- A run that dies (a crash, a deploy) is resumed by the next one of the same kind and window,
-- skipping the webinars recorded here; a webinar's row commits in the same transaction as
-- its events, so a webinar is either done with all its events in the log or not done at all.
-- The events themselves are in the log, deduplicated by eventKey in ingest_event_keys.
CREATE TABLE reconcile_runs (
    id          bigserial   PRIMARY KEY,
    -- once: `reconcile once -since`; sweep: the service's daily sweep; recent: the service's
    -- poll for sessions that ended since the last one.
    kind        text        NOT NULL CHECK (kind IN ('once', 'sweep', 'recent')),
    from_time   timestamptz NOT NULL,
    to_time     timestamptz NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX reconcile_runs_unfinished ON reconcile_runs (kind, id) WHERE finished_at IS NULL;

CREATE TABLE reconcile_done (
    run_id        bigint      NOT NULL REFERENCES reconcile_runs (id) ON DELETE CASCADE,
    organizer_key text        NOT NULL,
    webinar_key   text        NOT NULL,
    calls         integer     NOT NULL, -- API calls it took
    appended      integer     NOT NULL, -- events it added to the log (0 when nothing changed)
    done_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, organizer_key, webinar_key)
);

-- The reconcile service's role: append to the log as ingest does, and keep its own progress.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'turnout_reconcile') THEN
        BEGIN
            CREATE ROLE turnout_reconcile NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created concurrently by a migration of another database
        END;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO turnout_reconcile', current_database());
END
$$;
GRANT INSERT ON watermill_gotowebinar_events, ingest_event_keys TO turnout_reconcile;
GRANT SELECT (event_key) ON ingest_event_keys TO turnout_reconcile;
GRANT USAGE ON SEQUENCE watermill_gotowebinar_events_offset_seq TO turnout_reconcile;
GRANT SELECT, INSERT, UPDATE ON reconcile_runs, reconcile_done TO turnout_reconcile;
GRANT USAGE ON SEQUENCE reconcile_runs_id_seq TO turnout_reconcile;
-- New log rows take their epoch from eventlog_epoch() (migration 0004), EXECUTE-only.
GRANT EXECUTE ON FUNCTION public.eventlog_epoch() TO turnout_reconcile;
