package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/ingest"
	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/rebuild"
	"github.com/turnout-analytics/turnout/internal/webhook"
)

// TestRequeueAdmitsAfterTheKeyIsAdded is issue 10's proof of `ingest requeue`:
// deliveries signed with a key ingest does not know are refused (401) and kept; a row
// quarantined under an older, stricter rule waits in the quarantine. After ingest is
// restarted with the key added, a dry run reports without writing, requeue admits them,
// the projector counts them, and a second requeue admits nothing.
func TestRequeueAdmitsAfterTheKeyIsAdded(t *testing.T) {
	t.Parallel()
	pool, dbURL := pgtest.Pool(t)
	ctx := context.Background()
	oldKey, newKey := "requeue-old-key", "requeue-new-key"
	const webinar = "9100000000000000007"
	events := [][]byte{
		fmt.Appendf(nil, `{"eventName":"registrant.added","eventVersion":"1.0.0","product":"g2w","eventKey":"rq-1","webinarKey":%s,"registrantKey":1,"email":"a@example.com"}`, webinar),
		fmt.Appendf(nil, `{"eventName":"registrant.added","eventVersion":"1.0.0","product":"g2w","eventKey":"rq-2","webinarKey":%s,"registrantKey":2,"email":"b@example.com"}`, webinar),
		fmt.Appendf(nil, `{"eventName":"registrant.joined","eventVersion":"1.0.0","product":"g2w","eventKey":"rq-3","webinarKey":%s,"registrantKey":1,"sessionKey":5,"joinTime":1712761266981}`, webinar),
	}

	// Ingest knows only the old key: the deliveries signed with the new one are refused.
	stop := startIngest(t, dbURL, oldKey)
	for _, body := range events {
		if code := deliverSigned(t, stop.base, newKey, body); code != http.StatusUnauthorized {
			t.Fatalf("delivery signed with an unknown key: %d, want 401", code)
		}
	}
	stop.stop()
	// A registration quarantined by an older rule (the spec's email format), authentic.
	intl := fmt.Appendf(nil, `{"eventName":"registrant.added","eventVersion":"1.0.0","product":"g2w","eventKey":"rq-4","webinarKey":%s,"registrantKey":3,"email":"josé@exämple.de"}`, webinar)
	if _, err := pool.Exec(ctx, `INSERT INTO ingest_quarantine (reason, detail, signature_verified, headers, body)
		VALUES ('schema', '/email: not a valid email', true, '{}', $1)`, intl); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM `+eventlog.Table); n != 0 {
		t.Fatalf("log has %d rows before requeue", n)
	}

	// Restart with the key added; requeue with the same keys.
	stop = startIngest(t, dbURL, oldKey+","+newKey)
	defer stop.stop()
	vars := map[string]string{"DATABASE_URL": dbURL, "G2W_SECRET_KEYS": oldKey + "," + newKey}
	out := requeue(t, vars, "-dry-run")
	if !strings.Contains(out, "would admit") || !strings.Contains(out, ": 4\n") {
		t.Errorf("dry run printed:\n%s", out)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM `+eventlog.Table); n != 0 {
		t.Fatalf("the dry run wrote %d log rows", n)
	}
	out = requeue(t, vars)
	for _, want := range []string{"admitted (requeue ", "): 4\n", "quarantine\tschema\t1", "unverified\tbad\t3", "still failing: 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("requeue output lacks %q:\n%s", want, out)
		}
	}
	if n := countRows(t, pool, `SELECT count(*) FROM `+eventlog.Table+`
		WHERE signature_verified AND metadata->>'admitted_by' LIKE 'requeue %'`); n != 4 {
		t.Errorf("log has %d re-admitted rows, want 4", n)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM ingest_unverified WHERE admitted_at IS NOT NULL AND admitted_by LIKE 'requeue %'`); n != 3 {
		t.Errorf("%d unverified rows marked admitted, want 3", n)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM ingest_quarantine WHERE admitted_at IS NOT NULL`); n != 1 {
		t.Errorf("%d quarantine rows marked admitted, want 1", n)
	}

	// The projector counts them.
	projectAll(t, pool, 4)
	var registrants, attendees int
	if err := pool.QueryRow(ctx, `SELECT registrants, attendees FROM analytics.webinar_conversion WHERE webinar_key = $1`,
		webinar).Scan(&registrants, &attendees); err != nil {
		t.Fatal(err)
	}
	if registrants != 3 || attendees != 1 {
		t.Errorf("webinar_conversion: %d registrants, %d attendees; want 3, 1", registrants, attendees)
	}

	// A second run admits nothing, and rows stay in both stores.
	out = requeue(t, vars)
	if !strings.Contains(out, "): 0\n") || !strings.Contains(out, "already in the log (marked admitted): 0") {
		t.Errorf("second requeue printed:\n%s", out)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM `+eventlog.Table); n != 4 {
		t.Errorf("log has %d rows after the second requeue, want 4", n)
	}
	if n := countRows(t, pool, `SELECT (SELECT count(*) FROM ingest_unverified) + (SELECT count(*) FROM ingest_quarantine)`); n != 4 {
		t.Errorf("the stores hold %d rows, want all 4 kept", n)
	}
}

func TestRequeueWithoutTheKeyAdmitsNothingUnverified(t *testing.T) {
	t.Parallel()
	pool, dbURL := pgtest.Pool(t)
	run := startIngest(t, dbURL, "known-key")
	body := []byte(`{"eventName":"webinar.created","eventVersion":"1.0.0","product":"g2w","eventKey":"rq-x","webinarKey":1}`)
	if code := deliverSigned(t, run.base, "unknown-key", body); code != http.StatusUnauthorized {
		t.Fatalf("got %d, want 401", code)
	}
	run.stop()
	// Another reason selects nothing.
	out := requeue(t, map[string]string{"DATABASE_URL": dbURL, "G2W_SECRET_KEYS": "known-key"}, "-reason", "invalid_key")
	if !strings.Contains(out, "): 0\n") || !strings.Contains(out, "still failing: 0") {
		t.Errorf("requeue -reason invalid_key printed:\n%s", out)
	}
	out = requeue(t, map[string]string{"DATABASE_URL": dbURL, "G2W_SECRET_KEYS": "known-key"}, "-reason", "bad", "-since", "1h")
	if !strings.Contains(out, "): 0\n") || !strings.Contains(out, "unverified\tsignature\t1") {
		t.Errorf("requeue printed:\n%s", out)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM `+eventlog.Table); n != 0 {
		t.Errorf("log has %d rows, want 0", n)
	}
}

type ingestRun struct {
	base string
	stop func()
}

// startIngest runs the binary's run with keys on free ports until stop is called.
func startIngest(t *testing.T, dbURL, keys string) ingestRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &lineWriter{lines: make(chan string, 4)}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-migrate=false"}, env(map[string]string{
			"DATABASE_URL": dbURL, "G2W_SECRET_KEYS": keys, "INGEST_ADDR": "127.0.0.1:0",
			"INGEST_OPS_ADDR": "127.0.0.1:0", "LOG_LEVEL": "error",
		}), out)
	}()
	var base string
	select {
	case line := <-out.lines:
		base = "http://" + strings.TrimPrefix(line, "listening on ")
	case err := <-done:
		t.Fatalf("run ended before listening: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not start listening within 30s")
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}
	t.Cleanup(stop)
	return ingestRun{base: base, stop: stop}
}

func deliverSigned(t *testing.T, base, key string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+ingest.CallbackPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	req.Header.Set(webhook.HeaderTimestamp, ts)
	req.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte(key), ts, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func requeue(t *testing.T, vars map[string]string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), append([]string{"requeue"}, args...), env(vars), &out); err != nil {
		t.Fatalf("ingest requeue %v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

func countRows(t *testing.T, pool *pgxpool.Pool, query string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// projectAll waits until n log rows are visible to the projector's reader, then
// rebuilds analytics with the projector as it is.
func projectAll(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for countRows(t, pool, `SELECT count(*) FROM `+eventlog.Table+`
		WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())`) < n {
		if time.Now().After(deadline) {
			t.Fatal("log rows not visible within 30s")
		}
		time.Sleep(20 * time.Millisecond) // polling, with a deadline
	}
	proj := rebuild.New(pool, rebuild.Config{}, slog.New(slog.DiscardHandler), rebuild.NewMetrics(prometheus.NewRegistry()))
	if _, err := proj.Rebuild(context.Background(), quiet{}); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
}

type quiet struct{}

func (quiet) Start(eventlog.Position, bool, int64) {}
func (quiet) Update(int64)                         {}
func (quiet) Finish(rebuild.Stats)                 {}

func TestLoadRequeueConfig(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	db := map[string]string{"DATABASE_URL": "postgres://db/x", "G2W_SECRET_KEYS": "a, b"}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string // "" = valid
		check   func(requeueConfig) bool
	}{
		{"defaults", db, nil, "", func(c requeueConfig) bool {
			return !c.opts.DryRun && c.opts.Reason == "" && c.opts.Since.IsZero() && len(c.opts.SecretKeys) == 2 &&
				c.opts.RunID == "requeue 2026-12-01T12:00:00Z"
		}},
		{"since a time", db, []string{"-since", "2026-11-30T00:00:00Z", "-reason", "bad", "-dry-run"}, "", func(c requeueConfig) bool {
			return c.opts.DryRun && c.opts.Reason == "bad" && c.opts.Since.Equal(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC))
		}},
		{"since a duration ago", db, []string{"-since", "24h"}, "", func(c requeueConfig) bool {
			return c.opts.Since.Equal(now.Add(-24 * time.Hour))
		}},
		{"no keys", map[string]string{"DATABASE_URL": "postgres://db/x"}, nil, "", func(c requeueConfig) bool {
			return len(c.opts.SecretKeys) == 0
		}},
		{"bad since", db, []string{"-since", "yesterday"}, "-since", nil},
		{"no database", map[string]string{"G2W_SECRET_KEYS": "k"}, nil, "DATABASE_URL", nil},
		{"empty key entry", map[string]string{"DATABASE_URL": "postgres://db/x", "G2W_SECRET_KEYS": "k,,l"}, nil, "G2W_SECRET_KEYS: entry 2", nil},
		{"stray argument", db, []string{"now"}, "unexpected arguments", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := loadRequeueConfig(tt.args, env(tt.env), io.Discard, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config %+v", c.opts)
			}
		})
	}
}

// Requeue runs as the owner with unqualified table names, so its sessions pin search_path:
// look-alikes of ingest's stores in a schema named after the owner (the first place the
// default search_path, "$user", public, looks) are never read. Each look-alike raises, so a
// run that resolved a name to it fails.
func TestRequeueNeverReadsLookalikes(t *testing.T) {
	t.Parallel()
	pool, dbURL := pgtest.Pool(t)
	ctx := context.Background()
	var owner string
	if err := pool.QueryRow(ctx, `SELECT current_user`).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	o := pgx.Identifier{owner}.Sanitize()
	if _, err := pool.Exec(ctx, fmt.Sprintf(`
CREATE SCHEMA %[1]s;
CREATE FUNCTION %[1]s.fire(trap text) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    RAISE EXCEPTION 'look-alike %% ran', trap;
END $f$;
CREATE VIEW %[1]s.ingest_quarantine AS SELECT * FROM public.ingest_quarantine WHERE %[1]s.fire('quarantine');
CREATE VIEW %[1]s.ingest_unverified AS SELECT * FROM public.ingest_unverified WHERE %[1]s.fire('unverified');
INSERT INTO public.ingest_quarantine (reason, detail, signature_verified, headers, body)
VALUES ('schema', 'an older rule', true, '{}',
        '{"eventName":"registrant.added","eventVersion":"1.0.0","product":"g2w","eventKey":"rq-trap","webinarKey":9100000000000000008,"registrantKey":1,"email":"a@example.com"}')`, o)); err != nil {
		t.Fatalf("plant the look-alikes: %v", err)
	}
	// The traps are armed: a session on the default search_path falls into them.
	if _, err := pool.Exec(ctx, `SELECT count(*) FROM ingest_quarantine`); err == nil || !strings.Contains(err.Error(), "look-alike") {
		t.Fatalf("control query on the default search_path: %v, want the look-alike's exception", err)
	}
	out := requeue(t, map[string]string{"DATABASE_URL": dbURL, "G2W_SECRET_KEYS": "requeue-key"})
	if !strings.Contains(out, "quarantine\tschema\t1") {
		t.Errorf("requeue with look-alikes planted printed:\n%s", out)
	}
}
