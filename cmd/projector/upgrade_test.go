package main

import (
	"context"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // pgx5:// for migrate
	_ "github.com/golang-migrate/migrate/v4/source/file"     // file:// for migrate
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/migrations"
)

// previousRelease is the last migration of the release before this one (2026-11-27):
// the log, its dedup and quarantine tables, and the roles.
const previousRelease = 2

// TestUpgradeFromThePreviousReleaseKeepsTheLog writes a log the way the previous release
// did (its schema, Watermill's publisher), applies every migration since, and checks that
// every event is still there byte for byte and that `projector rebuild` projects the same
// figures as a reference pass over the log.
func TestUpgradeFromThePreviousReleaseKeepsTheLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := pgtest.AdminURL(t)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := "turnout_upgrade_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	id := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+id); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)") })
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	dbURL := u.String()

	// The previous release's schema.
	dir, err := filepath.Abs("../../migrations")
	if err != nil {
		t.Fatal(err)
	}
	mu := *u
	mu.Scheme = "pgx5"
	m, err := migrate.New("file://"+dir, mu.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Migrate(previousRelease); err != nil {
		t.Fatalf("migrate to the previous release (%d): %v", previousRelease, err)
	}
	m.Close()

	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	g := newGenerator(t, 11)
	appendEvents(t, pool, g.stream(6, 15), 20)
	before := logByOffset(t, pool)
	if len(before) == 0 {
		t.Fatal("no events written before the upgrade")
	}

	if err := migrations.Up(dbURL); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	after := logByOffset(t, pool)
	if len(after) != len(before) {
		t.Fatalf("log after the upgrade has %d events, want the %d written before", len(after), len(before))
	}
	for off, p := range before {
		if after[off] != p {
			t.Fatalf("event at offset %d changed by the upgrade:\n before %s\n after  %s", off, p, after[off])
		}
	}

	// Events written after the upgrade join the old ones in the same log.
	appendEvents(t, pool, g.stream(2, 10), 20)
	runCommand(t, testEnv(dbURL), "rebuild")
	got := dump(t, pool, "analytics")
	assertSameTables(t, "rebuild after the upgrade", got, reference(t, pool))
	if len(got["registrants"]) == 0 || len(got["webinars"]) != 8 {
		t.Fatalf("after the upgrade: %d registrants, %d webinars; want some, and the 8 webinars of both streams", len(got["registrants"]), len(got["webinars"]))
	}
}

// logByOffset returns every log row's payload text by offset.
func logByOffset(t *testing.T, pool *pgxpool.Pool) map[int64]string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT "offset", payload::text FROM `+eventlog.Table)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]string{}
	var off int64
	var p string
	if _, err := pgx.ForEachRow(rows, []any{&off, &p}, func() error { out[off] = p; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}
