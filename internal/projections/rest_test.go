package projections

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/pgtest"
)

// snapshot is a reconcile snapshot event as internal/reconcile writes it: the item under
// "snapshot", as GoTo sent it (keys there may be integers).
func snapshot(name, key, session, registrant, item string) string {
	return fmt.Sprintf(`{"eventName":%q,"eventKey":%q,"eventVersion":"1.0.0","source":"rest","organizerKey":"8100000000000000001",`+
		`"webinarKey":"9100000000000000101","sessionKey":%q,"registrantKey":%q,"fetchedAt":"2026-12-01T00:00:00Z","snapshot":%s}`,
		name, key, session, registrant, item)
}

// restEvents are snapshots of one session and two attendees, one of them fetched twice (a
// later fetch found a second interval): the later snapshot must win in any order.
func restEvents() []Event {
	const s = "6100000000000000101"
	return []Event{
		ev(1, snapshot("turnout.session.snapshot", "k1", s, "",
			`{"sessionKey":6100000000000000101,"webinarKey":9100000000000000101,"startTime":"2026-11-09T15:00:00Z","endTime":"2026-11-09T16:00:00Z","registrantsAttended":2}`)),
		ev(2, snapshot("turnout.attendance.snapshot", "k2", s, "5100000000000000001",
			`{"registrantKey":"5100000000000000001","attendanceTimeInSeconds":600,"attendance":[{"joinTime":"2026-11-09T15:00:00Z","leaveTime":"2026-11-09T15:10:00Z"}]}`)),
		ev(3, snapshot("turnout.attendance.snapshot", "k3", s, "5100000000000000002",
			`{"registrantKey":"5100000000000000002","attendanceTimeInSeconds":1800,"attendance":[{"joinTime":"2026-11-09T15:05:00Z","leaveTime":"2026-11-09T15:35:00Z"}]}`)),
		ev(4, snapshot("turnout.attendance.snapshot", "k4", s, "5100000000000000001",
			`{"registrantKey":"5100000000000000001","attendanceTimeInSeconds":900,"attendance":[{"joinTime":"2026-11-09T15:00:00Z","leaveTime":"2026-11-09T15:10:00Z"},{"joinTime":"2026-11-09T15:20:00Z","leaveTime":"2026-11-09T15:25:00Z"}]}`)),
		// A joined webhook for the same session, so session_attendance has its row.
		ev(5, `{"eventName":"registrant.joined","eventKey":"j1","eventVersion":"1.0.0","product":"g2w","webinarKey":9100000000000000101,"registrantKey":5100000000000000001,"sessionKey":6100000000000000101,"joinTime":1794236400000,"timestamp":"2026-11-09T15:00:00.000Z"}`),
	}
}

// TestRESTSnapshotsAnyOrder: sessions, session_attendees and attendance are the same for any
// order and batching of the snapshots, the newest snapshot of an attendee wins, and the
// engagement view and the attendance columns read them.
func TestRESTSnapshotsAnyOrder(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	events := restEvents()
	reversed := slices.Clone(events)
	slices.Reverse(reversed)
	create(t, pool, "a")
	applyEach(t, pool, "a", events)
	create(t, pool, "b")
	applyEach(t, pool, "b", reversed)
	create(t, pool, "c")
	inTx(t, pool, func(tx pgx.Tx) error { return Apply(context.Background(), tx, "c", reversed...) })
	create(t, pool, "d") // twice over: applying again changes nothing
	applyEach(t, pool, "d", append(slices.Clone(events), reversed...))
	want := dumpPublic(t, pool, "a")
	for _, schema := range []string{"b", "c", "d"} {
		compareDumps(t, want, dumpPublic(t, pool, schema))
	}
	if got := want["attendance"]; len(got) != 3 {
		t.Errorf("attendance rows = %v, want 3 intervals (2 from the newer snapshot, 1)", got)
	}

	ctx := context.Background()
	var secs int
	var share float64
	err := pool.QueryRow(ctx, `SELECT seconds_attended, share_of_session FROM a.engagement WHERE registrant_key = '5100000000000000001'`).Scan(&secs, &share)
	if err != nil || secs != 900 || share != 0.25 {
		t.Errorf("engagement: %d s, share %v (%v); want the newer snapshot's 900 s, 0.25 of the hour", secs, share, err)
	}
	var avg float64
	var total int
	if err := pool.QueryRow(ctx, `SELECT avg_attendance_seconds, total_attendance_seconds FROM a.session_attendance`).Scan(&avg, &total); err != nil || avg != 1350 || total != 2700 {
		t.Errorf("session_attendance: avg %v, total %d (%v); want 1350, 2700", avg, total, err)
	}
	// Registrant …002 is known to have attended only from REST (its registrant.joined was
	// missed): it counts in session_attendance as in webinar_conversion, and the intervals'
	// join times count as joins (…001 rejoined at 15:20).
	var attendees int
	var span string
	err = pool.QueryRow(ctx, `SELECT attendees, to_char(first_join AT TIME ZONE 'UTC', 'HH24:MI') || '-' || to_char(last_join AT TIME ZONE 'UTC', 'HH24:MI') FROM a.session_attendance`).Scan(&attendees, &span)
	if err != nil || attendees != 2 || span != "15:00-15:20" {
		t.Errorf("session_attendance: %d attendees, joins %s (%v); want 2 (one known only from REST), 15:00-15:20", attendees, span, err)
	}
	if err := pool.QueryRow(ctx, `SELECT avg_attendance_seconds, total_attendance_seconds FROM a.webinar_conversion`).Scan(&avg, &total); err != nil || avg != 1350 || total != 2700 {
		t.Errorf("webinar_conversion: avg %v, total %d (%v); want 1350, 2700", avg, total, err)
	}
}

// TestRESTRegistrantsFillInOnly: a registrant known only from REST is created, an attendee
// known only from REST counts as attended (first join from the intervals), and a webhook's
// attributes are never overwritten by a REST snapshot, in either order.
func TestRESTRegistrantsFillInOnly(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	const s = "6100000000000000101"
	events := []Event{
		// The webhook: registered 10:00, with a source REST does not know.
		ev(1, `{"eventName":"registrant.added","eventKey":"a1","eventVersion":"1.0.0","product":"g2w","webinarKey":9100000000000000101,"registrantKey":5100000000000000001,"email":"hook@example.com","firstName":"Hook","registrationSource":"LinkedIn","status":"APPROVED","timestamp":"2026-11-01T10:00:00.000Z"}`),
		// REST, fetched later, says otherwise about the same registrant: ignored.
		ev(2, snapshot("turnout.registrant.snapshot", "r1", "", "5100000000000000001",
			`{"registrantKey":5100000000000000001,"email":"rest@example.com","firstName":"Rest","status":"APPROVED","registrationDate":"2026-11-01T10:00:00Z"}`)),
		// Known only from REST: its registrant.added was missed.
		ev(3, snapshot("turnout.registrant.snapshot", "r2", "", "5100000000000000002",
			`{"registrantKey":5100000000000000002,"email":"only-rest@example.com","firstName":"Only","status":"WAITING","registrationDate":"2026-11-02T10:00:00Z","joinUrl":null}`)),
		ev(4, snapshot("turnout.attendance.snapshot", "t2", s, "5100000000000000002",
			`{"registrantKey":"5100000000000000002","attendanceTimeInSeconds":600,"attendance":[{"joinTime":"2026-11-09T15:20:00Z","leaveTime":"2026-11-09T15:25:00Z"},{"joinTime":"2026-11-09T15:02:00Z","leaveTime":"2026-11-09T15:07:00Z"}]}`)),
		// An attendee REST knows, and no registrant event at all.
		ev(5, snapshot("turnout.attendance.snapshot", "t3", s, "5100000000000000003",
			`{"registrantKey":"5100000000000000003","email":"walk-in@example.com","firstName":"Walk","attendanceTimeInSeconds":60,"attendance":[{"joinTime":"2026-11-09T15:30:00Z","leaveTime":"2026-11-09T15:31:00Z"}]}`)),
	}
	reversed := slices.Clone(events)
	slices.Reverse(reversed)
	create(t, pool, "a")
	applyEach(t, pool, "a", events)
	create(t, pool, "b")
	applyEach(t, pool, "b", reversed)
	create(t, pool, "c")
	inTx(t, pool, func(tx pgx.Tx) error { return Apply(context.Background(), tx, "c", events...) })
	create(t, pool, "d")
	applyEach(t, pool, "d", append(slices.Clone(reversed), events...))
	want := dumpPublic(t, pool, "a")
	for _, schema := range []string{"b", "c", "d"} {
		compareDumps(t, want, dumpPublic(t, pool, schema))
	}
	ctx := context.Background()
	var regs, atts int
	if err := pool.QueryRow(ctx, `SELECT registrants, attendees FROM a.webinar_conversion`).Scan(&regs, &atts); err != nil || regs != 3 || atts != 2 {
		t.Errorf("webinar_conversion: %d registrants, %d attendees (%v); want 3 and 2", regs, atts, err)
	}
	var email, source string
	if err := pool.QueryRow(ctx, `SELECT email, registration_source FROM a.registrants WHERE registrant_key = '5100000000000000001'`).Scan(&email, &source); err != nil || email != "hook@example.com" || source != "LinkedIn" {
		t.Errorf("the webhook's registrant: %s, %s (%v); want its own attributes kept", email, source, err)
	}
	var status, firstJoin string
	if err := pool.QueryRow(ctx, `SELECT status, first_join::text FROM a.registrants WHERE registrant_key = '5100000000000000002'`).Scan(&status, &firstJoin); err != nil || status != "WAITING" || firstJoin != "2026-11-09 15:02:00+00" {
		t.Errorf("the REST-only registrant: %s, first join %s (%v); want WAITING, the earliest interval", status, firstJoin, err)
	}
}

// TestStatusApart: DENIED and CANCELLED registrants are not counted as registrants (nor in the
// rate's denominator); WAITING and DENIED have columns of their own.
func TestStatusApart(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	added := func(offset int64, key, status, source string) Event {
		return ev(offset, fmt.Sprintf(`{"eventName":"registrant.added","eventKey":"s%d","eventVersion":"1.0.0","product":"g2w","webinarKey":9100000000000000101,"registrantKey":%s,"email":"x%d@example.com","status":%q,"registrationSource":%q,"timestamp":"2026-11-01T10:00:00.000Z"}`, offset, key, offset, status, source))
	}
	events := []Event{
		added(1, "5100000000000000001", "APPROVED", "Email"),
		added(2, "5100000000000000002", "APPROVED", "Email"),
		added(3, "5100000000000000003", "WAITING", "Email"),
		added(4, "5100000000000000004", "DENIED", "Email"),
		added(5, "5100000000000000005", "CANCELLED", "Email"),
		ev(6, `{"eventName":"registrant.joined","eventKey":"j6","eventVersion":"1.0.0","product":"g2w","webinarKey":9100000000000000101,"registrantKey":5100000000000000001,"sessionKey":1,"joinTime":1794236400000,"timestamp":"2026-11-09T15:00:00.000Z"}`),
	}
	create(t, pool, "a")
	applyEach(t, pool, "a", events)
	ctx := context.Background()
	for _, view := range []string{"webinar_conversion", "conversion_by_source"} {
		var regs, atts, waiting, denied int
		var rate float64
		err := pool.QueryRow(ctx, `SELECT registrants, attendees, conversion_rate, waiting, denied FROM a.`+view).Scan(&regs, &atts, &rate, &waiting, &denied)
		if err != nil || regs != 3 || atts != 1 || rate != 1.0/3 || waiting != 1 || denied != 1 {
			t.Errorf("%s: registrants %d, attendees %d, rate %v, waiting %d, denied %d (%v); want 3, 1, 1/3, 1, 1", view, regs, atts, rate, waiting, denied, err)
		}
	}
}

// TestRESTSnapshotFieldsNeverFail: malformed values in a snapshot are NULL (or 0 seconds, no
// intervals); the event still applies.
func TestRESTSnapshotFieldsNeverFail(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	const s = "6100000000000000101"
	events := []Event{
		ev(1, snapshot("turnout.session.snapshot", "m1", s, "", `{"startTime":"yesterday-ish","endTime":12,"registrantsAttended":"many"}`)),
		ev(2, snapshot("turnout.attendance.snapshot", "m2", s, "5100000000000000009", `{"attendanceTimeInSeconds":1e999,"attendance":{"joinTime":"x"}}`)),
		ev(3, snapshot("turnout.attendance.snapshot", "m3", s, "5100000000000000008", `{"attendanceTimeInSeconds":-5,"attendance":[1,{"joinTime":"not a time"},{"joinTime":"2026-11-09T15:00:00Z","leaveTime":"soon"}]}`)),
		ev(4, snapshot("turnout.registrant.snapshot", "m4", "", "5100000000000000007", `{"registrationDate":"2026-13-45T99:00:00Z","status":7}`)),
	}
	create(t, pool, "a")
	applyEach(t, pool, "a", events)
	d := dumpPublic(t, pool, "a")
	if len(d["sessions"]) != 1 || len(d["session_attendees"]) != 2 || len(d["attendance"]) != 1 || len(d["registrants"]) != 3 {
		t.Fatalf("malformed snapshots: sessions %v, attendees %v, attendance %v, registrants %v", d["sessions"], d["session_attendees"], d["attendance"], d["registrants"])
	}
}
