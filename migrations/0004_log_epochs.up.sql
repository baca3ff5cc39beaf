-- A log order that survives a logical dump (pg_dump / pg_restore into another cluster).
--
-- The log was ordered by (transaction_id, "offset"), transaction_id being the writer's xid8,
-- and a row counted as committed when transaction_id < pg_snapshot_xmin(...). xids belong to
-- one cluster: restored into a new cluster, whose counter is far behind, every restored row
-- looks in flight (hidden from every reader), and new rows sort before the restored ones.
--
-- The fix is an epoch: the log order becomes (epoch, transaction_id, "offset"). An epoch is
-- a span of the log written by one cluster (identified by pg_control_system()'s
-- system_identifier, which a logical restore does not carry over and a physical backup
-- does). Every row of an older epoch was committed by a cluster that no longer writes here,
-- so it is visible and sorts before anything written now; within the current epoch the xid
-- rule still applies. Readers compare a row with the horizon (eventlog_horizon()): the
-- position before which every row is committed.
--
-- Existing logs keep their rows (epoch 1) and consumer positions (epoch 1 too). When the
-- log being migrated is already ahead of this cluster (restored from a dump taken before
-- this migration existed), epoch 1 is recorded as written by an unknown cluster, so the
-- first write here opens epoch 2 and the restored rows are all visible.

CREATE TABLE eventlog_epochs (
    epoch             integer PRIMARY KEY,
    -- The cluster that writes this epoch; NULL when unknown (a log found ahead of the
    -- cluster at migration time). A cluster only ever appends to the latest epoch.
    system_identifier bigint,
    started_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE eventlog_epochs IS
    'Spans of the event log written by one PostgreSQL cluster; see README "Event log contract".';

-- eventlog_epoch returns the epoch new log rows belong to: the latest one when this cluster
-- writes it, else a new one. SECURITY DEFINER so that ingest may open an epoch without
-- write access to the table; search_path pinned and names qualified, as owner-run code must.
CREATE FUNCTION public.eventlog_epoch() RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    sysid  bigint := (SELECT c.system_identifier FROM pg_catalog.pg_control_system() c);
    latest integer;
    owner  bigint;
BEGIN
    LOOP
        SELECT e.epoch, e.system_identifier INTO latest, owner
        FROM public.eventlog_epochs e ORDER BY e.epoch DESC LIMIT 1;
        IF latest IS NOT NULL AND owner = sysid THEN
            -- Remembered for the session (see the column default below). Transactional:
            -- undone if this transaction rolls back.
            PERFORM pg_catalog.set_config('turnout.log_epoch', latest::text, false);
            RETURN latest;
        END IF;
        -- Two writers may race to open the next epoch: one inserts, the other finds it
        -- taken and reads it back (it then belongs to this cluster).
        INSERT INTO public.eventlog_epochs (epoch, system_identifier)
        VALUES (coalesce(latest, 0) + 1, sysid) ON CONFLICT DO NOTHING;
        IF FOUND THEN
            PERFORM pg_catalog.set_config('turnout.log_epoch', (coalesce(latest, 0) + 1)::text, false);
            RETURN coalesce(latest, 0) + 1;
        END IF;
    END LOOP;
END
$$;

-- eventlog_horizon returns the position (epoch, transaction_id) before which every log row
-- is committed and can be read in order: the current epoch with the oldest running xid
-- (the xid rule), or, when this cluster has not written yet, the epoch after the latest.
CREATE FUNCTION public.eventlog_horizon(OUT epoch integer, OUT xmin xid8)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN e.system_identifier = c.system_identifier THEN e.epoch ELSE coalesce(e.epoch, 0) + 1 END,
           CASE WHEN e.system_identifier = c.system_identifier
                THEN pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()) ELSE '0'::xid8 END
    FROM pg_catalog.pg_control_system() c
    LEFT JOIN (SELECT * FROM public.eventlog_epochs ORDER BY epoch DESC LIMIT 1) e ON true
$$;

-- Epoch 1: the rows already in the log. Written by this cluster, unless some row's xid is
-- not below this cluster's next xid: then they came from elsewhere (a restored dump).
INSERT INTO eventlog_epochs (epoch, system_identifier)
SELECT 1, CASE WHEN coalesce(max(l.transaction_id) < pg_snapshot_xmax(pg_current_snapshot()), true)
               THEN (SELECT system_identifier FROM pg_control_system()) END
FROM watermill_gotowebinar_events l;

-- Existing rows get epoch 1 without a table rewrite (a constant default is stored once);
-- new rows get the epoch of the cluster writing them. The session remembers its epoch
-- (turnout.log_epoch), so the function runs once per session, not per row: a session never
-- outlives its cluster, and a cluster only appends to the latest epoch, its own.
ALTER TABLE watermill_gotowebinar_events ADD COLUMN epoch integer NOT NULL DEFAULT 1;
ALTER TABLE watermill_gotowebinar_events ALTER COLUMN epoch
    SET DEFAULT coalesce(nullif(current_setting('turnout.log_epoch', true), '')::integer, public.eventlog_epoch());
ALTER TABLE watermill_gotowebinar_events DROP CONSTRAINT watermill_gotowebinar_events_pkey;
ALTER TABLE watermill_gotowebinar_events ADD PRIMARY KEY (epoch, transaction_id, "offset");

-- Consumer positions gain the epoch; existing ones are in epoch 1.
ALTER TABLE watermill_offsets_gotowebinar_events ADD COLUMN last_processed_epoch integer NOT NULL DEFAULT 1;

-- eventlog_range returns the log rows in ((after), (upto)], in log order, at most max_rows:
-- what set-based readers (the projections' staging statement) select from, so that they
-- need not know the log's table or its order. LANGUAGE sql, STABLE and without SET clauses
-- so the planner inlines it: a range scan of the primary key, as if written in place.
CREATE FUNCTION public.eventlog_range(
    after_epoch integer, after_tx xid8, after_offset bigint,
    upto_epoch integer, upto_tx xid8, upto_offset bigint, max_rows bigint)
RETURNS TABLE (epoch integer, transaction_id xid8, "offset" bigint, received_at timestamptz, payload json)
LANGUAGE sql STABLE AS $$
    SELECT l.epoch, l.transaction_id, l."offset", l.received_at, l.payload
    FROM public.watermill_gotowebinar_events l
    WHERE (l.epoch, l.transaction_id, l."offset") > (after_epoch, after_tx, after_offset)
      AND (l.epoch, l.transaction_id, l."offset") <= (upto_epoch, upto_tx, upto_offset)
    ORDER BY l.epoch, l.transaction_id, l."offset"
    LIMIT max_rows
$$;

GRANT SELECT ON eventlog_epochs TO turnout_projector;
REVOKE EXECUTE ON FUNCTION public.eventlog_epoch() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.eventlog_epoch() TO turnout_ingest;
