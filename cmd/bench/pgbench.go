package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgbenchBaseline runs pgbench on the benchmark's database: one single-row INSERT of a
// delivery-sized JSON payload per transaction, the cheapest durable write of a delivery
// PostgreSQL offers a client, at the senders' concurrency.
type pgbenchBaseline struct {
	dbURL   string
	clients int
	script  string // path of the pgbench script
	// postmaster is the server's PID, whose processes' CPU is counted (see sampleCPU).
	postmaster int
}

// newPgbenchBaseline creates the baseline's table and script; cleanup removes the script.
func newPgbenchBaseline(ctx context.Context, dbURL string, clients, postmaster int) (*pgbenchBaseline, func(), error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, nil, fmt.Errorf("connect: %w", err)
	}
	_, err = conn.Exec(ctx, `CREATE TABLE bench_baseline (id bigserial PRIMARY KEY, payload json, created_at timestamptz NOT NULL DEFAULT now())`)
	conn.Close(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("create baseline table: %w", err)
	}
	f, err := os.CreateTemp("", "bench-pgbench-*.sql")
	if err != nil {
		return nil, nil, fmt.Errorf("create pgbench script: %w", err)
	}
	fmt.Fprintf(f, "INSERT INTO bench_baseline (payload) VALUES ('%s');\n", fmt.Sprintf(deliveryBody, 1, 1, 1))
	if err := f.Close(); err != nil {
		return nil, nil, fmt.Errorf("write pgbench script: %w", err)
	}
	return &pgbenchBaseline{dbURL: dbURL, clients: clients, script: f.Name(), postmaster: postmaster}, func() { os.Remove(f.Name()) }, nil
}

func (p *pgbenchBaseline) command(ctx context.Context, d time.Duration, extra ...string) *exec.Cmd {
	args := []string{"-n", "-c", strconv.Itoa(p.clients), "-j", "2", "-T", strconv.Itoa(int(d.Seconds())), "-f", p.script}
	args = append(args, extra...)
	return exec.CommandContext(ctx, "pgbench", append(args, p.dbURL)...)
}

var (
	tpsLine   = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	countLine = regexp.MustCompile(`number of transactions actually processed: ([0-9]+)`)
)

// throughput runs pgbench flat out for d and returns its rate and the CPU pgbench and
// PostgreSQL used per transaction.
func (p *pgbenchBaseline) throughput(ctx context.Context, d time.Duration) (float64, cpuEach, error) {
	before, err := sampleCPU(0, p.postmaster)
	if err != nil {
		return 0, cpuEach{}, err
	}
	cmd := p.command(ctx, d)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, cpuEach{}, fmt.Errorf("pgbench: %w\n%s", err, out)
	}
	after, err := sampleCPU(0, p.postmaster)
	if err != nil {
		return 0, cpuEach{}, err
	}
	m, c := tpsLine.FindSubmatch(out), countLine.FindSubmatch(out)
	if m == nil || c == nil {
		return 0, cpuEach{}, fmt.Errorf("pgbench output has no tps or transaction count:\n%s", out)
	}
	tps, err1 := strconv.ParseFloat(string(m[1]), 64)
	count, err2 := strconv.Atoi(string(c[1]))
	if err1 != nil || err2 != nil {
		return 0, cpuEach{}, fmt.Errorf("parse pgbench output:\n%s", out)
	}
	// The load generator here is pgbench, not this process: its own CPU time.
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	before.loadgen, after.loadgen = 0, (ru.Utime.Nano()+ru.Stime.Nano())*clockTicks/int64(time.Second)
	return tps, perDelivery(before, after, count, ""), nil
}

// latency runs pgbench at a fixed rate for d and returns each transaction's latency from
// its scheduled start, as the ingest open loop measures: the same durable commits at the
// same rate, without HTTP or ingest, so a stalling disk shows in both.
func (p *pgbenchBaseline) latency(ctx context.Context, rate float64, d time.Duration) ([]time.Duration, error) {
	dir, err := os.MkdirTemp("", "bench-pgbench-log-*")
	if err != nil {
		return nil, fmt.Errorf("create pgbench log directory: %w", err)
	}
	defer os.RemoveAll(dir)
	cmd := p.command(ctx, d, "-R", strconv.FormatFloat(rate, 'f', 0, 64), "-l", "--log-prefix", filepath.Join(dir, "tx"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgbench: %w\n%s", err, out)
	}
	logs, err := filepath.Glob(filepath.Join(dir, "tx.*"))
	if err != nil || len(logs) == 0 {
		return nil, fmt.Errorf("pgbench wrote no transaction log (%v)", err)
	}
	var lat []time.Duration
	for _, name := range logs {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("open pgbench log: %w", err)
		}
		lat, err = readPgbenchLog(f, lat)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("pgbench log %s: %w", name, err)
		}
	}
	return lat, nil
}

// readPgbenchLog appends the latencies of a pgbench -l log. Each line is
// "client_id transaction_no time script_no time_epoch time_us [schedule_lag]"; under -R,
// time (µs) already counts from the scheduled start, schedule lag included: its mean is
// the "latency average" pgbench prints.
func readPgbenchLog(r io.Reader, lat []time.Duration) ([]time.Duration, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			return nil, fmt.Errorf("unexpected line %q", sc.Text())
		}
		if fields[2] == "skipped" || fields[2] == "failed" {
			return nil, fmt.Errorf("a transaction %s: %q", fields[2], sc.Text())
		}
		took, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("unexpected line %q", sc.Text())
		}
		lat = append(lat, time.Duration(took)*time.Microsecond)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return lat, nil
}
