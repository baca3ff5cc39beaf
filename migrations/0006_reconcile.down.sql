-- Undo 0006_reconcile in this database. The role is cluster-wide and may serve other
-- databases, so it loses its privileges here but is not dropped.
DROP TABLE reconcile_done;
DROP TABLE reconcile_runs;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'turnout_reconcile') THEN
        REVOKE ALL ON watermill_gotowebinar_events, ingest_event_keys FROM turnout_reconcile;
        REVOKE ALL ON SEQUENCE watermill_gotowebinar_events_offset_seq FROM turnout_reconcile;
        REVOKE EXECUTE ON FUNCTION public.eventlog_epoch() FROM turnout_reconcile;
        EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM turnout_reconcile', current_database());
    END IF;
END
$$;
