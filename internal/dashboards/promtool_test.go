package dashboards

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Paths of the Prometheus files, relative to this package; the tools run in prometheusDir.
const (
	prometheusDir  = "../../deploy/prometheus"
	alertsTestFile = "../../deploy/prometheus/alerts_test.yml"
)

// tool finds a command-line tool the tests need; missing, the test fails (never skips).
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: install Debian's %s package (.ci/run does): %v", name, pkg, err)
	}
	return p
}

// TestPrometheusRules checks the alerting rules and the Prometheus configuration with
// promtool, runs the rules' unit tests (deploy/prometheus/alerts_test.yml), and checks the
// Alertmanager configuration with amtool.
func TestPrometheusRules(t *testing.T) {
	t.Parallel()
	promtool := tool(t, "promtool", "prometheus")
	amtool := tool(t, "amtool", "prometheus-alertmanager")
	tests := []struct {
		name string
		cmd  *exec.Cmd
	}{
		{"check rules", exec.Command(promtool, "check", "rules", "alerts.yml")},
		{"check config", exec.Command(promtool, "check", "config", "prometheus.yml")},
		{"test rules", exec.Command(promtool, "test", "rules", "alerts_test.yml")},
		{"alertmanager check-config", exec.Command(amtool, "check-config", "../alertmanager/alertmanager.yml")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cmd.Dir = prometheusDir
			if out, err := tt.cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: %v\n%s", strings.Join(tt.cmd.Args, " "), err, out)
			}
		})
	}
	// The behaviour issue 16 found wrong stays covered.
	b, err := os.ReadFile(alertsTestFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "name: parked events alert while any stay parked") {
		t.Errorf("%s lost its test that parked events alert while any stay parked", alertsTestFile)
	}
	// ... across projector restarts: on the gauge that reads analytics._parked, not on a
	// counter of the running process (which starts again at 0).
	found := false
	for _, q := range alertExprs(t) {
		if q.where == "alerts.yml: TurnoutEventsParked" {
			found = true
			if !strings.Contains(q.expr, "turnout_projector_parked_events") {
				t.Errorf("%s: %q, want it on turnout_projector_parked_events", q.where, q.expr)
			}
		}
	}
	if !found {
		t.Error("alerts.yml has no TurnoutEventsParked")
	}
}
