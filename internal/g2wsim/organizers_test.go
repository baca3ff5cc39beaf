package g2wsim

import (
	"maps"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/turnout-analytics/turnout/internal/scenario"
	"github.com/turnout-analytics/turnout/internal/webhook"
)

func TestShareScenario(t *testing.T) {
	t.Parallel()
	sc := scenario.Generate(3)
	orgs := DefaultOrganizers(2)
	parts := ShareScenario(sc, orgs)
	if len(parts) != 2 {
		t.Fatalf("%d parts, want 2", len(parts))
	}
	events, expected := 0, map[string]scenario.Figures{}
	for i, p := range parts {
		if p.Organizer != orgs[i] || len(p.Scenario.Expected) == 0 {
			t.Errorf("part %d: organizer %+v with %d webinars; want %+v with some", i, p.Organizer, len(p.Scenario.Expected), orgs[i])
		}
		for _, body := range p.Scenario.Events {
			var ids eventIDs
			if err := ids.decode(body); err != nil {
				t.Fatal(err)
			}
			if ids.organizer() != p.Organizer.Key {
				t.Errorf("event of webinar %s in %s's part names organizer %s", ids.WebinarKey, p.Organizer.Key, ids.organizer())
			}
			if _, ok := p.Scenario.Expected[ids.WebinarKey.String()]; !ok {
				t.Errorf("event of webinar %s is not in its part's figures", ids.WebinarKey)
			}
		}
		events += len(p.Scenario.Events)
		maps.Copy(expected, p.Scenario.Expected)
	}
	if events != len(sc.Events) || !maps.Equal(expected, sc.Expected) {
		t.Errorf("parts hold %d events and %d webinars; want %d and %d", events, len(expected), len(sc.Events), len(sc.Expected))
	}
	// One organizer (the scenario's own): the bytes are unchanged.
	one := ShareScenario(sc, DefaultOrganizers(1))
	for i, body := range one[0].Scenario.Events {
		if string(body) != string(sc.Events[i]) {
			t.Fatalf("event %d changed with the scenario's own organizer", i)
		}
	}
}

// TestOrganizers checks that each organizer's token sees only their own subscriptions, and
// that an organizer's events are delivered only through their own ACTIVE subscription.
func TestOrganizers(t *testing.T) {
	t.Parallel()
	orgs := DefaultOrganizers(2)
	sim, srv := startSim(t, Config{Organizers: orgs}, nil)
	rc := &receiver{t: t, attempts: map[string]int{}, byEvent: map[string]int{}, bodies: map[string]bool{}}
	cb := httptest.NewServer(rc)
	t.Cleanup(cb.Close)
	first, second := apiClient(t, srv, orgs[0].Email), apiClient(t, srv, orgs[1].Key)
	secret, hooks, _ := setupAccount(t, first, cb.URL)
	var err error
	if rc.verifier, err = webhook.NewVerifier([]byte(secret)); err != nil {
		t.Fatal(err)
	}
	if subs, err := second.ListUserSubscriptions(t.Context()); err != nil || len(subs) != 0 {
		t.Errorf("the second organizer lists %d subscriptions, %v; want none of the first's", len(subs), err)
	}
	parts := sim.Scenario(scenario.Options{Seed: 4})
	d := NewDeliverer(sim, DeliveryConfig{Concurrency: 8})
	report, err := d.DeliverShared(t.Context(), parts)
	if err != nil {
		t.Fatal(err)
	}
	if report.ByOrganizer[orgs[0].Key] != len(parts[0].Scenario.Events) || report.ByOrganizer[orgs[1].Key] != 0 ||
		report.Unrouted != len(parts[1].Scenario.Events) {
		t.Errorf("only the first organizer subscribed: report %+v; want %d delivered for %s, %d unrouted",
			report, len(parts[0].Scenario.Events), orgs[0].Key, len(parts[1].Scenario.Events))
	}

	// The second organizer subscribes with their own token: now both are delivered.
	keys := make([]string, 0, len(hooks))
	for _, name := range sortedKeys(hooks) {
		keys = append(keys, hooks[name].Key)
	}
	if _, err := second.CreateUserSubscriptions(t.Context(), "", keys...); err != nil {
		t.Fatal(err)
	}
	report, err = d.DeliverShared(t.Context(), parts)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if report.ByOrganizer[p.Organizer.Key] != len(p.Scenario.Events) {
			t.Errorf("organizer %s: %d delivered, want %d", p.Organizer.Key, report.ByOrganizer[p.Organizer.Key], len(p.Scenario.Events))
		}
	}
	if report.Unrouted != 0 {
		t.Errorf("report.Unrouted = %d, want 0", report.Unrouted)
	}
}

// TestSigningKey checks which key signs: the one that became valid last, a scheduled key
// taking over only when its validFrom comes.
func TestSigningKey(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	s := newStore()
	if _, ok := s.signingKey(t0); ok {
		t.Error("a key signs before any exists")
	}
	s.addSecret("old", t0)
	s.addSecret("next", t0.Add(time.Hour))
	s.addSecret("late", t0.Add(-time.Hour)) // created last, but valid since before "old"
	tests := []struct {
		at   time.Time
		want string
	}{
		{t0.Add(-30 * time.Minute), "late"},
		{t0, "old"},
		{t0.Add(59 * time.Minute), "old"},
		{t0.Add(time.Hour), "next"},
		{t0.Add(48 * time.Hour), "next"},
	}
	for _, tt := range tests {
		if got, _ := s.signingKey(tt.at); got != tt.want {
			t.Errorf("at %s: %q signs, want %q", tt.at.Format(time.TimeOnly), got, tt.want)
		}
	}
}
