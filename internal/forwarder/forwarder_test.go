package forwarder_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/forwarder"
	"github.com/turnout-analytics/turnout/internal/natstest"
	"github.com/turnout-analytics/turnout/internal/pgtest"
)

// runForwarder runs a forwarder in this process until the test ends (or stop is called)
// and returns its metrics.
func runForwarder(t *testing.T, ctx context.Context, pool *pgxpool.Pool, nc *nats.Conn, cfg forwarder.Config) (*forwarder.Metrics, func()) {
	t.Helper()
	m := forwarder.NewMetrics()
	pub, err := forwarder.NewPublisher(nc, watermill.NopLogger{}, m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- forwarder.New(pool, pub, cfg, testLogger(t), m).Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("forwarder: %v", err)
		}
		_ = pub.Close()
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})
	return m, stop
}

// TestForwardsTheLogInOrderWithHeaders forwards a log written by the real ingest handler
// and reads the stream back: every event once, in log order, on its subject, with its raw
// payload and headers. Then it forwards the whole log again from position zero: JetStream
// acknowledges every re-publish as a duplicate and the stream is unchanged.
func TestForwardsTheLogInOrderWithHeaders(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	ctx := context.Background()
	base, _ := startIngest(t, pool)
	const n = 600
	if got := load(ctx, t, base, 0, n, 8); got != n {
		t.Fatalf("%d of %d deliveries acknowledged", got, n)
	}
	log := wholeLog(t, pool)
	if len(log) != n {
		t.Fatalf("log holds %d events, want %d", len(log), n)
	}

	ns := natstest.New(t, 1)
	nc, err := nats.Connect(ns.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cfg := forwarder.Config{BatchSize: 64, Stream: forwarder.StreamConfig{Replicas: 1}}.WithDefaults()
	if _, err := forwarder.EnsureStream(ctx, nc, cfg.Stream); err != nil {
		t.Fatal(err)
	}
	m, stop := runForwarder(t, ctx, pool, nc, cfg)
	waitCaughtUp(t, pool, log[len(log)-1].Position, 30*time.Second)
	stop()

	msgs := readStream(t, nc)
	checkStreamIsTheLog(t, log, msgs)
	for i, msg := range msgs {
		r := log[i]
		h := msg.Header
		if got, want := msg.Subject, "turnout.events."+r.EventName; got != want {
			t.Errorf("message %d: subject %q, want %q", i, got, want)
		}
		if got := h.Get(forwarder.HeaderMsgID); got != r.EventKey {
			t.Errorf("message %d: Nats-Msg-Id %q, want the log's order (%q)", i, got, r.EventKey)
		}
		if got := h.Get(forwarder.HeaderPosition); got != r.Position.String() {
			t.Errorf("message %d: position %q, want %q", i, got, r.Position.String())
		}
		if at, err := time.Parse(time.RFC3339Nano, h.Get(forwarder.HeaderReceivedAt)); err != nil || !at.Equal(r.ReceivedAt) {
			t.Errorf("message %d: received_at %q, want %v", i, h.Get(forwarder.HeaderReceivedAt), r.ReceivedAt)
		}
		if got := h.Get(forwarder.HeaderSource); got != forwarder.SourceGoToWebinar {
			t.Errorf("message %d: source %q", i, got)
		}
	}
	if got := testutil.ToFloat64(m.Acks.WithLabelValues("stored")); got != n {
		t.Errorf("acks stored = %v, want %d", got, n)
	}

	// A forwarder that lost its position (as if killed before every advance) publishes
	// everything again: JetStream acknowledges each as a duplicate and stores nothing.
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := eventlog.LockPosition(ctx, tx, forwarder.ConsumerGroup); err != nil {
			return err
		}
		return eventlog.AdvancePosition(ctx, tx, forwarder.ConsumerGroup, eventlog.Position{})
	}); err != nil {
		t.Fatal(err)
	}
	m2, stop2 := runForwarder(t, ctx, pool, nc, cfg)
	waitCaughtUp(t, pool, log[len(log)-1].Position, 30*time.Second)
	stop2()
	if got := testutil.ToFloat64(m2.Acks.WithLabelValues("duplicate")); got != n {
		t.Errorf("re-publish: %v duplicate acks, want %d", got, n)
	}
	checkStreamIsTheLog(t, log, readStream(t, nc))
}
