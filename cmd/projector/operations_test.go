package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
)

// The procedures of docs/operations.md, "Database roles", executed as written: the
// database is migrated by its owner, the services log in as login roles granted the
// service roles, and rebuild, status and the live projector run as the projector's login
// with their defaults (so they check migrations first, as the owner never does for them),
// forget as the owner.

// command runs projector with args exactly as an operator would (migrations included).
func command(getenv func(string) string, args ...string) (string, error) {
	out := &syncBuffer{}
	err := run(context.Background(), args, getenv, out, out)
	return out.String(), err
}

// mustCommand is command, failing the test on an error.
func mustCommand(t *testing.T, getenv func(string) string, args ...string) string {
	t.Helper()
	out, err := command(getenv, args...)
	if err != nil {
		t.Fatalf("projector %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// asOwner runs the owner's SQL of a procedure.
func asOwner(t *testing.T, admin *pgxpool.Pool, sql string) {
	t.Helper()
	if _, err := admin.Exec(context.Background(), sql); err != nil {
		t.Fatalf("as the owner: %s: %v", sql, err)
	}
}

// databaseGrants re-applies the database-level statements of migrations 0002, 0005 and
// 0008, which a database cloned from pgtest's template lacks (CREATE DATABASE … TEMPLATE
// does not copy the database's ACL); a database migrated in place has them.
func databaseGrants(t *testing.T, admin *pgxpool.Pool) {
	t.Helper()
	for _, f := range []string{"0002_roles.up.sql", "0005_owner_safety.up.sql", "0008_projector_no_database_create.up.sql"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "migrations", f))
		if err != nil {
			t.Fatal(err)
		}
		asOwner(t, admin, string(b))
	}
}

// loginRole creates a login role the way docs/operations.md says, returning its URL. The
// statements after the CREATE ROLE are the procedure's, with %s for the role's name.
func loginRole(t *testing.T, admin *pgxpool.Pool, dbURL, service string, then ...string) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name, password := "ops_"+strings.TrimPrefix(service, "turnout_")+"_"+hex.EncodeToString(b), hex.EncodeToString(b)
	id := pgx.Identifier{name}.Sanitize()
	asOwner(t, admin, `CREATE ROLE `+id+` LOGIN PASSWORD '`+password+`' IN ROLE `+service)
	for _, stmt := range then {
		asOwner(t, admin, strings.ReplaceAll(stmt, "%s", id))
	}
	t.Cleanup(func() {
		// The login owns nothing (objects belong to the service role): dropping it is all.
		if _, err := admin.Exec(context.Background(), `DROP ROLE `+id); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(name, password)
	return u.String()
}

// schemaOwners maps each analytics* schema to its owner.
func schemaOwners(t *testing.T, admin *pgxpool.Pool) map[string]string {
	t.Helper()
	rows, err := admin.Query(context.Background(), `SELECT nspname, nspowner::regrole::text FROM pg_namespace WHERE nspname LIKE 'analytics%'`)
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string]string{}
	for rows.Next() {
		var s, o string
		if err := rows.Scan(&s, &o); err != nil {
			t.Fatal(err)
		}
		owners[s] = o
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return owners
}

// checkServices runs the projector's commands as its login, the live projector until a
// new event shows, and the reader's query as its login; then forget as the owner. The
// projector's login cannot create a schema of its own (no CREATE on the database,
// migration 0008): its rebuild creates and renames its schemas through the owner's
// functions.
func checkServices(t *testing.T, admin *pgxpool.Pool, ownerURL, projectorURL, readerURL string) {
	t.Helper()
	ctx := context.Background()
	projector, err := pgx.Connect(ctx, projectorURL)
	if err != nil {
		t.Fatalf("connect as the projector's login: %v", err)
	}
	_, err = projector.Exec(ctx, `CREATE SCHEMA turnout_planted`)
	projector.Close(ctx)
	if pgErr := (*pgconn.PgError)(nil); !errors.As(err, &pgErr) || pgErr.Code != pgerrcode.InsufficientPrivilege {
		t.Errorf("the projector's login creating a schema: %v, want 42501", err)
	}
	env := testEnv(projectorURL, "REBUILD_BATCH_SIZE", "11")
	mustCommand(t, env, "rebuild")
	if out := mustCommand(t, env, "status"); !strings.Contains(out, "analytics") {
		t.Errorf("status as the projector's login:\n%s", out)
	}
	if owners := schemaOwners(t, admin); len(owners) != 1 || owners["analytics"] != "turnout_projector" {
		t.Errorf("schemas after a rebuild as the projector's login: %v, want only analytics, owned by turnout_projector", owners)
	}

	stop := startLive(t, env)
	before := registrantsOf(t, admin, webinarA)
	if _, err := admin.Exec(ctx, `INSERT INTO `+eventlog.Table+` (uuid, payload, metadata, transaction_id)
		VALUES (gen_random_uuid()::text, $1::json, '{"signature_verified":"true"}', pg_current_xact_id())`,
		`{"eventName":"registrant.added","eventVersion":"1.0.0","product":"g2w","eventKey":"ops-live",
		  "webinarKey":`+webinarA+`,"registrantKey":5199999999999999999,"email":"late@example.com"}`); err != nil {
		t.Fatalf("append an event: %v", err)
	}
	waitFor(t, 30*time.Second, "the live projector (as its login) to apply a new event", func() (bool, error) {
		return registrantsOf(t, admin, webinarA) == before+1, nil
	})
	if err := stop(); err != nil {
		t.Fatalf("live projector as its login: %v", err)
	}

	reader, err := pgx.Connect(ctx, readerURL)
	if err != nil {
		t.Fatalf("connect as the reader's login: %v", err)
	}
	defer reader.Close(ctx)
	var n int
	if err := reader.QueryRow(ctx, `SELECT count(*) FROM analytics.webinar_conversion`).Scan(&n); err != nil || n == 0 {
		t.Errorf("the reader's login reads %d webinars: %v", n, err)
	}
	var timeout string
	if err := reader.QueryRow(ctx, `SHOW statement_timeout`).Scan(&timeout); err != nil || timeout != "5min" {
		t.Errorf("the reader's login runs with statement_timeout %q (%v), want 5min", timeout, err)
	}
	_, err = reader.Exec(ctx, `CREATE TEMP TABLE mine (a int)`)
	if pgErr := (*pgconn.PgError)(nil); !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("the reader's login creating a temporary table: %v, want 42501", err)
	}

	if res := forget(t, testEnv(ownerURL), "--email", graceEmail); res.Registrants == 0 {
		t.Errorf("forget as the owner after the services ran as their logins = %+v", res)
	}
}

// registrantsOf reads a webinar's registrant count from analytics.
func registrantsOf(t *testing.T, admin *pgxpool.Pool, webinar string) int {
	t.Helper()
	var n int
	if err := admin.QueryRow(context.Background(), `SELECT coalesce(max(registrants), 0) FROM analytics.webinar_conversion WHERE webinar_key = $1`, webinar).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Procedure: roles from scratch, services logging in as roles granted the service roles.
func TestOperationsRolesFromScratch(t *testing.T) {
	t.Parallel()
	admin, ownerURL := pgtest.Pool(t)
	databaseGrants(t, admin)
	seedPerson(t, admin)
	projectorURL := loginRole(t, admin, ownerURL, "turnout_projector", `ALTER ROLE %s SET role = 'turnout_projector'`)
	readerURL := loginRole(t, admin, ownerURL, "turnout_reader", `ALTER ROLE %s SET statement_timeout = '5min'`)
	ingestURL := loginRole(t, admin, ownerURL, "turnout_ingest", `ALTER ROLE %s SET role = 'turnout_ingest'`)
	checkIngestLogin(t, ingestURL)
	checkServices(t, admin, ownerURL, projectorURL, readerURL)
}

// checkIngestLogin: ingest's login acts as turnout_ingest, may append to the log and may
// not read it.
func checkIngestLogin(t *testing.T, ingestURL string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ingestURL)
	if err != nil {
		t.Fatalf("connect as ingest's login: %v", err)
	}
	defer conn.Close(ctx)
	var role string
	if err := conn.QueryRow(ctx, `SELECT current_user`).Scan(&role); err != nil || role != "turnout_ingest" {
		t.Errorf("ingest's login acts as %q (%v), want turnout_ingest", role, err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO `+eventlog.Table+` (uuid, payload, metadata, transaction_id)
		VALUES (gen_random_uuid()::text, '{"eventName":"webinar.created","eventKey":"ops-ingest"}', '{"signature_verified":"true"}', pg_current_xact_id())`); err != nil {
		t.Errorf("ingest's login appending to the log: %v", err)
	}
	_, err = conn.Exec(ctx, `SELECT payload FROM `+eventlog.Table)
	if pgErr := (*pgconn.PgError)(nil); !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("ingest's login reading the log: %v, want 42501", err)
	}
}

// Procedure: from the quick start (every service as the owner, so the owner built
// analytics, and left a rebuild's shadow behind) to the service roles.
func TestOperationsMoveFromQuickStart(t *testing.T) {
	t.Parallel()
	admin, ownerURL := pgtest.Pool(t)
	databaseGrants(t, admin)
	seedPerson(t, admin)
	owner := testEnv(ownerURL)
	mustCommand(t, owner, "rebuild")
	interruptedShadow(t, admin)

	projectorURL := loginRole(t, admin, ownerURL, "turnout_projector", `ALTER ROLE %s SET role = 'turnout_projector'`)
	readerURL := loginRole(t, admin, ownerURL, "turnout_reader", `ALTER ROLE %s SET statement_timeout = '5min'`)
	// Without the hand-over step, the projector cannot take over the owner's schemas.
	if out, err := command(testEnv(projectorURL), "rebuild"); err == nil {
		t.Fatalf("rebuild as the projector before the hand-over succeeded; the procedure's step would be pointless:\n%s", out)
	}
	asOwner(t, admin, `CALL public.turnout_hand_over_analytics()`)
	checkServices(t, admin, ownerURL, projectorURL, readerURL)
}
