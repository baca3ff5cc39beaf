DROP TABLE IF EXISTS ingest_quarantine;
DROP TABLE IF EXISTS ingest_event_keys;
DROP TABLE IF EXISTS watermill_offsets_gotowebinar_events;
DROP TABLE IF EXISTS watermill_gotowebinar_events;
DROP FUNCTION IF EXISTS turnout_log_append_only();
