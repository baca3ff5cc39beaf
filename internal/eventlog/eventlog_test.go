package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
)

// appendRows appends n rows in one transaction, as ingest's publisher does (the
// transaction_id column is the writer's xid), and returns the transaction for the caller to
// commit: rows stay in flight until it does.
func appendRows(t *testing.T, ctx context.Context, pool *pgxpool.Pool, names ...string) pgx.Tx {
	t.Helper()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	for _, n := range names {
		payload := fmt.Sprintf(`{"eventName":"registrant.added","eventKey":%q}`, n)
		if _, err := tx.Exec(ctx, `INSERT INTO `+eventlog.Table+` (uuid, payload, metadata, transaction_id)
			VALUES (gen_random_uuid()::text, $1, '{}', pg_current_xact_id())`, payload); err != nil {
			t.Fatal(err)
		}
	}
	return tx
}

// restoredRows makes epoch 1 another cluster's, as pg_restore of a log into a new cluster
// leaves it, and appends to it one row per event key, with the transaction id given: all
// of them committed, whatever this cluster's own xids are.
func restoredRows(t *testing.T, ctx context.Context, pool *pgxpool.Pool, txByKey map[string]string) {
	t.Helper()
	if _, err := pool.Exec(ctx, `UPDATE eventlog_epochs SET system_identifier = 42 WHERE epoch = 1`); err != nil {
		t.Fatal(err)
	}
	for key, tx := range txByKey {
		if _, err := pool.Exec(ctx, `INSERT INTO `+eventlog.Table+` (uuid, payload, metadata, transaction_id, epoch)
			VALUES (gen_random_uuid()::text, json_build_object('eventKey', $1::text), '{}', $2::text::xid8, 1)`, key, tx); err != nil {
			t.Fatal(err)
		}
	}
}

func commit(t *testing.T, ctx context.Context, tx pgx.Tx) {
	t.Helper()
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func keys(recs []eventlog.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.EventKey
	}
	return out
}

func equal(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// readAll reads every committed row, waiting (with a deadline) until there are want of
// them: the visibility horizon is cluster-wide, so a transaction held open by a test of
// another package delays what this one sees.
func readAll(t *testing.T, ctx context.Context, pool *pgxpool.Pool, want int) []eventlog.Record {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		recs, err := eventlog.ReadCommitted(ctx, pool, eventlog.Position{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) >= want || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A row is read only once every row before it in log order is committed: a transaction
// that began writing first and commits last holds back the rows after it, so a reader that
// advances to the last row it read never skips the late one.
func TestReadCommittedWaitsForEarlierTransactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.Pool(t)
	early := appendRows(t, ctx, pool, "early")
	commit(t, ctx, appendRows(t, ctx, pool, "late-1", "late-2"))

	recs, err := eventlog.ReadCommitted(ctx, pool, eventlog.Position{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 0 {
		t.Fatalf("read %v while an earlier transaction was in flight, want nothing", keys(recs))
	}
	commit(t, ctx, early)
	recs = readAll(t, ctx, pool, 3)
	if want := []string{"early", "late-1", "late-2"}; !equal(keys(recs), want) {
		t.Fatalf("read %v, want %v", keys(recs), want)
	}
	// Limits and positions: the second page starts after the first.
	page, err := eventlog.ReadCommitted(ctx, pool, recs[0].Position, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(keys(page), []string{"late-1"}) {
		t.Fatalf("page after %v = %v, want [late-1]", recs[0].Position, keys(page))
	}
	end, n, err := eventlog.BatchEnd(ctx, pool, eventlog.Position{}, 2)
	if err != nil || n != 2 || end != recs[1].Position {
		t.Fatalf("BatchEnd = %v, %d, %v; want %v, 2", end, n, err, recs[1].Position)
	}
	rng, err := eventlog.ReadRange(ctx, pool, recs[0].Position, recs[2].Position)
	if err != nil || !equal(keys(rng), []string{"late-1", "late-2"}) {
		t.Fatalf("ReadRange = %v, %v", keys(rng), err)
	}
	lag, err := eventlog.LagAfter(ctx, pool, recs[0].Position)
	if err != nil || lag.Events != 2 {
		t.Fatalf("LagAfter = %+v, %v; want 2 events", lag, err)
	}
	if lag, err := eventlog.LagAtMost(ctx, pool, recs[0].Position, 1); err != nil || lag.Events != 1 {
		t.Fatalf("LagAtMost(1) = %+v, %v; want 1 event", lag, err)
	}
}

// The position is read, locked and advanced in the consumer's transaction: a rollback
// leaves it where it was, and a second consumer of the group waits for the first.
func TestConsumerPosition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.Pool(t)
	commit(t, ctx, appendRows(t, ctx, pool, "a", "b"))
	recs := readAll(t, ctx, pool, 2)
	if len(recs) != 2 {
		t.Fatalf("read = %v", keys(recs))
	}
	if pos, err := eventlog.ReadPosition(ctx, pool, "g"); err != nil || pos != (eventlog.Position{}) {
		t.Fatalf("position before the first advance = %v, %v; want zero", pos, err)
	}

	advance := func(to eventlog.Position, commitIt bool) {
		t.Helper()
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
		if _, err := eventlog.LockPosition(ctx, tx, "g"); err != nil {
			t.Fatal(err)
		}
		if err := eventlog.AdvancePosition(ctx, tx, "g", to); err != nil {
			t.Fatal(err)
		}
		if commitIt {
			commit(t, ctx, tx)
		}
	}
	advance(recs[0].Position, true)
	advance(recs[1].Position, false) // rolled back
	if pos, err := eventlog.ReadPosition(ctx, pool, "g"); err != nil || pos != recs[0].Position {
		t.Fatalf("position = %v, %v; want %v", pos, err, recs[0].Position)
	}

	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx) //nolint:errcheck // no-op after commit
	if _, err := eventlog.LockPosition(ctx, holder, "g"); err != nil {
		t.Fatal(err)
	}
	waiter, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Rollback(ctx) //nolint:errcheck // rolled back at the end
	if _, err := waiter.Exec(ctx, `SET LOCAL lock_timeout = '100ms'`); err != nil {
		t.Fatal(err)
	}
	if _, err := eventlog.LockPosition(ctx, waiter, "g"); err == nil {
		t.Fatal("a second consumer locked the position while the first held it")
	}
	if err := eventlog.AdvancePosition(ctx, holder, "g", recs[1].Position); err != nil {
		t.Fatal(err)
	}
	commit(t, ctx, holder)
	if pos, err := eventlog.ReadPosition(ctx, pool, "g"); err != nil || pos != recs[1].Position {
		t.Fatalf("position = %v, %v; want %v", pos, err, recs[1].Position)
	}
}

// Rows written by another cluster (a logical restore: the latest epoch names another
// system identifier) are all visible, whatever their xids, and what this cluster writes
// next opens a new epoch that sorts after them.
func TestEpochOrdersAcrossClusters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.Pool(t)
	// As pg_restore leaves it: rows with xids this cluster has not reached.
	restoredRows(t, ctx, pool, map[string]string{"restored-1": "900000000", "restored-2": "900000001"})
	if err := eventlog.Ahead(ctx, pool); err != nil {
		t.Fatalf("Ahead on a restored log: %v", err)
	}
	commit(t, ctx, appendRows(t, ctx, pool, "new"))
	recs := readAll(t, ctx, pool, 3)
	if want := []string{"restored-1", "restored-2", "new"}; !equal(keys(recs), want) {
		t.Fatalf("read %v, want %v", keys(recs), want)
	}
	if recs[2].Epoch != 2 {
		t.Fatalf("new row in epoch %d, want 2", recs[2].Epoch)
	}
}

// A log whose current epoch holds xids this cluster has not assigned is refused, not read
// around.
func TestAheadIsReported(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.Pool(t)
	commit(t, ctx, appendRows(t, ctx, pool, "now"))
	if err := eventlog.Ahead(ctx, pool); err != nil {
		t.Fatalf("Ahead on a healthy log: %v", err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO `+eventlog.Table+` (uuid, payload, metadata, transaction_id)
		VALUES ('x', '{}', '{}', '900000000')`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := eventlog.Ahead(ctx, pool); !errors.Is(err, eventlog.ErrAhead) {
		t.Fatalf("Ahead = %v, want ErrAhead", err)
	}
}

// TestBatchEndAcrossAnXidOfMoreDigits: the end of a batch is its last row in log order even
// when its transaction ids cross a power of ten, where their text ("999" > "1000") sorts
// the other way: BatchEnd once ordered by the text it returns and so ended such a batch
// early, while still reporting all its rows.
func TestBatchEndAcrossAnXidOfMoreDigits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.Pool(t)
	// Rows of an epoch another cluster wrote, so all of them are committed whatever this
	// cluster's xids are.
	restoredRows(t, ctx, pool, map[string]string{"xid-9": "9", "xid-10": "10", "xid-999": "999", "xid-1000": "1000"})
	for _, tt := range []struct {
		n         int
		wantTx    uint64
		wantCount int64
	}{
		{n: 2, wantTx: 10, wantCount: 2},
		{n: 4, wantTx: 1000, wantCount: 4},
		{n: 100, wantTx: 1000, wantCount: 4},
	} {
		end, count, err := eventlog.BatchEnd(ctx, pool, eventlog.Position{}, tt.n)
		if err != nil {
			t.Fatal(err)
		}
		if end.TxID != tt.wantTx || end.Epoch != 1 || count != tt.wantCount {
			t.Errorf("BatchEnd(start, %d) = %+v, %d rows; want transaction %d, %d rows", tt.n, end, count, tt.wantTx, tt.wantCount)
		}
	}
}
