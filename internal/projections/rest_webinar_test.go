package projections

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
)

// restWebinarKey is the webinar of the webinar snapshot tests.
const restWebinarKey = "9100000000000000101"

// webinarSnapshot is reconcile's turnout.webinar.snapshot of webinar key (decimal text in the
// header, as internal/reconcile writes it) with the REST item as fetched.
func webinarSnapshot(eventKey, key, item string) string {
	return fmt.Sprintf(`{"eventName":"turnout.webinar.snapshot","eventKey":%q,"eventVersion":"1.0.0","source":"rest","organizerKey":"8100000000000000001",`+
		`"webinarKey":%q,"fetchedAt":"2026-12-01T00:00:00Z","snapshot":%s}`, eventKey, key, item)
}

// webinarRow is what the webinar snapshot tests read of a webinar: its public columns, its
// title in webinar_conversion and its schedule, as text ("" for NULL).
type webinarRow struct {
	title, description, organizer, timeZone, experience, recurrenceKey, status string
	conversionTitle, times                                                     string
}

func readWebinar(t *testing.T, pool *pgxpool.Pool, schema, key string) webinarRow {
	t.Helper()
	s := pgx.Identifier{schema}.Sanitize()
	var w webinarRow
	err := pool.QueryRow(context.Background(), `
		SELECT coalesce(w.title, ''), coalesce(w.description, ''), coalesce(w.organizer_key, ''),
		       coalesce(w.time_zone, ''), coalesce(w.experience_type, ''), coalesce(w.recurrence_key, ''),
		       coalesce(w.status, ''), coalesce(c.webinar_title, ''),
		       coalesce((SELECT string_agg(coalesce(to_char(t.start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), 'NULL'), ',' ORDER BY t.start_time)
		                 FROM `+s+`.webinar_times t WHERE t.webinar_key = w.webinar_key), '')
		FROM `+s+`.webinars w
		JOIN `+s+`.webinar_conversion c USING (webinar_key)
		WHERE w.webinar_key = $1`, key).Scan(&w.title, &w.description, &w.organizer, &w.timeZone,
		&w.experience, &w.recurrenceKey, &w.status, &w.conversionTitle, &w.times)
	if err != nil {
		t.Fatalf("%s: read webinar %s: %v", schema, key, err)
	}
	return w
}

// TestRESTWebinarOnly: a webinar whose webinar.created was missed gets its title, organizer,
// description, time zone, experience type, recurrence key and schedule from reconcile's
// snapshot, in analytics.webinars and webinar_conversion, through the live projector (one
// event per Apply, or a batch) and through a rebuild (ApplyLog). The snapshot's subject beats
// the registrant events' webinarTitle (the stub layer); status stays NULL (a webhook fact).
func TestRESTWebinarOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.Pool(t)
	events := []Event{
		ev(1, `{"eventName":"registrant.added","eventKey":"a1","eventVersion":"1.0.0","product":"g2w","webinarKey":9100000000000000101,"registrantKey":5100000000000000001,"email":"a@example.com","webinarTitle":"Stub title","experienceType":"BROADCAST","timestamp":"2026-11-01T10:00:00.000Z"}`),
		// Keys as GoTo's REST API sends them: an integer, a string.
		ev(2, webinarSnapshot("w1", restWebinarKey, `{"webinarKey":9100000000000000101,"subject":"REST title","description":"From REST","organizerKey":8100000000000000002,`+
			`"times":[{"startTime":"2026-11-09T15:00:00Z","endTime":"2026-11-09T16:00:00Z"}],"timeZone":"Europe/Paris","experienceType":"CLASSIC","recurrenceKey":"7100000000000000003"}`)),
	}
	stored, pos := appendLog(t, pool, events, 1)
	want := webinarRow{
		title: "REST title", description: "From REST", organizer: "8100000000000000002", timeZone: "Europe/Paris",
		experience: "CLASSIC", recurrenceKey: "7100000000000000003", status: "",
		conversionTitle: "REST title", times: "2026-11-09 15:00",
	}
	for _, tc := range []struct {
		name  string
		apply func(tx pgx.Tx, schema string) error
	}{
		{"live_each", func(tx pgx.Tx, schema string) error {
			for _, e := range stored {
				if err := Apply(ctx, tx, schema, e); err != nil {
					return err
				}
			}
			return nil
		}},
		{"live_batch", func(tx pgx.Tx, schema string) error { return Apply(ctx, tx, schema, stored...) }},
		{"rebuild", func(tx pgx.Tx, schema string) error {
			_, err := ApplyLog(ctx, tx, schema, eventlog.Position{}, pos[len(pos)-1])
			return err
		}},
	} {
		create(t, pool, tc.name)
		inTx(t, pool, func(tx pgx.Tx) error { return tc.apply(tx, tc.name) })
		if got := readWebinar(t, pool, tc.name, restWebinarKey); got != want {
			t.Errorf("%s: webinar = %+v\nwant %+v", tc.name, got, want)
		}
	}
	compareDumps(t, dumpAll(t, pool, "live_each"), dumpAll(t, pool, "rebuild"))
}

// TestRESTWebinarWebhooksWin: a webinar webhook's values win over a snapshot's whatever the
// arrival order; REST fills in only what the webhooks left out (here a webinar.changed
// without description, time zone or times).
func TestRESTWebinarWebhooksWin(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	const (
		created = `{"eventName":"webinar.created","eventKey":"c1","webinarKey":9100000000000000101,"webinarTitle":"Hook title","description":"From the hook","organizerKey":42,"recurrenceKey":44,` +
			`"experienceType":"BROADCAST","timeZone":"Europe/Berlin","status":"NEW","times":[{"startTime":"2026-11-10T09:00:00Z","endTime":"2026-11-10T10:00:00Z"}]}`
		changed = `{"eventName":"webinar.changed","eventKey":"ch1","webinarKey":9100000000000000101,"webinarTitle":"Changed title","organizerKey":43,"status":"UPDATED"}`
	)
	snap := webinarSnapshot("w1", restWebinarKey, `{"webinarKey":9100000000000000101,"subject":"REST title","description":"From REST","organizerKey":8100000000000000002,`+
		`"times":[{"startTime":"2026-11-09T15:00:00Z","endTime":"2026-11-09T16:00:00Z"}],"timeZone":"Europe/Paris","experienceType":"CLASSIC","recurrenceKey":7100000000000000003}`)
	for i, tc := range []struct {
		name string
		hook string
		want webinarRow
	}{
		{"created", created, webinarRow{
			title: "Hook title", description: "From the hook", organizer: "42", timeZone: "Europe/Berlin", experience: "BROADCAST",
			recurrenceKey: "44", status: "NEW", conversionTitle: "Hook title", times: "2026-11-10 09:00",
		}},
		{"changed", changed, webinarRow{
			title: "Changed title", description: "From REST", organizer: "43", timeZone: "Europe/Paris", experience: "CLASSIC",
			recurrenceKey: "7100000000000000003", status: "UPDATED", conversionTitle: "Changed title", times: "2026-11-09 15:00",
		}},
	} {
		for _, hookFirst := range []bool{true, false} {
			order := []string{tc.hook, snap}
			if !hookFirst {
				slices.Reverse(order)
			}
			schema := fmt.Sprintf("%s_%d_hook_first_%t", tc.name, i, hookFirst)
			create(t, pool, schema)
			applyEach(t, pool, schema, []Event{ev(1, order[0]), ev(2, order[1])})
			if got := readWebinar(t, pool, schema, restWebinarKey); got != tc.want {
				t.Errorf("%s: webinar = %+v\nwant %+v", schema, got, tc.want)
			}
		}
	}
}

// TestRESTWebinarLaterSnapshotWins: the snapshot later in the log replaces the earlier one
// whole (reconcile appends one only when the item changed), in any order and batching: a
// field the later fetch no longer has is gone, not kept from the earlier one.
func TestRESTWebinarLaterSnapshotWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.Pool(t)
	earlier := ev(1, webinarSnapshot("w1", restWebinarKey, `{"webinarKey":9100000000000000101,"subject":"Old title","description":"Old","organizerKey":8100000000000000002,`+
		`"times":[{"startTime":"2026-11-09T15:00:00Z","endTime":"2026-11-09T16:00:00Z"}],"timeZone":"Europe/Paris"}`))
	later := ev(2, webinarSnapshot("w2", restWebinarKey, `{"webinarKey":"9100000000000000101","subject":"New title","organizerKey":"8100000000000000002",`+
		`"times":[{"startTime":"2026-11-16T15:00:00Z","endTime":"2026-11-16T16:00:00Z"},{"startTime":"2026-11-23T15:00:00Z","endTime":"2026-11-23T16:00:00Z"}],"timeZone":"Europe/Paris"}`))
	want := webinarRow{title: "New title", organizer: "8100000000000000002", timeZone: "Europe/Paris",
		conversionTitle: "New title", times: "2026-11-16 15:00,2026-11-23 15:00"}
	for _, tc := range []struct {
		name  string
		apply func(tx pgx.Tx, schema string) error
	}{
		{"in_order", func(tx pgx.Tx, s string) error { return applyAll(ctx, tx, s, earlier, later) }},
		{"reversed", func(tx pgx.Tx, s string) error { return applyAll(ctx, tx, s, later, earlier) }},
		{"one_batch", func(tx pgx.Tx, s string) error { return Apply(ctx, tx, s, later, earlier) }},
		{"twice", func(tx pgx.Tx, s string) error { return applyAll(ctx, tx, s, earlier, later, earlier, later) }},
	} {
		create(t, pool, tc.name)
		inTx(t, pool, func(tx pgx.Tx) error { return tc.apply(tx, tc.name) })
		if got := readWebinar(t, pool, tc.name, restWebinarKey); got != want {
			t.Errorf("%s: webinar = %+v\nwant %+v", tc.name, got, want)
		}
	}
}

// applyAll applies events one Apply call each.
func applyAll(ctx context.Context, tx pgx.Tx, schema string, events ...Event) error {
	for _, e := range events {
		if err := Apply(ctx, tx, schema, e); err != nil {
			return err
		}
	}
	return nil
}

// TestRESTWebinarOddValues: a snapshot field PostgreSQL cannot take, or of the wrong JSON
// type, is NULL (keys: decimal text without leading zeros, or NULL); the event still applies
// (issue 10), live and in a rebuild.
func TestRESTWebinarOddValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.Pool(t)
	cases := []struct {
		name, item string
		want       webinarRow
	}{
		{"organizer_not_numeric", `{"subject":"A","organizerKey":"abc"}`, webinarRow{title: "A", conversionTitle: "A"}},
		{"organizer_empty", `{"subject":"A","organizerKey":""}`, webinarRow{title: "A", conversionTitle: "A"}},
		{"organizer_fraction", `{"subject":"A","organizerKey":1.5}`, webinarRow{title: "A", conversionTitle: "A"}},
		{"organizer_20_digits", `{"subject":"A","organizerKey":12345678901234567890}`, webinarRow{title: "A", conversionTitle: "A"}},
		{"organizer_leading_zeros", `{"subject":"A","organizerKey":"0000000000000000042","recurrenceKey":"000"}`,
			webinarRow{title: "A", conversionTitle: "A", organizer: "42", recurrenceKey: "0"}},
		{"subject_number", `{"subject":42,"description":7,"timeZone":["x"],"experienceType":{"a":1}}`, webinarRow{}},
		{"subject_null", `{"subject":null,"organizerKey":8100000000000000002}`, webinarRow{organizer: "8100000000000000002"}},
		{"times_not_array", `{"subject":"A","times":"soon"}`, webinarRow{title: "A", conversionTitle: "A"}},
		{"times_not_times", `{"subject":"A","times":[{"startTime":"never"},{"startTime":"2026-13-45T99:00:00Z"}]}`,
			// One row: webinar_times_insert.sql keeps distinct rows, as for webhooks.
			webinarRow{title: "A", conversionTitle: "A", times: "NULL"}},
		{"item_not_object", `"oops"`, webinarRow{}},
		{"item_array", `[1,2]`, webinarRow{}},
	}
	var events []Event
	for i, c := range cases {
		events = append(events, ev(int64(i+1), webinarSnapshot(c.name, fmt.Sprint(9200000000000000000+i), c.item)))
	}
	stored, pos := appendLog(t, pool, events, 3)
	create(t, pool, "live")
	applyEach(t, pool, "live", stored)
	create(t, pool, "rebuild")
	inTx(t, pool, func(tx pgx.Tx) error {
		_, err := ApplyLog(ctx, tx, "rebuild", eventlog.Position{}, pos[len(pos)-1])
		return err
	})
	for _, schema := range []string{"live", "rebuild"} {
		for i, c := range cases {
			if got := readWebinar(t, pool, schema, fmt.Sprint(9200000000000000000+i)); got != c.want {
				t.Errorf("%s: %s: webinar = %+v\nwant %+v", schema, c.name, got, c.want)
			}
		}
		var parked int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+schema+"._parked").Scan(&parked); err != nil || parked != 0 {
			t.Errorf("%s: %d parked (%v), want none", schema, parked, err)
		}
	}
	if d := dumpAll(t, pool, "live"); !strings.Contains(strings.Join(d["webinars"], "\n"), "oops") {
		t.Errorf("the rest layer does not keep the item as fetched: %v", d["webinars"])
	}
}
