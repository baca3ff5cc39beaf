package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// clockTicks is Linux's USER_HZ, the unit of utime and stime in /proc/<pid>/stat. It has
// been 100 on every Linux architecture Go supports since the ABI froze.
const clockTicks = 100

// cpuShares is the CPU time, in clock ticks, used so far by the three parties of the
// ingest benchmark: this process (the load generator), the service under test, and every
// PostgreSQL process (backends, WAL writer, checkpointer…). Two samples taken around a
// measurement give each party's CPU per delivery: on two shared cores that, not the
// service's alone, is what decides the throughput.
type cpuShares struct {
	loadgen, service, postgres int64
}

// sampleCPU reads the shares now; servicePID is the service under test, 0 for none.
// postmasterPID is the benchmark's PostgreSQL server: only it and its children (backends,
// WAL writer, checkpointer…) are counted, not other clusters on a shared machine; 0 counts
// every postgres process.
func sampleCPU(servicePID, postmasterPID int) (cpuShares, error) {
	var s cpuShares
	var err error
	if s.loadgen, err = procTicks(strconv.Itoa(os.Getpid()), false); err != nil {
		return s, err
	}
	if servicePID != 0 {
		if s.service, err = procTicks(strconv.Itoa(servicePID), false); err != nil {
			return s, err
		}
	}
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return s, fmt.Errorf("list processes: %w", err)
	}
	for _, d := range dirs {
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err != nil || string(bytes.TrimSpace(comm)) != "postgres" {
			continue // gone since the listing, or not PostgreSQL
		}
		pid := filepath.Base(d)
		if postmasterPID != 0 && pid != strconv.Itoa(postmasterPID) {
			if ppid, err := parentPID(pid); err != nil || ppid != postmasterPID {
				continue // another cluster's, or gone
			}
		}
		if t, err := procTicks(pid, true); err == nil {
			s.postgres += t
		}
	}
	return s, nil
}

// parentPID returns the parent of process pid (field 4 of /proc/<pid>/stat).
func parentPID(pid string) (int, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, fmt.Errorf("parse /proc/%s/stat: bad parent %q", pid, f[1])
	}
	return ppid, nil
}

// statFields returns the fields of /proc/<pid>/stat after the command name, which may
// contain spaces: state, ppid, … (utime is f[11]).
func statFields(pid string) ([]string, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return nil, fmt.Errorf("read CPU time: %w", err)
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("parse /proc/%s/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return nil, fmt.Errorf("parse /proc/%s/stat: %d fields", pid, len(f))
	}
	return f, nil
}

// procTicks returns utime+stime of process pid, its threads included, and with
// children also the times of its exited children it has waited for. PostgreSQL's
// backends exit with their connections (pgbench's all do at its end); the postmaster
// reaps them, so counting the postmaster's children's times keeps their CPU in the sum.
func procTicks(pid string, children bool) (int64, error) {
	// The fields after the command name are fixed: utime, stime, cutime and cstime are
	// the 12th to 15th.
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	last := 12
	if children {
		last = 14
	}
	var sum int64
	for _, v := range f[11 : last+1] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/%s/stat: bad CPU time %q", pid, v)
		}
		sum += n
	}
	return sum, nil
}

// cpuEach is the CPU each party used per delivery (or transaction) over a measurement.
type cpuEach struct {
	loadgen, service, postgres time.Duration
	serviceName                string // "" when there is no service (pgbench talks to PostgreSQL)
}

func (c cpuEach) total() time.Duration { return c.loadgen + c.service + c.postgres }

func (c cpuEach) String() string {
	r := func(d time.Duration) string { return d.Round(time.Microsecond).String() }
	svc := ""
	if c.serviceName != "" {
		svc = fmt.Sprintf(", %s %s", c.serviceName, r(c.service))
	}
	return fmt.Sprintf("CPU each: load generator %s%s, PostgreSQL %s, total %s",
		r(c.loadgen), svc, r(c.postgres), r(c.total()))
}

// perDelivery divides the CPU each party used between samples a and b by deliveries.
func perDelivery(a, b cpuShares, deliveries int, service string) cpuEach {
	per := func(ticks int64) time.Duration {
		if deliveries == 0 {
			return 0
		}
		return time.Duration(ticks) * (time.Second / clockTicks) / time.Duration(deliveries)
	}
	return cpuEach{
		loadgen:     per(b.loadgen - a.loadgen),
		service:     per(b.service - a.service),
		postgres:    per(b.postgres - a.postgres),
		serviceName: service,
	}
}

// postmasterPID returns the PID of the PostgreSQL server behind dbURL: the parent of a
// backend of its own. The server must run on this machine (make bench-… starts it here).
func postmasterPID(ctx context.Context, dbURL string) (int, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return 0, fmt.Errorf("find backend: %w", err)
	}
	ppid, err := parentPID(strconv.Itoa(backend))
	if err != nil {
		return 0, fmt.Errorf("find the PostgreSQL server (is it on this machine?): %w", err)
	}
	return ppid, nil
}
