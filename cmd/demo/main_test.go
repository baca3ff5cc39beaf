package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/turnout-analytics/turnout/internal/pgtest"
)

// TestDemoEndToEnd is issue 4's end-to-end path on the real binaries: g2wctl secret create
// and setup against g2wsim, g2wctl doctor, g2wsim delivering a shuffled scenario with
// redeliveries as signed POSTs, ingest, the projector, and analytics.webinar_conversion
// equal, webinar by webinar, to the figures the scenario implies (run fails otherwise), with
// the webinars of both organizers (each logged in with g2wctl login) in analytics; and issue
// 12's proof: with 20% of the deliveries dropped the figures are wrong, `reconcile once` makes
// them the full scenario's with the emulator's attendance seconds, and a second run appends
// nothing.
func TestDemoEndToEnd(t *testing.T) {
	bin := t.TempDir()
	out, err := exec.Command("go", "build", "-o", bin+"/", "../ingest", "../projector", "../g2wsim", "../g2wctl", "../reconcile").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	env := map[string]string{"DATABASE_URL": pgtest.URL(t), "DEMO_ONCE": "1", "TURNOUT_BIN": bin}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout strings.Builder
	if err := run(ctx, func(k string) string { return env[k] }, &stdout); err != nil {
		t.Fatalf("demo: %v\n%s", err, stdout.String())
	}
	for _, want := range []string{"[ok]   callback", "each webinar as the scenario says", "analytics.webinar_conversion", "DELETED", "refused (401)",
		"[ok]   organizer alice (8100000000000000001) webinar.created: ACTIVE", "[ok]   organizer bob (8100000000000000002) registrant.joined: ACTIVE",
		"Every organizer's webinars are there: 2 organizers", "Every webinar has its title and organizer in analytics",
		"analytics.webinar_conversion is wrong (below the scenario's)", "`reconcile once` read", "Every figure now equals the full scenario's",
		"Attendance time equals the emulator's ground truth", "A second `reconcile once` appended nothing", "avg_attendance"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout.String())
		}
	}
}
