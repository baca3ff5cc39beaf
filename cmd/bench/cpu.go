package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
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
func sampleCPU(servicePID int) (cpuShares, error) {
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
		if t, err := procTicks(filepath.Base(d), true); err == nil {
			s.postgres += t
		}
	}
	return s, nil
}

// procTicks returns utime+stime of process pid, its threads included, and with
// children also the times of its exited children it has waited for. PostgreSQL's
// backends exit with their connections (pgbench's all do at its end); the postmaster
// reaps them, so counting the postmaster's children's times keeps their CPU in the sum.
func procTicks(pid string, children bool) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	// The command name (field 2) may contain spaces; the fields after its closing
	// parenthesis are fixed: utime, stime, cutime and cstime are the 12th to 15th.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%s/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, fmt.Errorf("parse /proc/%s/stat: %d fields", pid, len(f))
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
