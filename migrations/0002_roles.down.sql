-- Undo 0002_roles in this database: the roles lose every privilege here, analytics goes back
-- to the migrating role, and the roles are dropped unless another database of the cluster
-- still grants them something (roles are cluster-wide).
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['turnout_ingest', 'turnout_projector', 'turnout_reader'] LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r);
        EXECUTE format('REASSIGN OWNED BY %I TO %I', r, current_user);
        EXECUTE format('DROP OWNED BY %I', r); -- in this database: revokes its privileges
        BEGIN
            EXECUTE format('DROP ROLE %I', r);
        EXCEPTION WHEN dependent_objects_still_exist THEN
            RAISE NOTICE 'role % is still used in another database; kept', r;
        END;
    END LOOP;
END
$$;

