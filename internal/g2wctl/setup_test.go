package g2wctl

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/turnout-analytics/turnout/internal/g2wapi"
	"github.com/turnout-analytics/turnout/internal/g2wsim"
)

// lagging makes GET /webhooks/{key} answer 404 the first misses times per key, as live GoTo's
// eventually consistent creation may, and counts activations that came before the webhook
// was visible.
type lagging struct {
	next   http.Handler
	misses int
	mu     sync.Mutex
	gets   map[string]int
	early  int // PUT /webhooks before a GET of the key succeeded
}

func (l *lagging) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const prefix = g2wsim.BasePath + "/webhooks/"
	key, isGet := strings.CutPrefix(r.URL.Path, prefix)
	l.mu.Lock()
	switch {
	case r.Method == http.MethodGet && isGet && key != "":
		l.gets[key]++
		if l.gets[key] <= l.misses {
			l.mu.Unlock()
			http.Error(w, `{"description":"not yet"}`, http.StatusNotFound)
			return
		}
	case r.Method == http.MethodPut && r.URL.Path == g2wsim.BasePath+"/webhooks":
		for _, n := range l.gets {
			if n <= l.misses {
				l.early++
			}
		}
	}
	l.mu.Unlock()
	l.next.ServeHTTP(w, r)
}

func startSim(t *testing.T, misses int) (*g2wapi.Client, *lagging, string) {
	t.Helper()
	sim, err := g2wsim.New(g2wsim.Config{ClientID: "id", ClientSecret: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	l := &lagging{next: sim.Handler(), misses: misses, gets: map[string]int{}}
	srv := httptest.NewServer(l)
	t.Cleanup(srv.Close)
	cb := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(cb.Close)
	conf := OAuthConfig("id", "secret", srv.URL+"/oauth")
	c, err := g2wapi.New(g2wapi.Config{BaseURL: srv.URL + g2wsim.BasePath,
		HTTPClient: oauth2.NewClient(t.Context(), ClientCredentials(t.Context(), conf))})
	if err != nil {
		t.Fatal(err)
	}
	return c, l, cb.URL + "/hook"
}

func TestSetupWaitsForNewWebhooks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		misses  int
		wantErr bool
	}{
		{"visible at once", 0, false},
		{"visible after two polls", 2, false},
		{"never visible within the bound", 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, l, callback := startSim(t, tt.misses)
			var out bytes.Buffer
			res, err := Setup(t.Context(), c, SetupConfig{Callback: callback, Events: []string{"registrant.joined"},
				PollInterval: 5 * time.Millisecond, PollAttempts: 4, Out: &out})
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "not visible after 4 attempts") {
					t.Errorf("Setup: %v, want a bounded wait error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Setup: %v\n%s", err, out.String())
			}
			if l.early != 0 {
				t.Errorf("%d activations before the webhook was visible", l.early)
			}
			if res.Created != 3 || len(res.Webhooks) != 1 || len(res.Subscriptions) != 1 {
				t.Errorf("result %+v: want a key, a webhook and a subscription created", res)
			}
		})
	}
}

func TestDoctorSeesInactiveSubscription(t *testing.T) {
	t.Parallel()
	c, _, callback := startSim(t, 0)
	res, err := Setup(t.Context(), c, SetupConfig{Callback: callback})
	if err != nil {
		t.Fatal(err)
	}
	doctor := func() (bool, string) {
		var out bytes.Buffer
		ok, err := Doctor(t.Context(), c, DoctorConfig{Callback: callback, HTTPClient: http.DefaultClient, Out: &out})
		if err != nil {
			t.Fatal(err)
		}
		return ok, out.String()
	}
	if ok, out := doctor(); !ok {
		t.Fatalf("doctor after setup:\n%s", out)
	}
	sub := res.Subscriptions[1]
	if err := c.UpdateUserSubscriptions(t.Context(), g2wapi.UserSubscriptionChange{Key: sub.Key, State: g2wapi.StateInactive}); err != nil {
		t.Fatal(err)
	}
	ok, out := doctor()
	if ok || !strings.Contains(out, "[FAIL] subscription "+sub.Key) {
		t.Errorf("doctor with an inactive subscription: ok=%v\n%s", ok, out)
	}
	// Setup reactivates it, creating nothing.
	again, err := Setup(t.Context(), c, SetupConfig{Callback: callback, Secret: &res.Secret})
	if err != nil || again.Created != 0 {
		t.Fatalf("second setup: created %d, %v", again.Created, err)
	}
	if ok, out := doctor(); !ok {
		t.Errorf("doctor after repair:\n%s", out)
	}
}
