package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/turnout-analytics/turnout/internal/forwarder"
)

// Defaults of the variables that are not forwarder.Config's.
const (
	defaultNATSURL = "nats://127.0.0.1:4222"
	defaultAddr    = ":8082"
)

// config is everything the forwarder reads from its environment and flags, once, at start.
type config struct {
	DatabaseURL string     // DATABASE_URL, required
	NATSURL     string     // NATS_URL, default defaultNATSURL; several servers comma-separated
	Addr        string     // FORWARDER_ADDR, default defaultAddr: /healthz and /metrics
	LogLevel    slog.Level // LOG_LEVEL: debug | info (default) | warn | error
	Migrate     bool       // -migrate, default true
	// Forwarder holds the tunables (defaults in internal/forwarder):
	//   FORWARDER_STREAM_REPLICAS   default 1     replicas of TURNOUT when the forwarder creates it
	//   FORWARDER_DUPLICATE_WINDOW  default 2m    TURNOUT's duplicate window when created
	//   FORWARDER_BATCH_SIZE        default 2000  events per publish-and-advance
	//   FORWARDER_ACK_WAIT          default 5s    before unacknowledged publishes are sent again
	//   FORWARDER_RETRY_WAIT        default 500ms between attempts while NATS or the database is away
	//   FORWARDER_POLL_INTERVAL     default 50ms  wait when the log has nothing new
	Forwarder forwarder.Config
}

const usageText = `Usage: forwarder [-migrate=false]

Publishes every event of the log, in log order, to the NATS JetStream stream TURNOUT
(subject turnout.events.<eventName>, Nats-Msg-Id = eventKey).

Environment:
  DATABASE_URL                postgres:// URL (required)
  NATS_URL                    NATS server URL(s), comma-separated (default nats://127.0.0.1:4222)
  FORWARDER_ADDR              listen address of /healthz and /metrics (default :8082)
  FORWARDER_STREAM_REPLICAS   replicas of the stream when the forwarder creates it (default 1)
  FORWARDER_DUPLICATE_WINDOW  the stream's duplicate window when created (default 2m)
  FORWARDER_BATCH_SIZE        events per publish-and-advance (default 2000)
  FORWARDER_ACK_WAIT          wait for JetStream's acks before publishing again (default 5s)
  FORWARDER_RETRY_WAIT        pause between attempts while NATS or the database is away (default 500ms)
  FORWARDER_POLL_INTERVAL     wait when the log has nothing new (default 50ms)
  LOG_LEVEL                   debug | info | warn | error (default info)

Flags:`

// loadConfig reads the configuration, reporting every missing or bad variable by name in
// one error. URLs never appear in an error: they may hold passwords.
func loadConfig(args []string, getenv func(string) string, usage io.Writer) (config, error) {
	cfg := config{LogLevel: slog.LevelInfo}
	fs := flag.NewFlagSet("forwarder", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.BoolVar(&cfg.Migrate, "migrate", true, "apply database migrations at start")
	fs.Usage = func() {
		fmt.Fprintln(usage, usageText)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	var errs []error
	cfg.DatabaseURL = getenv("DATABASE_URL")
	if cfg.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL is required"))
	}
	cfg.NATSURL = cmp.Or(getenv("NATS_URL"), defaultNATSURL)
	for _, u := range strings.Split(cfg.NATSURL, ",") {
		if p, err := url.Parse(strings.TrimSpace(u)); err != nil || p.Host == "" {
			errs = append(errs, errors.New("NATS_URL must be one or more nats://host:port URLs, comma-separated"))
			break
		}
	}
	cfg.Addr = cmp.Or(getenv("FORWARDER_ADDR"), defaultAddr)
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := cfg.LogLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("LOG_LEVEL must be debug, info, warn or error, got %q", v))
		}
	}
	duration := func(name string) time.Duration {
		v := getenv(name)
		if v == "" {
			return 0 // the default
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be a positive duration such as 500ms, got %q", name, v))
			return 0
		}
		return d
	}
	integer := func(name string, lo, hi int) int {
		v := getenv(name)
		if v == "" {
			return 0 // the default
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			errs = append(errs, fmt.Errorf("%s must be an integer from %d to %d, got %q", name, lo, hi, v))
			return 0
		}
		return n
	}
	cfg.Forwarder = forwarder.Config{
		BatchSize:    integer("FORWARDER_BATCH_SIZE", 1, 100_000),
		PollInterval: duration("FORWARDER_POLL_INTERVAL"),
		AckWait:      duration("FORWARDER_ACK_WAIT"),
		RetryWait:    duration("FORWARDER_RETRY_WAIT"),
		Stream: forwarder.StreamConfig{
			Replicas:        integer("FORWARDER_STREAM_REPLICAS", 1, 5),
			DuplicateWindow: duration("FORWARDER_DUPLICATE_WINDOW"),
		},
	}.WithDefaults()
	if len(errs) == 0 {
		// Cross-field rules, named by their variables.
		if err := cfg.Forwarder.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("FORWARDER_DUPLICATE_WINDOW, FORWARDER_ACK_WAIT, FORWARDER_RETRY_WAIT: %w", err))
		}
	}
	if len(errs) > 0 {
		return cfg, errors.Join(errs...)
	}
	return cfg, nil
}
