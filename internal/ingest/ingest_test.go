package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/webhook"
)

// testKey is the secret key value of GOTO-FACTS.md's signature vector.
var testKey = []byte("f1679e36-17fe-48fa-93da-44195fd9e293")

const testTimestamp = "1700000000000"

// joined returns a registrant.joined body with eventKey key and live-style 19-digit
// integer keys, laid out with the spacing GoTo might use so byte equality means something.
func joined(key string) []byte {
	return fmt.Appendf(nil, `{"eventName":"registrant.joined", "eventVersion":"1.0.0","product":"g2w",
  "eventKey":%q,"timestamp":"2024-04-10T15:01:07.204Z",
  "webinarKey":9100000000000000001,"sessionKey":28510147,"registrantKey":9999999999999999999,
  "webinarCreatorKey":3241236151789206543,"email":"ada@example.com","joinTime":1712761266981}`, key)
}

// testService starts a Service on pool behind a real HTTP server.
func testService(t *testing.T, pool *pgxpool.Pool, cfg Config) (*Service, string) {
	t.Helper()
	if cfg.SecretKeys == nil && cfg.Mode != Observe {
		cfg.SecretKeys = [][]byte{testKey}
	}
	svc, err := New(pool, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("new service: %v", err)
	}
	t.Cleanup(svc.Close)
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close) // runs before svc.Close: cleanups are LIFO
	return svc, srv.URL
}

// opsURL serves svc's operations handler and returns its base URL.
func opsURL(t *testing.T, svc *Service) string {
	t.Helper()
	srv := httptest.NewServer(svc.OpsHandler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// signed returns the headers of a delivery of body signed with key.
func signed(key, body []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(webhook.HeaderTimestamp, testTimestamp)
	h.Set(webhook.HeaderSignature, webhook.Sign(key, testTimestamp, body))
	return h
}

// post delivers body to the callback and returns the status and response body.
func post(t testing.TB, base string, body []byte, h http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+CallbackPath, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", req.Method, req.URL.Path, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t testing.TB, u string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	code, _ := do(t, req)
	return code
}

func count(t testing.TB, pool *pgxpool.Pool, query string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("count %q: %v", query, err)
	}
	return n
}

const (
	countLog        = `SELECT count(*) FROM ` + eventlog.Table
	countKeys       = `SELECT count(*) FROM ingest_event_keys`
	countQuarantine = `SELECT count(*) FROM ingest_quarantine`
	countUnverified = `SELECT count(*) FROM ingest_unverified`
)

func TestSignedDeliveryIsStoredRaw(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	svc, base := testService(t, pool, Config{})

	body := joined("0b6a4c52-2f8e-4d7b-b1a3-6f3e9d2c7a40")
	code, resp := post(t, base, body, signed(testKey, body))
	if code != http.StatusOK || strings.TrimSpace(resp) != `{"status":"stored"}` {
		t.Fatalf("delivery: got %d %s, want 200 stored", code, resp)
	}

	var (
		payload, name, key, registrant string
		verified                       bool
	)
	err := pool.QueryRow(context.Background(), `
		SELECT payload::text, event_name, event_key, signature_verified, payload->>'registrantKey'
		FROM `+eventlog.Table).Scan(&payload, &name, &key, &verified, &registrant)
	if err != nil {
		t.Fatalf("read log row: %v", err)
	}
	if payload != string(body) {
		t.Errorf("payload differs from the body:\n got %s\nwant %s", payload, body)
	}
	if name != "registrant.joined" || key != "0b6a4c52-2f8e-4d7b-b1a3-6f3e9d2c7a40" || !verified {
		t.Errorf("row: event_name %q, event_key %q, signature_verified %v", name, key, verified)
	}
	if registrant != "9999999999999999999" {
		t.Errorf("19-digit registrantKey stored as %q", registrant)
	}
	if n := count(t, pool, countKeys); n != 1 {
		t.Errorf("ingest_event_keys has %d rows, want 1", n)
	}

	// The same event again, signed without a timestamp header: a duplicate, not a new row.
	h := http.Header{}
	h.Set(webhook.HeaderSignature, webhook.Sign(testKey, "", body))
	code, resp = post(t, base, body, h)
	if code != http.StatusOK || strings.TrimSpace(resp) != `{"status":"duplicate"}` {
		t.Fatalf("redelivery: got %d %s, want 200 duplicate", code, resp)
	}
	if n := count(t, pool, countLog); n != 1 {
		t.Errorf("log has %d rows after a redelivery, want 1", n)
	}
	if got := testutil.ToFloat64(svc.metrics.duplicates); got != 1 {
		t.Errorf("duplicates_total = %v, want 1", got)
	}
	if got := testutil.ToFloat64(svc.metrics.deliveries.WithLabelValues(outcomeStored)); got != 1 {
		t.Errorf("deliveries_total{stored} = %v, want 1", got)
	}
}

func TestRefusedDeliveriesStoreNothing(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	svc, base := testService(t, pool, Config{SecretKeys: [][]byte{testKey, []byte("second-key")}})

	body := joined("7c1d0e2a-0000-4000-8000-000000000001")
	big := append(bytes.Repeat([]byte(" "), DefaultMaxBodyBytes), body...)
	wrong := signed(testKey, body)
	wrong.Set(webhook.HeaderSignature, webhook.Sign(testKey, testTimestamp, append([]byte(" "), body...)))

	tests := []struct {
		name    string
		body    []byte
		header  http.Header
		chunked bool
		want    int
		outcome string
	}{
		{"no signature", body, http.Header{"Content-Type": {"application/json"}}, false, 401, outcomeUnauthorized},
		{"wrong signature", body, wrong, false, 401, outcomeUnauthorized},
		{"garbage signature", body, http.Header{webhook.HeaderSignature: {"not base64!"}}, false, 401, outcomeUnauthorized},
		{"unknown key", body, signed([]byte("not-a-configured-key"), body), false, 401, outcomeUnauthorized},
		{"too large with Content-Length", big, signed(testKey, big), false, 413, outcomeTooLarge},
		{"too large chunked", big, signed(testKey, big), true, 413, outcomeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r io.Reader = bytes.NewReader(tt.body)
			if tt.chunked {
				r = io.MultiReader(r) // hides the length: the client streams it chunked
			}
			req, err := http.NewRequest(http.MethodPost, base+CallbackPath, r)
			if err != nil {
				t.Fatal(err)
			}
			if tt.chunked {
				req.ContentLength = -1
			}
			for k, v := range tt.header {
				req.Header[k] = v
			}
			before := testutil.ToFloat64(svc.metrics.deliveries.WithLabelValues(tt.outcome))
			if code, resp := do(t, req); code != tt.want {
				t.Errorf("got %d %s, want %d", code, resp, tt.want)
			}
			if got := testutil.ToFloat64(svc.metrics.deliveries.WithLabelValues(tt.outcome)); got != before+1 {
				t.Errorf("deliveries_total{%s} went from %v to %v", tt.outcome, before, got)
			}
		})
	}
	for _, q := range []string{countLog, countKeys, countQuarantine} {
		if n := count(t, pool, q); n != 0 {
			t.Errorf("%s = %d, want 0", q, n)
		}
	}
	// The four that did not verify are kept apart, for `ingest requeue`; the oversized
	// ones nowhere.
	if n := count(t, pool, countUnverified); n != 4 {
		t.Errorf("%s = %d, want 4", countUnverified, n)
	}
	if got := testutil.ToFloat64(svc.metrics.signatureFailures.WithLabelValues("bad")); got != 3 {
		t.Errorf("signature_failures_total{bad} = %v, want 3", got)
	}
	if got := testutil.ToFloat64(svc.metrics.signatureFailures.WithLabelValues("missing")); got != 1 {
		t.Errorf("signature_failures_total{missing} = %v, want 1", got)
	}
}

func TestInvalidDeliveriesAreQuarantined(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	svc, base := testService(t, pool, Config{})

	tests := []struct {
		name   string
		body   string
		want   int
		reason string
	}{
		{"malformed JSON", `{"eventName":"registrant.joined",`, 400, "malformed_json"},
		{"not an object", `["registrant.joined"]`, 400, "malformed_json"},
		{"invalid UTF-8", "{\"eventName\":\"\xff\"}", 400, "invalid_utf8"},
		{"no eventKey", strings.Replace(string(joined("k0")), `"eventKey":"k0",`, ``, 1), 422, "missing_event_key"},
		{"no eventName", strings.Replace(string(joined("k1")), `"eventName":"registrant.joined",`, ``, 1), 422, "missing_event_name"},
		{"missing key", `{"eventName":"registrant.joined","eventVersion":"1.0.0","product":"g2w","eventKey":"k2","webinarKey":1,"sessionKey":2}`, 422, "missing_key"},
		{"non-numeric key", strings.Replace(string(joined("k3")), `"sessionKey":28510147`, `"sessionKey":"s-28510147"`, 1), 422, "invalid_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			h := signed(testKey, body)
			h.Set("X-Forwarded-For", "203.0.113.7")
			code, resp := post(t, base, body, h)
			if code != tt.want || !strings.Contains(resp, `"reason":"`+tt.reason+`"`) {
				t.Fatalf("got %d %s, want %d with reason %s", code, resp, tt.want, tt.reason)
			}
			var (
				stored   []byte
				detail   string
				verified bool
				headers  map[string]string
			)
			err := pool.QueryRow(context.Background(), `
				SELECT body, detail, signature_verified, headers FROM ingest_quarantine WHERE reason = $1
				ORDER BY id DESC LIMIT 1`,
				tt.reason).Scan(&stored, &detail, &verified, &headers)
			if err != nil {
				t.Fatalf("read quarantine row: %v", err)
			}
			if !bytes.Equal(stored, body) || detail == "" || !verified {
				t.Errorf("quarantine row: body equal %v, detail %q, signature_verified %v", bytes.Equal(stored, body), detail, verified)
			}
			if headers["X-Forwarded-For"] != "203.0.113.7" || headers[webhook.HeaderSignature] == "" ||
				headers["Content-Type"] != "application/json" || headers[webhook.HeaderTimestamp] != testTimestamp {
				t.Errorf("quarantined headers: %v", headers)
			}
		})
	}
	if n := count(t, pool, countLog); n != 0 {
		t.Errorf("log has %d rows, want 0", n)
	}
	if n := count(t, pool, countKeys); n != 0 {
		t.Errorf("ingest_event_keys has %d rows, want 0", n)
	}
	if got := testutil.ToFloat64(svc.metrics.quarantined.WithLabelValues("malformed_json")); got != 2 {
		t.Errorf("quarantined_total{malformed_json} = %v, want 2", got)
	}
}

func TestConcurrentRedeliveryIsStoredOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		events, copies int
	}{
		{"one event 50 times", 1, 50},
		{"20 events 5 times each", 20, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool, _ := pgtest.Pool(t)
			svc, base := testService(t, pool, Config{})

			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				statuses = map[string]int{}
			)
			for e := range tt.events {
				body := joined(fmt.Sprintf("5d3c2b1a-0000-4000-8000-%012d", e))
				h := signed(testKey, body)
				for range tt.copies {
					wg.Go(func() {
						code, resp := post(t, base, body, h)
						mu.Lock()
						defer mu.Unlock()
						statuses[fmt.Sprint(code, " ", strings.TrimSpace(resp))]++
					})
				}
			}
			wg.Wait()

			want := map[string]int{
				`200 {"status":"stored"}`:    tt.events,
				`200 {"status":"duplicate"}`: tt.events * (tt.copies - 1),
			}
			if fmt.Sprint(statuses) != fmt.Sprint(want) {
				t.Errorf("responses: got %v, want %v", statuses, want)
			}
			if n := count(t, pool, countLog); n != tt.events {
				t.Errorf("log has %d rows, want %d", n, tt.events)
			}
			if n := count(t, pool, `SELECT count(DISTINCT event_key) FROM `+eventlog.Table); n != tt.events {
				t.Errorf("log has %d distinct event keys, want %d", n, tt.events)
			}
			if got := testutil.ToFloat64(svc.metrics.duplicates); got != float64(tt.events*(tt.copies-1)) {
				t.Errorf("duplicates_total = %v", got)
			}
		})
	}
}

// breakDatabase makes the database behind dbURL refuse connections and kills the open
// ones; the returned function lets connections in again.
func breakDatabase(t *testing.T, dbURL string) (restore func()) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pgtest.AdminURL(t))
	if err != nil {
		t.Fatalf("connect as admin: %v", err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := admin.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS false`)
	exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, strings.TrimPrefix(u.Path, "/"))
	return func() { exec(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS true`) }
}

func TestDatabaseDownAnswers503AndRecovers(t *testing.T) {
	t.Parallel()
	pool, dbURL := pgtest.Pool(t)
	svc, base := testService(t, pool, Config{CommitTimeout: 3 * time.Second})
	ops := opsURL(t, svc)

	first := joined("aaaaaaaa-0000-4000-8000-000000000001")
	if code, _ := post(t, base, first, signed(testKey, first)); code != http.StatusOK {
		t.Fatalf("delivery before the outage: %d", code)
	}

	restore := breakDatabase(t, dbURL)
	lost := joined("aaaaaaaa-0000-4000-8000-000000000002")
	if code, resp := post(t, base, lost, signed(testKey, lost)); code != http.StatusServiceUnavailable {
		t.Errorf("delivery during the outage: got %d %s, want 503", code, resp)
	}
	invalid := []byte(`{"eventName":"nope"`)
	if code, resp := post(t, base, invalid, signed(testKey, invalid)); code != http.StatusServiceUnavailable {
		t.Errorf("quarantine during the outage: got %d %s, want 503", code, resp)
	}
	if code := get(t, ops+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz during the outage: %d, want 503", code)
	}
	if got := testutil.ToFloat64(svc.metrics.deliveries.WithLabelValues(outcomeUnavailable)); got != 2 {
		t.Errorf("deliveries_total{unavailable} = %v, want 2", got)
	}
	restore()

	// The same handler, without a restart, stores the sender's retry. A retry may meet
	// one more 503 while the pool discards a connection the outage killed; it must
	// never meet anything else, and must succeed well within the deadline.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, resp := post(t, base, lost, signed(testKey, lost))
		if code == http.StatusOK && strings.Contains(resp, "stored") {
			break
		}
		if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("retry after the outage: got %d %s, want 200 stored", code, resp)
		}
		time.Sleep(50 * time.Millisecond) // the sender's retry interval, not a wait for state
	}
	if code := get(t, ops+"/readyz"); code != http.StatusOK {
		t.Errorf("readyz after the outage: %d, want 200", code)
	}
	if n := count(t, pool, countLog); n != 2 {
		t.Errorf("log has %d rows, want 2", n)
	}
	if n := count(t, pool, countKeys); n != 2 {
		t.Errorf("ingest_event_keys has %d rows, want 2", n)
	}
}

func TestProbesAndMetrics(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	svc, base := testService(t, pool, Config{})
	ops := opsURL(t, svc)

	// A pool at a port nobody listens on: the process is up, the database is not.
	deadPool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(deadPool.Close)
	deadSvc, deadBase := testService(t, deadPool, Config{})
	deadOps := opsURL(t, deadSvc)

	tests := []struct {
		name string
		url  string
		want int
	}{
		{"callback URL validation", base + CallbackPath, 200},
		{"healthz", base + "/healthz", 200},
		{"no readyz on the public listener", base + "/readyz", 404},
		{"no metrics on the public listener", base + "/metrics", 404},
		{"healthz on the ops listener", ops + "/healthz", 200},
		{"readyz", ops + "/readyz", 200},
		{"metrics", ops + "/metrics", 200},
		{"no callback on the ops listener", ops + CallbackPath, 404},
		{"healthz without database", deadBase + "/healthz", 200},
		{"readyz without database", deadOps + "/readyz", 503},
		{"unknown path", base + "/nope", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := get(t, tt.url); got != tt.want {
				t.Errorf("GET %s: %d, want %d", tt.url, got, tt.want)
			}
		})
	}

	body := joined("bbbbbbbb-0000-4000-8000-000000000001")
	if code, _ := post(t, deadBase, body, signed(testKey, body)); code != http.StatusServiceUnavailable {
		t.Errorf("delivery without database: %d, want 503", code)
	}

	req, _ := http.NewRequest(http.MethodGet, ops+"/metrics", nil)
	_, text := do(t, req)
	for _, name := range []string{
		"turnout_ingest_deliveries_total", "turnout_ingest_signature_failures_total",
		"turnout_ingest_duplicates_total", "turnout_ingest_quarantined_total",
		"turnout_ingest_batch_size", `turnout_ingest_request_duration_seconds_count{code="200",route="/healthz"}`,
		"turnout_ingest_batch_commit_seconds_sum", `turnout_ingest_batch_queue_seconds_bucket{le="0.05"}`,
		"turnout_ingest_unverified_stored_total", "turnout_ingest_unverified_evicted_total", "turnout_ingest_unverified_rows",
		"turnout_ingest_unverified_bytes", "turnout_ingest_unverified_dropped_total", "turnout_ingest_connections_evicted_total",
		"go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(text, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func TestSignatureModes(t *testing.T) {
	t.Parallel()
	body := joined("cccccccc-0000-4000-8000-000000000001")
	unsigned := http.Header{"Content-Type": {"application/json"}}
	tests := []struct {
		name         string
		cfg          Config
		header       http.Header
		want         int
		inLog        int // log rows (and claimed keys)
		inUnverified int // rows kept in ingest_unverified
	}{
		{"enforce refuses unsigned", Config{Mode: Enforce}, unsigned, 401, 0, 1},
		{"enforce refuses wrongly signed", Config{Mode: Enforce}, signed([]byte("other"), body), 401, 0, 1},
		{"observe keeps unsigned apart", Config{Mode: Observe, SecretKeys: [][]byte{testKey}}, unsigned, 202, 0, 1},
		{"observe keeps wrongly signed apart", Config{Mode: Observe, SecretKeys: [][]byte{testKey}}, signed([]byte("other"), body), 202, 0, 1},
		{"observe verifies signed", Config{Mode: Observe, SecretKeys: [][]byte{testKey}}, signed(testKey, body), 200, 1, 0},
		{"observe without keys", Config{Mode: Observe}, signed(testKey, body), 202, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool, _ := pgtest.Pool(t)
			_, base := testService(t, pool, tt.cfg)
			if code, resp := post(t, base, body, tt.header); code != tt.want {
				t.Fatalf("got %d %s, want %d", code, resp, tt.want)
			}
			if n := count(t, pool, `SELECT count(*) FROM `+eventlog.Table+` WHERE signature_verified`); n != tt.inLog {
				t.Errorf("verified log rows: %d, want %d", n, tt.inLog)
			}
			for q, want := range map[string]int{countLog: tt.inLog, countKeys: tt.inLog, countUnverified: tt.inUnverified} {
				if n := count(t, pool, q); n != want {
					t.Errorf("%s = %d, want %d", q, n, want)
				}
			}
		})
	}
}

// TestObserveModeForgeryCannotClaimAnEventKey: in observe mode an unsigned delivery
// is kept apart, so the authentic delivery with the same eventKey that follows is
// stored (not answered "duplicate" and lost), and only it is in the log.
func TestObserveModeForgeryCannotClaimAnEventKey(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	_, base := testService(t, pool, Config{Mode: Observe, SecretKeys: [][]byte{testKey}})
	key := "dddddddd-0000-4000-8000-000000000001"
	forged := bytes.Replace(joined(key), []byte("ada@example.com"), []byte("eve@example.com"), 1)
	if code, resp := post(t, base, forged, http.Header{"Content-Type": {"application/json"}}); code != http.StatusAccepted {
		t.Fatalf("forgery: got %d %s, want 202", code, resp)
	}
	authentic := joined(key)
	if code, resp := post(t, base, authentic, signed(testKey, authentic)); code != http.StatusOK || !strings.Contains(resp, "stored") {
		t.Fatalf("authentic delivery after the forgery: got %d %s, want 200 stored", code, resp)
	}
	var payload string
	if err := pool.QueryRow(context.Background(), `SELECT payload::text FROM `+eventlog.Table).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	if payload != string(authentic) {
		t.Errorf("the log holds %s, want the authentic delivery", payload)
	}
	if n := count(t, pool, countUnverified); n != 1 {
		t.Errorf("ingest_unverified has %d rows, want the forgery", n)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"enforce without keys", Config{}, "secret keys"},
		{"unknown mode", Config{Mode: "loose", SecretKeys: [][]byte{testKey}}, "signature mode"},
		{"empty key", Config{SecretKeys: [][]byte{{}}}, "empty secret key"},
		{"negative batch", Config{SecretKeys: [][]byte{testKey}, BatchMax: -1}, "batch max"},
		{"negative timestamp tolerance", Config{SecretKeys: [][]byte{testKey}, TimestampTolerance: -time.Second}, "timestamp tolerance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(pool, tt.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

// TestClientHangupDoesNotBreakTheBatch sends deliveries concurrently, half of them from
// clients that give up almost at once, through a single worker with a lingering window,
// so abandoned and patient requests share batches. Every patient one must be stored.
func TestClientHangupDoesNotBreakTheBatch(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	_, base := testService(t, pool, Config{BatchWorkers: 1, BatchWait: 20 * time.Millisecond})

	var wg sync.WaitGroup
	const n = 30
	codes := make([]int, n)
	for i := range n {
		body := joined(fmt.Sprintf("dddddddd-0000-4000-8000-%012d", i))
		wg.Go(func() {
			ctx := context.Background()
			if i%2 == 1 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Duration(i)*100*time.Microsecond)
				defer cancel()
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+CallbackPath, bytes.NewReader(body))
			for k, v := range signed(testKey, body) {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return // the impatient ones
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	stored := 0
	for i, c := range codes {
		if i%2 == 0 && c != http.StatusOK {
			t.Errorf("patient delivery %d: %d, want 200", i, c)
		}
		if c == http.StatusOK {
			stored++
			key := fmt.Sprintf("dddddddd-0000-4000-8000-%012d", i)
			if count(t, pool, `SELECT count(*) FROM `+eventlog.Table+` WHERE event_key = $1`, key) != 1 {
				t.Errorf("delivery %d acknowledged but not in the log", i)
			}
		}
	}
	if stored < n/2 {
		t.Errorf("%d deliveries acknowledged, want at least %d", stored, n/2)
	}
}

func TestStoreAppend(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	store := NewStore(pool)
	ctx := context.Background()
	entry := func(key string) Delivery {
		return Delivery{Entry: eventlog.Entry{Body: joined(key), EventName: "registrant.joined", EventKey: key, SignatureVerified: true, ReceivedAt: time.Now()}}
	}

	got, err := store.Append(ctx, []Delivery{entry("k1"), entry("k2"), entry("k1"), entry("k3")}, nil)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if want := []Outcome{Stored, Stored, Duplicate, Stored}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("outcomes: %v, want %v", got, want)
	}
	got, err = store.Append(ctx, []Delivery{entry("k3"), entry("k4")}, got[:0])
	if err != nil {
		t.Fatalf("append again: %v", err)
	}
	if want := []Outcome{Duplicate, Stored}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("outcomes: %v, want %v", got, want)
	}
	// Log order within a batch follows the batch order.
	rows, err := pool.Query(ctx, `SELECT event_key FROM `+eventlog.Table+` ORDER BY transaction_id, "offset"`)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(keys) != "[k1 k2 k3 k4]" {
		t.Errorf("log order: %v", keys)
	}

	// A failing batch stores nothing: its keys stay free for the retry.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := store.Append(cctx, []Delivery{entry("k5")}, nil); err == nil {
		t.Fatal("append with a cancelled context succeeded")
	}
	if n := count(t, pool, `SELECT count(*) FROM ingest_event_keys WHERE event_key = 'k5'`); n != 0 {
		t.Errorf("failed batch left its key claimed")
	}
}

func TestErrorResponseIsValidJSON(t *testing.T) {
	t.Parallel()
	for _, b := range [][]byte{bodyStored, bodyDuplicate, bodyUnverified, bodyMissingTS, bodyBusy, bodyMissingSig, bodyBadSig, bodyStaleTS, bodyBadTS, bodyTooLarge, bodyUnavailable, bodyBadRequest, bodyInternal} {
		if !json.Valid(b) {
			t.Errorf("response body %s is not JSON", b)
		}
	}
}
