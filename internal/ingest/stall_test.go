package ingest

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turnout-analytics/turnout/internal/pgtest"
)

// TestBatchesTakeTurnsUntilOneStalls: batches commit one at a time, which makes them as
// large as the load allows (issue 14), but a batch stuck in PostgreSQL (here its key
// claim waits for another session's uncommitted insert of the same key) holds up the
// deliveries behind it only for BatchStallAfter; then another worker commits them.
//
// Both halves are checked: with a stall threshold longer than the test, the delivery
// behind the stuck batch must wait for it (so the workers do take turns, rather than all
// committing at once), and with a short one it must be answered while the batch is still
// stuck (which was ingest's tail with a single worker: BENCHMARKS.md, issue 14).
func TestBatchesTakeTurnsUntilOneStalls(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		stallAfter time.Duration
		overtakes  bool // the second delivery is answered while the first is stuck
	}{
		{"stall threshold passed", 20 * time.Millisecond, true},
		{"stall threshold not reached", time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pool, _ := pgtest.Pool(t)
			svc, base := testService(t, pool, Config{BatchWorkers: 2, BatchStallAfter: tc.stallAfter})
			ctx := context.Background()

			blocker, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = blocker.Rollback(ctx) }()
			if _, err := blocker.Exec(ctx, `INSERT INTO ingest_event_keys (event_key) VALUES ('stalled')`); err != nil {
				t.Fatal(err)
			}
			stalled := make(chan int, 1)
			go func() {
				code, _ := post(t, base, joined("stalled"), signed(testKey, joined("stalled")))
				stalled <- code
			}()
			deadline := time.Now().Add(10 * time.Second)
			for count(t, pool, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the first delivery's batch never waited for the blocking session")
				}
				time.Sleep(10 * time.Millisecond)
			}

			// The second delivery, of another key.
			answered := make(chan int, 1)
			go func() {
				rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				defer cancel()
				body := joined("free")
				req, err := http.NewRequestWithContext(rctx, http.MethodPost, base+CallbackPath, bytes.NewReader(body))
				if err != nil {
					answered <- 0
					return
				}
				req.Header = signed(testKey, body)
				code, _ := do(t, req)
				answered <- code
			}()
			if tc.overtakes {
				select {
				case code := <-answered:
					if code != http.StatusOK {
						t.Fatalf("delivery behind a stalled batch: %d, want 200", code)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("the delivery behind a stalled batch was not answered within 10s")
				}
				if n := testutil.ToFloat64(svc.metrics.batchStalls); n != 1 {
					t.Fatalf("turnout_ingest_batch_stalls_total = %v, want 1", n)
				}
			} else {
				select {
				case code := <-answered:
					t.Fatalf("the delivery behind the stuck batch was answered %d before its turn", code)
				case <-time.After(500 * time.Millisecond):
				}
			}
			select {
			case code := <-stalled:
				t.Fatalf("the stalled delivery was answered %d while its key was still held", code)
			default:
			}

			// Once the blocking session ends without committing, both are stored.
			if err := blocker.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			if code := <-stalled; code != http.StatusOK {
				t.Fatalf("stalled delivery: %d after its blocker rolled back, want 200", code)
			}
			if !tc.overtakes {
				if code := <-answered; code != http.StatusOK {
					t.Fatalf("delivery behind the stuck batch: %d once it was unstuck, want 200", code)
				}
				if n := testutil.ToFloat64(svc.metrics.batchStalls); n != 0 {
					t.Fatalf("turnout_ingest_batch_stalls_total = %v, want 0", n)
				}
			}
			if n := count(t, pool, countLog); n != 2 {
				t.Fatalf("%d rows in the log, want 2", n)
			}
		})
	}
}
