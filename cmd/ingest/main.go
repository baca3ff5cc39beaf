// Command ingest receives GoToWebinar webhook deliveries over HTTP, verifies and validates
// them, and appends them raw to Turnout's event log in PostgreSQL.
//
// Configuration is read from the environment (run with -h for the list). On SIGINT or
// SIGTERM it stops accepting connections, lets in-flight deliveries finish their commit,
// then stops the batch workers and closes the database pool.
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
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/ingest"
	"github.com/turnout-analytics/turnout/migrations"
)

func main() {
	// Each delivery allocates a few KiB that die young; with the default GOGC=100 the
	// collector ran on ~12% of the CPU under load (pprof, make bench-ingest). A larger GOGC
	// under a soft memory limit trades part of the RSS budget (100 MiB) for that CPU. The
	// heap grows to the limit under load, and RSS ends up above it (stacks, runtime): with
	// 80 MiB the peak reached 91 MiB while a stalling disk held hundreds of deliveries in
	// flight, too near the budget; 64 MiB peaked at 70 MiB in the same benchmark.
	// Both still yield to the GOGC and GOMEMLIMIT environment variables.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(64 << 20)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		stop()
		os.Exit(1)
	}
}

// run starts the service and blocks until ctx ends (then shuts down gracefully) or the
// server fails. It prints "listening on <addr>" to stdout once it accepts connections;
// logs go to stderr as JSON.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "requeue" {
		return runRequeue(ctx, args[1:], getenv, stdout)
	}
	cfg, err := loadConfig(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read configuration: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))

	if cfg.Migrate {
		if err := migrations.Up(cfg.DatabaseURL); err != nil {
			return err
		}
	}

	poolCfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return errors.New("parse DATABASE_URL: invalid") // never echo: it may hold a password
	}
	// Every batch worker holds a connection while it commits; leave room for /readyz and
	// quarantine inserts so they never queue behind the batches.
	if need := int32(cfg.BatchWorkers + 2); poolCfg.MaxConns < need {
		poolCfg.MaxConns = need
	}
	// In the quick start ingest logs in as the database owner: its unqualified table names
	// must never resolve into a schema another role could create ahead of public (the
	// owner's default search_path looks first in a schema named after it).
	poolCfg.ConnConfig.RuntimeParams["search_path"] = migrations.OwnerSearchPath
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return fmt.Errorf("open database pool: %w", err)
	}
	defer pool.Close() // last: after the server and the batcher are done with it

	svc, err := ingest.New(pool, cfg.serviceConfig(), logger)
	if err != nil {
		return err
	}
	defer svc.Close() // after the server drained: commits what is queued, then stops

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	opsLn, err := net.Listen("tcp", cfg.OpsAddr)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("listen on %s (INGEST_OPS_ADDR): %w", cfg.OpsAddr, err)
	}
	srv := svc.NewServer(ingest.ServerConfig{MaxConns: cfg.MaxConns, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)})
	ops := svc.NewOpsServer()
	go func() { _ = ops.Serve(opsLn) }()
	defer ops.Close() // after the public server drained: /readyz answers until the end
	if cfg.DebugAddr != "" {
		// Opt-in profiling on its own listener, never on the public one.
		dbg := http.NewServeMux()
		dbg.HandleFunc("/debug/pprof/", pprof.Index)
		dbg.HandleFunc("/debug/pprof/profile", pprof.Profile)
		dbg.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		dbg.HandleFunc("/debug/pprof/trace", pprof.Trace)
		dsrv := &http.Server{Addr: cfg.DebugAddr, Handler: dbg, ReadHeaderTimeout: ingest.DefaultReadHeaderTimeout}
		go func() { _ = dsrv.ListenAndServe() }()
		defer dsrv.Close()
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("ingest listening", slog.String("addr", ln.Addr().String()), slog.String("ops_addr", opsLn.Addr().String()),
		slog.String("signature_mode", string(cfg.Mode)), slog.Int("secret_keys", len(cfg.SecretKeys)),
		slog.Duration("timestamp_tolerance", cfg.TSTolerance))
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	fmt.Fprintf(stdout, "operations on %s\n", opsLn.Addr())

	select {
	case err := <-served:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}

	logger.Info("shutting down", slog.Duration("deadline", cfg.ShutdownTimeout))
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	// Shutdown closes the listener and waits for in-flight requests, each of which waits
	// for its batch to commit, so every acknowledged delivery is durable before we exit.
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Past the deadline: cut the stragglers. They were never answered 2xx, so the
		// sender retries; whatever their batch commits is then a duplicate.
		_ = srv.Close()
		return fmt.Errorf("shut down http server: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	logger.Info("stopped")
	return nil
}
