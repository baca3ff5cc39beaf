-- turnout_projector loses CREATE on the database (issue 16). With it, the role could create
-- a schema of any name, including one named after the owner, the first place the owner's
-- default search_path looks. It no longer needs it: the projector creates and renames its
-- schemas through the owner's functions public.turnout_create_schema and
-- public.turnout_rename_schema (0005), which create only those names, owned by
-- turnout_projector. Dropping a schema needs only its ownership.
DO $$
BEGIN
    EXECUTE format('REVOKE CREATE ON DATABASE %I FROM turnout_projector', current_database());
END
$$;

-- A rebuild run as the owner between 0005 and this migration created its shadow with plain
-- DDL, owned by the owner; the swap's rename now refuses a schema turnout_projector does
-- not own. Hand such schemas over (idempotent; run as in 0005).
CALL public.turnout_hand_over_analytics();
