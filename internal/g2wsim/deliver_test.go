package g2wsim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turnout-analytics/turnout/internal/g2wapi"
	"github.com/turnout-analytics/turnout/internal/scenario"
	"github.com/turnout-analytics/turnout/internal/webhook"
)

// receiver is a callback like ingest's: GET answers 200; POST verifies the signature with the
// secret key the sim issued and records the delivery.
type receiver struct {
	t         *testing.T
	mu        sync.Mutex
	verifier  *webhook.Verifier
	failFirst bool            // answer 500 to the first POST of each body
	attempts  map[string]int  // body -> POSTs seen
	byEvent   map[string]int  // eventName -> verified 2xx deliveries
	bodies    map[string]bool // verified bodies
	bad       int             // POSTs whose signature did not verify
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	ts, hasTS := r.Header[http.CanonicalHeaderKey(webhook.HeaderTimestamp)]
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !hasTS || rc.verifier == nil || rc.verifier.Verify(ts[0], true, body, r.Header.Get(webhook.HeaderSignature)) != nil {
		rc.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if _, err := webhook.ParseTimestamp(ts[0]); err != nil || strings.Contains(ts[0], "-") {
		rc.bad++
		http.Error(w, "bad timestamp", http.StatusUnauthorized)
		return
	}
	rc.attempts[string(body)]++
	if rc.failFirst && rc.attempts[string(body)] == 1 {
		http.Error(w, "try again", http.StatusInternalServerError)
		return
	}
	rc.byEvent[eventName(body)]++
	rc.bodies[string(body)] = true
}

// setupAccount does what g2wctl setup does: a secret key, the four webhooks to callback,
// activated, and an ACTIVE subscription to each. It returns the webhooks and subscriptions
// by event name.
func setupAccount(t *testing.T, c *g2wapi.Client, callback string) (string, map[string]g2wapi.Webhook, map[string]g2wapi.UserSubscription) {
	t.Helper()
	ctx := t.Context()
	key, err := c.CreateSecretKey(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	hooks, err := c.CreateWebhooks(ctx, callback, "registrant.added", "registrant.joined", "webinar.created", "webinar.changed")
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, len(hooks))
	byName := map[string]g2wapi.Webhook{}
	for i, h := range hooks {
		keys[i] = h.Key
		byName[h.EventName] = h
	}
	if err := c.SetWebhookState(ctx, g2wapi.StateActive, keys...); err != nil {
		t.Fatal(err)
	}
	subs, err := c.CreateUserSubscriptions(ctx, callback, keys...)
	if err != nil {
		t.Fatal(err)
	}
	subByName := map[string]g2wapi.UserSubscription{}
	for i, s := range subs {
		subByName[hooks[i].EventName] = s
	}
	return key.Value, byName, subByName
}

func TestDeliver(t *testing.T) {
	t.Parallel()
	sc := scenario.Generate(7)
	count := map[string]int{}
	for _, e := range sc.Events {
		count[eventName(e)]++
	}
	tests := []struct {
		name      string
		cfg       DeliveryConfig
		failFirst bool
		// change alters the account before delivery.
		change      func(ctx context.Context, c *g2wapi.Client, hooks map[string]g2wapi.Webhook, subs map[string]g2wapi.UserSubscription) error
		off         string // event name that must not be delivered
		wantRetries int
		times       int // deliveries of each delivered body
	}{
		{name: "all active", times: 1},
		{name: "webhook deactivated", off: "registrant.joined", times: 1,
			change: func(ctx context.Context, c *g2wapi.Client, hooks map[string]g2wapi.Webhook, _ map[string]g2wapi.UserSubscription) error {
				return c.SetWebhookState(ctx, g2wapi.StateInactive, hooks["registrant.joined"].Key)
			}},
		{name: "subscription deactivated", off: "registrant.added", times: 1,
			change: func(ctx context.Context, c *g2wapi.Client, _ map[string]g2wapi.Webhook, subs map[string]g2wapi.UserSubscription) error {
				s := subs["registrant.added"]
				return c.UpdateUserSubscriptions(ctx, g2wapi.UserSubscriptionChange{Key: s.Key, WebhookKey: s.WebhookKey, State: g2wapi.StateInactive})
			}},
		{name: "500 then 200 is retried", failFirst: true, wantRetries: len(sc.Events), times: 1,
			cfg: DeliveryConfig{Backoff: time.Millisecond}},
		{name: "duplicates, shuffled, rate limited", times: 2,
			cfg: DeliveryConfig{Duplicates: 1, Shuffle: true, Seed: 3, Rate: 2000, Concurrency: 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim, srv := startSim(t, Config{}, nil)
			rc := &receiver{t: t, failFirst: tt.failFirst, attempts: map[string]int{}, byEvent: map[string]int{}, bodies: map[string]bool{}}
			cb := httptest.NewServer(rc)
			t.Cleanup(cb.Close)
			c := apiClient(t, srv, "")
			secret, hooks, subs := setupAccount(t, c, cb.URL)
			var err error
			if rc.verifier, err = webhook.NewVerifier([]byte(secret)); err != nil {
				t.Fatal(err)
			}
			if tt.change != nil {
				if err := tt.change(t.Context(), c, hooks, subs); err != nil {
					t.Fatal(err)
				}
			}

			report, err := NewDeliverer(sim, tt.cfg).DeliverScenario(t.Context(), sc)
			if err != nil {
				t.Fatal(err)
			}

			rc.mu.Lock()
			defer rc.mu.Unlock()
			if rc.bad != 0 {
				t.Errorf("%d deliveries failed signature or timestamp checks", rc.bad)
			}
			want := 0
			for name, n := range count {
				wantN := n * tt.times
				if name == tt.off {
					wantN = 0
				}
				want += wantN
				if rc.byEvent[name] != wantN {
					t.Errorf("%s: received %d, want %d", name, rc.byEvent[name], wantN)
				}
			}
			if report.Delivered != want || report.Failed != 0 || report.Retries != tt.wantRetries {
				t.Errorf("report %+v: want Delivered %d, Failed 0, Retries %d", report, want, tt.wantRetries)
			}
			if tt.off != "" && report.Unrouted != count[tt.off]*tt.times {
				t.Errorf("report.Unrouted = %d, want %d", report.Unrouted, count[tt.off])
			}
			if len(report.Expected) != len(sc.Expected) {
				t.Errorf("report carries %d expected figures, want %d", len(report.Expected), len(sc.Expected))
			}
		})
	}
}

// TestDeliverHandler checks the control endpoint end to end, and that the newest valid key
// signs after a rotation.
func TestDeliverHandler(t *testing.T) {
	t.Parallel()
	sim, srv := startSim(t, Config{}, nil)
	rc := &receiver{t: t, attempts: map[string]int{}, byEvent: map[string]int{}, bodies: map[string]bool{}}
	cb := httptest.NewServer(rc)
	t.Cleanup(cb.Close)
	c := apiClient(t, srv, "")
	var err error
	setupAccount(t, c, cb.URL)
	rotated, err := c.CreateSecretKey(t.Context(), time.Time{}) // valid now, so it signs from now on
	if err != nil {
		t.Fatal(err)
	}
	rc.verifier, err = webhook.NewVerifier([]byte(rotated.Value))
	if err != nil {
		t.Fatal(err)
	}
	ctl := httptest.NewServer(DeliverHandler(NewDeliverer(sim, DeliveryConfig{}), sim.Organizers(), scenario.Options{Seed: 1}))
	t.Cleanup(ctl.Close)
	resp, err := http.Post(ctl.URL+"?seed=5", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var report Report
	if err := json.NewDecoder(resp.Body).Decode(&report); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("control endpoint: %d, %v", resp.StatusCode, err)
	}
	sc := scenario.Generate(5)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if report.Delivered != len(sc.Events) || len(rc.bodies) != len(sc.Events) || rc.bad != 0 {
		t.Errorf("report %+v, %d distinct bodies received, %d bad; want all %d events signed with the rotated key",
			report, len(rc.bodies), rc.bad, len(sc.Events))
	}
}
