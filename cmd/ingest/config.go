package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/ingest"
)

// config is everything the binary reads from its environment and flags, once, at start.
type config struct {
	DatabaseURL     string               // DATABASE_URL, required
	SecretKeys      [][]byte             // G2W_SECRET_KEYS, comma-separated; required unless observe
	Mode            ingest.SignatureMode // G2W_SIGNATURE_MODE: enforce (default) | observe
	TSTolerance     time.Duration        // G2W_TIMESTAMP_TOLERANCE: replay window, default 0 (off)
	RequireTS       bool                 // G2W_REQUIRE_TIMESTAMP: refuse deliveries without the header
	Addr            string               // INGEST_ADDR, default defaultAddr
	OpsAddr         string               // INGEST_OPS_ADDR, default defaultOpsAddr
	MaxConns        int                  // INGEST_MAX_CONNS, default ingest.DefaultMaxConns
	UnverifiedRows  int                  // INGEST_UNVERIFIED_MAX_ROWS
	UnverifiedBytes int64                // INGEST_UNVERIFIED_MAX_BYTES
	DebugAddr       string               // INGEST_DEBUG_ADDR: net/http/pprof listener, off when empty
	BatchMax        int                  // INGEST_BATCH_MAX, default ingest.DefaultBatchMax
	BatchWait       time.Duration        // INGEST_BATCH_WAIT, default 0 (never linger)
	BatchWorkers    int                  // INGEST_BATCH_WORKERS, default ingest.DefaultBatchWorkers
	BatchStall      time.Duration        // INGEST_BATCH_STALL_AFTER, default ingest.DefaultBatchStallAfter
	ShutdownTimeout time.Duration        // INGEST_SHUTDOWN_TIMEOUT, default 20s
	LogLevel        slog.Level           // LOG_LEVEL: debug | info (default) | warn | error
	Migrate         bool                 // -migrate, default true
}

// Default listen addresses: webhooks on the public one, /metrics and /readyz on the
// operations one (keep it off the Internet).
const (
	defaultAddr    = ":8080"
	defaultOpsAddr = ":9090"
)

// maxTimestampTolerance bounds G2W_TIMESTAMP_TOLERANCE: a wider window protects nothing.
const maxTimestampTolerance = 24 * time.Hour

// loadConfig reads the configuration, reporting every missing or bad variable by name in
// one error. Secrets never appear in the error.
func loadConfig(args []string, getenv func(string) string, usage io.Writer) (config, error) {
	cfg := config{
		Addr:            defaultAddr,
		OpsAddr:         defaultOpsAddr,
		MaxConns:        ingest.DefaultMaxConns,
		UnverifiedRows:  ingest.DefaultUnverifiedMaxRows,
		UnverifiedBytes: ingest.DefaultUnverifiedMaxBytes,
		Mode:            ingest.Enforce,
		BatchMax:        ingest.DefaultBatchMax,
		BatchWorkers:    ingest.DefaultBatchWorkers,
		ShutdownTimeout: 20 * time.Second,
		LogLevel:        slog.LevelInfo,
	}
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.BoolVar(&cfg.Migrate, "migrate", true, "apply database migrations at start")
	fs.Usage = func() {
		fmt.Fprintln(usage, `Usage: ingest [-migrate=false]
       ingest requeue [-dry-run] [-reason R] [-since T]   (ingest requeue -h)

Receives GoToWebinar webhooks and appends them to the event log.

Environment:
  DATABASE_URL             postgres:// URL (required)
  G2W_SECRET_KEYS          comma-separated GoTo secret key values (required unless observe)
  G2W_SIGNATURE_MODE       enforce (default) | observe
  G2W_TIMESTAMP_TOLERANCE  replay window for the signed timestamp, e.g. 5m (default 0: off,
                           until GoTo's timestamp format is confirmed live)
  G2W_REQUIRE_TIMESTAMP    true: refuse deliveries without X-Webhook-Signature-Timestamp
                           (default false; always refused while the window is on)
  INGEST_ADDR              listen address of the webhook callback (default :8080)
  INGEST_OPS_ADDR          listen address of /metrics, /readyz, /healthz (default :9090)
  INGEST_MAX_CONNS         connections held on INGEST_ADDR (default 1024)
  INGEST_UNVERIFIED_MAX_ROWS   bound of the unverified store (default 100000)
  INGEST_UNVERIFIED_MAX_BYTES  bound of the unverified store in bytes (default 268435456)
  INGEST_DEBUG_ADDR        serve Go's pprof profiles here, e.g. 127.0.0.1:6060 (default: off)
  INGEST_BATCH_MAX         deliveries per commit (default 256)
  INGEST_BATCH_WAIT        linger for more under load, e.g. 1ms (default 0: never)
  INGEST_BATCH_WORKERS     most batch commits at once (default 2; one at a time unless stalled)
  INGEST_BATCH_STALL_AFTER a batch running this long lets another worker start (default 10ms)
  INGEST_SHUTDOWN_TIMEOUT  drain deadline on SIGTERM (default 20s)
  LOG_LEVEL                debug | info | warn | error (default info)

Flags:`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	var errs []error
	bad := func(name, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, a...)...))
	}

	cfg.DatabaseURL = strings.TrimSpace(getenv("DATABASE_URL"))
	if cfg.DatabaseURL == "" {
		bad("DATABASE_URL", "required")
	} else if u, err := url.Parse(cfg.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// The URL may hold a password: describe the problem, never echo the value.
		bad("DATABASE_URL", "must be a postgres:// URL")
	} else if _, err := pgxpool.ParseConfig(cfg.DatabaseURL); err != nil {
		bad("DATABASE_URL", "not a valid connection URL")
	}

	if v := getenv("G2W_SIGNATURE_MODE"); v != "" {
		switch m := ingest.SignatureMode(strings.ToLower(strings.TrimSpace(v))); m {
		case ingest.Enforce, ingest.Observe:
			cfg.Mode = m
		default:
			bad("G2W_SIGNATURE_MODE", "%q is not enforce or observe", v)
		}
	}

	if v := getenv("G2W_SECRET_KEYS"); strings.TrimSpace(v) != "" {
		for i, k := range strings.Split(v, ",") {
			k = strings.TrimSpace(k)
			if k == "" {
				bad("G2W_SECRET_KEYS", "entry %d is empty", i+1)
				continue
			}
			cfg.SecretKeys = append(cfg.SecretKeys, []byte(k))
		}
	} else if cfg.Mode == ingest.Enforce {
		bad("G2W_SECRET_KEYS", "required unless G2W_SIGNATURE_MODE=observe")
	}

	durationVar(getenv, "G2W_TIMESTAMP_TOLERANCE", &cfg.TSTolerance, 0, maxTimestampTolerance, bad)
	if v := getenv("G2W_REQUIRE_TIMESTAMP"); v != "" {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			bad("G2W_REQUIRE_TIMESTAMP", "%q is not true or false", v)
		}
		cfg.RequireTS = b
	}

	if v := getenv("INGEST_ADDR"); v != "" {
		cfg.Addr = v
	}
	if v := getenv("INGEST_OPS_ADDR"); v != "" {
		cfg.OpsAddr = v
	}
	intVar(getenv, "INGEST_MAX_CONNS", &cfg.MaxConns, 16, 1<<20, bad)
	intVar(getenv, "INGEST_UNVERIFIED_MAX_ROWS", &cfg.UnverifiedRows, 1, 100_000_000, bad)
	var ubytes = int(cfg.UnverifiedBytes)
	intVar(getenv, "INGEST_UNVERIFIED_MAX_BYTES", &ubytes, ingest.DefaultMaxBodyBytes, 1<<40, bad)
	cfg.UnverifiedBytes = int64(ubytes)
	cfg.DebugAddr = getenv("INGEST_DEBUG_ADDR")
	intVar(getenv, "INGEST_BATCH_MAX", &cfg.BatchMax, 1, 10000, bad)
	intVar(getenv, "INGEST_BATCH_WORKERS", &cfg.BatchWorkers, 1, 64, bad)
	durationVar(getenv, "INGEST_BATCH_WAIT", &cfg.BatchWait, 0, 100*time.Millisecond, bad)
	durationVar(getenv, "INGEST_BATCH_STALL_AFTER", &cfg.BatchStall, 100*time.Microsecond, time.Minute, bad)
	durationVar(getenv, "INGEST_SHUTDOWN_TIMEOUT", &cfg.ShutdownTimeout, time.Second, 10*time.Minute, bad)
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := cfg.LogLevel.UnmarshalText([]byte(v)); err != nil {
			bad("LOG_LEVEL", "%q is not debug, info, warn or error", v)
		}
	}
	return cfg, errors.Join(errs...)
}

func intVar(getenv func(string) string, name string, dst *int, lo, hi int, bad func(string, string, ...any)) {
	v := getenv(name)
	if v == "" {
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		bad(name, "%q is not an integer in [%d, %d]", v, lo, hi)
		return
	}
	*dst = n
}

func durationVar(getenv func(string) string, name string, dst *time.Duration, lo, hi time.Duration, bad func(string, string, ...any)) {
	v := getenv(name)
	if v == "" {
		return
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d < lo || d > hi {
		bad(name, "%q is not a duration in [%s, %s]", v, lo, hi)
		return
	}
	*dst = d
}

// serviceConfig is the ingest.Config the binary runs with.
func (c config) serviceConfig() ingest.Config {
	return ingest.Config{
		SecretKeys:         c.SecretKeys,
		Mode:               c.Mode,
		TimestampTolerance: c.TSTolerance,
		RequireTimestamp:   c.RequireTS,
		UnverifiedMaxRows:  c.UnverifiedRows,
		UnverifiedMaxBytes: c.UnverifiedBytes,
		BatchMax:           c.BatchMax,
		BatchWait:          c.BatchWait,
		BatchWorkers:       c.BatchWorkers,
		BatchStallAfter:    c.BatchStall,
	}
}
