package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/turnout-analytics/turnout/internal/projector"
	"github.com/turnout-analytics/turnout/internal/rebuild"
)

// defaultAddr is PROJECTOR_ADDR's default.
const defaultAddr = ":8081"

// config is everything the projector reads from its environment, read once.
type config struct {
	// DatabaseURL (DATABASE_URL, required) is the PostgreSQL URL of the event log and analytics.
	DatabaseURL string
	// Addr (PROJECTOR_ADDR) serves /healthz and /metrics in live mode.
	Addr string
	// Projector holds the tunables (see envUsage and projector.Config), defaults applied
	// and validated.
	Projector projector.Config
}

// envUsage documents the environment, defaults taken from where they are defined.
var envUsage = fmt.Sprintf(`Environment:
  DATABASE_URL              postgres:// URL (required)
  PROJECTOR_ADDR            /healthz and /metrics in live mode (default %s)
  PROJECTOR_POLL_INTERVAL   wait between polls when the log has nothing new (default %v)
  PROJECTOR_MIN_BATCH       smallest adaptive batch limit, log rows (default %d)
  PROJECTOR_BATCH_SIZE      largest adaptive batch limit, log rows per transaction (default %d)
  PROJECTOR_BATCH_TARGET    batch duration the limit adapts to (default %v)
  PROJECTOR_BATCH_DEADLINE  longest a batch transaction may take, retries included (default %v)
  PROJECTOR_MAX_RETRIES     retries of a transiently failing batch; data errors park at once (default %d)
  PROJECTOR_RETRY_INTERVAL  first backoff between retries, doubling to 10x (default %v)
  PROJECTOR_LAG_INTERVAL    refresh period of the lag and parked-events gauges (default %v)
  REBUILD_BATCH_SIZE        log rows per rebuild transaction (default %d)
The retries' total backoff must be at most half of PROJECTOR_BATCH_DEADLINE, and
PROJECTOR_BATCH_TARGET shorter than it.
`, defaultAddr, projector.DefaultPollInterval, projector.DefaultMinBatch, projector.DefaultMaxBatch,
	projector.DefaultBatchTarget, projector.DefaultBatchDeadline, projector.DefaultMaxRetries,
	projector.DefaultRetryInterval, projector.DefaultLagInterval, rebuild.DefaultBatchSize)

// loadConfig reads the environment, reporting every missing or bad variable by name.
func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		DatabaseURL: getenv("DATABASE_URL"),
		Addr:        getenv("PROJECTOR_ADDR"),
	}
	var errs []error
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL is required"))
	}
	if c.Addr == "" {
		c.Addr = defaultAddr
	}
	duration := func(name string) time.Duration {
		v := getenv(name)
		if v == "" {
			return 0 // the default
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be a positive duration such as 50ms, got %q", name, v))
			return 0
		}
		return d
	}
	integer := func(name string, def, minimum int) int {
		v := getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < minimum {
			errs = append(errs, fmt.Errorf("%s must be an integer ≥ %d, got %q", name, minimum, v))
			return def
		}
		return n
	}
	c.Projector = projector.Config{
		PollInterval:  duration("PROJECTOR_POLL_INTERVAL"),
		MinBatch:      integer("PROJECTOR_MIN_BATCH", 0, 1),
		MaxBatch:      integer("PROJECTOR_BATCH_SIZE", 0, 1),
		BatchTarget:   duration("PROJECTOR_BATCH_TARGET"),
		BatchDeadline: duration("PROJECTOR_BATCH_DEADLINE"),
		MaxRetries:    integer("PROJECTOR_MAX_RETRIES", projector.DefaultMaxRetries, 0),
		RetryInterval: duration("PROJECTOR_RETRY_INTERVAL"),
		LagInterval:   duration("PROJECTOR_LAG_INTERVAL"),
		Rebuild:       rebuild.Config{BatchSize: integer("REBUILD_BATCH_SIZE", 0, 1)},
	}.WithDefaults()
	if len(errs) == 0 {
		// Cross-field rules, once every value is known; named by variable.
		if err := c.Projector.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("PROJECTOR_* settings: %w", err))
		}
	}
	if len(errs) > 0 {
		return config{}, fmt.Errorf("read configuration: %w", errors.Join(errs...))
	}
	return c, nil
}
