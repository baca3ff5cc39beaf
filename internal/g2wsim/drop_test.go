package g2wsim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/turnout-analytics/turnout/internal/g2wsim/reporting"
	"github.com/turnout-analytics/turnout/internal/scenario"
)

// oneTarget routes every event to one callback.
type oneTarget string

func (u oneTarget) Targets(string, string) []Target { return []Target{{URL: string(u), Secret: "k"}} }

// TestDropLeavesHoles: with Drop 0.2 about a fifth of the events never arrive, the same ones
// for the same seed, and the report counts them.
func TestDropLeavesHoles(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen[string(b)] = true
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	sc := scenario.GenerateWith(scenario.Options{Seed: 1, Webinars: 20, RegistrantsPerWebinar: 20, JoinRate: 0.5})
	cfg := DeliveryConfig{Drop: 0.2, Seed: 7, Duplicates: 0.1}
	report, err := NewDeliverer(oneTarget(srv.URL), cfg).DeliverScenario(t.Context(), sc)
	if err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, e := range sc.Events {
		if !seen[string(e)] {
			missing++
		}
	}
	if missing != report.Dropped || missing < len(sc.Events)/10 || missing > len(sc.Events)*3/10 {
		t.Fatalf("%d of %d events never arrived, report says %d dropped; want about 20%%", missing, len(sc.Events), report.Dropped)
	}
	again, err := NewDeliverer(oneTarget(srv.URL), cfg).DeliverScenario(t.Context(), sc)
	if err != nil {
		t.Fatal(err)
	}
	if again.Dropped != report.Dropped {
		t.Errorf("same seed dropped %d, then %d", report.Dropped, again.Dropped)
	}
}

// TestReportingIsMounted: the REST reporting API answers under BasePath beside the management
// API, to authenticated callers only.
func TestReportingIsMounted(t *testing.T) {
	t.Parallel()
	acct, err := reporting.NewAccount(scenario.Generate(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, srv := startSim(t, Config{Reporting: reporting.New(reporting.Config{BasePath: BasePath}, acct)}, nil)
	path := srv.URL + BasePath + "/organizers/8100000000000000001/webinars/9100000000000000101/registrants"
	resp, err := srv.Client().Get(path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		t.Errorf("without a token: %d, want 401 or 403", resp.StatusCode)
	}
	resp, err = authClient(t, srv, "").Get(path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("with a token: %d, want 200", resp.StatusCode)
	}
	// The management API is still there.
	resp, err = authClient(t, srv, "").Get(srv.URL + BasePath + "/webhooks?product=g2w")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("management API: %d, want 200", resp.StatusCode)
	}
}
