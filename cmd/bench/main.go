// Command bench runs Turnout's benchmark programs. Each prints its figures beside a baseline
// measured in the same run on the same database, and the target as a ratio.
//
//	bench forward  bin/forwarder beside ingest's peak, and its catch-up vs raw JetStream publishes
//	bench ingest   signed deliveries/s into bin/ingest at 32 senders vs pgbench one-row inserts
//	bench live     live projector: catch-up of a 500,000-event backlog vs rebuild, lag under
//	               60 s of closed-loop ingest, 2xx → visible p99 at 1,000 and 100 deliveries/s
//	bench replay   bin/projector rebuild of 1,000,000 events vs the set-based ceiling
//	bench forget   bin/projector forget -email on a 1,000,000-event log vs one parsing pass over it
//	bench reconcile  REST backfill of 1,000 webinars × 300 registrants at 10 requests/s
//
// bench ingest also starts this program as "bench http-floor ADDR": a chi server that only
// reads each request and answers 200, the reference for what HTTP alone allows here; and as
// "bench watermill-peer ADDR DATABASE_URL CONNS": the receiver written from Watermill's
// documentation (HMAC check, one watermill-sql Publish per request in its own transaction).
//
// It needs DATABASE_URL (make bench-… starts a throwaway durable cluster) and the binaries
// in bin/ (make bench-… builds them first).
package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) < 1 {
		return errors.New("usage: bench ingest|live|replay|forward|forget|reconcile [flags]")
	}
	if args[0] == floorCommand && len(args) == 2 {
		return serveHTTPFloor(ctx, args[1]) // started by bench ingest, not by hand
	}
	if args[0] == peerCommand && len(args) == 4 {
		conns, err := strconv.Atoi(args[3])
		if err != nil || conns < 1 {
			return fmt.Errorf("%s: bad connection count %q", peerCommand, args[3])
		}
		return serveWatermillPeer(ctx, args[1], args[2], conns) // started by bench ingest
	}
	admin := os.Getenv("DATABASE_URL")
	if admin == "" {
		return errors.New("DATABASE_URL is not set (use make bench-ingest / make bench-replay)")
	}
	fmt.Printf("machine: %d cores, %s/%s, %s; date %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), time.Now().UTC().Format("2006-01-02"))
	switch args[0] {
	case "forward":
		return benchForward(ctx, admin, args[1:]) // forward.go
	case "ingest":
		return benchIngest(ctx, admin, args[1:])
	case "live":
		return benchLive(ctx, admin, args[1:])
	case "replay":
		return benchReplay(ctx, admin, args[1:])
	case "forget":
		return benchForget(ctx, admin, args[1:])
	case "reconcile":
		return benchReconcile(ctx, admin, args[1:])
	default:
		return fmt.Errorf("unknown benchmark %q (want ingest, live, replay, forward, forget or reconcile)", args[0])
	}
}

// freshDatabase drops and creates database name on the server of admin and returns its URL.
func freshDatabase(ctx context.Context, admin, name string) (string, error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	id := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("drop database: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+id); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// peakRSS returns the peak resident set size (VmHWM) of a running process, in MiB.
func peakRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read process status: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmHWM: %w", err)
			}
			return kb / 1024, nil
		}
	}
	return 0, errors.New("no VmHWM in process status")
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}
