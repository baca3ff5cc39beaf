package projections

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
)

// appendLog writes events to the event log as the publisher does, chunk rows per
// transaction (so the log has several transaction ids), and returns the stored rows with
// their log positions, in log order.
func appendLog(t testing.TB, pool *pgxpool.Pool, events []Event, chunk int) ([]Event, []eventlog.Position) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < len(events); i += chunk {
		part := events[i:min(i+chunk, len(events))]
		received := make([]any, 0, len(part))
		payloads := make([]string, 0, len(part))
		for _, e := range part {
			received = append(received, e.ReceivedAt)
			payloads = append(payloads, string(e.Payload))
		}
		_, err := pool.Exec(ctx, `
			INSERT INTO `+eventlog.Table+` (uuid, payload, metadata, transaction_id, received_at)
			SELECT gen_random_uuid()::text, p::json, '{}'::json, pg_current_xact_id(), r
			FROM unnest($1::text[], $2::timestamptz[]) WITH ORDINALITY AS u (p, r, i)
			ORDER BY i`, payloads, received)
		if err != nil {
			t.Fatalf("append to log: %v", err)
		}
	}
	// ORDER BY names the table's column (l.): a bare transaction_id would be the output
	// column, the text, which sorts xid 1000 before 999 (a flaky failure whenever the
	// cluster's xids crossed a power of ten during the append).
	rows, err := pool.Query(ctx, `SELECT l.epoch, l.transaction_id::text, l."offset", l.received_at, l.payload::text
		FROM `+eventlog.Table+` l ORDER BY l.epoch, l.transaction_id, l."offset"`)
	if err != nil {
		t.Fatal(err)
	}
	var out []Event
	var pos []eventlog.Position
	var tx, payload string
	var e Event
	var epoch int32
	_, err = pgx.ForEachRow(rows, []any{&epoch, &tx, &e.Offset, &e.ReceivedAt, &payload}, func() error {
		id, err := strconv.ParseUint(tx, 10, 64)
		e.Payload = []byte(payload)
		out = append(out, e)
		pos = append(pos, eventlog.Position{Epoch: epoch, TxID: id, Offset: e.Offset})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, pos
}

// TestRebuildEqualsLive: ApplyLog over the log, in ranges and small chunks, gives exactly
// (every column, offsets included) what live one-event Apply calls give.
func TestRebuildEqualsLive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.Pool(t)
	stored, pos := appendLog(t, pool, newGenerator(7).stream(12, 10), 97)
	create(t, pool, "live")
	applyEach(t, pool, "live", stored)
	want := dumpAll(t, pool, "live")

	create(t, pool, "rebuild")
	var total int64
	inTx(t, pool, func(tx pgx.Tx) error {
		// Three ranges, the middle one ending inside a chunk, each applied in chunks of 37.
		cuts := []eventlog.Position{{}, pos[len(pos)/3], pos[len(pos)/2], pos[len(pos)-1]}
		for i := 1; i < len(cuts); i++ {
			n, err := applyLog(ctx, tx, "rebuild", cuts[i-1], cuts[i], 37)
			if err != nil {
				return err
			}
			total += n
		}
		// Nothing left after the end.
		n, err := ApplyLog(ctx, tx, "rebuild", pos[len(pos)-1], eventlog.Position{TxID: 1 << 62, Offset: 1 << 62})
		total += n
		return err
	})
	if total != int64(len(stored)) {
		t.Errorf("ApplyLog applied %d rows, want %d", total, len(stored))
	}
	compareDumps(t, want, dumpAll(t, pool, "rebuild"))
	checkCounters(t, pool, "rebuild", stored)

	// Applying the whole log again changes nothing.
	inTx(t, pool, func(tx pgx.Tx) error {
		_, err := ApplyLog(ctx, tx, "rebuild", eventlog.Position{}, pos[len(pos)-1])
		return err
	})
	compareDumps(t, want, dumpAll(t, pool, "rebuild"))
}

// TestApplyInSavepoint: a failed Apply inside a savepoint (as the live projector runs it)
// leaves the transaction usable after ROLLBACK TO SAVEPOINT, including when the failed
// Apply was the one that created the staging table.
func TestApplyInSavepoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.Pool(t)
	create(t, pool, "analytics")
	events := newGenerator(5).stream(1, 3)
	inTx(t, pool, func(tx pgx.Tx) error {
		for i, e := range events {
			sp, err := tx.Begin(ctx)
			if err != nil {
				return err
			}
			if i%2 == 0 {
				bad := Event{Offset: 1000 + int64(i), ReceivedAt: e.ReceivedAt, Payload: []byte(`{"eventName":"registrant.added","webinarKey":`)}
				err := Apply(ctx, sp, "analytics", bad)
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) {
					t.Errorf("Apply of a broken payload: err = %v, want a PostgreSQL error", err)
				}
				if err := sp.Rollback(ctx); err != nil {
					return err
				}
				if sp, err = tx.Begin(ctx); err != nil {
					return err
				}
			}
			if err := Apply(ctx, sp, "analytics", e); err != nil {
				return err
			}
			if err := sp.Commit(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	create(t, pool, "reference")
	applyEach(t, pool, "reference", events)
	compareDumps(t, dumpAll(t, pool, "reference"), dumpAll(t, pool, "analytics"))
}

// TestPrefetchedEqualsLive applies the log through PrefetchLog and ApplyPrefetched, the
// pipelined rebuild's path: each range parsed on one connection and committed, then applied
// on another, must give exactly the tables the live path does, and leave no prefetch table.
func TestPrefetchedEqualsLive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.Pool(t)
	stored, pos := appendLog(t, pool, newGenerator(8).stream(12, 10), 89)
	create(t, pool, "live")
	applyEach(t, pool, "live", stored)
	create(t, pool, "rebuild")

	cuts := []eventlog.Position{{}, pos[len(pos)/4], pos[len(pos)/2], pos[len(pos)-1]}
	var total int64
	for i := 1; i < len(cuts); i++ {
		table := fmt.Sprintf("_prefetch_%d", i)
		var parsed int64
		inTx(t, pool, func(tx pgx.Tx) error {
			var err error
			parsed, err = PrefetchLog(ctx, tx, "rebuild", table, cuts[i-1], cuts[i])
			return err
		})
		inTx(t, pool, func(tx pgx.Tx) error {
			n, err := ApplyPrefetched(ctx, tx, "rebuild", table)
			if n != parsed {
				t.Errorf("range %d: applied %d rows, prefetched %d", i, n, parsed)
			}
			total += n
			return err
		})
	}
	if total != int64(len(stored)) {
		t.Errorf("applied %d rows, want %d", total, len(stored))
	}
	compareDumps(t, dumpAll(t, pool, "live"), dumpAll(t, pool, "rebuild"))
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'rebuild' AND tablename LIKE '\_prefetch\_%'`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d prefetch tables left behind", left)
	}
}
