// Package ingest is Turnout's front door: the HTTP handlers that receive GoToWebinar
// webhook deliveries, verify their signature, apply the acceptance rule
// (domain.Accept), and append them raw to the event log with their data-quality
// findings; the quarantine for authentic deliveries that cannot be keyed; the bounded
// unverified store for deliveries whose signature does not verify; and Requeue, which
// re-admits from both stores under the current rules and keys.
//
// Appends are group-committed: each request hands its entry to a batcher and is answered
// only after the transaction holding its batch commits, so a 2xx always means "durably in
// the log" and a failure never leaves part of a batch behind. Within that transaction the
// event key is claimed in ingest_event_keys (de-duplicating redeliveries) and the new
// entries are written by Watermill's SQL publisher.
//
// Construct a Service with New from a pgx pool, serve its Handler (NewServer wraps it in
// an http.Server with the timeouts and header limit a public listener needs), and Close
// it after the HTTP server has shut down and before the pool is closed.
package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/turnout-analytics/turnout/internal/webhook"
)

// SignatureMode says what to do with deliveries whose signature is missing or wrong.
type SignatureMode string

const (
	// Enforce refuses unsigned or wrongly signed deliveries with 401. The default.
	Enforce SignatureMode = "enforce"
	// Observe answers unverified deliveries 202 once they are kept in the unverified
	// store (ingest_unverified), instead of 401. Meant for the first days against the
	// live service, while the signature scheme (undocumented by GoTo) is being
	// confirmed. An unverified delivery never enters the log, so it cannot claim an
	// event key an authentic one needs, nor reach analytics, until `ingest requeue`
	// verifies it with the configured keys.
	Observe SignatureMode = "observe"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultMaxBodyBytes    = 1 << 20 // 1 MiB
	DefaultBatchMax        = 256
	DefaultBatchWorkers    = 2
	DefaultBatchStallAfter = 10 * time.Millisecond
	DefaultCommitTimeout   = 10 * time.Second
	DefaultReadyTimeout    = time.Second
	// DefaultReadBudgetBytes bounds the bytes of request bodies being read at once: half
	// for bodies over 16 KiB (8 of the maximum size), half for the rest (2,048 real
	// deliveries of a few KiB each).
	DefaultReadBudgetBytes = 16 << 20
)

// Config configures a Service. Zero fields take the Default* values.
type Config struct {
	// SecretKeys are the GoTo secret key values; a signature made with any of them is
	// accepted (GoTo rotates keys with an overlap). Required in Enforce mode; in Observe
	// mode without keys every delivery is stored unverified.
	SecretKeys [][]byte
	// Mode is Enforce (default) or Observe.
	Mode SignatureMode
	// MaxBodyBytes caps a delivery's body (default 1 MiB); larger ones get 413.
	MaxBodyBytes int64
	// BatchMax is the most deliveries committed in one transaction (default 256).
	BatchMax int
	// BatchWait is how long a worker that already found several queued deliveries
	// lingers for more before committing. The default, 0, never lingers: a batch is
	// whatever queued while the previous commits ran, which measured best under a
	// closed-loop load (lingering only delays the senders that would fill the batch).
	// A lone delivery never waits.
	BatchWait time.Duration
	// BatchWorkers is how many batch transactions may be in flight at once (default 2),
	// of which only one normally is: the next starts when the one in flight ends or has
	// run for BatchStallAfter (see batcher). One transaction at a time makes the largest
	// batches, which cost PostgreSQL the least per delivery (make bench-ingest, issue 14:
	// 31-33 µs of PostgreSQL CPU per delivery, against 50-56 µs with both workers always
	// free to start, and about 15% more deliveries/s); the second worker is there for
	// the batch that stalls, which would otherwise hold up every delivery behind it. The
	// pool needs at least this many connections.
	BatchWorkers int
	// BatchStallAfter is how long a batch transaction may run before another worker
	// starts on the deliveries queued behind it (default 10ms: ten times a usual batch).
	BatchStallAfter time.Duration
	// CommitTimeout bounds one batch transaction (default 10s); keep it below the HTTP
	// server's WriteTimeout so a stuck database yields 503, not a dropped connection.
	CommitTimeout time.Duration
	// ReadyTimeout bounds the database ping of /readyz (default 1s).
	ReadyTimeout time.Duration
	// TimestampTolerance is the replay window: when positive, a delivery whose
	// signature verified but whose X-Webhook-Signature-Timestamp lies further than
	// this from its arrival, does not parse (webhook.ParseTimestamp), or is absent (it
	// cannot be placed in a window) is refused with 401 in Enforce mode (202 in Observe
	// mode) and kept in the unverified store. The default, 0, turns the window off,
	// which it stays until GoTo's timestamp format is confirmed against a live
	// delivery (a wrong guess would refuse every one).
	TimestampTolerance time.Duration
	// RequireTimestamp refuses (401, reason missing_timestamp) a delivery whose
	// signature verifies but that has no X-Webhook-Signature-Timestamp header.
	RequireTimestamp bool
	// ReadBudgetBytes bounds the bytes of request bodies being read at once (default
	// 16 MiB); a delivery that finds it spent is answered 503 (see limits.go).
	ReadBudgetBytes int64
	// UnverifiedMaxRows and UnverifiedMaxBytes bound ingest_unverified (defaults
	// 100,000 rows and 256 MiB); the oldest rows are evicted first.
	UnverifiedMaxRows  int
	UnverifiedMaxBytes int64
}

func (c Config) withDefaults() Config {
	if c.Mode == "" {
		c.Mode = Enforce
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.BatchMax == 0 {
		c.BatchMax = DefaultBatchMax
	}
	if c.BatchWorkers == 0 {
		c.BatchWorkers = DefaultBatchWorkers
	}
	if c.BatchStallAfter == 0 {
		c.BatchStallAfter = DefaultBatchStallAfter
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = DefaultCommitTimeout
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = DefaultReadyTimeout
	}
	if c.ReadBudgetBytes == 0 {
		c.ReadBudgetBytes = DefaultReadBudgetBytes
	}
	if c.UnverifiedMaxRows == 0 {
		c.UnverifiedMaxRows = DefaultUnverifiedMaxRows
	}
	if c.UnverifiedMaxBytes == 0 {
		c.UnverifiedMaxBytes = DefaultUnverifiedMaxBytes
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Mode != Enforce && c.Mode != Observe {
		errs = append(errs, fmt.Errorf("signature mode %q: want %q or %q", c.Mode, Enforce, Observe))
	}
	if c.Mode == Enforce && len(c.SecretKeys) == 0 {
		errs = append(errs, errors.New("secret keys: at least one is required in enforce mode"))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("max body bytes: must be positive"))
	}
	if c.BatchMax < 1 {
		errs = append(errs, errors.New("batch max: must be at least 1"))
	}
	if c.BatchWorkers < 1 {
		errs = append(errs, errors.New("batch workers: must be at least 1"))
	}
	if c.ReadBudgetBytes < 2*c.MaxBodyBytes {
		errs = append(errs, errors.New("read budget bytes: must be at least twice max body bytes"))
	}
	if c.UnverifiedMaxRows < 0 || c.UnverifiedMaxBytes < 0 {
		errs = append(errs, errors.New("unverified store bounds: must not be negative"))
	}
	if c.BatchWait < 0 || c.CommitTimeout < 0 || c.ReadyTimeout < 0 || c.TimestampTolerance < 0 {
		errs = append(errs, errors.New("batch wait, timeouts and timestamp tolerance: must not be negative"))
	}
	return errors.Join(errs...)
}

// Service receives deliveries. It is safe for concurrent use.
type Service struct {
	cfg      Config
	store    *Store
	verifier *webhook.Verifier // nil only in Observe mode without keys
	batcher  *batcher
	metrics  *metrics
	logger   *slog.Logger
	handler  http.Handler
	ops      http.Handler
	reads    readBudget

	unverifiedStore *unverifiedStore
}

// New returns a Service appending to the database behind pool, and starts its batch
// workers. logger receives JSON-able structured logs; it never sees bodies or secrets.
func New(pool *pgxpool.Pool, cfg Config, logger *slog.Logger) (*Service, error) {
	if pool == nil {
		return nil, errors.New("new ingest service: nil pool")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new ingest service: %w", err)
	}
	s := &Service{
		cfg:     cfg,
		store:   NewStore(pool),
		metrics: newMetrics(),
		logger:  logger,
	}
	if len(cfg.SecretKeys) > 0 {
		v, err := webhook.NewVerifier(cfg.SecretKeys...)
		if err != nil {
			return nil, fmt.Errorf("new ingest service: %w", err)
		}
		s.verifier = v
	}
	s.reads = newReadBudget(cfg.ReadBudgetBytes)
	s.batcher = newBatcher(pool, cfg, logger, s.metrics)
	s.unverifiedStore = newUnverifiedStore(pool, cfg, s.metrics, logger)
	s.handler = s.routes()
	s.ops = s.opsRoutes()
	return s, nil
}

// Handler returns the public HTTP handler: the callback (POST, and the GET GoTo checks
// it with) and /healthz.
func (s *Service) Handler() http.Handler { return s.handler }

// OpsHandler returns the operations handler: /healthz, /readyz and /metrics. Serve it on
// a listener of its own, not reachable by webhook senders.
func (s *Service) OpsHandler() http.Handler { return s.ops }

// Registry returns the Prometheus registry behind /metrics, for tests and benchmarks.
func (s *Service) Registry() *prometheus.Registry { return s.metrics.registry }

// Close stops the batch workers after committing everything already queued; later
// deliveries get 503. Call it after http.Server.Shutdown and before closing the pool.
func (s *Service) Close() {
	s.batcher.Close()
	s.unverifiedStore.close()
}
