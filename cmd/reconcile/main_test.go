package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/g2wapi"
	"github.com/turnout-analytics/turnout/internal/g2wctl"
	"github.com/turnout-analytics/turnout/internal/g2wsim"
	"github.com/turnout-analytics/turnout/internal/g2wsim/reporting"
	"github.com/turnout-analytics/turnout/internal/ingest"
	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/projections"
	"github.com/turnout-analytics/turnout/internal/scenario"
)

// TestMain runs the program itself when the crash test starts this binary as a child.
func TestMain(m *testing.M) {
	if os.Getenv("RECONCILE_TEST_CHILD") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

const (
	clientID, clientSecret = "reconcile-test", "reconcile-test-secret"
	organizer              = "8100000000000000001"
)

// sim is an emulated GoTo account serving sc: management API, OAuth and REST reporting.
type sim struct {
	*g2wsim.Sim
	srv  *httptest.Server
	acct *reporting.Account
	now  time.Time
}

func startSim(t *testing.T, sc scenario.Scenario) *sim {
	t.Helper()
	acct, err := reporting.NewAccount(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The wall clock, which `reconcile once` uses too. Tests use at most 12 sized webinars:
	// their sessions all end before December 2026.
	now := time.Now()
	s, err := g2wsim.New(g2wsim.Config{ClientID: clientID, ClientSecret: clientSecret,
		Reporting: reporting.New(reporting.Config{BasePath: g2wsim.BasePath, RequestsPerSecond: -1}, acct)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &sim{Sim: s, srv: srv, acct: acct, now: now}
}

// env is the reconcile configuration for the sim and database.
func (s *sim) env(dbURL string, extra map[string]string) func(string) string {
	e := map[string]string{"DATABASE_URL": dbURL, "G2W_CLIENT_ID": clientID, "G2W_CLIENT_SECRET": clientSecret,
		"G2W_API_URL": s.srv.URL + g2wsim.BasePath, "G2W_AUTH_URL": s.srv.URL + "/oauth",
		"G2W_CLIENT_CREDENTIALS": "true", "G2W_ORGANIZER_KEY": organizer, "RECONCILE_RATE": "200"}
	maps.Copy(e, extra)
	return func(k string) string { return e[k] }
}

// since covers the scenario (from November 2026) from any clock up to the end of 2030.
const since = "40000h"

// logFigures computes, from the log alone, each webinar's registrants (keys seen in webhooks
// or REST snapshots) and attendees (keys seen joining, or attending per REST).
func logFigures(t *testing.T, pool *pgxpool.Pool) map[string]scenario.Figures {
	t.Helper()
	rows, err := pool.Query(t.Context(), `
WITH k AS (
    SELECT payload->>'webinarKey' AS w, payload->>'registrantKey' AS r,
           event_name IN ('registrant.joined', 'turnout.attendance.snapshot') AS attended
    FROM `+eventlog.Table+`
    WHERE event_name IN ('registrant.added', 'registrant.joined', 'turnout.registrant.snapshot', 'turnout.attendance.snapshot'))
SELECT w, count(DISTINCT r), count(DISTINCT r) FILTER (WHERE attended) FROM k GROUP BY w`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]scenario.Figures{}
	var w string
	var f scenario.Figures
	for rows.Next() {
		if err := rows.Scan(&w, &f.Registrants, &f.Attendees); err != nil {
			t.Fatal(err)
		}
		out[w] = f
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func logCount(t *testing.T, pool *pgxpool.Pool) (n int) {
	t.Helper()
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM `+eventlog.Table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// deliverWithHoles wires the sim's webhooks to an in-process ingest and delivers sc with a
// fifth of the events dropped.
func deliverWithHoles(t *testing.T, s *sim, pool *pgxpool.Pool, sc scenario.Scenario) g2wsim.Report {
	t.Helper()
	ctx := t.Context()
	creds := g2wctl.ClientCredentials(g2wctl.OAuthConfig(clientID, clientSecret, s.srv.URL+"/oauth"), s.srv.Client())
	api, err := g2wapi.New(g2wapi.Config{BaseURL: s.srv.URL + g2wsim.BasePath, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	// ingest needs the key before it starts, and setup needs a callback that answers GET.
	key, err := api.CreateSecretKey(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := ingest.New(pool, ingest.Config{SecretKeys: [][]byte{[]byte(key.Value)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	in := httptest.NewServer(svc.Handler())
	t.Cleanup(in.Close)
	if _, err := g2wctl.Setup(ctx, g2wctl.SetupConfig{Callback: in.URL + "/gotowebinar/callback",
		Organizers: []g2wctl.Organizer{{Profile: g2wctl.DefaultProfile, Key: organizer, Client: api}},
		SecretKeys: []g2wapi.SecretKey{key}, PollInterval: time.Millisecond, Out: io.Discard}); err != nil {
		t.Fatal(err)
	}
	report, err := g2wsim.NewDeliverer(s.Sim, g2wsim.DeliveryConfig{Drop: 0.2, Shuffle: true, Seed: 3, Duplicates: 0.05}).DeliverScenario(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	if report.Failed != 0 || report.Dropped == 0 {
		t.Fatalf("delivery report %+v: want none failed and some dropped", report)
	}
	return report
}

// buildAnalytics builds schema from the whole log, as the projector's first build does, and
// returns webinar_conversion's figures.
func buildAnalytics(t *testing.T, pool *pgxpool.Pool, schema string) map[string]scenario.Figures {
	t.Helper()
	if err := pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
		if err := projections.Create(t.Context(), tx, schema); err != nil {
			return err
		}
		rows, err := tx.Query(t.Context(), `SELECT "offset", received_at, payload::text FROM `+eventlog.Table+` ORDER BY "offset"`)
		if err != nil {
			return err
		}
		var events []projections.Event
		var payload string
		var e projections.Event
		if _, err := pgx.ForEachRow(rows, []any{&e.Offset, &e.ReceivedAt, &payload}, func() error {
			e.Payload = []byte(payload)
			events = append(events, e)
			return nil
		}); err != nil {
			return err
		}
		return projections.Apply(t.Context(), tx, schema, events...)
	}); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(t.Context(), "SELECT webinar_key, registrants, attendees FROM "+pgx.Identifier{schema, "webinar_conversion"}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]scenario.Figures{}
	var w string
	var f scenario.Figures
	if _, err := pgx.ForEachRow(rows, []any{&w, &f.Registrants, &f.Attendees}, func() error {
		out[w] = f
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// liveWebinars are the scenario's webinars that are not deleted: GoTo's REST API lists no
// deleted webinar, so reconciliation cannot fill their holes.
func liveWebinars(t *testing.T, sc scenario.Scenario) map[string]scenario.Figures {
	t.Helper()
	out := maps.Clone(sc.Expected)
	for _, body := range sc.Events {
		var ev struct {
			EventName  string      `json:"eventName"`
			WebinarKey json.Number `json:"webinarKey"`
			Status     string      `json:"status"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.EventName == "webinar.changed" && ev.Status == "DELETED" {
			delete(out, ev.WebinarKey.String())
		}
	}
	return out
}

// TestReconcileFillsHoles is the end-to-end proof: webhooks with 20% dropped leave
// the figures wrong; `reconcile once` makes every figure equal the full scenario's, with the
// attendance seconds of the emulator's ground truth; a second run appends nothing.
func TestReconcileFillsHoles(t *testing.T) {
	t.Parallel()
	sc := scenario.GenerateWith(scenario.Options{Seed: 11, Webinars: 12, RegistrantsPerWebinar: 40, JoinRate: 0.6})
	s := startSim(t, sc)
	pool, dbURL := pgtest.Pool(t)
	deliverWithHoles(t, s, pool, sc)

	want := liveWebinars(t, sc)
	before := logFigures(t, pool)
	wrong := 0
	for w, f := range want {
		if before[w] != f {
			wrong++
		}
	}
	if wrong == 0 {
		t.Fatal("with 20% of deliveries dropped every figure is still right: the test proves nothing")
	}
	conv := buildAnalytics(t, pool, "analytics_before")
	wrong = 0
	for w, f := range want {
		if conv[w] != f {
			wrong++
		}
	}
	if wrong == 0 {
		t.Fatal("webinar_conversion is right before reconcile: the test proves nothing")
	}

	var out strings.Builder
	if err := run(t.Context(), []string{"once", "-since", since}, s.env(dbURL, nil), &out, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	after := logFigures(t, pool)
	for w, f := range want {
		if after[w] != f {
			t.Errorf("webinar %s after reconcile: %+v, want %+v (before: %+v)", w, after[w], f, before[w])
		}
	}

	// Attendance seconds: the attendance snapshots' attendanceTimeInSeconds, and the sum of
	// their intervals, equal the emulator's ground truth.
	truth := s.acct.AttendanceSeconds(s.now)
	rows, err := pool.Query(t.Context(), `
SELECT payload->>'webinarKey', payload->>'sessionKey', payload->>'registrantKey',
       (payload->'snapshot'->>'attendanceTimeInSeconds')::int,
       (SELECT coalesce(sum(extract(epoch FROM (i->>'leaveTime')::timestamptz - (i->>'joinTime')::timestamptz)), 0)::int
        FROM json_array_elements(payload->'snapshot'->'attendance') i)
FROM `+eventlog.Table+` WHERE event_name = 'turnout.attendance.snapshot'`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[reporting.AttendanceKey]int{}
	for rows.Next() {
		var k reporting.AttendanceKey
		var secs, sum int
		if err := rows.Scan(&k.Webinar, &k.Session, &k.Registrant, &secs, &sum); err != nil {
			t.Fatal(err)
		}
		if secs != sum {
			t.Errorf("%v: attendanceTimeInSeconds %d, intervals sum to %d", k, secs, sum)
		}
		got[k] = secs
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, truth) {
		t.Errorf("attendance from the log (%d) differs from the emulator's ground truth (%d)", len(got), len(truth))
	}

	// The projection: analytics built from the whole log (as the projector's first build
	// does) shows every conversion figure of the full scenario, and the same seconds.
	conv = buildAnalytics(t, pool, "analytics_after")
	for w, f := range want {
		if conv[w] != f {
			t.Errorf("webinar_conversion of %s after reconcile: %+v, want %+v", w, conv[w], f)
		}
	}
	projected := map[reporting.AttendanceKey]int{}
	rows, err = pool.Query(t.Context(), `SELECT webinar_key, session_key, registrant_key, seconds_attended FROM analytics_after.engagement`)
	if err != nil {
		t.Fatal(err)
	}
	var k reporting.AttendanceKey
	var secs int
	if _, err := pgx.ForEachRow(rows, []any{&k.Webinar, &k.Session, &k.Registrant, &secs}, func() error {
		projected[k] = secs
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(projected, truth) {
		t.Errorf("analytics.engagement (%d rows) differs from the emulator's ground truth (%d)", len(projected), len(truth))
	}

	n := logCount(t, pool)
	out.Reset()
	if err := run(t.Context(), []string{"once", "-since", since}, s.env(dbURL, nil), &out, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	if again := logCount(t, pool); again != n || !strings.Contains(out.String(), " 0 events appended") {
		t.Fatalf("second run: log %d → %d events; output %q", n, again, out.String())
	}
}

// TestCrashResume kills `reconcile once` with SIGKILL mid-run, runs it again, and checks the
// log equals a clean run's: nothing lost, nothing appended twice, finished webinars skipped.
func TestCrashResume(t *testing.T) {
	t.Parallel()
	sc := scenario.GenerateWith(scenario.Options{Seed: 12, Webinars: 12, RegistrantsPerWebinar: 30, JoinRate: 0.5})
	s := startSim(t, sc)

	cleanPool, cleanURL := pgtest.Pool(t)
	if err := run(t.Context(), []string{"once", "-since", since}, s.env(cleanURL, nil), io.Discard, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	want := logKeys(t, cleanPool)

	pool, dbURL := pgtest.Pool(t)
	child := exec.Command(os.Args[0], "once", "-since", since)
	env := s.env(dbURL, map[string]string{"RECONCILE_RATE": "10"})
	child.Env = append(os.Environ(), "RECONCILE_TEST_CHILD=1")
	for _, k := range []string{"DATABASE_URL", "G2W_CLIENT_ID", "G2W_CLIENT_SECRET", "G2W_API_URL", "G2W_AUTH_URL",
		"G2W_CLIENT_CREDENTIALS", "G2W_ORGANIZER_KEY", "RECONCILE_RATE"} {
		child.Env = append(child.Env, k+"="+env(k))
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once it has finished a few webinars, mid-way through the rest.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for done := 0; done < 3; {
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM reconcile_done`).Scan(&done); err != nil {
			_ = child.Process.Kill()
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	var finished int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM reconcile_runs WHERE finished_at IS NOT NULL`).Scan(&finished); err != nil {
		t.Fatal(err)
	}
	if finished != 0 {
		t.Fatal("the run finished before it was killed: the test proves nothing")
	}

	var out strings.Builder
	if err := run(t.Context(), []string{"once", "-since", since}, s.env(dbURL, nil), &out, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	var skipped int
	if _, err := fmt.Sscanf(out.String()[strings.Index(out.String(), "(")+1:], "%d finished by an earlier run", &skipped); err != nil || skipped < 3 {
		t.Errorf("rerun output %q: want at least 3 webinars finished by the killed run", out.String())
	}
	got := logKeys(t, pool)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("log after crash and rerun: %d events; a clean run: %d", len(got), len(want))
	}
	// The event keys are unique by construction (the dedup table); the same holds for log rows.
	var dupes int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) - count(DISTINCT event_key) FROM `+eventlog.Table).Scan(&dupes); err != nil || dupes != 0 {
		t.Fatalf("%d events appended twice (%v)", dupes, err)
	}
}

func logKeys(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT event_key FROM `+eventlog.Table+` ORDER BY event_key`)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestService serves /healthz and /metrics while it reconciles: the first tick sweeps (no
// sweep has finished yet) and the metrics show the calls, the events and the lag.
func TestService(t *testing.T) {
	t.Parallel()
	sc := scenario.GenerateWith(scenario.Options{Seed: 13, Webinars: 6, RegistrantsPerWebinar: 10, JoinRate: 0.5})
	s := startSim(t, sc)
	pool, dbURL := pgtest.Pool(t)
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, nil, s.env(dbURL, map[string]string{"RECONCILE_ADDR": "127.0.0.1:0", "RECONCILE_SWEEP_DAYS": "366",
			"RECONCILE_POLL_INTERVAL": "50ms"}), io.Discard, io.Discard, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-errc:
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var metrics string
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(b)
		if !strings.Contains(metrics, "turnout_reconcile_sweep_lag_seconds -1") && strings.Contains(metrics, "turnout_reconcile_events_appended_total") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sweep finished within 30s:\n%s", metrics)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, name := range []string{"turnout_reconcile_api_calls_total", "turnout_reconcile_api_throttled_total",
		"turnout_reconcile_events_appended_total", "turnout_reconcile_sweep_lag_seconds"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if n := logCount(t, pool); n == 0 {
		t.Error("the service's sweep appended nothing")
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %v %v", resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
