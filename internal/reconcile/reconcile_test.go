package reconcile_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/time/rate"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/g2wrest"
	"github.com/turnout-analytics/turnout/internal/g2wsim/reporting"
	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/reconcile"
	"github.com/turnout-analytics/turnout/internal/scenario"
)

// now is after every scenario session (November and early December 2026), with a window, since,
// window reaching back before the first one.
var now = time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC)

const organizer = "8100000000000000001"

const since = 1000 * time.Hour

func startAPI(t *testing.T, sc scenario.Scenario, wrap func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	acct, err := reporting.NewAccount(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = reporting.New(reporting.Config{RequestsPerSecond: -1, Now: func() time.Time { return now }}, acct)
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func newReconciler(t *testing.T, pool *pgxpool.Pool, url string) *reconcile.Reconciler {
	t.Helper()
	api, err := g2wrest.New(g2wrest.Config{BaseURL: url, Limiter: rate.NewLimiter(rate.Inf, 1),
		Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxAttempts: 2, PageSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	r, err := reconcile.New(reconcile.Config{Pool: pool, Organizers: []reconcile.Organizer{{Key: organizer, API: api}},
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// logKeys returns the event keys of the log's snapshot events, sorted, checking their
// envelope on the way.
func logKeys(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `
SELECT event_key, event_name, metadata->>'source', payload::text FROM `+eventlog.Table+` ORDER BY event_key`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var key, name, source, payload string
		if err := rows.Scan(&key, &name, &source, &payload); err != nil {
			t.Fatal(err)
		}
		if source != reconcile.Source || !strings.HasPrefix(name, "turnout.") {
			t.Errorf("event %s: name %q, source %q", key, name, source)
		}
		var p struct {
			WebinarKey string          `json:"webinarKey"`
			Snapshot   json.RawMessage `json:"snapshot"`
		}
		if err := json.Unmarshal([]byte(payload), &p); err != nil || p.WebinarKey == "" || len(p.Snapshot) == 0 {
			t.Errorf("event %s: payload without webinarKey or snapshot (%v)", key, err)
		}
		keys = append(keys, key)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// expectedEvents counts the registrant and attendance snapshots a scenario gives for its
// webinars that are not deleted (GoTo lists no deleted webinar).
func expectedEvents(t *testing.T, sc scenario.Scenario) int {
	t.Helper()
	acct, err := reporting.NewAccount(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := len(acct.AttendanceSeconds(now))
	deleted := map[string]bool{}
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
			deleted[ev.WebinarKey.String()] = true
		}
	}
	for wk, f := range sc.Expected {
		if !deleted[wk] {
			n += f.Registrants
		}
	}
	return n
}

// TestOnceIsIdempotent: a backfill appends a snapshot per item; a second run over unchanged
// data appends nothing; a changed item appends exactly one new snapshot.
func TestOnceIsIdempotent(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	sc := scenario.GenerateWith(scenario.Options{Seed: 5, Webinars: 10, RegistrantsPerWebinar: 60, JoinRate: 0.5})
	srv := startAPI(t, sc, nil)
	r := newReconciler(t, pool, srv.URL)

	first, err := r.Once(t.Context(), since)
	if err != nil {
		t.Fatal(err)
	}
	keys := logKeys(t, pool)
	if first.Appended != len(keys) || first.Appended < expectedEvents(t, sc) {
		t.Fatalf("first run appended %d (log has %d), want at least %d registrants and attendances", first.Appended, len(keys), expectedEvents(t, sc))
	}
	if want := 10 - 10/9; first.Webinars != want {
		t.Errorf("webinars = %d, want %d (deleted ones are not listed)", first.Webinars, want)
	}
	second, err := r.Once(t.Context(), since)
	if err != nil {
		t.Fatal(err)
	}
	if second.Appended != 0 || second.Resumed || second.Webinars != first.Webinars {
		t.Fatalf("second run: %+v, want nothing appended over the same webinars", second)
	}
	if again := logKeys(t, pool); !slices.Equal(again, keys) {
		t.Fatalf("log changed: %d → %d events", len(keys), len(again))
	}
}

// TestResumesAfterFailure: a run that dies half-way is resumed by the next one, which skips
// the finished webinars, and the log ends equal to a clean run's.
func TestResumesAfterFailure(t *testing.T) {
	t.Parallel()
	sc := scenario.GenerateWith(scenario.Options{Seed: 6, Webinars: 12, RegistrantsPerWebinar: 30, JoinRate: 0.5})

	cleanPool, _ := pgtest.Pool(t)
	clean := newReconciler(t, cleanPool, startAPI(t, sc, nil).URL)
	if _, err := clean.Once(t.Context(), since); err != nil {
		t.Fatal(err)
	}
	want := logKeys(t, cleanPool)

	pool, _ := pgtest.Pool(t)
	var calls, failAfter atomic.Int64
	failAfter.Store(25)
	srv := startAPI(t, sc, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n := calls.Add(1); failAfter.Load() > 0 && n > failAfter.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	r := newReconciler(t, pool, srv.URL)
	first, err := r.Once(t.Context(), since)
	var apiErr *g2wrest.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable {
		t.Fatalf("first run: err = %v, want the API's 503", err)
	}
	if first.Webinars == 0 {
		t.Fatal("the first run finished no webinar before failing: the test proves nothing")
	}
	failAfter.Store(0)
	second, err := r.Once(t.Context(), since)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Resumed || second.Run != first.Run || second.Skipped != first.Webinars {
		t.Fatalf("second run %+v: want run %d resumed with its %d finished webinars skipped", second, first.Run, first.Webinars)
	}
	if got := logKeys(t, pool); !slices.Equal(got, want) {
		t.Fatalf("log after resume has %d events, a clean run %d", len(got), len(want))
	}
	third, err := r.Once(t.Context(), since)
	if err != nil || third.Resumed || third.Appended != 0 {
		t.Fatalf("third run %+v, %v: want a new run appending nothing", third, err)
	}
}

// TestRecentFindsEndedSessions: the poll reconciles the webinars of sessions that ended in its
// window, and the next poll starts where it ended.
func TestRecentFindsEndedSessions(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	sc := scenario.GenerateWith(scenario.Options{Seed: 7, Webinars: 30, RegistrantsPerWebinar: 10, JoinRate: 0.5})
	srv := startAPI(t, sc, nil)
	api, err := g2wrest.New(g2wrest.Config{BaseURL: srv.URL, Limiter: rate.NewLimiter(rate.Inf, 1)})
	if err != nil {
		t.Fatal(err)
	}
	clock := atomic.Pointer[time.Time]{}
	// Two days after the scenario's first sessions (Base + 7 days): some ended, most not.
	start := scenario.Base.Add(9 * 24 * time.Hour)
	clock.Store(&start)
	r, err := reconcile.New(reconcile.Config{Pool: pool, Organizers: []reconcile.Organizer{{Key: organizer, API: api}},
		Now: func() time.Time { return *clock.Load() }, RecentLookback: 72 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	first, err := r.Recent(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if first.Webinars == 0 || first.Webinars >= 30 {
		t.Fatalf("first poll reconciled %d webinars, want some but not all", first.Webinars)
	}
	later := start.Add(24 * time.Hour)
	clock.Store(&later)
	second, err := r.Recent(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !second.From.Equal(first.To) {
		t.Errorf("second poll from %v, want %v (where the first ended)", second.From, first.To)
	}
}

// TestRunsAsItsRole: the role of migration 0006 may do everything a run does (append to the
// log, claim keys, keep progress), and no more is needed.
func TestRunsAsItsRole(t *testing.T) {
	t.Parallel()
	_, url := pgtest.Pool(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, "SET ROLE turnout_reconcile")
		return err
	}
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	sc := scenario.GenerateWith(scenario.Options{Seed: 8, Webinars: 3, RegistrantsPerWebinar: 10, JoinRate: 0.5})
	r := newReconciler(t, pool, startAPI(t, sc, nil).URL)
	res, err := r.Once(t.Context(), since)
	if err != nil {
		t.Fatal(err)
	}
	if res.Appended == 0 {
		t.Fatal("nothing appended")
	}
	if _, err := r.Once(t.Context(), since); err != nil {
		t.Fatal(err)
	}
}

// TestSeveralOrganizers: each organizer's webinars are read with their own client (and
// organizerKey), and together they are every webinar of the account, once.
func TestSeveralOrganizers(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	sc := scenario.GenerateWith(scenario.Options{Seed: 10, Webinars: 9, RegistrantsPerWebinar: 10, JoinRate: 0.5})
	keys := []string{"8100000000000000001", "8100000000000000002"}
	acct, err := reporting.NewAccount(sc, keys)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reporting.New(reporting.Config{RequestsPerSecond: -1, Now: func() time.Time { return now }}, acct))
	t.Cleanup(srv.Close)
	limiter := rate.NewLimiter(rate.Inf, 1)
	var orgs []reconcile.Organizer
	for _, k := range keys {
		api, err := g2wrest.New(g2wrest.Config{BaseURL: srv.URL, Limiter: limiter})
		if err != nil {
			t.Fatal(err)
		}
		orgs = append(orgs, reconcile.Organizer{Key: k, API: api})
	}
	r, err := reconcile.New(reconcile.Config{Pool: pool, Organizers: orgs, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Once(t.Context(), since)
	if err != nil {
		t.Fatal(err)
	}
	if want := 8; res.Webinars != want { // the ninth (i%9 == 8) is deleted: GoTo lists no deleted webinar
		t.Errorf("webinars = %d, want %d", res.Webinars, want)
	}
	var perOrg []int
	rows, err := pool.Query(t.Context(), `SELECT count(*) FROM reconcile_done GROUP BY organizer_key ORDER BY organizer_key`)
	if err != nil {
		t.Fatal(err)
	}
	perOrg, err = pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil || len(perOrg) != 2 || perOrg[0] == 0 || perOrg[1] == 0 {
		t.Fatalf("webinars per organizer = %v (%v), want some for each", perOrg, err)
	}
	if got := logKeys(t, pool); len(got) != res.Appended {
		t.Errorf("log has %d events, run appended %d", len(got), res.Appended)
	}
}
