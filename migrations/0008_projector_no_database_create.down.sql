-- Undo 0008_projector_no_database_create: turnout_projector gets CREATE on the database
-- back (as 0002 granted it). The hand-over is not undone: the schemas stay the projector's.
DO $$
BEGIN
    EXECUTE format('GRANT CREATE ON DATABASE %I TO turnout_projector', current_database());
END
$$;
