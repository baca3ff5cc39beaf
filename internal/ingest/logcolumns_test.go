package ingest

import (
	"context"
	"errors"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // pgx5:// for migrate
	_ "github.com/golang-migrate/migrate/v4/source/file"     // file:// for migrate
	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
)

// TestLogColumnsFromMetadataKeepEveryRow applies migration 0007 (event_name and event_key
// generated from the metadata) to a log holding rows of every kind written before it, and
// checks that each row keeps its values and that new rows take them from the metadata.
func TestLogColumnsFromMetadataKeepEveryRow(t *testing.T) {
	t.Parallel()
	admin := pgtest.AdminURL(t)
	ctx := context.Background()
	name := "turnout_test_0007_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	id := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
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
	u.Scheme = "pgx5"
	dir, err := filepath.Abs("../../migrations")
	if err != nil {
		t.Fatal(err)
	}
	m, err := migrate.New("file://"+dir, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Migrate(3); err != nil { // the last migration before 0007 on main
		t.Fatalf("migrate to 3: %v", err)
	}

	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	// Before 0007: an ingest row (metadata and payload agree), a row written by hand with
	// empty metadata, one with NULL metadata, and one whose payload has no eventKey.
	if _, err := db.Exec(ctx, `
		INSERT INTO `+eventlog.Table+` (uuid, payload, metadata, transaction_id) VALUES
		('a', '{"eventName":"registrant.added","eventKey":"k-ingest"}', '{"event_name":"registrant.added","event_key":"k-ingest","signature_verified":"true"}', pg_current_xact_id()),
		('b', '{"eventName":"webinar.created","eventKey":"k-hand"}', '{}', pg_current_xact_id()),
		('c', '{"eventName":"webinar.changed","eventKey":"k-null"}', NULL, pg_current_xact_id()),
		('d', '{"eventName":"registrant.joined"}', '{"signature_verified":"true"}', pg_current_xact_id())`); err != nil {
		t.Fatal(err)
	}
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		t.Fatalf("migrate up: %v", err)
	}
	// After: a row whose metadata carries the keys (what ingest writes) takes them from
	// there, even where the payload would say otherwise.
	if _, err := db.Exec(ctx, `
		INSERT INTO `+eventlog.Table+` (uuid, payload, metadata, transaction_id) VALUES
		('e', '{"eventName":"x","eventKey":"from-payload"}', '{"event_name":"registrant.added","event_key":"from-metadata"}', pg_current_xact_id())`); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(ctx, `SELECT uuid, coalesce(event_name, '<null>'), coalesce(event_key, '<null>') FROM `+eventlog.Table+` ORDER BY uuid`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([3]string, error) {
		var v [3]string
		err := r.Scan(&v[0], &v[1], &v[2])
		return v, err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := [][3]string{
		{"a", "registrant.added", "k-ingest"},
		{"b", "webinar.created", "k-hand"},
		{"c", "webinar.changed", "k-null"},
		{"d", "registrant.joined", "<null>"},
		{"e", "registrant.added", "from-metadata"},
	}
	if len(got) != len(want) {
		t.Fatalf("rows = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d = %v, want %v", i, got[i], want[i])
		}
	}
}
