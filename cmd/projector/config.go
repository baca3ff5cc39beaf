package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/turnout-analytics/turnout/internal/projector"
)

// config is everything the projector reads from its environment, read once.
type config struct {
	// DatabaseURL (DATABASE_URL, required) is the PostgreSQL URL of the event log and analytics.
	DatabaseURL string
	// Addr (PROJECTOR_ADDR, default ":8081") serves /healthz and /metrics in live mode.
	Addr string
	// Projector holds the tunables:
	//   PROJECTOR_POLL_INTERVAL   default 50ms  wait between polls when the log has nothing new
	//   PROJECTOR_BATCH_SIZE      default 100   log rows per live subscriber transaction
	//   PROJECTOR_MAX_RETRIES     default 3     retries of a failing event before it is parked
	//   PROJECTOR_RETRY_INTERVAL  default 20ms  first backoff between retries (doubles)
	//   PROJECTOR_LAG_INTERVAL    default 2s    refresh period of the lag gauges
	//   REBUILD_BATCH_SIZE        default 50000 log rows per rebuild transaction
	Projector projector.Config
}

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
		c.Addr = ":8081"
	}
	duration := func(name string, def time.Duration) time.Duration {
		v := getenv(name)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be a positive duration such as 50ms, got %q", name, v))
			return def
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
		PollInterval:     duration("PROJECTOR_POLL_INTERVAL", 50*time.Millisecond),
		BatchSize:        integer("PROJECTOR_BATCH_SIZE", 100, 1),
		MaxRetries:       integer("PROJECTOR_MAX_RETRIES", 3, 0),
		RetryInterval:    duration("PROJECTOR_RETRY_INTERVAL", 20*time.Millisecond),
		LagInterval:      duration("PROJECTOR_LAG_INTERVAL", 2*time.Second),
		RebuildBatchSize: integer("REBUILD_BATCH_SIZE", 50000, 1),
	}
	if len(errs) > 0 {
		return config{}, fmt.Errorf("read configuration: %w", errors.Join(errs...))
	}
	return c, nil
}
