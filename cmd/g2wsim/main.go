// Command g2wsim is a local GoToWebinar for development, demos and load tests: GoTo's Webhooks
// Management API and OAuth2 token endpoint, in memory, and a delivery engine that POSTs a
// generated scenario, signed as GoTo signs, to the webhooks set up with it (see
// internal/g2wsim).
//
// On SIGINT or SIGTERM it stops accepting connections, ends a running delivery (its POST
// /_sim/deliver answers 503), and lets in-flight requests
// finish within G2WSIM_SHUTDOWN_TIMEOUT.
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

	"github.com/turnout-analytics/turnout/internal/g2wsim"
	"github.com/turnout-analytics/turnout/internal/g2wsim/reporting"
	"github.com/turnout-analytics/turnout/internal/scenario"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "g2wsim:", err)
		stop()
		os.Exit(1)
	}
}

// run serves until ctx ends, then shuts down gracefully. It prints "listening on <addr>" to
// stdout once it accepts connections; logs go to stderr as JSON.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := loadConfig(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read configuration: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))

	defaults := scenario.Options{Seed: cfg.Seed, Webinars: cfg.Webinars, RegistrantsPerWebinar: cfg.Registrants, JoinRate: cfg.JoinRate}
	// The REST reporting API serves the default scenario (what /_sim/deliver delivers without
	// query parameters, shared among the organizers the same way), whether or not its
	// webhooks were delivered or dropped.
	reports := reporting.New(reporting.Config{BasePath: g2wsim.BasePath, Caller: g2wsim.OrganizerKeyFrom}, nil)
	sim, err := g2wsim.New(g2wsim.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		TokenLifetime: cfg.TokenLifetime, RequestsPerSecond: cfg.APIRate, Organizers: g2wsim.DefaultOrganizers(cfg.Organizers),
		VisibilityDelay: cfg.VisibilityDelay, FailureRate: cfg.FailureRate, ThrottleRate: cfg.ThrottleRate, FaultSeed: cfg.Seed,
		InsecureCallbacks: cfg.InsecureCallbacks, Logger: logger, Reporting: reports})
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(sim.Organizers()))
	for _, o := range sim.Organizers() {
		keys = append(keys, o.Key)
	}
	account, err := reporting.NewAccount(scenario.GenerateWith(defaults), keys)
	if err != nil {
		return err
	}
	reports.Load(account)
	deliverer := g2wsim.NewDeliverer(sim, g2wsim.DeliveryConfig{Concurrency: cfg.Concurrency, Rate: cfg.Rate,
		Duplicates: cfg.Duplicates, Shuffle: cfg.Shuffle, Drop: cfg.Drop, Seed: cfg.Seed, Logger: logger})
	mux := http.NewServeMux()
	mux.Handle("/_sim/deliver", g2wsim.DeliverHandler(deliverer, sim.Organizers(), defaults))
	mux.Handle("/", sim.Handler())

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		// Requests see ctx end, so a long delivery run stops at shutdown instead of holding
		// it up to the deadline.
		BaseContext: func(net.Listener) context.Context { return ctx }}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("g2wsim listening", slog.String("addr", ln.Addr().String()),
		slog.String("api", "http://"+ln.Addr().String()+g2wsim.BasePath))
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())

	select {
	case err := <-served:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", slog.Duration("deadline", cfg.ShutdownTimeout))
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down http server: %w", err)
	}
	return nil
}
