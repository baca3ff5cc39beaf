package projections

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
)

// TestRESTSnapshotsFromLog: ApplyLog (the live projector's fast path and every rebuild)
// projects reconcile's snapshots exactly as one-event Apply calls do. It once staged them and
// then skipped their statements, so `reconcile` filled no hole in the live analytics.
func TestRESTSnapshotsFromLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.Pool(t)
	events := append(restEvents(),
		// Known only from REST: its registrant.added was missed.
		ev(6, snapshot("turnout.registrant.snapshot", "r9", "", "5100000000000000009",
			`{"registrantKey":5100000000000000009,"email":"only-rest@example.com","firstName":"Only","status":"APPROVED","registrationDate":"2026-11-02T10:00:00Z"}`)))
	stored, pos := appendLog(t, pool, events, 2)
	create(t, pool, "live")
	applyEach(t, pool, "live", stored)
	want := dumpAll(t, pool, "live")
	for _, table := range []string{"sessions", "session_attendees", "attendance", "registrants"} {
		if len(want[table]) == 0 {
			t.Fatalf("live %s is empty: the test proves nothing", table)
		}
	}

	create(t, pool, "rebuild")
	inTx(t, pool, func(tx pgx.Tx) error {
		_, err := ApplyLog(ctx, tx, "rebuild", eventlog.Position{}, pos[len(pos)-1])
		return err
	})
	compareDumps(t, want, dumpAll(t, pool, "rebuild"))
}
