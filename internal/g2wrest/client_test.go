package g2wrest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/turnout-analytics/turnout/internal/g2wrest"
	"github.com/turnout-analytics/turnout/internal/g2wsim/reporting"
	"github.com/turnout-analytics/turnout/internal/scenario"
)

// after is a clock past every scenario session, so all of them have ended.
var after = time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)

const organizer = "8100000000000000001"

// window covers every scenario webinar.
var from, to = scenario.Base.Add(-24 * time.Hour), after

func startAPI(t *testing.T, sc scenario.Scenario, cfg reporting.Config, wrap func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	acct, err := reporting.NewAccount(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return after }
	}
	var h http.Handler = reporting.New(cfg, acct)
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func newClient(t *testing.T, cfg g2wrest.Config) *g2wrest.Client {
	t.Helper()
	c, err := g2wrest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDecimalKey(t *testing.T) {
	tests := []struct {
		in      string
		want    g2wrest.DecimalKey
		wantErr bool
	}{
		{in: `"9100000000000000101"`, want: "9100000000000000101"},
		{in: `9100000000000000101`, want: "9100000000000000101"}, // would round through float64
		{in: `9223372036854775807`, want: "9223372036854775807"},
		{in: ` 42 `, want: "42"},
		{in: `null`, want: ""},
		{in: `1.5`, wantErr: true},
		{in: `1e3`, wantErr: true},
		{in: `-1`, wantErr: true},
		{in: `"abc"`, wantErr: true},
		{in: `""`, wantErr: true},
		{in: `12345678901234567890`, wantErr: true}, // 20 digits: no GoTo key
		{in: `true`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var k g2wrest.DecimalKey
			err := json.Unmarshal([]byte(tt.in), &k)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && k != tt.want {
				t.Fatalf("key = %q, want %q", k, tt.want)
			}
		})
	}
}

// TestPagesToTheEnd reads lists longer than a page in both paging styles and checks nothing
// is missed or repeated.
func TestPagesToTheEnd(t *testing.T) {
	t.Parallel()
	sc := scenario.GenerateWith(scenario.Options{Seed: 3, Webinars: 23, RegistrantsPerWebinar: 40, JoinRate: 0.5})
	srv := startAPI(t, sc, reporting.Config{RequestsPerSecond: -1}, nil)
	c := newClient(t, g2wrest.Config{BaseURL: srv.URL, PageSize: 7, Limiter: rate.NewLimiter(rate.Inf, 1)})
	ctx := t.Context()

	webinars, err := c.Webinars(ctx, organizer, from, to)
	if err != nil {
		t.Fatal(err)
	}
	// Deleted webinars are not listed; every other one is, once.
	want := 23 - 23/9
	seen := map[g2wrest.DecimalKey]bool{}
	for _, w := range webinars {
		if seen[w.Value.WebinarKey] {
			t.Errorf("webinar %s listed twice", w.Value.WebinarKey)
		}
		seen[w.Value.WebinarKey] = true
		if !json.Valid(w.Raw) {
			t.Errorf("raw webinar is not JSON: %s", w.Raw)
		}
	}
	if len(webinars) != want {
		t.Fatalf("webinars = %d, want %d", len(webinars), want)
	}
	for _, w := range webinars {
		key := string(w.Value.WebinarKey)
		regs, err := c.Registrants(ctx, organizer, key)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(regs); got != sc.Expected[key].Registrants {
			t.Errorf("webinar %s: registrants = %d, want %d", key, got, sc.Expected[key].Registrants)
		}
		distinct := map[g2wrest.DecimalKey]bool{}
		for _, r := range regs {
			distinct[r.Value.RegistrantKey] = true
		}
		if len(distinct) != len(regs) {
			t.Errorf("webinar %s: %d registrants listed, %d distinct", key, len(regs), len(distinct))
		}
		sessions, err := c.WebinarSessions(ctx, organizer, key)
		if err != nil {
			t.Fatal(err)
		}
		attended := map[g2wrest.DecimalKey]bool{}
		for _, s := range sessions {
			atts, err := c.SessionAttendees(ctx, organizer, key, string(s.Value.SessionKey))
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range atts {
				attended[a.Value.RegistrantKey] = true
			}
		}
		if got := len(attended); got != sc.Expected[key].Attendees {
			t.Errorf("webinar %s: attendees = %d, want %d", key, got, sc.Expected[key].Attendees)
		}
	}
	all, err := c.OrganizerSessions(ctx, organizer, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) <= 7 {
		t.Fatalf("organizer sessions = %d: too few to need paging", len(all))
	}
}

// TestRepeatedPageGuard: an API that ignores the paging parameter answers page 0 for every
// page; the client must stop with ErrPagingIgnored instead of looping or duplicating.
func TestRepeatedPageGuard(t *testing.T) {
	t.Parallel()
	sc := scenario.GenerateWith(scenario.Options{Seed: 4, Webinars: 12, RegistrantsPerWebinar: 30, JoinRate: 0.5})
	srv := startAPI(t, sc, reporting.Config{RequestsPerSecond: -1, IgnorePaging: true}, nil)
	c := newClient(t, g2wrest.Config{BaseURL: srv.URL, PageSize: 5, Limiter: rate.NewLimiter(rate.Inf, 1)})
	if _, err := c.Webinars(t.Context(), organizer, from, to); !errors.Is(err, g2wrest.ErrPagingIgnored) {
		t.Errorf("webinars: err = %v, want ErrPagingIgnored", err)
	}
	if _, err := c.Registrants(t.Context(), organizer, "9200000000000000000"); !errors.Is(err, g2wrest.ErrPagingIgnored) {
		t.Errorf("registrants: err = %v, want ErrPagingIgnored", err)
	}
	if _, err := c.OrganizerSessions(t.Context(), organizer, from, to); !errors.Is(err, g2wrest.ErrPagingIgnored) {
		t.Errorf("organizer sessions: err = %v, want ErrPagingIgnored", err)
	}
}

// TestStaysUnderTheRateLimit: at the default rate the client never trips the emulator's
// 10 requests/s, and sends no faster than that.
func TestStaysUnderTheRateLimit(t *testing.T) {
	t.Parallel()
	sc := scenario.Generate(1)
	srv := startAPI(t, sc, reporting.Config{}, nil)
	c := newClient(t, g2wrest.Config{BaseURL: srv.URL})
	const calls = 25
	start := time.Now()
	for range calls {
		if _, err := c.WebinarSessions(t.Context(), organizer, "9100000000000000101"); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	st := c.Stats()
	if st.Throttled.Load() != 0 {
		t.Errorf("429s = %d, want 0", st.Throttled.Load())
	}
	if got := st.Calls.Load(); got != calls {
		t.Errorf("calls = %d, want %d", got, calls)
	}
	// 25 calls at 10/s with a burst of 1 take at least 2.4 s.
	if min := time.Duration(calls-1) * time.Second / 10; elapsed < min {
		t.Errorf("%d calls took %v: faster than 10/s", calls, elapsed)
	}
}

// TestBacksOffOn429: a client not paced (several processes sharing the limit look like this)
// is answered 429, waits and retries, and every call still succeeds.
func TestBacksOffOn429(t *testing.T) {
	t.Parallel()
	// 15 calls against 5/s take at least 2 s: an unpaced client is refused, however slow
	// the machine.
	srv := startAPI(t, scenario.Generate(1), reporting.Config{RequestsPerSecond: 5}, nil)
	c := newClient(t, g2wrest.Config{BaseURL: srv.URL, Limiter: rate.NewLimiter(rate.Inf, 1),
		Backoff: 50 * time.Millisecond, MaxBackoff: time.Second, MaxAttempts: 20})
	for range 15 {
		if _, err := c.WebinarSessions(t.Context(), organizer, "9100000000000000101"); err != nil {
			t.Fatal(err)
		}
	}
	if c.Stats().Throttled.Load() == 0 {
		t.Fatal("no 429 seen: the test does not exercise the backoff")
	}
	if c.Stats().Retries.Load() != c.Stats().Throttled.Load() {
		t.Errorf("retries %d != 429s %d", c.Stats().Retries.Load(), c.Stats().Throttled.Load())
	}
}

// TestBacksOffOn5xx: server errors are retried up to MaxAttempts; then the last answer is an
// *APIError with its status.
func TestBacksOffOn5xx(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		failures   int64
		wantStatus int // 0: success
	}{
		{name: "recovers", failures: 2},
		{name: "gives up", failures: 100, wantStatus: http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int64
			srv := startAPI(t, scenario.Generate(1), reporting.Config{RequestsPerSecond: -1}, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if n.Add(1) <= tt.failures {
						http.Error(w, "upstream", http.StatusBadGateway)
						return
					}
					next.ServeHTTP(w, r)
				})
			})
			c := newClient(t, g2wrest.Config{BaseURL: srv.URL, Limiter: rate.NewLimiter(rate.Inf, 1),
				Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxAttempts: 4})
			regs, err := c.Registrants(t.Context(), organizer, "9100000000000000101")
			if tt.wantStatus == 0 {
				if err != nil || len(regs) == 0 {
					t.Fatalf("registrants = %d, err = %v", len(regs), err)
				}
				if got := c.Stats().Retries.Load(); got != tt.failures {
					t.Errorf("retries = %d, want %d", got, tt.failures)
				}
				return
			}
			var apiErr *g2wrest.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tt.wantStatus {
				t.Fatalf("err = %v, want APIError %d", err, tt.wantStatus)
			}
			if got := c.Stats().Calls.Load(); got != 4 {
				t.Errorf("calls = %d, want 4 (MaxAttempts)", got)
			}
		})
	}
}

// creds hands out "old" until refreshed, then "new".
type creds struct{ refreshes atomic.Int64 }

func (c *creds) Token(context.Context) (string, error) {
	if c.refreshes.Load() > 0 {
		return "new", nil
	}
	return "old", nil
}

func (c *creds) Refresh(context.Context) (string, error) {
	c.refreshes.Add(1)
	return "new", nil
}

// TestRefreshesARefusedToken: GoTo refuses a revoked token with 403 InvalidToken (or 401);
// the client refreshes it once and sends again; a token refused after that is the caller's.
func TestRefreshesARefusedToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		accept   string // the token the server accepts
		refusal  int
		wantErr  int // 0: success
		refreshs int64
	}{
		{name: "403 InvalidToken", accept: "new", refusal: http.StatusForbidden, refreshs: 1},
		{name: "401", accept: "new", refusal: http.StatusUnauthorized, refreshs: 1},
		{name: "still refused", accept: "never", refusal: http.StatusUnauthorized, wantErr: http.StatusUnauthorized, refreshs: 1},
		{name: "valid from the start", accept: "old", refusal: http.StatusUnauthorized, refreshs: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startAPI(t, scenario.Generate(1), reporting.Config{RequestsPerSecond: -1}, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Header.Get("Authorization") != "Bearer "+tt.accept {
						w.WriteHeader(tt.refusal)
						_, _ = w.Write([]byte(`{"int_err_code":"InvalidToken","msg":"token revoked"}`))
						return
					}
					next.ServeHTTP(w, r)
				})
			})
			cr := &creds{}
			c := newClient(t, g2wrest.Config{BaseURL: srv.URL, Credentials: cr, Limiter: rate.NewLimiter(rate.Inf, 1)})
			_, err := c.WebinarSessions(t.Context(), organizer, "9100000000000000101")
			var apiErr *g2wrest.APIError
			switch {
			case tt.wantErr == 0 && err != nil:
				t.Fatal(err)
			case tt.wantErr != 0 && (!errors.As(err, &apiErr) || apiErr.Status != tt.wantErr):
				t.Fatalf("err = %v, want APIError %d", err, tt.wantErr)
			}
			if got := cr.refreshes.Load(); got != tt.refreshs {
				t.Errorf("refreshes = %d, want %d", got, tt.refreshs)
			}
		})
	}
}

// A 403 that is not about the token (another organizer's webinar) is not retried.
func TestForbiddenIsNotATokenProblem(t *testing.T) {
	t.Parallel()
	srv := startAPI(t, scenario.Generate(1), reporting.Config{RequestsPerSecond: -1}, func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"int_err_code":"AccessDenied","msg":"not yours"}`))
		})
	})
	cr := &creds{}
	c := newClient(t, g2wrest.Config{BaseURL: srv.URL, Credentials: cr, Limiter: rate.NewLimiter(rate.Inf, 1)})
	_, err := c.WebinarSessions(t.Context(), organizer, "9100000000000000101")
	var apiErr *g2wrest.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "AccessDenied" || cr.refreshes.Load() != 0 {
		t.Fatalf("err = %v, refreshes %d: want the 403 AccessDenied, no refresh", err, cr.refreshes.Load())
	}
}
