package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/migrations"
)

// generateRows selects rows of the synthetic stream; generateSQL appends them to the log.
//
//go:embed generate.sql
var generateRows string

var generateSQL = `INSERT INTO ` + eventlog.Table + ` (uuid, payload, metadata, transaction_id)
` + generateRows

func benchReplay(ctx context.Context, admin string, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	events := fs.Int64("events", 1_000_000, "events to generate into the log")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dbURL, err := freshDatabase(ctx, admin, "turnout_bench_replay")
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

	start := time.Now()
	const chunk = 100_000
	for lo := int64(1); lo <= *events; lo += chunk {
		hi := min(lo+chunk-1, *events)
		if _, err := conn.Exec(ctx, generateSQL, lo, hi); err != nil {
			return fmt.Errorf("generate events: %w", err)
		}
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE "+eventlog.Table); err != nil {
		return fmt.Errorf("vacuum log: %w", err)
	}
	fmt.Printf("generated %d events into a fresh log in %s\n", *events, time.Since(start).Round(time.Millisecond))

	// Baseline: the set-based ceiling, one INSERT … SELECT … ON CONFLICT building the
	// registrants table straight from the log.
	ceilingDur, ceilingRows, err := runCeiling(ctx, conn, false)
	if err != nil {
		return err
	}
	ceilingRate := float64(*events) / ceilingDur.Seconds()
	fmt.Printf("baseline ceiling: one INSERT…SELECT…ON CONFLICT, %d registrants from %d events in %s: %.0f events/s\n",
		ceilingRows, *events, ceilingDur.Round(time.Millisecond), ceilingRate)

	// The real thing: projector rebuild as a separate process, every projection.
	cmd := exec.CommandContext(ctx, filepath.Join("bin", "projector"), "rebuild")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL)
	logFile, err := os.CreateTemp("", "bench-rebuild-*.log")
	if err != nil {
		return fmt.Errorf("create log file: %w", err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	start = time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("projector rebuild (log %s): %w", logFile.Name(), err)
	}
	rebuildDur := time.Since(start)
	rss := float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024
	rebuildRate := float64(*events) / rebuildDur.Seconds()
	fmt.Printf("projector rebuild: %d events, all projections, in %s: %.0f events/s, peak RSS %.1f MiB\n",
		*events, rebuildDur.Round(time.Millisecond), rebuildRate, rss)

	var registrants int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM analytics.registrants").Scan(&registrants); err != nil {
		return fmt.Errorf("count registrants: %w", err)
	}
	if registrants != ceilingRows {
		return fmt.Errorf("rebuild has %d registrants, the ceiling %d: they must agree", registrants, ceilingRows)
	}
	q, err := timeQuery(ctx, conn, "SELECT * FROM analytics.webinar_conversion", 5)
	if err != nil {
		return err
	}
	fmt.Printf("analytics.webinar_conversion over %d registrants: best of 5 %s\n", registrants, q.Round(100*time.Microsecond))

	ratio := rebuildRate / ceilingRate
	fmt.Println()
	fmt.Printf("target rebuild >= 0.5x ceiling:         %.2fx  %s\n", ratio, verdict(ratio >= 0.5))
	fmt.Printf("target projector RSS <= 256 MiB:        %.1f MiB  %s\n", rss, verdict(rss <= 256))
	fmt.Printf("target webinar_conversion <= 100 ms:    %s  %s (at %d registrants)\n", q.Round(100*time.Microsecond), verdict(q <= 100*time.Millisecond), registrants)
	return nil
}

// timeQuery runs q n times and returns the fastest run.
func timeQuery(ctx context.Context, conn *pgx.Conn, q string, n int) (time.Duration, error) {
	best := time.Duration(1<<63 - 1)
	for range n {
		start := time.Now()
		rows, err := conn.Query(ctx, q)
		if err != nil {
			return 0, fmt.Errorf("query: %w", err)
		}
		for rows.Next() {
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, fmt.Errorf("query: %w", err)
		}
		best = min(best, time.Since(start))
	}
	return best, nil
}
