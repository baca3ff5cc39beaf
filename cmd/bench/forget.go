package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/migrations"
)

// findPersonSQL is the baseline of bench forget: one pass over the log's registrant events
// that parses each payload and compares its email, the least any erasure by email must do
// (forget makes about three such passes: find, redact, look for mentions).
var findPersonSQL = `SELECT count(*) FROM public.` + eventlog.Table + `
WHERE event_name IN ('registrant.added', 'registrant.joined') AND lower(payload::jsonb ->> 'email') = $1`

// benchForget measures `projector forget -email` on a log of -events synthetic events with
// analytics built: its wall time is how long the live projector is paused (forget holds
// the consumer's offset row until it commits), beside one parsing pass over the log.
func benchForget(ctx context.Context, admin string, args []string) error {
	fs := flag.NewFlagSet("forget", flag.ContinueOnError)
	events := fs.Int64("events", 1_000_000, "events to generate into the log")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dbURL, err := freshDatabase(ctx, admin, "turnout_bench_forget")
	if err != nil {
		return err
	}
	if err := migrations.Up(dbURL); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	const chunk = 100_000
	for lo := int64(1); lo <= *events; lo += chunk {
		if _, err := conn.Exec(ctx, generateSQL, lo, min(lo+chunk-1, *events)); err != nil {
			return fmt.Errorf("generate events: %w", err)
		}
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE "+eventlog.Table); err != nil {
		return fmt.Errorf("vacuum log: %w", err)
	}
	if err := runProjector(ctx, dbURL, "rebuild"); err != nil {
		return err
	}
	// A registrant of generate.sql's stream in the middle of the log: r<g>@example.com was
	// added by event g (g % 3 != 0) and joined by event g+1.
	g := *events / 2
	for g%3 != 2 {
		g--
	}
	email := fmt.Sprintf("r%d@example.com", g)
	fmt.Printf("log: %d events, analytics built; forgetting %s (added by event %d, joined by event %d)\n", *events, email, g, g+1)

	start := time.Now()
	var found int64
	if err := conn.QueryRow(ctx, findPersonSQL, email).Scan(&found); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	scan := time.Since(start)
	fmt.Printf("baseline: one parsing pass over the log's registrant events, %d rows of the person found, in %s\n",
		found, scan.Round(time.Millisecond))

	start = time.Now()
	if err := runProjector(ctx, dbURL, "forget", "-migrate=false", "-email", email); err != nil {
		return err
	}
	took := time.Since(start)
	var redacted int64
	if err := conn.QueryRow(ctx, findPersonSQL, email).Scan(&redacted); err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if found == 0 || redacted != 0 {
		return fmt.Errorf("the person had %d log rows before forget and %d after: want some, then none", found, redacted)
	}
	fmt.Printf("projector forget -email: %s (the live projector's pause), %.1fx the baseline pass\n",
		took.Round(time.Millisecond), took.Seconds()/scan.Seconds())
	fmt.Printf("per million log events: forget %.1f s, baseline pass %.1f s\n",
		took.Seconds()*1e6/float64(*events), scan.Seconds()*1e6/float64(*events))
	return nil
}

// runProjector runs bin/projector with args on dbURL, its output in a temporary log file.
func runProjector(ctx context.Context, dbURL string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join("bin", "projector"), args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL)
	logFile, err := os.CreateTemp("", "bench-projector-*.log")
	if err != nil {
		return fmt.Errorf("create log file: %w", err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("projector %v (log %s): %w", args, logFile.Name(), err)
	}
	return nil
}
