-- DELETE rather than TRUNCATE: cheap for the few rows of a live apply, and undone cleanly by
-- a ROLLBACK TO SAVEPOINT.
DELETE FROM pg_temp.turnout_stage
