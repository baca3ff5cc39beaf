package dashboards

import (
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/turnout-analytics/turnout/internal/ingest"
	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/projector"
	"github.com/turnout-analytics/turnout/internal/scenario"
)

// scrapeSeries are series Prometheus itself adds to every scrape target: no service
// exposes them.
var scrapeSeries = map[string]bool{"up": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true}

// exposed maps each series name a registry exposes on /metrics to its label names (and the
// values seen, per label). Histograms and summaries expose <name>_bucket (with le) or
// <name>{quantile}, <name>_sum and <name>_count.
type exposed map[string]map[string]map[string]bool

func (e exposed) add(name string, m *dto.Metric, extra ...string) {
	if e[name] == nil {
		e[name] = map[string]map[string]bool{}
	}
	for _, lp := range m.GetLabel() {
		if e[name][lp.GetName()] == nil {
			e[name][lp.GetName()] = map[string]bool{}
		}
		e[name][lp.GetName()][lp.GetValue()] = true
	}
	for _, l := range extra {
		if e[name][l] == nil {
			e[name][l] = map[string]bool{}
		}
	}
}

// gather collects what reg would expose. Gather only reports series that exist: a labelled
// vector has none until a label combination is first used. The registries gathered here
// have seen real traffic (and ingest pre-creates its outcome and reason labels), which is
// the honest check: a panel must query series the service really produces, with the label
// values it really uses. The Describe route would list vectors that never got a series, and
// say nothing about label values.
func gather(t *testing.T, e exposed, reg prometheus.Gatherer) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, mf := range mfs {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				e.add(name+"_bucket", m, "le")
				e.add(name+"_sum", m)
				e.add(name+"_count", m)
			case dto.MetricType_SUMMARY:
				e.add(name, m, "quantile")
				e.add(name+"_sum", m)
				e.add(name+"_count", m)
			default:
				e.add(name, m)
			}
		}
	}
}

// TestPromQLNamesExist requires every metric name in every Prometheus panel and alerting
// rule to be exposed by the real services, and every label a selector or by/without clause
// names to exist on the metrics of that expression (with the value, for = matchers).
func TestPromQLNamesExist(t *testing.T) {
	t.Parallel()
	e := exposed{}

	// Ingest: the real service after one signed delivery, so its per-route histogram has a
	// series for the callback route.
	pool, _ := pgtest.Pool(t)
	svc, err := ingest.New(pool, ingest.Config{SecretKeys: [][]byte{secretKey}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("new ingest service: %v", err)
	}
	t.Cleanup(svc.Close)
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	deliver(t, srv.URL, scenario.Generate(1).Events[0], 0)
	gather(t, e, svc.Registry())

	// Projector: its metrics have no labels, so they exist from registration on.
	reg := prometheus.NewRegistry()
	projector.NewMetrics(reg)
	gather(t, e, reg)

	var exprs []query
	for _, d := range loadDashboards(t) {
		for _, q := range d.queries(t) {
			if q.dsType == prometheusType {
				exprs = append(exprs, q)
			}
		}
	}
	exprs = append(exprs, alertExprs(t)...)
	if len(exprs) < 10 {
		t.Fatalf("found only %d PromQL expressions; is the parsing broken?", len(exprs))
	}
	for _, q := range exprs {
		sels, groupLabels, err := parsePromQL(q.expr)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		if len(sels) == 0 {
			t.Errorf("%s: no metric name in %q", q.where, q.expr)
		}
		labelsOfExpr := map[string]bool{"job": true, "instance": true} // added by the scrape
		for _, s := range sels {
			if scrapeSeries[s.name] {
				continue
			}
			labels, ok := e[s.name]
			if !ok {
				t.Errorf("%s: metric %s is not exposed by ingest or the projector", q.where, s.name)
				continue
			}
			for l := range labels {
				labelsOfExpr[l] = true
			}
			for _, m := range s.matchers {
				if m.label == "job" || m.label == "instance" {
					continue
				}
				values, ok := labels[m.label]
				switch {
				case !ok:
					t.Errorf("%s: %s has no label %s", q.where, s.name, m.label)
				case m.op == "=" && !values[m.value]:
					t.Errorf("%s: %s never has %s=%q (seen: %v)", q.where, s.name, m.label, m.value, keys(values))
				}
			}
		}
		for _, l := range groupLabels {
			if !labelsOfExpr[l] {
				t.Errorf("%s: grouping by %s, which none of its metrics has", q.where, l)
			}
		}
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// alertExprs reads the alerting rules' expressions.
func alertExprs(t *testing.T) []query {
	t.Helper()
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatalf("read %s: %v", alertsFile, err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("parse %s: %v", alertsFile, err)
	}
	var out []query
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out = append(out, query{where: "alerts.yml: " + r.Alert, dsType: prometheusType, expr: r.Expr})
		}
	}
	return out
}

// selector is a metric name with its label matchers.
type selector struct {
	name     string
	matchers []matcher
}

type matcher struct{ label, op, value string }

// promKeywords are PromQL words that are not metric names when not followed by "(".
var promKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
	"group_right": true, "bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true}

// parsePromQL is a small tokenizer, enough for the expressions in deploy/: it returns each
// metric selector (an identifier not followed by "(" and not a keyword, with the matchers
// of a following {…}), and the label names of by/without/on/ignoring clauses. Grafana
// variables ($__rate_interval, $__range) only occur inside [...] ranges, which are skipped.
func parsePromQL(expr string) ([]selector, []string, error) {
	var (
		sels   []selector
		labels []string
	)
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	skipSpace := func(i int) int {
		for i < len(expr) && strings.ContainsRune(" \t\n\r", rune(expr[i])) {
			i++
		}
		return i
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			end := strings.IndexByte(expr[i+1:], c)
			if end < 0 {
				return nil, nil, fmt.Errorf("unterminated string in %q", expr)
			}
			i += end + 2
		case c == '[':
			end := strings.IndexByte(expr[i:], ']')
			if end < 0 {
				return nil, nil, fmt.Errorf("unterminated range in %q", expr)
			}
			i += end + 1
		case c == '{':
			// A selector without a name, e.g. {__name__="x"}: not used in deploy/.
			return nil, nil, fmt.Errorf("bare label selector in %q is not supported", expr)
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(expr) && isIdent(expr[i]) {
				i++
			}
			word := expr[start:i]
			next := skipSpace(i)
			switch {
			case word == "by" || word == "without" || word == "on" || word == "ignoring" || word == "group_left" || word == "group_right":
				if next < len(expr) && expr[next] == '(' {
					end := strings.IndexByte(expr[next:], ')')
					if end < 0 {
						return nil, nil, fmt.Errorf("unterminated %s clause in %q", word, expr)
					}
					for _, l := range strings.Split(expr[next+1:next+end], ",") {
						if l = strings.TrimSpace(l); l != "" {
							labels = append(labels, l)
						}
					}
					i = next + end + 1
				}
			case promKeywords[strings.ToLower(word)]:
			case next < len(expr) && expr[next] == '(':
				// a function or aggregation
			case strings.HasPrefix(expr[next:], "by") || strings.HasPrefix(expr[next:], "without"):
				// an aggregation with its clause first: sum by (x) (…)
			default:
				s := selector{name: word}
				if next < len(expr) && expr[next] == '{' {
					end := strings.IndexByte(expr[next:], '}')
					if end < 0 {
						return nil, nil, fmt.Errorf("unterminated selector in %q", expr)
					}
					ms, err := parseMatchers(expr[next+1 : next+end])
					if err != nil {
						return nil, nil, fmt.Errorf("selector of %s: %w", word, err)
					}
					s.matchers = ms
					i = next + end + 1
				}
				sels = append(sels, s)
			}
		default:
			i++
		}
	}
	return sels, labels, nil
}

// parseMatchers parses `a="x", b=~"y|z"` (values hold no commas or closing braces here).
func parseMatchers(s string) ([]matcher, error) {
	var out []matcher
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		var m matcher
		for _, op := range []string{"=~", "!~", "!=", "="} {
			if i := strings.Index(part, op); i > 0 {
				m = matcher{label: strings.TrimSpace(part[:i]), op: op, value: strings.Trim(strings.TrimSpace(part[i+len(op):]), `"'`)}
				break
			}
		}
		if m.label == "" {
			return nil, fmt.Errorf("cannot parse matcher %q", part)
		}
		out = append(out, m)
	}
	return out, nil
}

func TestParsePromQL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr   string
		names  []string
		labels []string
	}{
		{`sum by (outcome) (rate(turnout_ingest_deliveries_total[$__rate_interval]))`, []string{"turnout_ingest_deliveries_total"}, []string{"outcome"}},
		{`histogram_quantile(0.99, sum by (le) (rate(x_bucket{route="/a/b", code=~"2.."}[5m]))) > 1`, []string{"x_bucket"}, []string{"le"}},
		{`min(a) < 1 and sum(rate(b[10m])) == 0`, []string{"a", "b"}, nil},
		{`sum(rate(a_sum[1m])) / sum(rate(a_count[1m] offset 5m))`, []string{"a_sum", "a_count"}, nil},
		{`up{job=~"x|y"} == 0`, []string{"up"}, nil},
	}
	for _, tt := range tests {
		sels, labels, err := parsePromQL(tt.expr)
		if err != nil {
			t.Errorf("parsePromQL(%q): %v", tt.expr, err)
			continue
		}
		var names []string
		for _, s := range sels {
			names = append(names, s.name)
		}
		if !slices.Equal(names, tt.names) || !slices.Equal(labels, tt.labels) {
			t.Errorf("parsePromQL(%q) = names %v labels %v, want %v %v", tt.expr, names, labels, tt.names, tt.labels)
		}
	}
}
