package projections

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
)

// BenchmarkRebuild compares ApplyLog with the ceiling statement on the same log of
// registrant.added events, and reports ApplyLog on a mixed stream. Run with -benchtime=1x.
func BenchmarkRebuild(b *testing.B) {
	ctx := context.Background()
	pool, _ := pgtest.Pool(b)
	all := newGenerator(13).stream(400, 250) // about 200k events
	var added []Event
	for _, e := range all {
		if eventName(e.Payload) == nameAdded {
			added = append(added, e)
		}
	}
	b.Logf("mixed stream: %d events, of which %d registrant.added", len(all), len(added))
	_, pos := appendLog(b, pool, added, 5000)
	end := pos[len(pos)-1]
	run := func(name string, f func(tx pgx.Tx, schema string) error) float64 {
		schema := fmt.Sprintf("b_%s_%d", name, time.Now().UnixNano())
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return Create(ctx, tx, schema) }); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return f(tx, schema) }); err != nil {
			b.Fatal(err)
		}
		rate := float64(len(added)) / time.Since(start).Seconds()
		b.Logf("%s: %.0f events/s", name, rate)
		return rate
	}
	// Warm the cache with a first ceiling run, so the order of the runs does not matter.
	run("warmup", func(tx pgx.Tx, s string) error { _, err := RunCeiling(ctx, tx, s); return err })
	for i := 0; i < b.N; i++ {
		ceiling := run("ceiling", func(tx pgx.Tx, s string) error { _, err := RunCeiling(ctx, tx, s); return err })
		rebuild := run("applylog", func(tx pgx.Tx, s string) error { _, err := ApplyLog(ctx, tx, s, eventlog.Position{}, end); return err })
		b.ReportMetric(rebuild/ceiling, "applylog/ceiling")
	}
	// The mixed stream, in its own database.
	mixed, _ := pgtest.Pool(b)
	_, mpos := appendLog(b, mixed, all, 5000)
	if err := pgx.BeginFunc(ctx, mixed, func(tx pgx.Tx) error { return Create(ctx, tx, "analytics") }); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := pgx.BeginFunc(ctx, mixed, func(tx pgx.Tx) error {
		_, err := ApplyLog(ctx, tx, "analytics", eventlog.Position{}, mpos[len(mpos)-1])
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.Logf("applylog, mixed stream: %.0f events/s", float64(len(all))/time.Since(start).Seconds())
}

// BenchmarkApplyLivePipelined applies one event per call the way the live projector does:
// SAVEPOINT, the statements and RELEASE pipelined in one batch per event, 100 events per
// transaction.
func BenchmarkApplyLivePipelined(b *testing.B) {
	ctx := context.Background()
	pool, _ := pgtest.Pool(b)
	create(b, pool, "analytics")
	events := newGenerator(11).stream(40, 200)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	if err := PrepareConn(ctx, conn); err != nil {
		b.Fatal(err)
	}
	var tx pgx.Tx
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%100 == 0 {
			if tx != nil {
				if err := tx.Commit(ctx); err != nil {
					b.Fatal(err)
				}
			}
			if tx, err = conn.Begin(ctx); err != nil {
				b.Fatal(err)
			}
		}
		e := events[i%len(events)]
		e.Offset = int64(i + 1)
		batch := &pgx.Batch{}
		batch.Queue("SAVEPOINT e")
		if err := QueueApply(batch, "analytics", e); err != nil {
			b.Fatal(err)
		}
		batch.Queue("RELEASE SAVEPOINT e")
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		b.Fatal(err)
	}
}
