// Package forwarder publishes Turnout's event log to NATS JetStream: it reads the log in
// log order as a consumer of its own (consumer group "forwarder" in internal/eventlog),
// publishes each event to the stream TURNOUT on the subject turnout.events.<eventName>
// with Watermill's NATS publisher, and moves its position only after JetStream has
// acknowledged every event up to it.
//
// Delivery is at-least-once from the log: a forwarder killed between JetStream's ack and
// its position's commit publishes those events again when it restarts. Each message
// carries Nats-Msg-Id = eventKey, so JetStream drops such a re-publish as a duplicate if
// it arrives within the stream's duplicate window (StreamConfig.DuplicateWindow).
package forwarder

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/eventlog"
)

// ConsumerGroup is the forwarder's consumer group in the log's position table.
const ConsumerGroup = "forwarder"

// Defaults of Config.
const (
	DefaultBatchSize       = 2000
	DefaultPollInterval    = 50 * time.Millisecond
	DefaultAckWait         = 5 * time.Second
	DefaultRetryWait       = 500 * time.Millisecond
	DefaultLagInterval     = 2 * time.Second
	DefaultReplicas        = 1
	DefaultDuplicateWindow = 2 * time.Minute // JetStream's own default
)

// Config tunes the forwarder. Zero values take the defaults above.
type Config struct {
	// BatchSize is how many log events are read, published and acknowledged per position
	// advance. Larger batches amortise the acks' wait and the position's commit.
	BatchSize int
	// PollInterval is the wait before reading again when the log had nothing new.
	PollInterval time.Duration
	// AckWait is how long JetStream has to acknowledge a batch's publishes before the
	// unacknowledged ones are published again (JetStream's own default is 5s).
	AckWait time.Duration
	// RetryWait is the pause before publishing again, and between attempts to reach the
	// database while it is down.
	RetryWait time.Duration
	// LagInterval is how often the lag gauges are refreshed.
	LagInterval time.Duration
	// Stream configures TURNOUT when the forwarder creates it.
	Stream StreamConfig
}

// WithDefaults fills the zero fields with the defaults.
func (c Config) WithDefaults() Config {
	c.BatchSize = cmp.Or(c.BatchSize, DefaultBatchSize)
	c.PollInterval = cmp.Or(c.PollInterval, DefaultPollInterval)
	c.AckWait = cmp.Or(c.AckWait, DefaultAckWait)
	c.RetryWait = cmp.Or(c.RetryWait, DefaultRetryWait)
	c.LagInterval = cmp.Or(c.LagInterval, DefaultLagInterval)
	c.Stream.Replicas = cmp.Or(c.Stream.Replicas, DefaultReplicas)
	c.Stream.DuplicateWindow = cmp.Or(c.Stream.DuplicateWindow, DefaultDuplicateWindow)
	return c
}

// Validate reports every bad value, named by its field.
func (c Config) Validate() error {
	var errs []error
	if c.BatchSize < 1 {
		errs = append(errs, errors.New("BatchSize must be at least 1"))
	}
	if c.Stream.Replicas < 1 || c.Stream.Replicas > 5 {
		errs = append(errs, fmt.Errorf("Stream.Replicas must be 1 to 5 (JetStream's limit), got %d", c.Stream.Replicas))
	}
	// A re-publish after an ack timeout must still fall inside the duplicate window, or a
	// slow ack becomes a stored duplicate.
	if c.Stream.DuplicateWindow < 2*(c.AckWait+c.RetryWait) {
		errs = append(errs, fmt.Errorf("Stream.DuplicateWindow (%v) must be at least twice AckWait+RetryWait (%v)",
			c.Stream.DuplicateWindow, c.AckWait+c.RetryWait))
	}
	return errors.Join(errs...)
}

// Forwarder forwards the log to JetStream. One Run at a time per Forwarder; several
// forwarder processes may run (a standby), but only the one holding the position's lock
// advances it, and the others' publishes are duplicates within the window.
type Forwarder struct {
	pool    *pgxpool.Pool
	pub     *Publisher
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
}

// New returns a forwarder reading pool's log and publishing with pub.
func New(pool *pgxpool.Pool, pub *Publisher, cfg Config, logger *slog.Logger, m *Metrics) *Forwarder {
	return &Forwarder{pool: pool, pub: pub, cfg: cfg.WithDefaults(), log: logger, metrics: m}
}

// batch is a run of log events read after from, ending at end.
type batch struct {
	from, end eventlog.Position
	msgs      []Message
	oldest    time.Time
}

// Run forwards until ctx ends, and returns nil then. The database or NATS being away is
// waited out, never an error: nothing is skipped, the position simply stays. The one
// error is a log holding rows this cluster cannot have written (eventlog.ErrAhead).
func (f *Forwarder) Run(ctx context.Context) error {
	pos, err := retry(ctx, f, func() (eventlog.Position, error) {
		return eventlog.ReadPosition(ctx, f.pool, ConsumerGroup)
	})
	if err != nil {
		return nil // ctx ended while the database was away
	}
	// Rows the visibility rule would hide for good must stop us rather than be skipped.
	var ahead error
	if _, err := retry(ctx, f, func() (struct{}, error) {
		err := eventlog.Ahead(ctx, f.pool)
		if errors.Is(err, eventlog.ErrAhead) {
			ahead = err // reported below, not waited out
			return struct{}{}, nil
		}
		return struct{}{}, err
	}); err != nil {
		return nil
	}
	if ahead != nil {
		return fmt.Errorf("check the log: %w", ahead)
	}
	f.log.Info("forwarder starting", slog.String("position", pos.String()))

	// A reader goroutine stays one batch ahead of the publisher, so reading batch k+1
	// overlaps with waiting for batch k's acks.
	batches := make(chan batch, 1)
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	go f.read(readCtx, pos, batches)

	var committed atomic.Pointer[eventlog.Position]
	committed.Store(&pos)
	lagCtx, stopLag := context.WithCancel(ctx)
	defer stopLag()
	go f.watchLag(lagCtx, &committed)

	for {
		var b batch
		select {
		case <-ctx.Done():
			return nil
		case b = <-batches:
		}
		if err := f.pub.Publish(ctx, b.msgs, f.cfg.AckWait, f.cfg.RetryWait); err != nil {
			return nil // ctx ended: the position stays before this batch
		}
		if _, err := retry(ctx, f, func() (struct{}, error) { return struct{}{}, f.advance(ctx, b.end) }); err != nil {
			return nil
		}
		f.metrics.Forwarded.Add(float64(len(b.msgs)))
		committed.Store(&b.end)
	}
}

// read sends batches of committed events in log order, each starting where the previous
// one ended.
func (f *Forwarder) read(ctx context.Context, pos eventlog.Position, out chan<- batch) {
	for {
		recs, err := retry(ctx, f, func() ([]eventlog.Record, error) {
			return eventlog.ReadCommitted(ctx, f.pool, pos, f.cfg.BatchSize)
		})
		if err != nil {
			return
		}
		if len(recs) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(f.cfg.PollInterval):
			}
			continue
		}
		b := batch{from: pos, end: recs[len(recs)-1].Position, msgs: make([]Message, len(recs)), oldest: recs[0].ReceivedAt}
		for i, r := range recs {
			b.msgs[i] = Message{
				EventName:  r.EventName,
				EventKey:   r.EventKey,
				Position:   r.Position.String(),
				ReceivedAt: r.ReceivedAt,
				Payload:    r.Payload,
			}
		}
		select {
		case <-ctx.Done():
			return
		case out <- b:
		}
		pos = b.end
	}
}

// advance moves the position to end, in a transaction that holds the position's lock.
// It only ever moves forward: a position already past end (another forwarder's work) is
// left as it is.
func (f *Forwarder) advance(ctx context.Context, end eventlog.Position) error {
	return pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
		cur, err := eventlog.LockPosition(ctx, tx, ConsumerGroup)
		if err != nil {
			return err
		}
		if cur.Compare(end) >= 0 {
			return nil
		}
		return eventlog.AdvancePosition(ctx, tx, ConsumerGroup, end)
	})
}

// watchLag refreshes the lag gauges from the latest committed position.
func (f *Forwarder) watchLag(ctx context.Context, committed *atomic.Pointer[eventlog.Position]) {
	t := time.NewTicker(f.cfg.LagInterval)
	defer t.Stop()
	for {
		lag, err := eventlog.LagAfter(ctx, f.pool, *committed.Load())
		if err == nil {
			f.metrics.LagEvents.Set(float64(lag.Events))
			f.metrics.LagSeconds.Set(lag.Seconds)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// retry calls fn until it succeeds or ctx ends, waiting RetryWait between attempts. Every
// failure is a database error the forwarder waits out; it is logged at most once per
// outage, with the count when it ends.
func retry[T any](ctx context.Context, f *Forwarder, fn func() (T, error)) (T, error) {
	failures := 0
	for {
		v, err := fn()
		if err == nil {
			if failures > 0 {
				f.log.Info("database back", slog.Int("failed_attempts", failures))
			}
			return v, nil
		}
		if ctx.Err() != nil {
			return v, ctx.Err()
		}
		if failures == 0 {
			f.log.Warn("database unavailable, waiting", slog.String("error", err.Error()))
		}
		failures++
		f.metrics.Waits.WithLabelValues("database").Inc()
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(f.cfg.RetryWait):
		}
	}
}
