package projections

import (
	"context"
	"fmt"
	"math/rand"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/pgtest"
)

// TestAnyOrderSameTables is the order-independence property: the same events delivered in
// any order (webinar.changed keeping its relative order), in any batching, with
// redeliveries, give the same tables and views as in-order live application.
func TestAnyOrderSameTables(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	events := newGenerator(42).stream(15, 12)
	create(t, pool, "in_order")
	applyEach(t, pool, "in_order", events)
	want := dumpPublic(t, pool, "in_order")
	checkCounters(t, pool, "in_order", events)
	for seed := int64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			schema := fmt.Sprint("shuffled_", seed)
			create(t, pool, schema)
			order := shuffled(events, seed)
			r := rand.New(rand.NewSource(seed))
			// Random batches, and about a tenth of the events delivered a second time later.
			inTx(t, pool, func(tx pgx.Tx) error {
				var redeliver []Event
				for i := 0; i < len(order); {
					n := 1 + r.Intn(40)
					batch := order[i:min(i+n, len(order))]
					i += n
					if err := Apply(context.Background(), tx, schema, batch...); err != nil {
						return err
					}
					for _, e := range batch {
						if r.Intn(10) == 0 {
							redeliver = append(redeliver, e)
						}
					}
				}
				return Apply(context.Background(), tx, schema, redeliver...)
			})
			got := dumpPublic(t, pool, schema)
			compareDumps(t, want, got)
			checkCounters(t, pool, schema, order)
		})
	}
}

func compareDumps(t *testing.T, want, got map[string][]string) {
	t.Helper()
	for table, rows := range want {
		if !reflect.DeepEqual(rows, got[table]) {
			for i := range max(len(rows), len(got[table])) {
				var w, g string
				if i < len(rows) {
					w = rows[i]
				}
				if i < len(got[table]) {
					g = got[table][i]
				}
				if w != g {
					t.Errorf("%s: %d rows, want %d; first difference at row %d:\n got %s\nwant %s", table, len(got[table]), len(rows), i, g, w)
					break
				}
			}
		}
	}
	if len(want) != len(got) {
		t.Errorf("dumped %d relations, want %d", len(got), len(want))
	}
}

// checkCounters catches counter drift: the maintained per-webinar counters must equal a
// from-scratch count over the rows, and the counts computed in Go from the raw events.
func checkCounters(t *testing.T, pool *pgxpool.Pool, schema string, events []Event) {
	t.Helper()
	ctx := context.Background()
	s := pgx.Identifier{schema}.Sanitize()
	var drift int
	err := pool.QueryRow(ctx, `
		SELECT count(*) FROM `+s+`.webinars w
		LEFT JOIN (SELECT webinar_key, count(DISTINCT registrant_key) AS n FROM `+s+`.registrants GROUP BY 1) r USING (webinar_key)
		LEFT JOIN (SELECT webinar_key, count(DISTINCT registrant_key) AS n FROM `+s+`.joins GROUP BY 1) j USING (webinar_key)
		WHERE w.registrant_count <> coalesce(r.n, 0) OR w.attendee_count <> coalesce(j.n, 0)`).Scan(&drift)
	if err != nil {
		t.Fatal(err)
	}
	if drift != 0 {
		t.Errorf("%s: %d webinars whose counters differ from COUNT(DISTINCT)", schema, drift)
	}
	// The same from the events, parsed independently of the SQL.
	registrants, attendees := map[string]int{}, map[string]int{}
	seen, joined := map[[2]string]bool{}, map[[2]string]bool{}
	for _, e := range events {
		p := parseKeys(t, e.Payload)
		k := [2]string{p.webinar, p.registrant}
		switch p.name {
		case nameAdded, nameJoined:
			if !seen[k] {
				seen[k] = true
				registrants[p.webinar]++
			}
			if p.name == nameJoined && !joined[k] {
				joined[k] = true
				attendees[p.webinar]++
			}
		}
	}
	rows, err := pool.Query(ctx, "SELECT webinar_key, registrants, attendees FROM "+s+".webinar_conversion")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]int{}
	var w string
	var r, a int
	_, err = pgx.ForEachRow(rows, []any{&w, &r, &a}, func() error { got[w] = [2]int{r, a}; return nil })
	if err != nil {
		t.Fatal(err)
	}
	for w, n := range registrants {
		if got[w] != [2]int{n, attendees[w]} {
			t.Errorf("%s: webinar %s: registrants, attendees = %v, want %v", schema, w, got[w], [2]int{n, attendees[w]})
		}
	}
	if len(registrants) == 0 {
		t.Error("the generated stream has no registrants")
	}
}
