-- Nothing a service role does can make the owner run its code, and the roles get no more
-- than their service needs (issue 16). Everything here is schema-qualified, and each
-- function pins its own search_path: the migrating and the calling sessions may not.

-- Whether migrations are current, readable by the services, so a service logging in as its
-- own role can tell "nothing to do" from "the owner must migrate" (migrations.Up) without
-- the ownership it would need to migrate.
GRANT SELECT ON public.schema_migrations TO turnout_ingest, turnout_projector;

-- The projector's schemas, created for it by a function the owner owns, so that no service
-- role needs CREATE on the database (which would let it create a schema named after the
-- owner, the first place the owner's default search_path looks). The function can create
-- only these names, always owned by turnout_projector, whichever login role (a member of
-- turnout_projector) calls it. Running as the owner, it needs the owner to be a superuser
-- or a member of turnout_projector (as projector forget does).
CREATE OR REPLACE FUNCTION public.turnout_create_schema(name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF name IS NULL OR name NOT IN ('analytics', 'analytics_rebuild', 'analytics_retired') THEN
        RAISE EXCEPTION 'turnout_create_schema: % is not one of the projector''s schemas', name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('CREATE SCHEMA %I AUTHORIZATION turnout_projector', name);
END
$$;

-- Renaming a schema needs CREATE on the database too: the rebuild's swap renames its
-- shadow into place through this function. Both names must be the projector's, and the
-- schema renamed must be owned by turnout_projector.
CREATE OR REPLACE FUNCTION public.turnout_rename_schema(from_name text, to_name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF from_name IS NULL OR to_name IS NULL
       OR from_name NOT IN ('analytics', 'analytics_rebuild', 'analytics_retired')
       OR to_name NOT IN ('analytics', 'analytics_rebuild', 'analytics_retired') THEN
        RAISE EXCEPTION 'turnout_rename_schema: % → % are not the projector''s schemas', from_name, to_name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace
                   WHERE nspname = from_name AND nspowner = 'turnout_projector'::pg_catalog.regrole) THEN
        RAISE EXCEPTION 'turnout_rename_schema: schema % is not owned by turnout_projector', from_name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('ALTER SCHEMA %I RENAME TO %I', from_name, to_name);
END
$$;

REVOKE ALL ON FUNCTION public.turnout_create_schema(text), public.turnout_rename_schema(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.turnout_create_schema(text), public.turnout_rename_schema(text, text) TO turnout_projector;

-- Hands analytics (and a rebuild's leftover shadow) to turnout_projector and opens it to
-- turnout_reader: the step from the quick start (every service as the owner, so the owner
-- built analytics) to the service roles, or after a rebuild run by another role. Run it as
-- the owner (a superuser or a member of turnout_projector): CALL public.turnout_hand_over_analytics();
-- (docs/operations.md, "Move from the quick start to the service roles").
CREATE OR REPLACE PROCEDURE public.turnout_hand_over_analytics()
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s   text;
    obj record;
BEGIN
    FOREACH s IN ARRAY ARRAY['analytics', 'analytics_rebuild', 'analytics_retired'] LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = s);
        EXECUTE format('ALTER SCHEMA %I OWNER TO turnout_projector', s);
        FOR obj IN
            SELECT c.relname, c.relkind FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = s AND c.relkind IN ('r', 'v', 'm', 'S', 'p')
        LOOP
            EXECUTE format('ALTER %s %I.%I OWNER TO turnout_projector',
                CASE obj.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                 WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, s, obj.relname);
        END LOOP;
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO turnout_reader', s);
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO turnout_reader', s);
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE turnout_projector IN SCHEMA %I GRANT SELECT ON TABLES TO turnout_reader', s);
    END LOOP;
END
$$;
REVOKE ALL ON PROCEDURE public.turnout_hand_over_analytics() FROM PUBLIC;
CALL public.turnout_hand_over_analytics();

-- The reader: no temporary tables (PUBLIC may create them in every new database; only the
-- projector needs them, for its staging table, and keeps its grant from 0002), and a
-- statement_timeout so a runaway BI query cannot hold analytics' locks, and a rebuild's
-- swap, for ever. A role setting applies to sessions that log in as turnout_reader; a login
-- role granted turnout_reader gets its own (docs/operations.md).
DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO turnout_projector', current_database());
END
$$;
ALTER ROLE turnout_reader SET statement_timeout = '5min';
