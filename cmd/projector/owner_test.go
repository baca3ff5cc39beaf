package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/migrations"
)

// plantLookalikes does what a compromised turnout_projector could do with CREATE on the
// database: it creates a schema named after the owner (the first schema of the owner's
// default search_path, "$user", public) holding look-alikes of what owner-run code touches:
// the consumer offsets table with a trigger, and views of the log and of golang-migrate's
// schema_migrations that call its function. Each trap records the role that ran it in
// <owner>.trap_fired. Since migration 0008 no service role holds CREATE on the database
// (checkServices shows the projector's login cannot create a schema); it is granted here by
// hand, as 0002 once did, so the test proves that owner-run code does not depend on that:
// whoever manages to create the schema, the owner's sessions never resolve a name in it.
func plantLookalikes(t *testing.T, admin *pgxpool.Pool) (owner string) {
	t.Helper()
	ctx := context.Background()
	var db string
	if err := admin.QueryRow(ctx, `SELECT current_user, current_database()`).Scan(&owner, &db); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `GRANT CREATE ON DATABASE `+pgx.Identifier{db}.Sanitize()+` TO turnout_projector`); err != nil {
		t.Fatalf("grant the projector CREATE on the database: %v", err)
	}
	conn, err := admin.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	o := pgx.Identifier{owner}.Sanitize()
	script := fmt.Sprintf(`
SET ROLE turnout_projector;
CREATE SCHEMA %[1]s;
CREATE TABLE %[1]s.trap_fired (trap text, run_by text);
CREATE FUNCTION %[1]s.fire(trap text) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO %[1]s.trap_fired VALUES (trap, current_user);
    RETURN true;
END $f$;
CREATE FUNCTION %[1]s.fire_trigger() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM %[1]s.fire(TG_TABLE_NAME || ' ' || TG_OP);
    RETURN NULL;
END $f$;
CREATE TABLE %[1]s.`+eventlog.OffsetsTable+` (LIKE public.`+eventlog.OffsetsTable+`);
CREATE TRIGGER trap BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %[1]s.`+eventlog.OffsetsTable+`
    FOR EACH STATEMENT EXECUTE FUNCTION %[1]s.fire_trigger();
CREATE VIEW %[1]s.`+eventlog.Table+` AS
    SELECT * FROM public.`+eventlog.Table+` WHERE %[1]s.fire('log view');
CREATE VIEW %[1]s.ingest_quarantine AS SELECT 1 AS id WHERE %[1]s.fire('quarantine view');
CREATE VIEW %[1]s.schema_migrations AS
    SELECT 999::bigint AS version, false AS dirty WHERE %[1]s.fire('schema_migrations view');
GRANT USAGE ON SCHEMA %[1]s TO PUBLIC;
GRANT ALL ON ALL TABLES IN SCHEMA %[1]s TO PUBLIC;
RESET ROLE;`, o)
	if _, err := conn.Exec(ctx, script); err != nil {
		t.Fatalf("plant the look-alikes as turnout_projector: %v", err)
	}
	return owner
}

// trapsFired lists the traps that ran, with the role that ran them.
func trapsFired(t *testing.T, admin *pgxpool.Pool, owner string) []string {
	t.Helper()
	var fired []string
	if err := admin.QueryRow(context.Background(), `SELECT coalesce(array_agg(trap || ' as ' || run_by), '{}') FROM `+
		pgx.Identifier{owner, "trap_fired"}.Sanitize()).Scan(&fired); err != nil {
		t.Fatalf("read the traps: %v", err)
	}
	return fired
}

// No role can make owner-run code run its own: with the look-alikes planted, migrate,
// rebuild, status and forget, run as the owner exactly as an operator runs them, never
// touch them (while the same unqualified names in an owner's session with the default
// search_path do).
func TestOwnerRunCodeNeverRunsLookalikes(t *testing.T) {
	t.Parallel()
	admin, url := pgtest.Pool(t)
	ctx := context.Background()
	seedPerson(t, admin)
	owner := plantLookalikes(t, admin)

	// The traps are armed: an owner's session on the default search_path falls into them.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT version FROM schema_migrations`); err != nil {
		t.Fatalf("control query: %v", err)
	}
	if _, err := conn.Exec(ctx, `UPDATE `+eventlog.OffsetsTable+` SET consumer_group = consumer_group`); err != nil {
		t.Fatalf("control query: %v", err)
	}
	conn.Close(ctx)
	if fired := trapsFired(t, admin, owner); len(fired) != 2 {
		t.Fatalf("control: traps fired %q, want the two the default search_path falls into", fired)
	}
	if _, err := admin.Exec(ctx, `DELETE FROM `+pgx.Identifier{owner, "trap_fired"}.Sanitize()); err != nil {
		t.Fatal(err)
	}

	if err := migrations.Up(url); err != nil {
		t.Fatalf("migrate as the owner: %v", err)
	}
	env := testEnv(url, "REBUILD_BATCH_SIZE", "7")
	mustCommand(t, env, "rebuild") // migrates first too, as -migrate defaults to true
	mustCommand(t, env, "status")
	res := forget(t, env, "--email", graceEmail)
	if res.LogEvents == 0 || res.QuarantineDeleted == 0 {
		t.Errorf("forget = %+v, want her log events redacted and her quarantined deliveries deleted", res)
	}
	if fired := trapsFired(t, admin, owner); len(fired) != 0 {
		t.Errorf("owner-run code ran the look-alikes: %q", fired)
	}
}
