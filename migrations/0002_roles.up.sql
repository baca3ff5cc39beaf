-- Database roles: one per service, each allowed exactly what that service does.
--
--   turnout_ingest     appends to the event log and its dedup and quarantine tables; nothing else
--   turnout_projector  reads the log, moves its consumer offset, and owns the analytics schema
--                      (it creates it, and creates and swaps in a shadow schema on rebuild)
--   turnout_reader     reads the analytics schema only: Grafana's data source, BI tools
--
-- Roles are cluster-wide but migrations run per database, so each role is created only when
-- it does not exist yet (another database of the cluster may have created it), and NOLOGIN:
-- operators give them LOGIN and a password (or grant them to login roles), see
-- docs/operations.md. An existing role is left as it is, so re-running this never resets a
-- password. Creating roles needs CREATEROLE (or a superuser) on the migrating connection.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['turnout_ingest', 'turnout_projector', 'turnout_reader'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- created concurrently by a migration of another database
            END;
        END IF;
    END LOOP;
END
$$;

-- Ingest: INSERT only. The BIGSERIAL columns need USAGE on their sequences; the dedup
-- statement's RETURNING event_key needs SELECT on that one column (and nothing more: the
-- log stays unreadable to ingest).
GRANT INSERT ON watermill_gotowebinar_events, ingest_event_keys, ingest_quarantine TO turnout_ingest;
GRANT SELECT (event_key) ON ingest_event_keys TO turnout_ingest;
GRANT USAGE ON SEQUENCE watermill_gotowebinar_events_offset_seq, ingest_quarantine_id_seq TO turnout_ingest;

-- Projector: read the log, keep its consumer offset (watermill's offsets adapter inserts,
-- locks with SELECT … FOR UPDATE and upserts), and create schemas in this database (the
-- analytics schema and a rebuild's shadow schema, which it then owns).
GRANT SELECT ON watermill_gotowebinar_events TO turnout_projector;
GRANT SELECT, INSERT, UPDATE ON watermill_offsets_gotowebinar_events TO turnout_projector;
DO $$
BEGIN
    EXECUTE format('GRANT CREATE, CONNECT, TEMPORARY ON DATABASE %I TO turnout_projector', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO turnout_ingest, turnout_reader', current_database());
END
$$;

-- Reader: nothing on the tables above. Its grants on the analytics schema are made by the
-- projector each time it creates that schema (internal/projector/grants.go), because a
-- rebuild replaces the schema and grants do not survive DROP SCHEMA. An analytics schema
-- that already exists (a deployment older than this migration) is handed to the projector
-- role and opened to the reader here; that needs a superuser (or membership in
-- turnout_projector) on the migrating connection.
DO $$
DECLARE
    s   text;
    obj record;
BEGIN
    FOREACH s IN ARRAY ARRAY['analytics', 'analytics_rebuild'] LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = s);
        EXECUTE format('ALTER SCHEMA %I OWNER TO turnout_projector', s);
        FOR obj IN
            SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = s AND c.relkind IN ('r', 'v', 'm', 'S', 'p')
        LOOP
            EXECUTE format('ALTER %s %I.%I OWNER TO turnout_projector',
                CASE obj.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                 WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, s, obj.relname);
        END LOOP;
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO turnout_reader', s);
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO turnout_reader', s);
    END LOOP;
END
$$;
