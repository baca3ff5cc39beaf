package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/ingest"
	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/webhook"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestRunReportsEveryBadVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    []string // each must appear in the error
		notWant []string // secrets that must not
	}{
		{"nothing set", nil, nil, []string{"DATABASE_URL: required", "G2W_SECRET_KEYS: required"}, nil},
		{"not a postgres URL", map[string]string{
			"DATABASE_URL": "mysql://root:hunter2@db/x", "G2W_SECRET_KEYS": "k",
		}, nil, []string{"DATABASE_URL"}, []string{"hunter2"}},
		{"unknown mode", map[string]string{
			"DATABASE_URL": "postgres://db/x", "G2W_SIGNATURE_MODE": "loose",
		}, nil, []string{"G2W_SIGNATURE_MODE", "G2W_SECRET_KEYS"}, nil},
		{"empty key entry", map[string]string{
			"DATABASE_URL": "postgres://db/x", "G2W_SECRET_KEYS": "s3cret-one,,s3cret-two",
		}, nil, []string{"G2W_SECRET_KEYS: entry 2 is empty"}, []string{"s3cret"}},
		{"bad tunables, all named at once", map[string]string{
			"DATABASE_URL": "postgres://db/x", "G2W_SECRET_KEYS": "k",
			"INGEST_BATCH_MAX": "0", "INGEST_BATCH_WAIT": "soon", "INGEST_BATCH_WORKERS": "many", "INGEST_BATCH_STALL_AFTER": "0s",
			"INGEST_SHUTDOWN_TIMEOUT": "-1s", "LOG_LEVEL": "loud", "G2W_TIMESTAMP_TOLERANCE": "5",
			"G2W_REQUIRE_TIMESTAMP": "sometimes", "INGEST_MAX_CONNS": "1", "INGEST_UNVERIFIED_MAX_ROWS": "0",
			"INGEST_UNVERIFIED_MAX_BYTES": "10",
		}, nil, []string{"INGEST_BATCH_MAX", "INGEST_BATCH_WAIT", "INGEST_BATCH_WORKERS", "INGEST_BATCH_STALL_AFTER", "INGEST_SHUTDOWN_TIMEOUT", "LOG_LEVEL",
			"G2W_TIMESTAMP_TOLERANCE", "G2W_REQUIRE_TIMESTAMP", "INGEST_MAX_CONNS", "INGEST_UNVERIFIED_MAX_ROWS", "INGEST_UNVERIFIED_MAX_BYTES"}, nil},
		{"negative tolerance", map[string]string{
			"DATABASE_URL": "postgres://db/x", "G2W_SECRET_KEYS": "k", "G2W_TIMESTAMP_TOLERANCE": "-5m",
		}, nil, []string{"G2W_TIMESTAMP_TOLERANCE"}, nil},
		{"tolerance beyond a day", map[string]string{
			"DATABASE_URL": "postgres://db/x", "G2W_SECRET_KEYS": "k", "G2W_TIMESTAMP_TOLERANCE": "25h",
		}, nil, []string{"G2W_TIMESTAMP_TOLERANCE"}, nil},
		{"unknown flag", map[string]string{"DATABASE_URL": "postgres://db/x", "G2W_SECRET_KEYS": "k"},
			[]string{"-nope"}, []string{"nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), tt.args, env(tt.env), io.Discard)
			if err == nil {
				t.Fatal("run succeeded with bad configuration")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			for _, s := range tt.notWant {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q leaks %q", err, s)
				}
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(config) bool
	}{
		{"defaults", map[string]string{"DATABASE_URL": "postgres://db/x", "G2W_SECRET_KEYS": " a , b "}, nil,
			func(c config) bool {
				return c.Addr == ":8080" && c.OpsAddr == ":9090" && !c.RequireTS && c.Mode == ingest.Enforce && c.Migrate && len(c.SecretKeys) == 2 &&
					string(c.SecretKeys[0]) == "a" && string(c.SecretKeys[1]) == "b" && c.BatchMax == ingest.DefaultBatchMax &&
					c.serviceConfig().TimestampTolerance == 0
			}},
		{"replay window", map[string]string{"DATABASE_URL": "postgres://db/x", "G2W_SECRET_KEYS": "k", "G2W_TIMESTAMP_TOLERANCE": "5m"}, nil,
			func(c config) bool { return c.serviceConfig().TimestampTolerance == 5*time.Minute }},
		{"required timestamp and ops address", map[string]string{"DATABASE_URL": "postgres://db/x", "G2W_SECRET_KEYS": "k",
			"G2W_REQUIRE_TIMESTAMP": "true", "INGEST_OPS_ADDR": "127.0.0.1:9091", "INGEST_MAX_CONNS": "64",
			"INGEST_UNVERIFIED_MAX_ROWS": "10", "INGEST_UNVERIFIED_MAX_BYTES": "2097152"}, nil,
			func(c config) bool {
				sc := c.serviceConfig()
				return sc.RequireTimestamp && c.OpsAddr == "127.0.0.1:9091" && c.MaxConns == 64 &&
					sc.UnverifiedMaxRows == 10 && sc.UnverifiedMaxBytes == 2<<20
			}},
		{"observe needs no keys", map[string]string{"DATABASE_URL": "postgres://db/x", "G2W_SIGNATURE_MODE": "observe"}, nil,
			func(c config) bool { return c.Mode == ingest.Observe && len(c.SecretKeys) == 0 }},
		{"tunables and flag", map[string]string{
			"DATABASE_URL": "postgresql://db/x", "G2W_SECRET_KEYS": "k", "INGEST_ADDR": "127.0.0.1:9",
			"INGEST_BATCH_MAX": "64", "INGEST_BATCH_WAIT": "2ms", "INGEST_BATCH_WORKERS": "4", "INGEST_BATCH_STALL_AFTER": "25ms",
		}, []string{"-migrate=false"},
			func(c config) bool {
				sc := c.serviceConfig()
				return !c.Migrate && c.Addr == "127.0.0.1:9" && sc.BatchMax == 64 && sc.BatchWait == 2*time.Millisecond && sc.BatchWorkers == 4 &&
					sc.BatchStallAfter == 25*time.Millisecond
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := loadConfig(tt.args, env(tt.env), io.Discard)
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config: %+v", c)
			}
		})
	}
}

// lineWriter hands each line written to it to a channel; run prints its address this way.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line) // incomplete: keep it for the next write
			return len(p), nil
		}
		select {
		case w.lines <- strings.TrimSpace(line):
		default:
		}
	}
}

// TestGracefulShutdownLosesNoAcknowledgedDelivery cancels run's context while deliveries
// are in flight. Every delivery answered 2xx must be in the log; the others were never
// acknowledged and the sender would retry them.
func TestGracefulShutdownLosesNoAcknowledgedDelivery(t *testing.T) {
	t.Parallel()
	pool, dbURL := pgtest.Pool(t)
	key := []byte("shutdown-test-key")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &lineWriter{lines: make(chan string, 4)}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, nil, env(map[string]string{
			"DATABASE_URL":    dbURL,
			"G2W_SECRET_KEYS": string(key),
			"INGEST_ADDR":     "127.0.0.1:0",
			"INGEST_OPS_ADDR": "127.0.0.1:0",
			"LOG_LEVEL":       "error",
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

	// 32 senders each deliver their share in turn, so deliveries keep arriving before,
	// during and after the shutdown starts.
	const n, senders = 400, 32
	var (
		wg       sync.WaitGroup
		answered atomic.Int32
		once     sync.Once
		codes    = make([]int, n)
		client   = &http.Client{Timeout: 30 * time.Second}
	)
	for s := range senders {
		wg.Go(func() {
			for i := s; i < n; i += senders {
				body := fmt.Appendf(nil, `{"eventName":"webinar.created","eventVersion":"1.0.0","product":"g2w","eventKey":"shutdown-%d","webinarKey":9100000000000000001}`, i)
				req, err := http.NewRequest(http.MethodPost, base+ingest.CallbackPath, bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set(webhook.HeaderSignature, webhook.Sign(key, "", body))
				resp, err := client.Do(req)
				if err != nil {
					continue // refused once the listener closed: not acknowledged
				}
				resp.Body.Close()
				codes[i] = resp.StatusCode
				if answered.Add(1) == n/4 {
					once.Do(cancel)
				}
			}
		})
	}
	wg.Wait()
	once.Do(cancel)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30s of cancellation")
	}

	rows, err := pool.Query(context.Background(), `SELECT event_key FROM `+eventlog.Table)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	inLog := make(map[string]bool, len(keys))
	for _, k := range keys {
		inLog[k] = true
	}
	acked := 0
	for i, c := range codes {
		if c >= 200 && c < 300 {
			acked++
			if !inLog[fmt.Sprintf("shutdown-%d", i)] {
				t.Errorf("delivery %d was answered %d but is not in the log", i, c)
			}
		} else if c != 0 && c != http.StatusServiceUnavailable {
			t.Errorf("delivery %d: unexpected status %d", i, c)
		}
	}
	if acked < n/4 {
		t.Errorf("only %d deliveries acknowledged, want at least %d", acked, n/4)
	}
	t.Logf("%d of %d acknowledged, %d in the log", acked, n, len(keys))
	assertPoolClosedCleanly(t, pool)
}

// assertPoolClosedCleanly checks the database still answers (the service closed only its
// own pool) and holds no transaction left open by the service.
func assertPoolClosedCleanly(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	var open int
	err := pool.QueryRow(context.Background(), `
		SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'`).Scan(&open)
	if err != nil {
		t.Fatal(err)
	}
	if open != 0 {
		t.Errorf("%d sessions left idle in transaction", open)
	}
}

// startRun runs the binary's run with env on a free port and returns its base URL; the
// run is stopped, and must return cleanly, when the test ends.
func startRun(t *testing.T, vars map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &lineWriter{lines: make(chan string, 4)}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, env(vars), out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not return within 30s of cancellation")
		}
	})
	select {
	case line := <-out.lines:
		return "http://" + strings.TrimPrefix(line, "listening on ")
	case err := <-done:
		t.Fatalf("run ended before listening: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not start listening within 30s")
	}
	return ""
}

// TestRunServesWithTheWindowAndLimits checks the wiring: G2W_TIMESTAMP_TOLERANCE reaches
// the handler, and the server run builds carries the header limit (ingest.NewServer).
func TestRunServesWithTheWindowAndLimits(t *testing.T) {
	t.Parallel()
	pool, dbURL := pgtest.Pool(t)
	key := []byte("window-test-key")
	base := startRun(t, map[string]string{
		"DATABASE_URL":            dbURL,
		"G2W_SECRET_KEYS":         string(key),
		"G2W_TIMESTAMP_TOLERANCE": "5m",
		"INGEST_ADDR":             "127.0.0.1:0",
		"INGEST_OPS_ADDR":         "127.0.0.1:0",
		"LOG_LEVEL":               "error",
	})
	deliver := func(eventKey, ts string, extra http.Header) (int, string) {
		body := fmt.Appendf(nil, `{"eventName":"webinar.created","eventVersion":"1.0.0","product":"g2w","eventKey":%q,"webinarKey":9100000000000000001}`, eventKey)
		req, err := http.NewRequest(http.MethodPost, base+ingest.CallbackPath, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(webhook.HeaderTimestamp, ts)
		req.Header.Set(webhook.HeaderSignature, webhook.Sign(key, ts, body))
		for k, v := range extra {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("deliver %s: %v", eventKey, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	now := time.Now()
	tests := []struct {
		name, eventKey, ts string
		extra              http.Header
		want               int
	}{
		{"fresh", "window-fresh", fmt.Sprint(now.UnixMilli()), nil, http.StatusOK},
		{"stale", "window-stale", fmt.Sprint(now.Add(-time.Hour).UnixMilli()), nil, http.StatusUnauthorized},
		{"oversized headers", "window-big-headers", fmt.Sprint(now.UnixMilli()),
			http.Header{"X-Padding": {strings.Repeat("a", ingest.DefaultMaxHeaderBytes+8<<10)}}, http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		if code, resp := deliver(tt.eventKey, tt.ts, tt.extra); code != tt.want {
			t.Errorf("%s: got %d %s, want %d", tt.name, code, resp, tt.want)
		}
	}
	rows, err := pool.Query(context.Background(), `SELECT event_key FROM `+eventlog.Table)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(keys) != "[window-fresh]" {
		t.Errorf("log holds %v, want [window-fresh]", keys)
	}
}
