// Package projector keeps the analytics schema up to date from the event log.
//
// Live, it is a Watermill router over the watermill-sql subscriber: each message is applied
// with internal/projections inside the subscriber's own transaction (the one that writes
// the consumer offset), under a savepoint, so the projection and the offset commit
// together and a failed message leaves nothing behind. A message that still fails after a
// few retries is parked in analytics._parked, so one poison event cannot stop the stream.
//
// A rebuild builds every projection from the whole log into a shadow schema in short
// batches while readers keep using analytics, then swaps the shadow in and moves the live
// consumer's offset in one transaction. Status reports positions, lag and parked events.
package projector

import (
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Schema names and the consumer group.
const (
	// Schema is the schema readers query.
	Schema = "analytics"
	// ShadowSchema is where a rebuild builds the projections before swapping them in.
	ShadowSchema = "analytics_rebuild"
	// ConsumerGroup is the live subscriber's consumer group in eventlog.OffsetsTable.
	ConsumerGroup = "projector"
)

// Config tunes the projector. Zero values take the documented defaults.
type Config struct {
	// PollInterval is how long the live subscriber waits before querying again after
	// finding no new rows. Default 50ms: the target is 500ms p99 from ingest to analytics.
	PollInterval time.Duration
	// BatchSize is how many log rows the live subscriber reads per transaction. Default 100.
	BatchSize int
	// MaxRetries is how often a failed message is retried before it is parked (0: parked
	// on the first failure). cmd/projector defaults it to 3.
	MaxRetries int
	// RetryInterval is the first backoff between retries (doubling, capped at 10×). Default 20ms.
	RetryInterval time.Duration
	// RebuildBatchSize is how many log rows a rebuild applies per transaction. Default 50000.
	RebuildBatchSize int
	// LagInterval is how often the lag gauges are refreshed. Default 2s.
	LagInterval time.Duration
}

func (c Config) withDefaults() Config {
	if c.PollInterval <= 0 {
		c.PollInterval = 50 * time.Millisecond
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 20 * time.Millisecond
	}
	if c.RebuildBatchSize <= 0 {
		c.RebuildBatchSize = 50000
	}
	if c.LagInterval <= 0 {
		c.LagInterval = 2 * time.Second
	}
	return c
}

// Projector runs the live projection and rebuilds. It is safe to use one Projector for
// one Run at a time; Rebuild may be called from another process concurrently.
type Projector struct {
	pool    *pgxpool.Pool
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
}

// New returns a projector over pool. metrics may be shared with an HTTP /metrics handler.
func New(pool *pgxpool.Pool, cfg Config, logger *slog.Logger, metrics *Metrics) *Projector {
	return &Projector{pool: pool, cfg: cfg.withDefaults(), log: logger, metrics: metrics}
}
