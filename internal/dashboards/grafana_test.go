package dashboards

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The parts of Grafana's dashboard JSON model the tests read.
type (
	dashboard struct {
		file       string
		UID        string  `json:"uid"`
		Title      string  `json:"title"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []variable `json:"list"`
		} `json:"templating"`
	}
	datasourceRef struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	panel struct {
		ID         int            `json:"id"`
		Title      string         `json:"title"`
		Type       string         `json:"type"`
		Datasource *datasourceRef `json:"datasource"`
		Targets    []target       `json:"targets"`
		Panels     []panel        `json:"panels"` // a collapsed row's panels
	}
	target struct {
		RefID      string         `json:"refId"`
		Datasource *datasourceRef `json:"datasource"`
		RawSQL     string         `json:"rawSql"`
		Format     string         `json:"format"`
		Expr       string         `json:"expr"`
	}
	variable struct {
		Name       string          `json:"name"`
		Type       string          `json:"type"`
		Datasource *datasourceRef  `json:"datasource"`
		Query      json.RawMessage `json:"query"` // a string, or {"rawSql": …} in newer models
		Multi      bool            `json:"multi"`
		IncludeAll bool            `json:"includeAll"`
		AllValue   string          `json:"allValue"`
	}
)

// Data source types the dashboards use.
const (
	postgresType   = "grafana-postgresql-datasource"
	prometheusType = "prometheus"
)

// query is one runnable query of a dashboard: a panel target or a variable's query.
type query struct {
	where  string // dashboard, panel and refId, for messages
	dsType string
	sql    string
	format string // "table" or "time_series" for SQL targets
	expr   string
}

// loadDashboards reads every dashboard JSON file in deploy/.
func loadDashboards(t *testing.T) []dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dashboardDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("find dashboards in %s: %v (found %d)", dashboardDir, err, len(files))
	}
	var out []dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("parse %s: %v", f, err)
		}
		d.file = filepath.Base(f)
		out = append(out, d)
	}
	return out
}

// queries lists every query of d: the targets of every panel (rows' nested panels too) and
// every query variable. A target without its own data source uses its panel's.
func (d dashboard) queries(t *testing.T) []query {
	t.Helper()
	var out []query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", d.file, p.Title)
			}
			for _, tg := range p.Targets {
				ds := tg.Datasource
				if ds == nil {
					ds = p.Datasource
				}
				if ds == nil {
					t.Errorf("%s: panel %q target %s has no data source", d.file, p.Title, tg.RefID)
					continue
				}
				out = append(out, query{where: fmt.Sprintf("%s: panel %q (%s)", d.file, p.Title, tg.RefID),
					dsType: ds.Type, sql: tg.RawSQL, format: tg.Format, expr: tg.Expr})
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q := query{where: fmt.Sprintf("%s: variable %s", d.file, v.Name), dsType: v.Datasource.Type, format: "table"}
		if q.sql = v.querySQL(); q.dsType == prometheusType {
			q.expr, q.sql = q.sql, ""
		}
		out = append(out, q)
	}
	return out
}

// querySQL returns a variable's query, stored as a string or as {"rawSql": …}.
func (v variable) querySQL() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		RawSQL string `json:"rawSql"`
		Query  string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &o)
	if o.RawSQL != "" {
		return o.RawSQL
	}
	return o.Query
}

// TestDashboardsAreWellFormed checks what Grafana needs to load the dashboards: unique
// uids, known data sources (by the uids provisioned in deploy/), and a query in every target.
func TestDashboardsAreWellFormed(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(datasourcesFile)
	if err != nil {
		t.Fatalf("read %s: %v", datasourcesFile, err)
	}
	var prov struct {
		Datasources []struct{ UID, Type string } `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(b, &prov); err != nil {
		t.Fatalf("parse %s: %v", datasourcesFile, err)
	}
	provisioned := map[datasourceRef]bool{}
	for _, ds := range prov.Datasources {
		provisioned[datasourceRef{Type: ds.Type, UID: ds.UID}] = true
	}
	uids := map[string]string{}
	for _, d := range loadDashboards(t) {
		if d.UID == "" || uids[d.UID] != "" {
			t.Errorf("%s: uid %q is empty or also used by %s", d.file, d.UID, uids[d.UID])
		}
		uids[d.UID] = d.file
		var check func([]panel)
		check = func(ps []panel) {
			for _, p := range ps {
				check(p.Panels)
				refs := []*datasourceRef{p.Datasource}
				for _, tg := range p.Targets {
					refs = append(refs, tg.Datasource)
				}
				for _, r := range refs {
					if r != nil && !provisioned[*r] {
						t.Errorf("%s: panel %q uses data source %+v, which deploy/ does not provision", d.file, p.Title, *r)
					}
				}
			}
		}
		check(d.Panels)
		for _, q := range d.queries(t) {
			switch {
			case q.dsType == postgresType && strings.TrimSpace(q.sql) == "":
				t.Errorf("%s has no rawSql", q.where)
			case q.dsType == prometheusType && strings.TrimSpace(q.expr) == "":
				t.Errorf("%s has no expr", q.where)
			case q.dsType != postgresType && q.dsType != prometheusType:
				t.Errorf("%s: unexpected data source type %q", q.where, q.dsType)
			}
		}
	}
}

// timeRange is the dashboard time picker's range.
type timeRange struct{ from, to time.Time }

// macroCall finds the Grafana SQL macros the dashboards use; expand implements exactly these.
var (
	macroCall   = regexp.MustCompile(`\$__(timeFilter|timeFrom|timeTo|timeGroupAlias)\(`)
	variableRef = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)
)

// expand renders sql as Grafana's PostgreSQL data source would for range r and the selected
// values of each variable. It fails the test on any macro or variable it does not know, so
// a dashboard cannot use one this test does not exercise.
//
// Variables follow Grafana's SQL formatting: a multi-value or include-all variable becomes a
// comma-separated list of single-quoted literals (for IN (…)); any other variable is
// substituted raw, with single quotes doubled, so the query writes the quotes itself.
func expand(t *testing.T, where, sql string, r timeRange, vars map[string]variable, values map[string][]string) string {
	t.Helper()
	lit := func(tm time.Time) string { return "'" + tm.UTC().Format(time.RFC3339) + "'" }
	var b strings.Builder
	for {
		loc := macroCall.FindStringSubmatchIndex(sql)
		if loc == nil {
			b.WriteString(sql)
			break
		}
		b.WriteString(sql[:loc[0]])
		name := sql[loc[2]:loc[3]]
		args, rest, ok := splitArgs(sql[loc[1]:])
		if !ok {
			t.Fatalf("%s: unbalanced parentheses after $__%s", where, name)
		}
		switch {
		case name == "timeFilter" && len(args) == 1:
			fmt.Fprintf(&b, "%s BETWEEN %s AND %s", args[0], lit(r.from), lit(r.to))
		case name == "timeFrom" && len(args) == 0:
			b.WriteString(lit(r.from))
		case name == "timeTo" && len(args) == 0:
			b.WriteString(lit(r.to))
		case name == "timeGroupAlias" && len(args) >= 2:
			secs, err := intervalSeconds(strings.Trim(args[1], `'" `))
			if err != nil {
				t.Fatalf("%s: $__timeGroupAlias interval: %v", where, err)
			}
			fmt.Fprintf(&b, `floor(extract(epoch from %s)/%d)*%d AS "time"`, args[0], secs, secs)
		default:
			t.Fatalf("%s: $__%s with %d arguments is not supported by this test's expander", where, name, len(args))
		}
		sql = rest
	}
	out := variableRef.ReplaceAllStringFunc(b.String(), func(ref string) string {
		m := variableRef.FindStringSubmatch(ref)
		name := m[1] + m[2]
		v, ok := vars[name]
		if !ok {
			t.Fatalf("%s: unknown macro or variable %s", where, ref)
		}
		sel := values[name]
		if !v.Multi && !v.IncludeAll {
			if len(sel) != 1 {
				t.Fatalf("%s: single-value variable %s given %d values", where, name, len(sel))
			}
			return strings.ReplaceAll(sel[0], "'", "''")
		}
		quoted := make([]string, len(sel))
		for i, s := range sel {
			quoted[i] = "'" + strings.ReplaceAll(s, "'", "''") + "'"
		}
		return strings.Join(quoted, ",")
	})
	return out
}

// splitArgs splits "a, f(b, c)) rest" into the top-level arguments before the closing
// parenthesis and the rest after it.
func splitArgs(s string) (args []string, rest string, ok bool) {
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ',':
			if depth == 0 {
				args = append(args, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		case ')':
			if depth == 0 {
				if last := strings.TrimSpace(s[start:i]); last != "" || len(args) > 0 {
					args = append(args, last)
				}
				return args, s[i+1:], true
			}
			depth--
		}
	}
	return nil, "", false
}

// intervalSeconds parses Grafana's interval literals: 30s, 5m, 1h, 1d, 1w.
func intervalSeconds(s string) (int, error) {
	units := map[byte]int{'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 7 * 86400}
	if len(s) < 2 || units[s[len(s)-1]] == 0 {
		return 0, fmt.Errorf("%q is not a literal interval such as 1d", s)
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a literal interval such as 1d", s)
	}
	return n * units[s[len(s)-1]], nil
}

func TestExpand(t *testing.T) {
	t.Parallel()
	r := timeRange{from: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), to: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)}
	vars := map[string]variable{"webinar": {Name: "webinar", Multi: true}, "one": {Name: "one"}}
	tests := []struct {
		name, sql string
		values    map[string][]string
		want      string
	}{
		{"time filter on an expression", "WHERE $__timeFilter(coalesce(a, b)) AND x",
			nil, "WHERE coalesce(a, b) BETWEEN '2026-01-02T03:04:05Z' AND '2026-02-01T00:00:00Z' AND x"},
		{"from and to", "$__timeFrom() < $__timeTo()", nil, "'2026-01-02T03:04:05Z' < '2026-02-01T00:00:00Z'"},
		{"time group alias", "SELECT $__timeGroupAlias(day, '1d'), n", nil, `SELECT floor(extract(epoch from day)/86400)*86400 AS "time", n`},
		{"multi value, several", "k IN ($webinar)", map[string][]string{"webinar": {"1", "2"}}, "k IN ('1','2')"},
		{"multi value, braces, one", "k IN (${webinar})", map[string][]string{"webinar": {"1"}}, "k IN ('1')"},
		{"multi value escapes quotes", "k IN ($webinar)", map[string][]string{"webinar": {"O'Brien"}}, "k IN ('O''Brien')"},
		{"single value is raw", "k = '$one'", map[string][]string{"one": {"it's"}}, "k = 'it''s'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := expand(t, tt.name, tt.sql, r, vars, tt.values); got != tt.want {
				t.Errorf("expand(%q) =\n%s\nwant\n%s", tt.sql, got, tt.want)
			}
		})
	}
}
