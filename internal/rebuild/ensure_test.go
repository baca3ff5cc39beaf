package rebuild

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/projections"
)

// previousVersion is the projections version of the release before the REST webinar layer
// (turnout.webinar.snapshot into analytics.webinars).
const previousVersion = "3"

// TestEnsureCurrentRebuildsThePreviousVersion: a projector starting over an analytics schema
// the previous release built (its version in _meta, no REST webinar layer) rebuilds it from
// the log, so what the new projections read from old events (here a webinar known only from
// reconcile's snapshot) appears without anyone running `projector rebuild`; a current one is
// left alone.
func TestEnsureCurrentRebuildsThePreviousVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.Pool(t)
	_, err := pool.Exec(ctx, `INSERT INTO `+eventlog.Table+` (uuid, payload, metadata, transaction_id, received_at)
		VALUES (gen_random_uuid()::text, $1::json, '{"source":"rest"}'::json, pg_current_xact_id(), now())`,
		`{"eventName":"turnout.webinar.snapshot","eventKey":"80000000-0000-8000-8000-000000000001","eventVersion":"1.0.0","source":"rest",`+
			`"organizerKey":"8100000000000000001","webinarKey":"9100000000000000101","fetchedAt":"2026-12-01T00:00:00Z",`+
			`"snapshot":{"webinarKey":9100000000000000101,"subject":"REST title","organizerKey":8100000000000000001}}`)
	if err != nil {
		t.Fatal(err)
	}
	// The log reader sees a row once no older transaction of the cluster runs (other tests').
	deadline := time.Now().Add(30 * time.Second)
	for {
		var visible bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+eventlog.Table+`
			WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()))`).Scan(&visible); err != nil {
			t.Fatal(err)
		}
		if visible {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("log row not visible within 30s")
		}
		time.Sleep(20 * time.Millisecond) // polling, with a deadline
	}
	b := New(pool, Config{}, slog.New(slog.DiscardHandler), NewMetrics(prometheus.NewRegistry()))
	if err := b.EnsureCurrent(ctx); err != nil {
		t.Fatalf("first build: %v", err)
	}
	// Turn it into what the previous release left: its version, no REST webinar layer.
	for _, sql := range []string{
		`UPDATE ` + projections.Schema + `._meta SET version = '` + previousVersion + `'`,
		`UPDATE ` + projections.Schema + `.webinars SET rest = NULL, rest_offset = NULL`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	title := func() string {
		t.Helper()
		var s *string
		if err := pool.QueryRow(ctx, `SELECT title FROM `+projections.Schema+`.webinars WHERE webinar_key = '9100000000000000101'`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		if s == nil {
			return ""
		}
		return *s
	}
	if got := title(); got != "" {
		t.Fatalf("title before the upgrade = %q, want none", got)
	}

	if err := b.EnsureCurrent(ctx); err != nil {
		t.Fatalf("start after the upgrade: %v", err)
	}
	v, _, err := projections.StoredVersion(ctx, pool, projections.Schema)
	if err != nil || v != projections.Version {
		t.Fatalf("analytics version = %q (%v), want %q: the projector did not rebuild", v, err, projections.Version)
	}
	if got := title(); got != "REST title" {
		t.Fatalf("title after the upgrade = %q, want the snapshot's subject", got)
	}
}
