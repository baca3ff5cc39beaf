package ingest

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/turnout-analytics/turnout/internal/pgtest"
)

// TestStalledBatchDoesNotHoldUpOthers: a batch stuck in PostgreSQL (here its key claim
// waits for another session's uncommitted insert of the same key) must not hold up the
// deliveries behind it. With the default two batch workers the next delivery commits on
// the other one; with a single worker it would wait for the stuck batch, which was
// ingest's tail (BENCHMARKS.md, issue 14).
func TestStalledBatchDoesNotHoldUpOthers(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	_, base := testService(t, pool, Config{})
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

	// The second delivery, of another key, is answered while the first is still stuck.
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body := joined("free")
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, base+CallbackPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = signed(testKey, body)
	if code, answer := do(t, req); code != http.StatusOK {
		t.Fatalf("delivery behind a stalled batch: %d %s, want 200 within 10s", code, answer)
	}
	select {
	case code := <-stalled:
		t.Fatalf("the stalled delivery was answered %d while its key was still held", code)
	default:
	}

	// Once the blocking session ends without committing, the stalled delivery is stored.
	if err := blocker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if code := <-stalled; code != http.StatusOK {
		t.Fatalf("stalled delivery: %d after its blocker rolled back, want 200", code)
	}
	if n := count(t, pool, countLog); n != 2 {
		t.Fatalf("%d rows in the log, want 2", n)
	}
}
