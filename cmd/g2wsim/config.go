package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/turnout-analytics/turnout/internal/envflag"
	"github.com/turnout-analytics/turnout/internal/g2wsim"
)

// config is everything g2wsim reads from its flags and environment, once, at start. A flag
// wins over its variable, which wins over the default.
type config struct {
	Addr              string        // -listen, G2WSIM_ADDR; default 127.0.0.1:8095
	ClientID          string        // -client-id, G2WSIM_CLIENT_ID; required
	ClientSecret      string        // -client-secret, G2WSIM_CLIENT_SECRET; required (prefer the variable)
	TokenLifetime     time.Duration // -token-lifetime, G2WSIM_TOKEN_LIFETIME; default 60m
	APIRate           int           // -api-rate, G2WSIM_API_RATE: 429 above this many requests/s; 0 off
	Organizers        int           // -organizers, G2WSIM_ORGANIZERS: organizers of the account; default 1
	VisibilityDelay   time.Duration // -visibility-delay, G2WSIM_VISIBILITY_DELAY: before new records show; default 1s
	FailureRate       float64       // -failure-rate, G2WSIM_FAILURE_RATE: fraction of API requests answered 503
	ThrottleRate      float64       // -throttle-rate, G2WSIM_THROTTLE_RATE: fraction answered 429
	InsecureCallbacks bool          // -insecure-callbacks, G2WSIM_INSECURE_CALLBACKS: http callbacks on any host
	Seed              uint64        // -seed, G2WSIM_SEED: scenario seed for POST /_sim/deliver; default 1
	Webinars          int           // -webinars, G2WSIM_WEBINARS: scenario size; 0 (default) the small fixed one
	Registrants       int           // -registrants, G2WSIM_REGISTRANTS: mean per webinar; default 20
	JoinRate          float64       // -join-rate, G2WSIM_JOIN_RATE: chance an approved registrant joins; default 0.6
	Rate              float64       // -rate, G2WSIM_RATE: deliveries/s; 0 unlimited
	Concurrency       int           // -concurrency, G2WSIM_CONCURRENCY; default 4
	Duplicates        float64       // -duplicates, G2WSIM_DUPLICATES: fraction redelivered, 0..1
	Shuffle           bool          // -shuffle, G2WSIM_SHUFFLE: deliver in random order
	Drop              float64       // -drop, G2WSIM_DROP: fraction of events never delivered, 0..1
	ShutdownTimeout   time.Duration // G2WSIM_SHUTDOWN_TIMEOUT; default 10s
	LogLevel          slog.Level    // LOG_LEVEL; default info
}

const usageText = `Usage: g2wsim [flags]

A local GoToWebinar: the Webhooks Management API under /G2W/rest/v2 (g2wctl's base URL:
http://ADDR/G2W/rest/v2), OAuth2 at /oauth/authorize and /oauth/token, and deliveries of a
generated scenario to the webhooks set up, on POST /_sim/deliver (answers a JSON report with
the expected conversion figures). The query parameters seed, webinars, registrants and
join_rate override the flags below for one run:
  curl -X POST 'http://ADDR/_sim/deliver?webinars=1000&registrants=50&join_rate=0.4'
With -rate and -concurrency this makes g2wsim a load generator.

Each flag can also be set by the environment variable named in brackets; the flag wins.
LOG_LEVEL (debug | info | warn | error) sets the log level.

Flags:`

// maxOrganizers bounds G2WSIM_ORGANIZERS: a demo account, not a directory.
const maxOrganizers = 1000

// loadConfig reads the configuration, reporting every missing or bad value by name in one
// error. The client secret never appears in an error.
func loadConfig(args []string, getenv func(string) string, usage io.Writer) (config, error) {
	cfg := config{Addr: "127.0.0.1:8095", TokenLifetime: 60 * time.Minute, Seed: 1, Concurrency: 4, Organizers: 1,
		VisibilityDelay: g2wsim.DefaultVisibilityDelay,
		Registrants:     20, JoinRate: 0.6, ShutdownTimeout: 10 * time.Second, LogLevel: slog.LevelInfo}
	fs := flag.NewFlagSet("g2wsim", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.Usage = func() {
		fmt.Fprintln(usage, usageText)
		fs.PrintDefaults()
	}
	env := envflag.New(fs, getenv)
	env.String(&cfg.Addr, "listen", "G2WSIM_ADDR", "listen address")
	env.String(&cfg.ClientID, "client-id", "G2WSIM_CLIENT_ID", "OAuth client id (required)")
	env.Secret(&cfg.ClientSecret, "client-secret", "G2WSIM_CLIENT_SECRET", "OAuth client secret (required; prefer the variable)")
	env.Duration(&cfg.TokenLifetime, "token-lifetime", "G2WSIM_TOKEN_LIFETIME", "access token lifetime")
	env.Int(&cfg.APIRate, 0, 0, "api-rate", "G2WSIM_API_RATE", "answer 429 above this many management requests per second (0: off; live GoTo: 10)")
	env.Int(&cfg.Organizers, 1, maxOrganizers, "organizers", "G2WSIM_ORGANIZERS", "organizers of the account (organizer<k>@example.com); the scenario's webinars are shared among them")
	env.Duration(&cfg.VisibilityDelay, "visibility-delay", "G2WSIM_VISIBILITY_DELAY", "how long a new webhook or subscription stays invisible to every call and delivery (live GoTo: about 2s)")
	env.Float(&cfg.FailureRate, 0, 1, "failure-rate", "G2WSIM_FAILURE_RATE", "fraction of management requests answered 503 before processing, 0 to 1")
	env.Float(&cfg.ThrottleRate, 0, 1, "throttle-rate", "G2WSIM_THROTTLE_RATE", "fraction of management requests answered 429 before processing, 0 to 1")
	env.Bool(&cfg.InsecureCallbacks, "insecure-callbacks", "G2WSIM_INSECURE_CALLBACKS", "accept http:// callbacks on any host (live GoTo: https, loopback allowed here)")
	env.Uint(&cfg.Seed, "seed", "G2WSIM_SEED", "default scenario seed")
	env.Int(&cfg.Webinars, 0, g2wsim.MaxWebinars, "webinars", "G2WSIM_WEBINARS", "webinars in the scenario (0: the small fixed scenario)")
	env.Int(&cfg.Registrants, 1, g2wsim.MaxRegistrants, "registrants", "G2WSIM_REGISTRANTS", "mean registrants per webinar (±25%)")
	env.Float(&cfg.JoinRate, 0, 1, "join-rate", "G2WSIM_JOIN_RATE", "chance an approved registrant joins, 0 to 1")
	env.Float(&cfg.Rate, 0, 1e9, "rate", "G2WSIM_RATE", "deliveries per second, retries included (0: unlimited)")
	env.Int(&cfg.Concurrency, 1, 0, "concurrency", "G2WSIM_CONCURRENCY", "deliveries in flight at once")
	env.Float(&cfg.Duplicates, 0, 1, "duplicates", "G2WSIM_DUPLICATES", "fraction of events delivered twice, 0 to 1")
	env.Bool(&cfg.Shuffle, "shuffle", "G2WSIM_SHUFFLE", "deliver events in a random order")
	env.Float(&cfg.Drop, 0, 1, "drop", "G2WSIM_DROP", "fraction of events never delivered, 0 to 1 (holes for reconcile to fill)")
	env.Env(envflag.DurationValue(&cfg.ShutdownTimeout), "G2WSIM_SHUTDOWN_TIMEOUT")
	errs := env.Errors()
	if s := getenv("LOG_LEVEL"); s != "" {
		if err := cfg.LogLevel.UnmarshalText([]byte(s)); err != nil {
			errs = append(errs, fmt.Errorf("LOG_LEVEL: %q is not debug, info, warn or error", s))
		}
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %q", fs.Args()))
	}
	if cfg.Webinars*cfg.Registrants > g2wsim.MaxScenarioSize {
		errs = append(errs, fmt.Errorf("G2WSIM_WEBINARS × G2WSIM_REGISTRANTS (-webinars × -registrants) must not exceed %d", g2wsim.MaxScenarioSize))
	}
	if cfg.FailureRate+cfg.ThrottleRate > 1 {
		errs = append(errs, errors.New("G2WSIM_FAILURE_RATE + G2WSIM_THROTTLE_RATE must not exceed 1"))
	}
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("G2WSIM_CLIENT_ID (-client-id) is required"))
	}
	if cfg.ClientSecret == "" {
		errs = append(errs, errors.New("G2WSIM_CLIENT_SECRET (-client-secret) is required"))
	}
	return cfg, errors.Join(errs...)
}
