package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/turnout-analytics/turnout/internal/g2wsim"
)

// config is everything g2wsim reads from its flags and environment, once, at start. A flag
// wins over its variable, which wins over the default.
type config struct {
	Addr            string        // -listen, G2WSIM_ADDR; default 127.0.0.1:8095
	ClientID        string        // -client-id, G2WSIM_CLIENT_ID; required
	ClientSecret    string        // -client-secret, G2WSIM_CLIENT_SECRET; required (prefer the variable)
	TokenLifetime   time.Duration // -token-lifetime, G2WSIM_TOKEN_LIFETIME; default 60m
	APIRate         int           // -api-rate, G2WSIM_API_RATE: 429 above this many requests/s; 0 off
	Seed            uint64        // -seed, G2WSIM_SEED: scenario seed for POST /_sim/deliver; default 1
	Webinars        int           // -webinars, G2WSIM_WEBINARS: scenario size; 0 (default) the small fixed one
	Registrants     int           // -registrants, G2WSIM_REGISTRANTS: mean per webinar; default 20
	JoinRate        float64       // -join-rate, G2WSIM_JOIN_RATE: chance an approved registrant joins; default 0.6
	Rate            float64       // -rate, G2WSIM_RATE: deliveries/s; 0 unlimited
	Concurrency     int           // -concurrency, G2WSIM_CONCURRENCY; default 4
	Duplicates      float64       // -duplicates, G2WSIM_DUPLICATES: fraction redelivered, 0..1
	Shuffle         bool          // -shuffle, G2WSIM_SHUFFLE: deliver in random order
	ShutdownTimeout time.Duration // G2WSIM_SHUTDOWN_TIMEOUT; default 10s
	LogLevel        slog.Level    // LOG_LEVEL; default info
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

// loadConfig reads the configuration, reporting every missing or bad value by name in one
// error. The client secret never appears in an error.
func loadConfig(args []string, getenv func(string) string, usage io.Writer) (config, error) {
	cfg := config{Addr: "127.0.0.1:8095", TokenLifetime: 60 * time.Minute, Seed: 1, Concurrency: 4,
		Registrants: 20, JoinRate: 0.6, ShutdownTimeout: 10 * time.Second, LogLevel: slog.LevelInfo}
	fs := flag.NewFlagSet("g2wsim", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.Usage = func() {
		fmt.Fprintln(usage, usageText)
		fs.PrintDefaults()
	}
	var errs []error
	// bind registers a flag whose default comes from env when set; a bad env value is
	// reported by name and the flag keeps the built-in default.
	bind := func(v flag.Value, name, env, help string) {
		if s := getenv(env); s != "" {
			if err := v.Set(s); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
		}
		fs.Var(v, name, help+" ["+env+"]")
	}
	bind((*stringValue)(&cfg.Addr), "listen", "G2WSIM_ADDR", "listen address")
	bind((*stringValue)(&cfg.ClientID), "client-id", "G2WSIM_CLIENT_ID", "OAuth client id (required)")
	bind((*secretValue)(&cfg.ClientSecret), "client-secret", "G2WSIM_CLIENT_SECRET", "OAuth client secret (required; prefer the variable)")
	bind((*durationValue)(&cfg.TokenLifetime), "token-lifetime", "G2WSIM_TOKEN_LIFETIME", "access token lifetime")
	bind(&intValue{p: &cfg.APIRate, min: 0}, "api-rate", "G2WSIM_API_RATE", "answer 429 above this many management requests per second (0: off; live GoTo: 10)")
	bind((*uintValue)(&cfg.Seed), "seed", "G2WSIM_SEED", "default scenario seed")
	bind(&intValue{p: &cfg.Webinars, min: 0, max: g2wsim.MaxWebinars}, "webinars", "G2WSIM_WEBINARS", "webinars in the scenario (0: the small fixed scenario)")
	bind(&intValue{p: &cfg.Registrants, min: 1, max: g2wsim.MaxRegistrants}, "registrants", "G2WSIM_REGISTRANTS", "mean registrants per webinar (±25%)")
	bind(&floatValue{p: &cfg.JoinRate, min: 0, max: 1}, "join-rate", "G2WSIM_JOIN_RATE", "chance an approved registrant joins, 0 to 1")
	bind(&floatValue{p: &cfg.Rate, min: 0, max: 1e9}, "rate", "G2WSIM_RATE", "deliveries per second, retries included (0: unlimited)")
	bind(&intValue{p: &cfg.Concurrency, min: 1}, "concurrency", "G2WSIM_CONCURRENCY", "deliveries in flight at once")
	bind(&floatValue{p: &cfg.Duplicates, min: 0, max: 1}, "duplicates", "G2WSIM_DUPLICATES", "fraction of events delivered twice, 0 to 1")
	bind((*boolValue)(&cfg.Shuffle), "shuffle", "G2WSIM_SHUFFLE", "deliver events in a random order")
	if s := getenv("G2WSIM_SHUTDOWN_TIMEOUT"); s != "" {
		if err := (*durationValue)(&cfg.ShutdownTimeout).Set(s); err != nil {
			errs = append(errs, fmt.Errorf("G2WSIM_SHUTDOWN_TIMEOUT: %w", err))
		}
	}
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
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("G2WSIM_CLIENT_ID (-client-id) is required"))
	}
	if cfg.ClientSecret == "" {
		errs = append(errs, errors.New("G2WSIM_CLIENT_SECRET (-client-secret) is required"))
	}
	return cfg, errors.Join(errs...)
}

// The flag.Value types below parse, and bound, one setting each.

type stringValue string

func (v *stringValue) String() string     { return string(*v) }
func (v *stringValue) Set(s string) error { *v = stringValue(strings.TrimSpace(s)); return nil }

// secretValue never shows its value, so -h does not print a secret from the environment.
type secretValue string

func (v *secretValue) String() string     { return "" }
func (v *secretValue) Set(s string) error { *v = secretValue(s); return nil }

type durationValue time.Duration

func (v *durationValue) String() string { return time.Duration(*v).String() }
func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q is not a positive duration such as 60m", s)
	}
	*v = durationValue(d)
	return nil
}

type intValue struct {
	p        *int
	min, max int // max 0: no upper bound
}

func (v *intValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < v.min {
		return fmt.Errorf("%q is not an integer of at least %d", s, v.min)
	}
	if v.max > 0 && n > v.max {
		return fmt.Errorf("%q is not an integer from %d to %d", s, v.min, v.max)
	}
	*v.p = n
	return nil
}

type uintValue uint64

func (v *uintValue) String() string { return strconv.FormatUint(uint64(*v), 10) }
func (v *uintValue) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not an unsigned integer", s)
	}
	*v = uintValue(n)
	return nil
}

type floatValue struct {
	p        *float64
	min, max float64
}

func (v *floatValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatFloat(*v.p, 'g', -1, 64)
}

func (v *floatValue) Set(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < v.min || f > v.max {
		return fmt.Errorf("%q is not a number from %g to %g", s, v.min, v.max)
	}
	*v.p = f
	return nil
}

type boolValue bool

func (v *boolValue) String() string { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q is not true or false", s)
	}
	*v = boolValue(b)
	return nil
}

// IsBoolFlag lets -shuffle stand alone.
func (v *boolValue) IsBoolFlag() bool { return true }
