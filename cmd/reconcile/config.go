package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/turnout-analytics/turnout/internal/envflag"
	"github.com/turnout-analytics/turnout/internal/g2wctl"
	"github.com/turnout-analytics/turnout/internal/g2wrest"
	"github.com/turnout-analytics/turnout/internal/reconcile"
)

// Defaults of the configuration.
const (
	defaultAddr    = ":8083"
	defaultAuthURL = "https://authentication.logmeininc.com/oauth"
	defaultSince   = 720 * time.Hour
	// defaultShutdownTimeout bounds how long the HTTP server waits for scrapes in flight.
	defaultShutdownTimeout = 10 * time.Second
)

// config is everything reconcile reads from its flags and environment, once, at start. A
// flag wins over its variable, which wins over the default.
type config struct {
	Once            bool          // the `once` subcommand
	Since           time.Duration // once: -since; default 720h
	DatabaseURL     string        // DATABASE_URL; required
	Addr            string        // -listen, RECONCILE_ADDR: /healthz and /metrics of the service; default :8083
	ClientID        string        // -client-id, G2W_CLIENT_ID; required
	ClientSecret    string        // -client-secret, G2W_CLIENT_SECRET; required; never printed
	APIURL          string        // -api-url, G2W_API_URL; default g2wrest.DefaultBaseURL
	AuthURL         string        // -auth-url, G2W_AUTH_URL; default defaultAuthURL
	TokenFile       string        // -token-file, G2W_TOKEN_FILE; default g2wctl.DefaultPath
	ClientCreds     bool          // -client-credentials, G2W_CLIENT_CREDENTIALS
	Profiles        []string      // -profiles, G2W_PROFILES: g2wctl profiles to reconcile; default every one
	OrganizerKey    string        // -organizer-key, G2W_ORGANIZER_KEY: the token's user; required with client credentials
	Rate            float64       // -rate, RECONCILE_RATE: API requests/s; default 10
	PollInterval    time.Duration // -poll-interval, RECONCILE_POLL_INTERVAL; default 5m
	SweepInterval   time.Duration // -sweep-interval, RECONCILE_SWEEP_INTERVAL; default 24h
	SweepDays       int           // -sweep-days, RECONCILE_SWEEP_DAYS; default 7
	ShutdownTimeout time.Duration // RECONCILE_SHUTDOWN_TIMEOUT; default 10s
	LogLevel        slog.Level    // LOG_LEVEL; default info
}

const usageText = `Usage: reconcile [once -since 720h] [flags]

Reads GoToWebinar's REST reporting API with each organizer's token from g2wctl's token file
(g2wctl login --profile NAME, once per organizer) and appends what it learns (webinars, sessions, registrants, attendance with
join/leave times) to the event log as turnout.*.snapshot events; a run over unchanged data
appends nothing.

  reconcile once -since 720h   backfill every webinar of the last 720h, then exit
  reconcile                    the service: sessions that ended since the last poll, every
                               -poll-interval; a sweep of the last -sweep-days every
                               -sweep-interval; /healthz and /metrics on -listen

A run that dies is resumed by the next run of the same kind without redoing the webinars it
finished. DATABASE_URL (required) is the database of the log. Each flag can also be set by
the environment variable in brackets; the flag wins. LOG_LEVEL sets the log level.

Flags:`

// loadConfig reads the configuration, reporting every missing or bad value by name in one
// error. The client secret never appears in an error.
func loadConfig(args []string, getenv func(string) string, usage io.Writer) (config, error) {
	cfg := config{Since: defaultSince, Addr: defaultAddr, APIURL: g2wrest.DefaultBaseURL, AuthURL: defaultAuthURL,
		Rate: g2wrest.DefaultRate, PollInterval: reconcile.DefaultPollInterval, SweepInterval: reconcile.DefaultSweepInterval,
		SweepDays: reconcile.DefaultSweepDays, ShutdownTimeout: defaultShutdownTimeout, LogLevel: slog.LevelInfo,
		DatabaseURL: getenv("DATABASE_URL")}
	if len(args) > 0 && args[0] == "once" {
		cfg.Once, args = true, args[1:]
	}
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.Usage = func() {
		fmt.Fprintln(usage, usageText)
		fs.PrintDefaults()
	}
	env := envflag.New(fs, getenv)
	fs.DurationVar(&cfg.Since, "since", cfg.Since, "once: the window to backfill, back from now")
	env.String(&cfg.Addr, "listen", "RECONCILE_ADDR", "listen address of /healthz and /metrics (service)")
	env.String(&cfg.ClientID, "client-id", "G2W_CLIENT_ID", "OAuth client id (required)")
	env.Secret(&cfg.ClientSecret, "client-secret", "G2W_CLIENT_SECRET", "OAuth client secret (required; prefer the variable)")
	env.String(&cfg.APIURL, "api-url", "G2W_API_URL", "GoToWebinar REST API base URL")
	env.String(&cfg.AuthURL, "auth-url", "G2W_AUTH_URL", "OAuth2 server base URL (…/token)")
	env.String(&cfg.TokenFile, "token-file", "G2W_TOKEN_FILE", "g2wctl's token file (default $XDG_CONFIG_HOME/turnout/g2w-token.json)")
	env.Bool(&cfg.ClientCreds, "client-credentials", "G2W_CLIENT_CREDENTIALS", "use the client_credentials grant instead of the stored login token")
	var profiles string
	env.String(&profiles, "profiles", "G2W_PROFILES", "comma-separated g2wctl profiles (organizers) to reconcile (default: every profile in the token file)")
	env.String(&cfg.OrganizerKey, "organizer-key", "G2W_ORGANIZER_KEY", "the organizer key of the token: required with -client-credentials, or for a single profile whose login did not record it")
	env.Float(&cfg.Rate, 0.1, 1000, "rate", "RECONCILE_RATE", "API requests per second, retries included (live GoTo: 429 above 10)")
	env.Duration(&cfg.PollInterval, "poll-interval", "RECONCILE_POLL_INTERVAL", "service: how often to look for ended sessions")
	env.Duration(&cfg.SweepInterval, "sweep-interval", "RECONCILE_SWEEP_INTERVAL", "service: how often to sweep the last -sweep-days")
	env.Int(&cfg.SweepDays, 1, 366, "sweep-days", "RECONCILE_SWEEP_DAYS", "service: the days a sweep covers")
	env.Env(envflag.DurationValue(&cfg.ShutdownTimeout), "RECONCILE_SHUTDOWN_TIMEOUT")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	errs := env.Errors()
	for _, p := range strings.Split(profiles, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.Profiles = append(cfg.Profiles, p)
		}
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q (the only subcommand is once)", fs.Args()))
	}
	if s := getenv("LOG_LEVEL"); s != "" {
		if err := cfg.LogLevel.UnmarshalText([]byte(s)); err != nil {
			errs = append(errs, fmt.Errorf("LOG_LEVEL: %q is not debug, info, warn or error", s))
		}
	}
	if cfg.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL is required"))
	}
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("G2W_CLIENT_ID (-client-id) is required"))
	}
	if cfg.ClientSecret == "" {
		errs = append(errs, errors.New("G2W_CLIENT_SECRET (-client-secret) is required"))
	}
	if cfg.ClientCreds && cfg.OrganizerKey == "" {
		errs = append(errs, errors.New("G2W_ORGANIZER_KEY (-organizer-key) is required with G2W_CLIENT_CREDENTIALS: the grant names no user"))
	}
	if cfg.Once && cfg.Since <= 0 {
		errs = append(errs, fmt.Errorf("-since must be positive, not %v", cfg.Since))
	}
	if cfg.TokenFile == "" && !cfg.ClientCreds {
		p, err := g2wctl.DefaultPath(getenv)
		if err != nil {
			errs = append(errs, fmt.Errorf("G2W_TOKEN_FILE: %w", err))
		}
		cfg.TokenFile = p
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, fmt.Errorf("read configuration: %w", err)
	}
	return cfg, nil
}
