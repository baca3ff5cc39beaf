package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrClosed is returned by a submission after the batcher has stopped.
var ErrClosed = errors.New("ingest: batcher closed")

// batcher group-commits entries: request goroutines hand it their entry and wait, workers
// gather waiting entries into batches and append each batch in one transaction.
//
// Batching policy: a worker takes the first waiting entry and drains whatever else is
// already queued (up to max), without waiting, then commits. At low load a delivery costs
// one transaction and no timer. Under load, entries queue while a batch commits, so
// batches grow by themselves to about arrival rate × commit time. Optionally (wait > 0) a
// worker that found more than one entry lingers up to wait for more; under a closed-loop
// benchmark that only delayed the senders that would have filled the batch, so it is off
// by default.
//
// One batch at a time, unless it stalls: a worker may start a batch only while it holds
// the turn, a token it passes on when its transaction ends or has run for stallAfter,
// whichever comes first. So normally one transaction is in flight and every delivery that
// arrives meanwhile joins the next, large batch (PostgreSQL's cost per delivery falls
// steeply with the batch size: BENCHMARKS.md, issue 14); but a batch stuck in PostgreSQL
// (a lock wait, a slow flush) holds up the deliveries behind it for stallAfter at most,
// after which another worker commits them, up to workers transactions at once.
type batcher struct {
	pool       *pgxpool.Pool
	max        int
	wait       time.Duration
	stallAfter time.Duration
	timeout    time.Duration
	logger     *slog.Logger
	metrics    *metrics
	failures   *failureLog

	queue chan *pending
	// turn holds the one token that lets a worker start a batch (see the type's comment).
	turn chan struct{}
	// mu guards closed against concurrent sends on queue: submit holds it shared while
	// sending, Close exclusively while closing the channel.
	mu     sync.RWMutex
	closed bool
	wg     sync.WaitGroup
}

// pending is one entry waiting for its batch; done receives exactly one result.
type pending struct {
	entry  Delivery
	queued time.Time // when submit queued it, for turnout_ingest_batch_queue_seconds
	done   chan result
}

type result struct {
	outcome Outcome
	err     error
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan result, 1)} }}

func newBatcher(pool *pgxpool.Pool, cfg Config, logger *slog.Logger, m *metrics) *batcher {
	b := &batcher{
		pool:       pool,
		max:        cfg.BatchMax,
		wait:       cfg.BatchWait,
		stallAfter: cfg.BatchStallAfter,
		timeout:    cfg.CommitTimeout,
		logger:     logger,
		metrics:    m,
		// At most one line per second while batches keep failing (a database outage).
		failures: newFailureLog(time.Second),
		queue:    make(chan *pending, cfg.BatchMax*cfg.BatchWorkers),
		turn:     make(chan struct{}, 1),
	}
	b.turn <- struct{}{}
	b.wg.Add(cfg.BatchWorkers)
	for range cfg.BatchWorkers {
		go b.work()
	}
	return b
}

// submit queues e and waits until its batch is committed or has failed. If ctx ends
// first (the client went away), submit returns ctx's error at once; the entry may still
// be stored by its batch, which is harmless: a redelivery is then a duplicate.
//
// The caller must not reuse e.Body after submit returned an error wrapping a context
// error: the batch may still be reading it.
func (b *batcher) submit(ctx context.Context, e Delivery) (Outcome, error) {
	p := pendingPool.Get().(*pending)
	p.entry, p.queued = e, time.Now()

	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		p.entry = Delivery{}
		pendingPool.Put(p)
		return 0, ErrClosed
	}
	select {
	case b.queue <- p:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		p.entry = Delivery{}
		pendingPool.Put(p)
		return 0, fmt.Errorf("queue delivery: %w", ctx.Err())
	}

	select {
	case r := <-p.done:
		p.entry = Delivery{}
		pendingPool.Put(p)
		return r.outcome, r.err
	case <-ctx.Done():
		// Abandon p to its worker: it still owns p and will send to the buffered done
		// channel without blocking; p is then garbage, never reused.
		return 0, fmt.Errorf("wait for commit: %w", ctx.Err())
	}
}

// Close stops accepting entries, lets the workers commit everything already queued, and
// waits for them. Call it after the HTTP server has drained its requests.
func (b *batcher) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *batcher) work() {
	defer b.wg.Done()
	var (
		a        appender
		batch    = make([]*pending, 0, b.max)
		entries  = make([]Delivery, 0, b.max)
		outcomes = make([]Outcome, 0, b.max)
		timer    = time.NewTimer(time.Hour)
	)
	timer.Stop()
	for {
		<-b.turn
		first, ok := <-b.queue
		if !ok {
			b.turn <- struct{}{} // for the next worker to find the queue closed too
			return
		}
		batch = b.gather(append(batch[:0], first), timer)
		pass := b.passTurnAfter(b.stallAfter)

		start := time.Now()
		entries = entries[:0]
		for _, p := range batch {
			entries = append(entries, p.entry)
			b.metrics.batchQueue.Observe(start.Sub(p.queued).Seconds())
		}
		b.metrics.batchSize.Observe(float64(len(batch)))
		// The batch does not run on any request's context: one client hanging up must
		// not roll back everyone else's deliveries. The timeout bounds a stuck database.
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		var err error
		outcomes, err = a.append(ctx, b.pool, entries, outcomes[:0])
		cancel()
		pass()
		b.metrics.batchCommit.Observe(time.Since(start).Seconds())
		if err != nil {
			// Logged here for the whole batch (throttled); the handlers only answer 503.
			b.failures.batchFailed(b.logger, len(batch), err)
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		for i, p := range batch {
			r := result{err: err}
			if err == nil {
				r.outcome = outcomes[i]
			}
			p.done <- r // buffered: never blocks, even if the handler gave up
			batch[i] = nil
		}
		clear(entries) // drop references to the bodies
	}
}

// passTurnAfter passes the turn on after d, or when the returned function is called if
// that is sooner; the turn is passed once either way.
func (b *batcher) passTurnAfter(d time.Duration) func() {
	var passed atomic.Bool
	pass := func() bool {
		if !passed.CompareAndSwap(false, true) {
			return false
		}
		b.turn <- struct{}{} // never blocks: there is one token and this worker held it
		return true
	}
	t := time.AfterFunc(d, func() {
		if pass() {
			b.metrics.batchStalls.Inc()
		}
	})
	return func() {
		t.Stop()
		pass()
	}
}

// gather adds already-queued entries to batch and, if that shows the service is under
// load, lingers up to b.wait for more (see the type's comment).
func (b *batcher) gather(batch []*pending, timer *time.Timer) []*pending {
	for len(batch) < b.max {
		select {
		case p, ok := <-b.queue:
			if !ok {
				return batch
			}
			batch = append(batch, p)
			continue
		default:
		}
		break
	}
	if b.wait <= 0 || len(batch) == 1 || len(batch) >= b.max {
		return batch
	}
	timer.Reset(b.wait)
	defer timer.Stop()
	for len(batch) < b.max {
		select {
		case p, ok := <-b.queue:
			if !ok {
				return batch
			}
			batch = append(batch, p)
		case <-timer.C:
			return batch
		}
	}
	return batch
}
