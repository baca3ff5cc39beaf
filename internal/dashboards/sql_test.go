package dashboards

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestSQLPanelsReturnRows runs every SQL panel and variable query of every dashboard, as
// Grafana's data source role turnout_reader, against a scenario built by the real pipeline:
// with the time range covering the scenario and every webinar selected (the dashboard's
// default, All), each must succeed and return rows, and a time_series query must return a
// time column; with each webinar selected alone, each must succeed, and return rows for at
// least one of them.
func TestSQLPanelsReturnRows(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	ctx := t.Context()
	// analytics._parked is empty after a clean run; a parked event makes its panel show a
	// row. Written by the superuser: no role may write there but the projector.
	if _, err := p.admin.Exec(ctx, `INSERT INTO analytics._parked
		(epoch, transaction_id, "offset", event_key, event_name, error, attempts)
		VALUES (1, '1', 1, 'parked-by-test', 'registrant.joined', 'apply event: test', 4)`); err != nil {
		t.Fatalf("park an event: %v", err)
	}
	reader := roleConn(t, p.url, "turnout_reader")
	r := timeRange{from: p.scenario.From.Add(-time.Hour), to: p.scenario.To.Add(time.Hour)}

	for _, d := range loadDashboards(t) {
		vars := map[string]variable{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v
		}
		// Each variable's options, from its own query, as Grafana loads them.
		options := map[string][]string{}
		for _, v := range d.Templating.List {
			if v.Type != "query" || v.Datasource.Type != postgresType {
				t.Fatalf("%s: variable %s: only PostgreSQL query variables are supported by this test", d.file, v.Name)
			}
			where := d.file + ": variable " + v.Name
			rows := runSQL(t, reader, where, expand(t, where, v.querySQL(), r, vars, nil))
			col := slices.Index(rows.columns, "__value")
			if col < 0 {
				t.Fatalf("%s: no __value column (got %v)", where, rows.columns)
			}
			for _, row := range rows.values {
				options[v.Name] = append(options[v.Name], fmt.Sprint(row[col]))
			}
			if len(options[v.Name]) != len(p.scenario.Expected) {
				t.Errorf("%s: %d options, want every scenario webinar (%d)", where, len(options[v.Name]), len(p.scenario.Expected))
			}
		}
		// Selections: everything (All), then each option alone.
		selections := []map[string][]string{options}
		for name, opts := range options {
			for _, o := range opts {
				selections = append(selections, map[string][]string{name: {o}})
			}
		}
		for _, q := range d.queries(t) {
			if q.dsType != postgresType || strings.HasPrefix(q.where, d.file+": variable") {
				continue
			}
			anyRows := false
			for i, sel := range selections {
				rows := runSQL(t, reader, q.where, expand(t, q.where, q.sql, r, vars, fill(sel, options)))
				if i == 0 && len(rows.values) == 0 {
					t.Errorf("%s: no rows with every webinar selected", q.where)
				}
				if q.format == "time_series" && !slices.Contains(rows.columns, "time") {
					t.Errorf("%s: time_series query has no time column (got %v)", q.where, rows.columns)
				}
				anyRows = anyRows || (i > 0 && len(rows.values) > 0)
			}
			if len(selections) > 1 && !anyRows {
				t.Errorf("%s: no rows for any single webinar", q.where)
			}
		}
	}
}

// fill completes a selection with every option of the variables it does not set.
func fill(sel, options map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k, v := range options {
		out[k] = v
	}
	for k, v := range sel {
		out[k] = v
	}
	return out
}

type result struct {
	columns []string
	values  [][]any
}

// runSQL runs one expanded query, failing the test with the query on error.
func runSQL(t *testing.T, conn *pgx.Conn, where, sql string) result {
	t.Helper()
	rows, err := conn.Query(t.Context(), sql)
	if err != nil {
		t.Fatalf("%s: %v\n%s", where, err, sql)
	}
	var res result
	for _, f := range rows.FieldDescriptions() {
		res.columns = append(res.columns, f.Name)
	}
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			t.Fatalf("%s: read row: %v", where, err)
		}
		res.values = append(res.values, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v\n%s", where, err, sql)
	}
	return res
}
