package main

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/projections"
	"github.com/turnout-analytics/turnout/internal/projections/projectionstest"
)

// TestCeilingMatchesRebuild: the baseline of bench-replay builds the same registrants rows
// as a rebuild, for a log of registrant.added events (the replay generator's, webinar and
// join events left out).
func TestCeilingMatchesRebuild(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, url := pgtest.Pool(t)
	if _, err := pool.Exec(ctx, generateSQL, 1201, 1500); err != nil {
		t.Fatalf("generate events: %v", err)
	}
	// Only registrant.added: the ceiling builds nothing else.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET session_replication_role = replica"); err != nil { // the log is append-only
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `DELETE FROM `+eventlog.Table+` WHERE event_name <> 'registrant.added'`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCeiling(ctx, conn, true); err != nil {
		t.Fatal(err)
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := projections.Create(ctx, tx, "rebuild"); err != nil {
			return err
		}
		_, err := projections.ApplyLog(ctx, tx, "rebuild", eventlog.Position{},
			eventlog.Position{Epoch: math.MaxInt32, TxID: math.MaxInt64, Offset: math.MaxInt64})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want, err := projectionstest.Dump(ctx, conn, "rebuild")
	if err != nil {
		t.Fatal(err)
	}
	got, err := projectionstest.Dump(ctx, conn, ceilingSchema)
	if err != nil {
		t.Fatal(err)
	}
	if len(want["registrants"]) == 0 || !slices.Equal(want["registrants"], got["registrants"]) {
		t.Errorf("ceiling registrants (%d rows) differ from the rebuild's (%d rows)", len(got["registrants"]), len(want["registrants"]))
	}
}
