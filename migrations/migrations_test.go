package migrations_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/migrations"
)

// loginAs creates a login role that is a member of service (as operators grant service
// roles to login roles they manage) and returns the database URL logging in as it. The
// role is cluster-wide: it is dropped when the test ends.
func loginAs(t *testing.T, admin *pgxpool.Pool, dbURL, service string) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name, password := "turnout_login_"+hex.EncodeToString(b), hex.EncodeToString(b)
	ctx := context.Background()
	if _, err := admin.Exec(ctx, `CREATE ROLE `+pgx.Identifier{name}.Sanitize()+` LOGIN PASSWORD '`+password+`' IN ROLE `+
		pgx.Identifier{service}.Sanitize()); err != nil {
		t.Fatalf("create login role: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), `DROP ROLE `+pgx.Identifier{name}.Sanitize()); err != nil {
			t.Errorf("drop login role: %v", err)
		}
	})
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(name, password)
	return u.String()
}

// A service logging in as its own role (not the database's owner) never migrates: with
// the schema current it goes on, otherwise it says who must migrate, instead of failing
// halfway with "permission denied".
func TestUpAsAServiceRole(t *testing.T) {
	t.Parallel()
	admin, dbURL := pgtest.Pool(t)
	ctx := context.Background()
	latest, err := migrations.Latest()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, state string
		version     uint
		dirty       bool
		want        string // "" = nil
	}{
		{"current", "", latest, false, ""},
		{"behind", "", latest - 1, false, "of"},
		{"dirty", "", latest, true, "dirty"},
	}
	for _, service := range []string{"turnout_projector", "turnout_ingest"} {
		login := loginAs(t, admin, dbURL, service)
		for _, tt := range tests { // sequential: they share the version row
			if _, err := admin.Exec(ctx, `UPDATE public.schema_migrations SET version = $1, dirty = $2`, tt.version, tt.dirty); err != nil {
				t.Fatal(err)
			}
			err := migrations.Up(login)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("%s, %s: Up = %v, want nil", service, tt.name, err)
			case tt.want != "" && (!errors.Is(err, migrations.ErrNotOwner) || !strings.Contains(err.Error(), tt.want) ||
				!strings.Contains(err.Error(), "migrate")):
				t.Errorf("%s, %s: Up = %v, want ErrNotOwner saying %q and to run migrate", service, tt.name, err, tt.want)
			}
		}
	}
	if _, err := admin.Exec(ctx, `UPDATE public.schema_migrations SET version = $1, dirty = false`, latest); err != nil {
		t.Fatal(err)
	}
	// The owner still migrates, and a second run changes nothing.
	if err := migrations.Up(dbURL); err != nil {
		t.Fatalf("Up as the owner: %v", err)
	}
}

// reapply runs one migration's up script again in the test's database: CREATE DATABASE …
// TEMPLATE does not copy the database's own ACL, which 0002 and 0005 set. Running a
// migration twice also proves it idempotent.
func reapply(t *testing.T, admin *pgxpool.Pool, file string) {
	t.Helper()
	script, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(context.Background(), string(script)); err != nil {
		t.Fatalf("re-apply %s: %v", file, err)
	}
}

// sqlState returns the SQLSTATE of err ("" if it is not a PostgreSQL error).
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// hasDatabaseCreate reports whether role may create schemas in the current database.
func hasDatabaseCreate(t *testing.T, admin *pgxpool.Pool, role string) bool {
	t.Helper()
	var ok bool
	if err := admin.QueryRow(context.Background(), `SELECT has_database_privilege($1, current_database(), 'CREATE')`, role).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// Migration 0008 takes CREATE on the database from turnout_projector (0002 granted it), and
// turnout_projector still gets its schemas, through the owner's functions, which create and
// rename only those, owned by turnout_projector.
func TestProjectorSchemasWithoutDatabaseCreate(t *testing.T) {
	t.Parallel()
	admin, dbURL := pgtest.Pool(t)
	ctx := context.Background()
	reapply(t, admin, "0002_roles.up.sql")
	reapply(t, admin, "0005_owner_safety.up.sql")
	if !hasDatabaseCreate(t, admin, "turnout_projector") {
		t.Fatal("control: after 0002 turnout_projector lacks CREATE on the database; 0008 would prove nothing")
	}
	reapply(t, admin, "0008_projector_no_database_create.up.sql")
	for _, role := range []string{"turnout_projector", "turnout_ingest", "turnout_reader", "turnout_reconcile"} {
		if hasDatabaseCreate(t, admin, role) {
			t.Errorf("after 0008 %s may create schemas in the database", role)
		}
	}
	login := loginAs(t, admin, dbURL, "turnout_projector")
	conn, err := pgx.Connect(ctx, login)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// A login role granted turnout_projector acts as it (docs/operations.md).
	if _, err := conn.Exec(ctx, `SET ROLE turnout_projector`); err != nil {
		t.Fatal(err)
	}
	var owner string
	if err := conn.QueryRow(ctx, `SELECT current_user`).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		sql  string
		want string // SQLSTATE, "" = success
	}{
		{`CREATE SCHEMA ` + pgx.Identifier{"postgres"}.Sanitize(), "42501"},
		{`SELECT public.turnout_create_schema('postgres')`, "42501"},
		{`SELECT public.turnout_create_schema('analytics_rebuild')`, ""},
		{`CREATE TABLE analytics_rebuild.t (a int)`, ""},
		{`SELECT public.turnout_rename_schema('analytics_rebuild', 'analytics')`, ""},
		{`SELECT public.turnout_rename_schema('analytics', 'public')`, "42501"},
		{`SELECT public.turnout_create_schema('analytics_rebuild')`, ""},
		{`DROP SCHEMA analytics_rebuild`, ""},
	}
	for _, s := range steps {
		if _, err := conn.Exec(ctx, s.sql); sqlState(err) != s.want || (s.want == "" && err != nil) {
			t.Errorf("%s as turnout_projector: %v, want SQLSTATE %q", s.sql, err, s.want)
		}
	}
	var nspOwner string
	if err := admin.QueryRow(ctx, `SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'analytics'`).Scan(&nspOwner); err != nil {
		t.Fatal(err)
	}
	if nspOwner != "turnout_projector" || owner != "turnout_projector" {
		t.Errorf("analytics is owned by %s (session role %s), want turnout_projector", nspOwner, owner)
	}
	reader, err := admin.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Release()
	if _, err := reader.Exec(ctx, `SET ROLE turnout_reader`); err != nil {
		t.Fatal(err)
	}
	_, err = reader.Exec(ctx, `SELECT public.turnout_create_schema('analytics_retired')`)
	if _, rerr := reader.Exec(ctx, `RESET ROLE`); rerr != nil {
		t.Fatal(rerr)
	}
	if sqlState(err) != "42501" {
		t.Errorf("turnout_reader calling turnout_create_schema: %v, want 42501", err)
	}
}

// The reader may not create temporary tables and has a statement_timeout.
func TestReaderLimits(t *testing.T) {
	t.Parallel()
	admin, _ := pgtest.Pool(t)
	ctx := context.Background()
	reapply(t, admin, "0002_roles.up.sql")
	reapply(t, admin, "0005_owner_safety.up.sql")
	conn, err := admin.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET ROLE turnout_reader`); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `CREATE TEMP TABLE mine (a int)`)
	if _, rerr := conn.Exec(ctx, `RESET ROLE`); rerr != nil {
		t.Fatal(rerr)
	}
	if sqlState(err) != "42501" {
		t.Errorf("turnout_reader creating a temporary table: %v, want 42501", err)
	}
	var config []string
	if err := admin.QueryRow(ctx, `SELECT coalesce(rolconfig, '{}') FROM pg_roles WHERE rolname = 'turnout_reader'`).Scan(&config); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(config, ","), "statement_timeout=") {
		t.Errorf("turnout_reader's settings %q have no statement_timeout", config)
	}
}
