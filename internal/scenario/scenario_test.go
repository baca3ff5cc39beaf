package scenario_test

import (
	"bytes"
	"context"
	"math"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/domain"
	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/projections"
	"github.com/turnout-analytics/turnout/internal/scenario"
)

func TestGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	a, b, c := scenario.Generate(1), scenario.Generate(1), scenario.Generate(2)
	if len(a.Events) != len(b.Events) {
		t.Fatalf("same seed, %d and %d events", len(a.Events), len(b.Events))
	}
	for i := range a.Events {
		if !bytes.Equal(a.Events[i], b.Events[i]) {
			t.Fatalf("same seed, event %d differs:\n%s\n%s", i, a.Events[i], b.Events[i])
		}
	}
	if len(a.Events) == len(c.Events) && bytes.Equal(bytes.Join(a.Events, nil), bytes.Join(c.Events, nil)) {
		t.Error("seeds 1 and 2 generated the same stream")
	}
}

// bareKey matches a key field holding a bare 19-digit JSON integer, as live GoTo sends.
var bareKey = regexp.MustCompile(`"(webinarKey|registrantKey|sessionKey|recurrenceKey|organizerKey|accountKey|webinarCreatorKey)":\d{19}[,}]`)

// TestEventsAreValidAndCoverTheShape parses every body with the domain package (the same
// validation ingest applies) and checks that the stream contains every case the package
// comment promises, for several seeds.
func TestEventsAreValidAndCoverTheShape(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2, 3, 42} {
		sc := scenario.Generate(seed)
		var (
			recurrence          = map[string]bool{}
			series              = map[domain.Key]int{}
			deleted, moved      bool
			rejoin, joinedFirst bool
			noSource, waiting   bool
			added               = map[[2]domain.Key]bool{}
			joined              = map[[2]domain.Key]int{}
			sessions            = map[[2]domain.Key]map[domain.Key]bool{}
			eventKeys           = map[string]bool{}
		)
		for i, body := range sc.Events {
			if !bareKey.Match(body) {
				t.Fatalf("seed %d event %d has no bare 19-digit key: %s", seed, i, body)
			}
			ev, err := domain.Parse(body)
			if err != nil {
				t.Fatalf("seed %d event %d does not parse: %v\n%s", seed, i, err, body)
			}
			env := ev.Envelope()
			if eventKeys[env.EventKey] {
				t.Fatalf("seed %d: eventKey %s repeated", seed, env.EventKey)
			}
			eventKeys[env.EventKey] = true
			if env.Timestamp == nil || env.Timestamp.Before(sc.From) || env.Timestamp.After(sc.To) {
				t.Errorf("seed %d event %d: timestamp %v outside [%v, %v]", seed, i, env.Timestamp, sc.From, sc.To)
			}
			switch e := ev.(type) {
			case *domain.WebinarCreated:
				recurrence[e.RecurrenceType] = true
				if e.RecurrenceKey != "" {
					series[e.RecurrenceKey]++
				}
			case *domain.WebinarChanged:
				deleted = deleted || e.Status == "DELETED"
				moved = moved || (e.Status == "UPDATED" && len(e.Times) > 0)
			case *domain.RegistrantAdded:
				k := [2]domain.Key{e.WebinarKey, e.RegistrantKey}
				added[k] = true
				joinedFirst = joinedFirst || joined[k] > 0
				noSource = noSource || e.RegistrationSource == ""
				waiting = waiting || e.Status == "WAITING"
			case *domain.RegistrantJoined:
				k := [2]domain.Key{e.WebinarKey, e.RegistrantKey}
				joined[k]++
				if sessions[k] == nil {
					sessions[k] = map[domain.Key]bool{}
				}
				sessions[k][e.SessionKey] = true
			}
		}
		walkIn, multiSession := false, false
		for k, n := range joined {
			rejoin = rejoin || n > len(sessions[k])
			walkIn = walkIn || !added[k]
			multiSession = multiSession || len(sessions[k]) > 1
		}
		sharedSeries := false
		for _, n := range series {
			sharedSeries = sharedSeries || n > 1
		}
		for name, ok := range map[string]bool{
			"single_session": recurrence["single_session"], "series": recurrence["series"], "sequence": recurrence["sequence"],
			"a series sharing a recurrenceKey": sharedSeries, "a rescheduled webinar": moved, "a deleted webinar": deleted,
			"a rejoin": rejoin, "a join before its registration": joinedFirst, "a walk-in": walkIn,
			"an attendee of two sequence sessions": multiSession, "a registration without source": noSource,
			"a WAITING registration": waiting,
		} {
			if !ok {
				t.Errorf("seed %d: the stream has no %s", seed, name)
			}
		}
	}
}

// TestExpectedMatchesProjections runs the stream through the real projection code and
// compares analytics.webinar_conversion with the figures the generator promises.
func TestExpectedMatchesProjections(t *testing.T) {
	t.Parallel()
	sc := scenario.Generate(7)
	assertProjected(t, sc, conversion(t, sc))
}

// assertProjected compares analytics' figures with the scenario's.
func assertProjected(t *testing.T, sc scenario.Scenario, got map[string]scenario.Figures) {
	t.Helper()
	if len(got) != len(sc.Expected) {
		t.Errorf("analytics has %d webinars, want %d", len(got), len(sc.Expected))
	}
	for _, k := range sc.WebinarKeys() {
		if got[k] != sc.Expected[k] {
			t.Errorf("webinar %s: analytics says %+v, scenario expects %+v", k, got[k], sc.Expected[k])
		}
	}
}

// conversion appends sc's events to a fresh event log in one transaction, runs the real
// projections over it, and returns analytics.webinar_conversion per webinar key.
func conversion(t *testing.T, sc scenario.Scenario) map[string]scenario.Figures {
	t.Helper()
	pool, _ := pgtest.Pool(t)
	ctx := t.Context()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // test cleanup
	payloads := make([]string, len(sc.Events))
	for i, b := range sc.Events {
		payloads[i] = string(b)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO `+eventlog.Table+` (uuid, payload, metadata, transaction_id)
		SELECT gen_random_uuid()::text, p::json, '{"signature_verified":"true"}', pg_current_xact_id()
		FROM unnest($1::text[]) WITH ORDINALITY AS u(p, n) ORDER BY n`, payloads); err != nil {
		t.Fatalf("insert events: %v", err)
	}
	if err := projections.Create(ctx, tx, "analytics"); err != nil {
		t.Fatalf("create analytics: %v", err)
	}
	all := eventlog.Position{Epoch: math.MaxInt32, TxID: math.MaxInt64, Offset: math.MaxInt64}
	if _, err := projections.ApplyLog(ctx, tx, "analytics", eventlog.Position{}, all); err != nil {
		t.Fatalf("apply log: %v", err)
	}
	rows, err := tx.Query(ctx, `SELECT webinar_key, registrants, attendees FROM analytics.webinar_conversion`)
	if err != nil {
		t.Fatalf("query conversion: %v", err)
	}
	got := map[string]scenario.Figures{}
	var (
		key    string
		r, a   int
		scanTo = []any{&key, &r, &a}
	)
	if _, err := pgx.ForEachRow(rows, scanTo, func() error {
		got[key] = scenario.Figures{Registrants: r, Attendees: a}
		return nil
	}); err != nil {
		t.Fatalf("read conversion: %v", err)
	}
	return got
}

func TestFromToSpanTheSchedule(t *testing.T) {
	t.Parallel()
	sc := scenario.Generate(1)
	if !sc.From.Before(sc.To) || sc.To.Sub(sc.From) < 7*24*time.Hour || sc.To.Sub(sc.From) > 60*24*time.Hour {
		t.Errorf("From..To = %v..%v: want a span of one to eight weeks", sc.From, sc.To)
	}
}
