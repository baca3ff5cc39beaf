// Command forwarder publishes Turnout's event log to NATS JetStream: every event, in log
// order, to the stream TURNOUT (created if missing) on turnout.events.<eventName>, with
// Nats-Msg-Id = eventKey. Its position in the log moves only after JetStream acknowledged
// the events up to it, so a crash or an outage of the database or NATS loses nothing.
//
// Configuration is read from the environment (run with -h for the list). On SIGINT or
// SIGTERM it stops between batches: a batch whose acks are pending is published again by
// the next run (JetStream drops the copies within its duplicate window).
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

	"github.com/ThreeDotsLabs/watermill"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/turnout-analytics/turnout/internal/forwarder"
	"github.com/turnout-analytics/turnout/migrations"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "forwarder:", err)
		stop()
		os.Exit(1)
	}
}

// shutdownTimeout bounds the HTTP server's drain on exit.
const shutdownTimeout = 5 * time.Second

// run starts the forwarder and blocks until ctx ends. It prints "listening on <addr>" to
// stdout once /healthz and /metrics are served; logs go to stderr as JSON.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
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
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return fmt.Errorf("open database pool: %w", err)
	}
	defer pool.Close() // last

	// NATS down at start, or later: the connection keeps trying, forever, and the
	// forwarder waits (its position does not move while nothing is acknowledged).
	nc, err := nats.Connect(cfg.NATSURL,
		nats.Name("turnout-forwarder"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(cfg.Forwarder.RetryWait),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			logger.Warn("nats disconnected, reconnecting", slog.Any("error", err))
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("nats reconnected", slog.String("server", c.ConnectedUrlRedacted()))
		}),
	)
	if err != nil {
		return fmt.Errorf("connect to NATS_URL: %w", err)
	}
	defer nc.Close()

	metrics := forwarder.NewMetrics()
	wmLogger := watermill.NewSlogLoggerWithLevelMapping(logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	pub, err := forwarder.NewPublisher(nc, wmLogger, metrics)
	if err != nil {
		return err
	}
	defer pub.Close()

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		// 200 while forwarding is possible; 503 names what it waits for. The process
		// itself stays up and resumes by itself either way.
		if !nc.IsConnected() {
			http.Error(w, "waiting for nats", http.StatusServiceUnavailable)
			return
		}
		if err := pool.Ping(r.Context()); err != nil {
			http.Error(w, "waiting for the database", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on FORWARDER_ADDR %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			return fmt.Errorf("shut down http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := ensureStream(ctx, nc, cfg.Forwarder, logger); err != nil {
			return nil // ctx ended first
		}
		return forwarder.New(pool, pub, cfg.Forwarder, logger, metrics).Run(ctx)
	})
	err = g.Wait()
	logger.Info("forwarder stopped")
	return err
}

// ensureStream creates TURNOUT if it is missing, trying again until NATS answers or ctx
// ends.
func ensureStream(ctx context.Context, nc *nats.Conn, cfg forwarder.Config, logger *slog.Logger) error {
	logged := false
	for {
		rctx, cancel := context.WithTimeout(ctx, cfg.AckWait)
		info, err := forwarder.EnsureStream(rctx, nc, cfg.Stream)
		cancel()
		if err == nil {
			logger.Info("stream ready", slog.String("stream", info.Config.Name),
				slog.Int("replicas", info.Config.Replicas), slog.Duration("duplicate_window", info.Config.Duplicates))
			if info.Config.Replicas != cfg.Stream.Replicas || info.Config.Duplicates != cfg.Stream.DuplicateWindow {
				logger.Warn("the existing stream's replicas or duplicate window differ from the configuration; the stream's own settings apply",
					slog.Int("configured_replicas", cfg.Stream.Replicas), slog.Duration("configured_duplicate_window", cfg.Stream.DuplicateWindow))
			}
			return nil
		}
		if !logged {
			logger.Warn("jetstream unavailable, waiting", slog.Any("error", err))
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(cfg.RetryWait):
		}
	}
}
