// Package projector is the live projector: it keeps the analytics schema up to date from
// the event log, in set-based micro-batches.
//
// Each batch is one transaction: lock the consumer position (eventlog.LockPosition), take
// up to a batch of the rows committed after it (eventlog.BatchEnd), apply them with the
// same set-based statements a rebuild uses (projections.ApplyLog), and advance the
// position to the batch's last row. Projection and position commit together. A batch that
// fails because of an event (a data error) is split in halves until the failing events are
// found; those are parked in analytics._parked and the rest applies (rebuild.ApplyRange).
// The batch size adapts: the batch is whatever is committed, up to a limit that doubles
// while batches are full and quick, and halves when one is slow, so a small lag gives small
// batches (latency) and a large one large batches (throughput).
//
// On start it makes sure analytics exists at the current projections version, building it
// from the log when not (internal/rebuild).
package projector

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/projections"
	"github.com/turnout-analytics/turnout/internal/rebuild"
)

// Schema names and the consumer group (see projections and rebuild, which own them).
const (
	Schema        = projections.Schema
	ShadowSchema  = projections.ShadowSchema
	ConsumerGroup = rebuild.ConsumerGroup
)

// Defaults of Config, in one place (cmd/projector's usage text prints them from here).
const (
	DefaultPollInterval  = 10 * time.Millisecond
	DefaultMinBatch      = 100
	DefaultMaxBatch      = 50000
	DefaultBatchTarget   = 2 * time.Second
	DefaultBatchDeadline = 30 * time.Second
	DefaultMaxRetries    = 3
	DefaultRetryInterval = 20 * time.Millisecond
	DefaultLagInterval   = 2 * time.Second
	// MinBatchDeadline is the shortest BatchDeadline allowed: a batch of one row must
	// always fit, on a loaded machine too, or the stream could not move at all.
	MinBatchDeadline = time.Second
)

// Config tunes the live projector. Zero values take the Default* constants; Validate
// checks the rules between fields.
type Config struct {
	// PollInterval is how long the projector waits before looking again after finding no
	// new committed rows. Default 10ms: the freshness target is 100ms p99 at 100/s, and an
	// idle poll is one index probe outside any transaction.
	PollInterval time.Duration
	// MinBatch and MaxBatch bound the adaptive batch limit (rows per transaction). The
	// limit starts at MinBatch. Defaults 100 (or MaxBatch if smaller) and 50000 (a
	// rebuild's batch).
	MinBatch, MaxBatch int
	// BatchTarget is the batch duration the limit adapts to: a full batch quicker than
	// this doubles the limit, a batch slower than twice this halves it. Default 2s: batches
	// are full only when there is a backlog, whose events are late already, and large
	// batches spread each batch's fixed cost (measured: about half a second on a loaded
	// 2-core machine) over more events.
	BatchTarget time.Duration
	// BatchDeadline bounds one batch transaction, retries included (the projector's "ack
	// deadline"): past it the batch is rolled back and tried again, halved. It is also how
	// long a lost database connection can hold a batch. Default 30s.
	BatchDeadline time.Duration
	// MaxRetries is how often a batch that failed transiently (a deadlock, a serialization
	// failure, a lock timeout) is retried inside its transaction before the transaction is
	// rolled back and started over. Events that fail because of their data are not retried:
	// they are parked. Default 3.
	MaxRetries int
	// RetryInterval is the first backoff between retries (doubling, capped at 10×), and
	// after a failed batch. Default 20ms.
	RetryInterval time.Duration
	// LagInterval is how often the lag and parked-events gauges are refreshed. Default 2s.
	LagInterval time.Duration
	// Rebuild tunes the start-up build (see rebuild.Config).
	Rebuild rebuild.Config
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.PollInterval = cmp.Or(c.PollInterval, DefaultPollInterval)
	c.MaxBatch = cmp.Or(c.MaxBatch, DefaultMaxBatch)
	c.MinBatch = cmp.Or(c.MinBatch, min(DefaultMinBatch, c.MaxBatch))
	c.BatchTarget = cmp.Or(c.BatchTarget, DefaultBatchTarget)
	c.BatchDeadline = cmp.Or(c.BatchDeadline, DefaultBatchDeadline)
	c.RetryInterval = cmp.Or(c.RetryInterval, DefaultRetryInterval)
	c.LagInterval = cmp.Or(c.LagInterval, DefaultLagInterval)
	return c
}

// RetryBudget is the longest the retries of one batch can wait in total: the sum of the
// MaxRetries backoffs.
func (c Config) RetryBudget() time.Duration {
	var total time.Duration
	for i := range c.MaxRetries {
		total += c.backoff(i)
	}
	return total
}

// backoff is the wait before retry i (0-based): RetryInterval doubling, capped at 10×.
func (c Config) backoff(i int) time.Duration {
	d := c.RetryInterval
	for range i {
		if d >= 10*c.RetryInterval {
			break
		}
		d *= 2
	}
	return min(d, 10*c.RetryInterval)
}

// Validate reports every problem with c (after WithDefaults), naming the field.
func (c Config) Validate() error {
	var errs []error
	if c.PollInterval < 0 || c.BatchTarget < 0 || c.BatchDeadline < 0 || c.RetryInterval < 0 || c.LagInterval < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if c.BatchDeadline < MinBatchDeadline {
		errs = append(errs, fmt.Errorf("BatchDeadline (%v) must be at least %v", c.BatchDeadline, MinBatchDeadline))
	}
	if c.MinBatch < 1 || c.MaxBatch < c.MinBatch {
		errs = append(errs, fmt.Errorf("MinBatch (%d) must be ≥ 1 and ≤ MaxBatch (%d)", c.MinBatch, c.MaxBatch))
	}
	if c.MaxRetries < 0 {
		errs = append(errs, fmt.Errorf("MaxRetries (%d) must not be negative", c.MaxRetries))
	}
	// The retries of a batch happen inside its transaction, so they must fit inside its
	// deadline with room for the work itself: otherwise the deadline would cut every retry
	// chain short and the batch would be retried from scratch forever.
	if budget := c.RetryBudget(); budget*2 > c.BatchDeadline {
		errs = append(errs, fmt.Errorf("the retry budget (%d retries from %v: %v) must be at most half of BatchDeadline (%v)",
			c.MaxRetries, c.RetryInterval, budget, c.BatchDeadline))
	}
	if c.BatchTarget >= c.BatchDeadline {
		errs = append(errs, fmt.Errorf("BatchTarget (%v) must be shorter than BatchDeadline (%v)", c.BatchTarget, c.BatchDeadline))
	}
	if err := c.Rebuild.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Projector runs the live projection. One Projector runs one Run at a time; a second
// projector process, or a rebuild, waits on the consumer position's lock.
type Projector struct {
	pool    *pgxpool.Pool
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	builder *rebuild.Builder
}

// New returns a projector over pool. cfg must pass Validate after WithDefaults (New
// applies the defaults). metrics may be shared with an HTTP /metrics handler.
func New(pool *pgxpool.Pool, cfg Config, logger *slog.Logger, metrics *Metrics) *Projector {
	cfg = cfg.WithDefaults()
	return &Projector{pool: pool, cfg: cfg, log: logger, metrics: metrics,
		builder: rebuild.New(pool, cfg.Rebuild, logger, metrics.Rebuild)}
}
