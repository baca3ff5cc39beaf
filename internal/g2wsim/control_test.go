package g2wsim

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/turnout-analytics/turnout/internal/scenario"
	"github.com/turnout-analytics/turnout/internal/webhook"
)

// TestDeliverHandlerSized delivers small sized scenarios, from the handler's defaults and
// from query overrides, and checks every event arrives and the report's figures are the
// sized scenario's.
func TestDeliverHandlerSized(t *testing.T) {
	t.Parallel()
	defaults := scenario.Options{Seed: 2, Webinars: 5, RegistrantsPerWebinar: 4, JoinRate: 0.5}
	tests := []struct {
		name  string
		query string
		want  scenario.Options
	}{
		{name: "defaults", want: defaults},
		{name: "query overrides", query: "?webinars=7&registrants=3&join_rate=1&seed=9",
			want: scenario.Options{Seed: 9, Webinars: 7, RegistrantsPerWebinar: 3, JoinRate: 1}},
		{name: "webinars=0 is the small scenario", query: "?webinars=0&seed=4", want: scenario.Options{Seed: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim, srv := startSim(t, Config{}, nil)
			rc := &receiver{t: t, attempts: map[string]int{}, byEvent: map[string]int{}, bodies: map[string]bool{}}
			cb := httptest.NewServer(rc)
			t.Cleanup(cb.Close)
			c := apiClient(t, srv, "")
			secret, _, _ := setupAccount(t, c, cb.URL)
			var err error
			if rc.verifier, err = webhook.NewVerifier([]byte(secret)); err != nil {
				t.Fatal(err)
			}
			ctl := httptest.NewServer(DeliverHandler(NewDeliverer(sim, DeliveryConfig{Concurrency: 8}), sim.Organizers(), defaults))
			t.Cleanup(ctl.Close)

			resp, err := http.Post(ctl.URL+tt.query, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var report Report
			if err := json.NewDecoder(resp.Body).Decode(&report); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("control endpoint: %d, %v", resp.StatusCode, err)
			}

			sc := scenario.GenerateWith(tt.want)
			count := map[string]int{}
			for _, e := range sc.Events {
				count[eventName(e)]++
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			if report.Events != len(sc.Events) || report.Delivered != len(sc.Events) || len(rc.bodies) != len(sc.Events) || rc.bad != 0 {
				t.Errorf("report %+v, %d distinct bodies received, %d bad; want all %d events", report, len(rc.bodies), rc.bad, len(sc.Events))
			}
			if !maps.Equal(rc.byEvent, count) {
				t.Errorf("received per event %v, want %v", rc.byEvent, count)
			}
			if !maps.Equal(report.Expected, sc.Expected) {
				t.Errorf("report's expected figures are not the sized scenario's: %d webinars, want %d", len(report.Expected), len(sc.Expected))
			}
		})
	}
}

func TestDeliverHandlerRejectsBadQueries(t *testing.T) {
	t.Parallel()
	// No router: a bad query must be refused before any delivery is attempted.
	ctl := httptest.NewServer(DeliverHandler(NewDeliverer(nil, DeliveryConfig{}), nil, scenario.Options{Seed: 1}))
	t.Cleanup(ctl.Close)
	for _, q := range []string{"seed=-1", "webinars=-1", "webinars=many", "webinars=100001", "registrants=0",
		"registrants=10001", "join_rate=1.5", "join_rate=x", "webinars=100000&registrants=100"} {
		t.Run(q, func(t *testing.T) {
			t.Parallel()
			resp, err := http.Post(ctl.URL+"?"+q, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("POST ?%s: %d, want 400", q, resp.StatusCode)
			}
		})
	}
}
