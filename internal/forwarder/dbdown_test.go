package forwarder_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turnout-analytics/turnout/internal/forwarder"
	"github.com/turnout-analytics/turnout/internal/natstest"
	"github.com/turnout-analytics/turnout/internal/pgtest"
)

// cutter is a TCP proxy to PostgreSQL that can be cut: while it is down, every connection
// through it is closed and new ones are refused, as when the database host is unreachable.
type cutter struct {
	addr, upstream string
	mu             sync.Mutex
	ln             net.Listener
	conns          map[net.Conn]bool
}

func newCutter(t *testing.T, upstream string) *cutter {
	t.Helper()
	c := &cutter{upstream: upstream, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.addr = ln.Addr().String()
	c.serve(ln)
	t.Cleanup(c.down)
	return c
}

func (c *cutter) serve(ln net.Listener) {
	c.mu.Lock()
	c.ln = ln
	c.mu.Unlock()
	go func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", c.upstream)
			if err != nil {
				down.Close()
				continue
			}
			c.mu.Lock()
			c.conns[down], c.conns[up] = true, true
			c.mu.Unlock()
			go func() { _, _ = io.Copy(up, down); up.Close() }()
			go func() { _, _ = io.Copy(down, up); down.Close() }()
		}
	}()
}

// down closes the listener and every connection.
func (c *cutter) down() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ln != nil {
		c.ln.Close()
		c.ln = nil
	}
	for conn := range c.conns {
		conn.Close()
	}
	clear(c.conns)
}

// up listens again on the same address.
func (c *cutter) up(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln, err := net.Listen("tcp", c.addr)
		if err == nil {
			c.serve(ln)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("listen again on %s: %v", c.addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDatabaseUnreachableWaitsAndResumes cuts the forwarder's database connections for 3 s
// while ingest (on its own connections) keeps writing the log. The forwarder must wait
// (counted in turnout_forwarder_waits_total{dependency="database"}), resume by itself, and
// the stream must end up holding exactly the log's events.
func TestDatabaseUnreachableWaitsAndResumes(t *testing.T) {
	t.Parallel()
	pool, dbURL := pgtest.Pool(t)
	base, drainIngest := startIngest(t, pool)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cut := newCutter(t, u.Host)
	u.Host = cut.addr
	fwdPool, err := pgxpool.New(context.Background(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fwdPool.Close)

	ns := natstest.New(t, 1)
	nc, err := nats.Connect(ns.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cfg := forwarder.Config{BatchSize: 100, RetryWait: 100 * time.Millisecond}.WithDefaults()
	ctx := context.Background()
	if _, err := forwarder.EnsureStream(ctx, nc, cfg.Stream); err != nil {
		t.Fatal(err)
	}
	m, stop := runForwarder(t, ctx, fwdPool, nc, cfg)

	loadCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	loaded := make(chan int, 1)
	go func() { loaded <- load(loadCtx, t, base, 0, 1_000_000, 4) }()
	time.Sleep(1 * time.Second)
	cut.down()
	time.Sleep(3 * time.Second)
	if got := testutil.ToFloat64(m.Waits.WithLabelValues("database")); got == 0 {
		t.Error("the forwarder never waited for the database while it was unreachable")
	}
	cut.up(t)
	<-loaded
	drainIngest()
	log := wholeLog(t, pool)
	waitCaughtUp(t, pool, log[len(log)-1].Position, 60*time.Second)
	stop()
	checkStreamIsTheLog(t, log, readStream(t, nc))
}
