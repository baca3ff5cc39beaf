package dashboards

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/ingest"
	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/projections"
	"github.com/turnout-analytics/turnout/internal/rebuild"
	"github.com/turnout-analytics/turnout/internal/scenario"
	"github.com/turnout-analytics/turnout/internal/webhook"
)

// Paths of the files under test, relative to this package.
const (
	dashboardDir      = "../../deploy/grafana/dashboards"
	datasourcesFile   = "../../deploy/grafana/provisioning/datasources/turnout.yml"
	alertsFile        = "../../deploy/prometheus/alerts.yml"
	rolesMigration    = "../../migrations/0002_roles.up.sql"
	safetyMigration   = "../../migrations/0005_owner_safety.up.sql"
	noCreateMigration = "../../migrations/0008_projector_no_database_create.up.sql"
)

// secretKey signs the fixture's deliveries (GOTO-FACTS.md's vector key).
var secretKey = []byte("f1679e36-17fe-48fa-93da-44195fd9e293")

// pipeline is a database that went through the whole pipeline under the service roles.
type pipeline struct {
	admin    *pgxpool.Pool // the test's superuser
	url      string
	scenario scenario.Scenario
	ingest   *prometheus.Registry // the ingest service's /metrics registry, after real traffic
}

// newPipeline gives the test its own database, delivers a scenario's events through the
// real ingest service connected as turnout_ingest, and builds analytics with two real
// rebuilds connected as turnout_projector: the second one replaces the schema the first
// created, the swap whose grants the reader must survive.
func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	ctx := t.Context()
	admin, url := pgtest.Pool(t)
	reapplyRoles(t, admin)
	p := &pipeline{admin: admin, url: url, scenario: scenario.Generate(11)}

	svc, err := ingest.New(rolePool(t, url, "turnout_ingest"), ingest.Config{SecretKeys: [][]byte{secretKey}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("new ingest service: %v", err)
	}
	t.Cleanup(svc.Close)
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close) // before svc.Close: cleanups run last in, first out
	for i, body := range p.scenario.Events {
		deliver(t, srv.URL, body, i)
	}
	p.ingest = svc.Registry()

	// A rebuild applies only log rows every transaction of the cluster can see (the
	// subscriber's rule); other tests' open transactions can hold that back briefly.
	waitVisible(t, admin, len(p.scenario.Events))
	proj := rebuild.New(rolePool(t, url, "turnout_projector"), rebuild.Config{}, slog.New(slog.DiscardHandler),
		rebuild.NewMetrics(prometheus.NewRegistry()))
	for i := range 2 {
		if _, err := proj.Rebuild(ctx, quietProgress{}); err != nil {
			t.Fatalf("rebuild %d as turnout_projector: %v", i+1, err)
		}
	}
	return p
}

// reapplyRoles runs migrations 0002, 0005 and 0008 again in the test's database. The
// template it was cloned from has the roles and table grants, but CREATE DATABASE …
// TEMPLATE does not copy the database's own ACL, so the projector's database grants (0002
// grants CREATE, 0008 takes it back) and the revocation of PUBLIC's TEMPORARY are missing.
// Running the migrations twice also proves them idempotent.
func reapplyRoles(t *testing.T, admin *pgxpool.Pool) {
	t.Helper()
	for _, file := range []string{rolesMigration, safetyMigration, noCreateMigration} {
		script, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("read migration: %v", err)
		}
		if _, err := admin.Exec(t.Context(), string(script)); err != nil {
			t.Fatalf("re-apply %s: %v", file, err)
		}
	}
}

// rolePool opens a pool whose sessions act as role (SET ROLE, as the superuser of the test
// may), the way a service logging in as that role would.
func rolePool(t *testing.T, url, role string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("parse database URL: %v", err)
	}
	cfg.MaxConns = 4
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, "SET ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
			return fmt.Errorf("set role %s: %w", role, err)
		}
		if role == "turnout_projector" {
			return projections.PrepareConn(ctx, conn) // as cmd/projector does
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open pool as %s: %v", role, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// roleConn opens one connection acting as role.
func roleConn(t *testing.T, url, role string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(t.Context(), "SET ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
		t.Fatalf("set role %s: %v", role, err)
	}
	return conn
}

// deliver POSTs one signed delivery and requires a 2xx.
func deliver(t *testing.T, base string, body []byte, i int) {
	t.Helper()
	ts := fmt.Sprint(1_700_000_000_000 + i)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+ingest.CallbackPath, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderTimestamp, ts)
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(secretKey, ts, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("deliver event %d: %v", i, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("deliver event %d: status %d", i, resp.StatusCode)
	}
}

// waitVisible polls until n log rows are visible to the rebuild's snapshot rule.
func waitVisible(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	const q = `SELECT count(*) FROM ` + eventlog.Table + `
	           WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())`
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got int
		if err := pool.QueryRow(t.Context(), q).Scan(&got); err != nil {
			t.Fatalf("count visible log rows: %v", err)
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d log rows visible after 30s", got, n)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline, not a fixed wait
	}
}

// quietProgress discards a rebuild's progress.
type quietProgress struct{}

func (quietProgress) Start(eventlog.Position, bool, int64) {}
func (quietProgress) Update(int64)                         {}
func (quietProgress) Finish(rebuild.Stats)                 {}
