// Package rebuild builds the analytics schema from the whole event log, and reports the
// projections' status.
//
// A rebuild builds every projection into a shadow schema (projections.ShadowSchema) in
// short batches, each its own transaction recording its position in the shadow's
// _progress, while readers keep using analytics; it then swaps the shadow in and moves the
// live projector's position to the last row applied, in one transaction. An interrupted
// rebuild resumes from _progress. It applies the log with the same set-based statements as
// the live projector (internal/projections), so rebuild equals live by construction.
package rebuild

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// ConsumerGroup is the live projector's position in the log (eventlog), which the swap
// moves to where the rebuild ended.
const ConsumerGroup = "projector"

// LockKey is the advisory lock that serialises rebuilds, the live projector's start-up
// build and erasure across processes.
const LockKey = 7_406_113_501

// PrefetchPrefix names the unlogged tables that hold parsed, not yet applied batches in the
// shadow schema.
const PrefetchPrefix = "_prefetch_"

// DefaultBatchSize is Config.BatchSize's default.
const DefaultBatchSize = 50000

// Config tunes rebuilds. Zero values take the defaults.
type Config struct {
	// BatchSize is how many log rows a rebuild applies per transaction. Default
	// DefaultBatchSize: large enough that per-statement costs vanish, small enough that a
	// batch's sorts stay in memory and an interrupted rebuild loses little.
	BatchSize int
}

// Validate reports what is wrong with c, naming the field.
func (c Config) Validate() error {
	if c.BatchSize < 0 {
		return errors.New("rebuild BatchSize must not be negative")
	}
	return nil
}

func (c Config) withDefaults() Config {
	c.BatchSize = cmp.Or(c.BatchSize, DefaultBatchSize)
	return c
}

// Metrics are a rebuild's Prometheus instruments.
type Metrics struct {
	Progress prometheus.Gauge
	Events   prometheus.Counter
}

// NewMetrics creates the rebuild metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Progress: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "turnout_projector_rebuild_progress_ratio",
			Help: "Progress of the running rebuild, 0..1 (1 when none is running).",
		}),
		Events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "turnout_projector_rebuild_events_total",
			Help: "Events applied to the shadow schema by rebuilds.",
		}),
	}
	m.Progress.Set(1)
	reg.MustRegister(m.Progress, m.Events)
	return m
}

// Builder runs rebuilds over one pool.
type Builder struct {
	pool    *pgxpool.Pool
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
}

// New returns a Builder. cfg must be valid (Config.Validate).
func New(pool *pgxpool.Pool, cfg Config, logger *slog.Logger, metrics *Metrics) *Builder {
	return &Builder{pool: pool, cfg: cfg.withDefaults(), log: logger, metrics: metrics}
}

// schemaExistsSQL tells whether a schema exists.
const schemaExistsSQL = `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`

// SchemaExists tells whether schema exists.
func SchemaExists(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, schema string) (bool, error) {
	var ok bool
	if err := q.QueryRow(ctx, schemaExistsSQL, schema).Scan(&ok); err != nil {
		return false, fmt.Errorf("look up schema %s: %w", schema, err)
	}
	return ok, nil
}

// ident quotes a schema name.
func ident(schema string) string { return pgx.Identifier{schema}.Sanitize() }
