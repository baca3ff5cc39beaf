-- Undo 0005_owner_safety: the reader's timeout and PUBLIC's TEMPORARY come back, the
-- functions and the procedure go, the services lose SELECT on the version table.
ALTER ROLE turnout_reader RESET statement_timeout;
DO $$
BEGIN
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO PUBLIC', current_database());
END
$$;
DROP PROCEDURE IF EXISTS public.turnout_hand_over_analytics();
DROP FUNCTION IF EXISTS public.turnout_rename_schema(text, text);
DROP FUNCTION IF EXISTS public.turnout_create_schema(text);
REVOKE SELECT ON public.schema_migrations FROM turnout_ingest, turnout_projector;
