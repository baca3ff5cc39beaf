// Command reconcile fills the holes missed webhooks leave in Turnout's event log, and adds the
// attendance durations webhooks never carry, from GoToWebinar's REST reporting API: see
// internal/reconcile, and `reconcile -h`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/turnout-analytics/turnout/internal/g2wctl"
	"github.com/turnout-analytics/turnout/internal/g2wrest"
	"github.com/turnout-analytics/turnout/internal/reconcile"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "reconcile:", err)
		}
		os.Exit(1)
	}
}

// run is the whole program. ready, when not nil, receives the service's listen address once
// it accepts connections (tests use it; -listen 127.0.0.1:0 picks a free port).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, ready chan<- string) error {
	cfg, err := loadConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))

	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer pool.Close()

	orgs, stats, err := organizers(cfg)
	if err != nil {
		return err
	}
	rec, err := reconcile.New(reconcile.Config{Pool: pool, Logger: log, Organizers: orgs})
	if err != nil {
		return err
	}

	if cfg.Once {
		res, err := rec.Once(ctx, cfg.Since)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "reconciled %d webinars (%d finished by an earlier run) from %s to %s: %d events appended, %d API calls, %d answered 429\n",
			res.Webinars, res.Skipped, res.From.Format(time.RFC3339), res.To.Format(time.RFC3339), res.Appended, res.Calls, stats.Throttled.Load())
		return nil
	}
	return serve(ctx, cfg, log, rec, stats, ready)
}

// organizers returns a REST client per organizer: every g2wctl profile (or those of
// -profiles), each with its own token, or one organizer with the client_credentials grant.
// They share one rate limiter (GoTo's limit is the application's) and one Stats.
func organizers(cfg config) ([]reconcile.Organizer, *g2wrest.Stats, error) {
	conf := g2wctl.OAuthConfig(cfg.ClientID, cfg.ClientSecret, cfg.AuthURL)
	limiter := rate.NewLimiter(rate.Limit(cfg.Rate), 1)
	stats := &g2wrest.Stats{}
	client := func(creds g2wrest.Credentials) (*g2wrest.Client, error) {
		return g2wrest.New(g2wrest.Config{BaseURL: cfg.APIURL, Credentials: creds, Limiter: limiter, Stats: stats})
	}
	if cfg.ClientCreds {
		api, err := client(g2wctl.ClientCredentials(conf, http.DefaultClient))
		if err != nil {
			return nil, nil, err
		}
		return []reconcile.Organizer{{Key: cfg.OrganizerKey, API: api}}, stats, nil
	}
	store := &g2wctl.Store{Path: cfg.TokenFile}
	f, err := store.Load()
	if err != nil {
		return nil, nil, fmt.Errorf("read token file: %w", err)
	}
	names := cfg.Profiles
	if len(names) == 0 {
		names = f.ProfileNames()
	}
	if len(names) == 0 {
		return nil, nil, g2wctl.ErrNoToken
	}
	var orgs []reconcile.Organizer
	for _, name := range names {
		creds, err := g2wctl.StoredCredentials(conf, http.DefaultClient, store, name)
		if err != nil {
			return nil, nil, err
		}
		key := f.Profiles[name].OrganizerKey
		if key == "" && len(names) == 1 {
			key = cfg.OrganizerKey
		}
		if key == "" {
			return nil, nil, fmt.Errorf("profile %q has no organizer key: log in again (g2wctl login --profile %s) or, for a single profile, set G2W_ORGANIZER_KEY", name, name)
		}
		api, err := client(creds)
		if err != nil {
			return nil, nil, err
		}
		orgs = append(orgs, reconcile.Organizer{Key: key, API: api})
	}
	return orgs, stats, nil
}

// serve runs the service until ctx is done: the reconciler's loop and the HTTP server.
func serve(ctx context.Context, cfg config, log *slog.Logger, rec *reconcile.Reconciler, stats *g2wrest.Stats, ready chan<- string) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := func(name, help string, f func() int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
	}
	reg.MustRegister(
		counter("turnout_reconcile_api_calls_total", "Requests sent to GoToWebinar's REST API, retries included.", stats.Calls.Load),
		counter("turnout_reconcile_api_throttled_total", "Requests answered 429 Too Many Requests.", stats.Throttled.Load),
		counter("turnout_reconcile_api_server_errors_total", "Requests answered 5xx.", stats.ServerError.Load),
		counter("turnout_reconcile_events_appended_total", "Snapshot events appended to the log.", rec.Appended),
		counter("turnout_reconcile_webinars_total", "Webinars reconciled.", rec.Webinars),
		counter("turnout_reconcile_run_failures_total", "Runs that failed (each is resumed at the next tick).", rec.Failures),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "turnout_reconcile_sweep_lag_seconds",
			Help: "Seconds since the last successful sweep (or once run) finished; -1 before the first."},
			func() float64 {
				lag, ok := rec.SweepLag()
				if !ok {
					return -1
				}
				return lag.Seconds()
			}),
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		ready <- ln.Addr().String()
	}
	log.Info("reconcile service started", "addr", ln.Addr().String(), "poll", cfg.PollInterval, "sweepEvery", cfg.SweepInterval, "sweepDays", cfg.SweepDays)

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		return rec.Serve(ctx, reconcile.ServiceConfig{PollInterval: cfg.PollInterval, SweepInterval: cfg.SweepInterval, SweepDays: cfg.SweepDays})
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	return g.Wait()
}
