package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"golang.org/x/term"

	"github.com/turnout-analytics/turnout/internal/erasure"
	"github.com/turnout-analytics/turnout/internal/projections"
	"github.com/turnout-analytics/turnout/internal/projector"
	"github.com/turnout-analytics/turnout/internal/rebuild"
	"github.com/turnout-analytics/turnout/migrations"
)

// usage is what -h prints before the environment (envUsage) and the flags of the command.
const usage = `Usage: projector [command] [flags]

Builds the analytics schema from Turnout's event log.

Commands:
  (none)    run live: apply the log to analytics in set-based micro-batches;
            builds analytics from the log first when it is missing or of another version
  rebuild   rebuild every projection from the whole log into a shadow schema and swap it
            in atomically (readers are never interrupted; a killed rebuild resumes)
  status    per projection: position, lag (events, seconds) and parked events
  forget    erase one person's personal data (GDPR): -email X, or -registrant-key K
            [-webinar-key W]; run as the database owner

`

// parkedShown is how many parked events status lists per projection.
const parkedShown = 5

// run is the whole command: args without the program name, the environment through
// getenv, command output (status, forget's counts, help) on stdout, logs (JSON) and the
// rebuild's progress on stderr, so that `status -json` output is never mixed with logs.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	command := "live"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		command, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("projector "+command, flag.ContinueOnError)
	fs.SetOutput(stdout)
	migrate := fs.Bool("migrate", true, "apply database migrations before starting")
	asJSON := false
	var who erasure.Person
	switch command {
	case "live", "rebuild":
	case "status":
		fs.BoolVar(&asJSON, "json", false, "print status as JSON")
	case "forget":
		fs.BoolVar(&asJSON, "json", false, "print the counts as JSON")
		fs.StringVar(&who.Email, "email", "", "erase every registration with this email address (case-insensitive)")
		fs.StringVar(&who.RegistrantKey, "registrant-key", "", "erase the registration(s) with this registrant key")
		fs.StringVar(&who.WebinarKey, "webinar-key", "", "with -registrant-key: only the registration for this webinar")
	default:
		return fmt.Errorf("unknown command %q (want no command for live, rebuild, status or forget)", command)
	}
	fs.Usage = func() {
		fmt.Fprint(stdout, usage, "\n", envUsage)
		fmt.Fprintf(stdout, "\nFlags of %s:\n", fs.Name())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if command == "forget" {
		if err := who.Validate(); err != nil {
			return fmt.Errorf("projector forget: %w", err)
		}
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil)).With("service", "projector")
	if *migrate {
		if err := migrations.Up(cfg.DatabaseURL); err != nil {
			return err
		}
	}
	poolCfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return errors.New("parse DATABASE_URL: invalid") // never echo: it may hold a password
	}
	// Every command may run as the owner (forget always does; the quick start runs all as
	// the owner): no session resolves a name in a schema another role could create. (The
	// projections set their own search_path per transaction: projections.UseSchema.)
	poolCfg.ConnConfig.RuntimeParams["search_path"] = migrations.OwnerSearchPath
	// The projections pipeline their statements in one batch, which needs the session's
	// staging table to exist before the batch is prepared.
	poolCfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		return projections.PrepareConn(ctx, conn)
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return fmt.Errorf("open database pool: %w", err)
	}
	defer pool.Close()

	switch command {
	case "rebuild":
		b := rebuild.New(pool, cfg.Projector.Rebuild, logger, rebuild.NewMetrics(prometheus.NewRegistry()))
		_, err := b.Rebuild(ctx, progressFor(stderr, logger))
		return err
	case "status":
		st, err := rebuild.Status(ctx, pool, parkedShown)
		if err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(st); err != nil {
				return fmt.Errorf("write status: %w", err)
			}
			return nil
		}
		return writeStatus(stdout, st)
	case "forget":
		res, err := erasure.Forget(ctx, pool, who)
		if err != nil {
			return err
		}
		// Counts only: the person's identity is never printed or logged.
		if asJSON {
			if err := json.NewEncoder(stdout).Encode(res); err != nil {
				return fmt.Errorf("write forget result: %w", err)
			}
			return nil
		}
		return writeForget(stdout, res)
	default:
		return live(ctx, cfg, pool, logger)
	}
}

// live runs the projector and its HTTP endpoints until ctx is cancelled.
func live(ctx context.Context, cfg config, pool *pgxpool.Pool, logger *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p := projector.New(pool, cfg.Projector, logger, projector.NewMetrics(reg))

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := pool.Ping(r.Context()); err != nil {
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on PROJECTOR_ADDR %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	logger.Info("projector starting", "addr", ln.Addr().String())

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			return fmt.Errorf("shut down http: %w", err)
		}
		return nil
	})
	g.Go(func() error { return p.Run(ctx) })
	err = g.Wait()
	logger.Info("projector stopped")
	return err
}

// progressFor draws a bar when stderr is a terminal, and logs progress otherwise.
func progressFor(stderr io.Writer, logger *slog.Logger) rebuild.Progress {
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return rebuild.NewBarProgress(f)
	}
	return rebuild.NewLogProgress(logger, 5*time.Second)
}

// writeStatus prints status as a human-readable table.
func writeStatus(w io.Writer, st []rebuild.ProjectionStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECTION\tROLE\tVERSION\tEPOCH\tTRANSACTION\tOFFSET\tLAG EVENTS\tLAG SECONDS\tPARKED")
	for _, s := range st {
		version := s.Version
		if !s.Exists {
			version = "(missing)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%.1f\t%d\n", s.Schema, s.Role, version,
			s.Position.Epoch, s.Position.TxID, s.Position.Offset, s.Events, s.Seconds, s.ParkedCount)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	for _, s := range st {
		if s.ParkedCount == 0 {
			continue
		}
		fmt.Fprintf(w, "\nparked in %s (first %d of %d):\n", s.Schema, len(s.Parked), s.ParkedCount)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  OFFSET\tTRANSACTION\tEVENT NAME\tEVENT KEY\tATTEMPTS\tERROR")
		for _, p := range s.Parked {
			fmt.Fprintf(tw, "  %d\t%d\t%s\t%s\t%d\t%s\n", p.Offset, p.TxID, p.EventName, p.EventKey, p.Attempts, firstLine(p.Error))
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write status: %w", err)
		}
	}
	return nil
}

// writeForget prints what forget did, as counts, and the VACUUM that finishes the job.
func writeForget(w io.Writer, r erasure.Result) error {
	var b strings.Builder
	if !r.Changed() {
		b.WriteString("forget: nothing to erase for this person; nothing changed\n")
	} else {
		fmt.Fprintf(&b, "forget: %d registrations of this person found\n", r.Registrations)
		fmt.Fprintf(&b, "  %s.registrants rows erased: %d\n", projector.Schema, r.Registrants)
		if r.ShadowExists {
			fmt.Fprintf(&b, "  %s.registrants rows erased: %d (prefetch tables dropped: %d)\n",
				projector.ShadowSchema, r.ShadowRegistrants, r.ShadowPrefetchDropped)
		}
		fmt.Fprintf(&b, "  event log payloads redacted: %d\n", r.LogEvents)
		fmt.Fprintf(&b, "  mentions of the address in other people's fields replaced: %d in the log, %d in registrants\n",
			r.LogMentions, r.RegistrantMentions)
		fmt.Fprintf(&b, "  parked events' error texts erased: %d\n", r.Parked)
		fmt.Fprintf(&b, "  ingest_quarantine deliveries deleted: %d\n", r.QuarantineDeleted)
		fmt.Fprintf(&b, "  ingest_unverified deliveries deleted: %d\n", r.UnverifiedDeleted)
		fmt.Fprintf(&b, "The old row versions still hold the data until VACUUM reclaims them (autovacuum will);\n"+
			"to reclaim them now, as the owner:\n  %s\n", r.Vacuum)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write forget result: %w", err)
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
