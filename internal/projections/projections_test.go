package projections

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/projections/projectionstest"
)

// inTx runs f in a transaction of pool and commits it.
func inTx(t testing.TB, pool *pgxpool.Pool, f func(tx pgx.Tx) error) {
	t.Helper()
	if err := pgx.BeginFunc(context.Background(), pool, f); err != nil {
		t.Fatal(err)
	}
}

func create(t testing.TB, pool *pgxpool.Pool, schema string) {
	t.Helper()
	inTx(t, pool, func(tx pgx.Tx) error { return Create(context.Background(), tx, schema) })
}

// applyEach applies events one Apply call at a time in one transaction, as the live
// projector does.
func applyEach(t *testing.T, pool *pgxpool.Pool, schema string, events []Event) {
	t.Helper()
	inTx(t, pool, func(tx pgx.Tx) error {
		for _, e := range events {
			if err := Apply(context.Background(), tx, schema, e); err != nil {
				return err
			}
		}
		return nil
	})
}

func dumpPublic(t *testing.T, pool *pgxpool.Pool, schema string) map[string][]string {
	t.Helper()
	d, err := projectionstest.DumpPublic(context.Background(), pool, schema)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func dumpAll(t *testing.T, pool *pgxpool.Pool, schema string) map[string][]string {
	t.Helper()
	d, err := projectionstest.Dump(context.Background(), pool, schema)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestCreateAndStoredVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.Pool(t)
	if _, ok, err := StoredVersion(ctx, pool, "analytics"); err != nil || ok {
		t.Fatalf("StoredVersion before Create = ok %v, err %v; want ok false", ok, err)
	}
	create(t, pool, "analytics")
	v, ok, err := StoredVersion(ctx, pool, "analytics")
	if err != nil || !ok || v != Version {
		t.Fatalf("StoredVersion = %q, %v, %v; want %q, true, nil", v, ok, err, Version)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return Create(ctx, tx, "analytics") })
	if err == nil {
		t.Fatal("Create on an existing schema succeeded")
	}
	if _, err := pool.Exec(ctx, "CREATE SCHEMA foreign_schema"); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := StoredVersion(ctx, pool, "foreign_schema"); err != nil || !ok || v != "" {
		t.Fatalf("StoredVersion of a schema without _meta = %q, %v, %v; want \"\", true, nil", v, ok, err)
	}
	// A shadow schema renamed into place keeps working views: they name their own schema's
	// tables, and a rename carries them along.
	create(t, pool, "analytics_rebuild")
	applyEach(t, pool, "analytics_rebuild", newGenerator(1).stream(2, 3))
	if _, err := pool.Exec(ctx, "DROP SCHEMA analytics CASCADE; ALTER SCHEMA analytics_rebuild RENAME TO analytics"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT sum(registrants) FROM analytics.webinar_conversion").Scan(&n); err != nil || n == 0 {
		t.Fatalf("renamed schema: registrants = %d, %v", n, err)
	}
}

// ev builds a hand-written event for the semantic tests.
func ev(offset int64, payload string) Event {
	return Event{Offset: offset, ReceivedAt: genBase.Add(time.Duration(offset) * time.Hour), Payload: []byte(payload)}
}

const (
	addedOld   = `{"eventName":"registrant.added","eventKey":"a1","webinarKey":1234567890123456789,"registrantKey":"77","email":"old@example.com","firstName":"Old","webinarTitle":"Stub title","experienceType":"CLASSIC","recurrenceType":"series","registrationSource":"email","timestamp":"2026-03-01T10:00:00.000Z"}`
	addedNew   = `{"eventName":"registrant.added","eventKey":"a2","webinarKey":"1234567890123456789","registrantKey":77,"email":"new@example.com","firstName":"Zoë","webinarTitle":"Other stub title","registrationSource":"linkedin","responses":[{"question":"Q","answer":"A"}],"timestamp":"2026-03-01T11:00:00.000Z"}`
	addedNoTS  = `{"eventName":"registrant.added","eventKey":"a3","webinarKey":1234567890123456789,"registrantKey":77,"email":"nots@example.com","firstName":"NoTS"}`
	addedSame  = `{"eventName":"registrant.added","eventKey":"a4","webinarKey":1234567890123456789,"registrantKey":77,"email":"same@example.com","firstName":"Same","timestamp":"2026-03-01T11:00:00.000Z"}`
	joined1    = `{"eventName":"registrant.joined","eventKey":"j1","webinarKey":1234567890123456789,"registrantKey":77,"sessionKey":555,"email":"join@example.com","firstName":"Joiner","lastName":"J","joinTime":1772362800000,"timestamp":"2026-03-01T11:00:05.000Z"}`
	joined2    = `{"eventName":"registrant.joined","eventKey":"j2","webinarKey":1234567890123456789,"registrantKey":77,"sessionKey":555,"email":"join@example.com","joinTime":1772363100000,"timestamp":"2026-03-01T11:05:05.000Z"}`
	created    = `{"eventName":"webinar.created","eventKey":"c1","webinarKey":1234567890123456789,"webinarTitle":"Created title","organizerKey":42,"accountKey":43,"recurrenceKey":44,"experienceType":"BROADCAST","recurrenceType":"single_session","timeZone":"Europe/Berlin","status":"NEW","webinarCreationDate":"2026-02-01T08:00:00Z","times":[{"startTime":"2026-03-01T11:00:00Z","endTime":"2026-03-01T12:00:00Z"}]}`
	changedA   = `{"eventName":"webinar.changed","eventKey":"ch1","webinarKey":1234567890123456789,"webinarTitle":"Changed A","status":"UPDATED","times":[{"startTime":"2026-03-01T10:50:00Z","endTime":"2026-03-01T12:00:00Z"}]}`
	changedB   = `{"eventName":"webinar.changed","eventKey":"ch2","webinarKey":1234567890123456789,"webinarTitle":"Changed B","status":"UPDATED"}`
	changedDel = `{"eventName":"webinar.changed","eventKey":"ch3","webinarKey":1234567890123456789,"webinarTitle":"Changed A","status":"DELETED"}`
)

// TestSemantics checks each projection rule against real PostgreSQL: events are applied in
// the order given (each its own Apply call), then queries are compared with expectations.
func TestSemantics(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	const w = "'1234567890123456789'"
	reg := "SELECT concat_ws('|', email, first_name, registration_source, responses::text, first_join IS NOT NULL) FROM %s.registrants"
	web := "SELECT concat_ws('|', title, status, experience_type, recurrence_type, organizer_key, created_at IS NOT NULL, updated_at IS NOT NULL) FROM %s.webinars"
	conv := "SELECT concat_ws('|', registrants, attendees, coalesce(conversion_rate::text, 'NULL')) FROM %s.webinar_conversion WHERE webinar_key = " + w
	tests := []struct {
		name   string
		events []Event
		want   map[string][]string // query (with %s for the schema) -> rows
	}{
		{"applying an event twice changes nothing", []Event{ev(1, addedOld), ev(1, addedOld), ev(2, joined1), ev(2, joined1)}, map[string][]string{
			reg:                                   {"old@example.com|Old|email|t"},
			conv:                                  {"1|1|1.00000000000000000000"},
			"SELECT count(*)::text FROM %s.joins": {"1"},
		}},
		{"latest timestamp wins when delivered newest first", []Event{ev(2, addedNew), ev(1, addedOld)}, map[string][]string{
			reg: {`new@example.com|Zoë|linkedin|[{"answer": "A", "question": "Q"}]|f`},
		}},
		{"latest timestamp wins over a greater offset", []Event{ev(1, addedNew), ev(2, addedOld)}, map[string][]string{
			reg: {`new@example.com|Zoë|linkedin|[{"answer": "A", "question": "Q"}]|f`},
		}},
		{"a missing timestamp is oldest", []Event{ev(1, addedOld), ev(9, addedNoTS)}, map[string][]string{
			reg: {"old@example.com|Old|email|f"},
		}},
		{"offset breaks timestamp ties", []Event{ev(3, addedSame), ev(2, addedNew)}, map[string][]string{
			reg: {"same@example.com|Same|f"},
		}},
		{"keys as JSON integers and strings are the same key", []Event{ev(1, addedOld), ev(2, addedNew)}, map[string][]string{
			"SELECT webinar_key || '/' || registrant_key FROM %s.registrants": {"1234567890123456789/77"},
		}},
		{"a join before its registration creates the registrant, the registration fills it", []Event{ev(5, joined1), ev(1, addedOld)}, map[string][]string{
			reg:  {"old@example.com|Old|email|t"},
			conv: {"1|1|1.00000000000000000000"},
		}},
		{"a join after its registration does not override it", []Event{ev(1, addedOld), ev(5, joined1)}, map[string][]string{
			reg: {"old@example.com|Old|email|t"},
		}},
		{"a join alone gives email and names", []Event{ev(5, joined1)}, map[string][]string{
			"SELECT concat_ws('|', email, first_name, last_name, registration_source IS NULL) FROM %s.registrants": {"join@example.com|Joiner|J|t"},
			"SELECT registrant_key FROM %s.no_shows": nil,
		}},
		{"rejoins count one attendee", []Event{ev(1, addedOld), ev(3, joined2), ev(2, joined1)}, map[string][]string{
			conv:                                  {"1|1|1.00000000000000000000"},
			"SELECT count(*)::text FROM %s.joins": {"2"},
			"SELECT first_join::text FROM %s.registrants":                                        {"2026-03-01 11:00:00+00"},
			"SELECT concat_ws('|', attendees, first_join, last_join) FROM %s.session_attendance": {"1|2026-03-01 11:00:00+00|2026-03-01 11:05:00+00"},
		}},
		{"registrant events create a stub webinar", []Event{ev(1, addedOld)}, map[string][]string{
			web: {"Stub title|CLASSIC|series|f|f"},
		}},
		{"the stub follows the registrant event with the latest timestamp", []Event{ev(2, addedNew), ev(1, addedOld)}, map[string][]string{
			"SELECT title FROM %s.webinars": {"Other stub title"},
		}},
		{"registrant events never change what a webinar event set", []Event{ev(1, created), ev(2, addedNew)}, map[string][]string{
			web:  {"Created title|NEW|BROADCAST|single_session|42|t|f"},
			conv: {"1|0|0.00000000000000000000"},
		}},
		{"the greatest offset webinar.changed wins", []Event{ev(7, changedB), ev(6, changedA)}, map[string][]string{
			"SELECT concat_ws('|', title, status) FROM %s.webinars": {"Changed B|UPDATED"},
		}},
		{"webinar.created never overrides webinar.changed", []Event{ev(6, changedA), ev(1, created)}, map[string][]string{
			web: {"Changed A|UPDATED|BROADCAST|single_session|42|t|t"},
			"SELECT concat_ws('|', start_time, end_time) FROM %s.webinar_times": {"2026-03-01 10:50:00+00|2026-03-01 12:00:00+00"},
		}},
		{"times fall back to webinar.created when webinar.changed has none", []Event{ev(7, changedB), ev(1, created)}, map[string][]string{
			"SELECT concat_ws('|', start_time, end_time) FROM %s.webinar_times": {"2026-03-01 11:00:00+00|2026-03-01 12:00:00+00"},
		}},
		{"a deleted webinar keeps its rows and counts", []Event{ev(1, created), ev(2, addedOld), ev(3, joined1), ev(4, changedDel)}, map[string][]string{
			"SELECT concat_ws('|', webinar_title, status) FROM %s.webinar_conversion": {"Changed A|DELETED"},
			conv: {"1|1|1.00000000000000000000"},
			"SELECT count(*)::text FROM %s.registrants": {"1"},
		}},
		{"conversion is NULL without registrants", []Event{ev(1, created)}, map[string][]string{
			conv: {"0|0|NULL"},
		}},
		{"time to join is measured from the containing session", []Event{ev(1, created), ev(2, joined2)}, map[string][]string{
			"SELECT concat_ws('|', scheduled_start, minutes_after_start::numeric(10,2)) FROM %s.time_to_join": {"2026-03-01 11:00:00+00|5.00"},
		}},
		{"an early join is measured from the nearest start", []Event{ev(1, created), ev(2, `{"eventName":"registrant.joined","eventKey":"j9","webinarKey":1234567890123456789,"registrantKey":78,"sessionKey":555,"joinTime":1772362620000}`)}, map[string][]string{
			"SELECT concat_ws('|', scheduled_start, minutes_after_start::numeric(10,2)) FROM %s.time_to_join": {"2026-03-01 11:00:00+00|-3.00"},
		}},
		{"no-shows are registrants who never joined", []Event{ev(1, addedOld), ev(2, `{"eventName":"registrant.added","eventKey":"a9","webinarKey":1234567890123456789,"registrantKey":78,"email":"x@example.com","registrationDate":"2026-02-27T10:00:00Z"}`), ev(3, joined1)}, map[string][]string{
			"SELECT concat_ws('|', registrant_key, email) FROM %s.no_shows":                                   {"78|x@example.com"},
			"SELECT concat_ws('|', day, registrations, attendees) FROM %s.registrations_daily":                {"2026-02-27|1|0", "2026-03-01|1|1"},
			"SELECT concat_ws('|', registration_source, registrants, attendees) FROM %s.conversion_by_source": {"1|0", "email|1|1"},
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			schema := fmt.Sprintf("sem_%d", i)
			create(t, pool, schema)
			applyEach(t, pool, schema, tt.events)
			for q, want := range tt.want {
				rows, err := projectionstest.Rows(ctx, pool, fmt.Sprintf(q, pgx.Identifier{schema}.Sanitize()))
				if err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				if !slices.Equal(want, rows) {
					t.Errorf("%s:\n got %q\nwant %q", q, rows, want)
				}
			}
		})
	}
}
