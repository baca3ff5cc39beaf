package projector_test

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/projector"
)

// value reads a gauge or counter.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if g := d.GetGauge(); g != nil {
		return g.GetValue()
	}
	return d.GetCounter().GetValue()
}

// The parked-events gauge reads analytics._parked, so it shows parked events for as long as
// they stay parked, after a restart too (the parked counter starts again at 0), and drops
// when they are gone: what TurnoutEventsParked (deploy/prometheus/alerts.yml) alerts on.
func TestParkedEventsGaugeAcrossRestarts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin, url := pgtest.Pool(t)
	// Database-level grants are not copied with pgtest's template: the staging table's.
	if _, err := admin.Exec(ctx, `DO $$ BEGIN
		EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO turnout_projector', current_database());
	END $$`); err != nil {
		t.Fatal(err)
	}
	// A registrant key too long for a btree index entry (SQLSTATE 54000): no projection
	// can store it, so the start-up build parks it. Random, so compression cannot shrink it.
	r := rand.New(rand.NewPCG(1, 2))
	long := make([]byte, 12000)
	for i := range long {
		long[i] = "0123456789abcdefghijklmnopqrstuvwxyz"[r.IntN(36)]
	}
	if _, err := admin.Exec(ctx, `INSERT INTO `+eventlog.Table+` (uuid, payload, metadata, transaction_id) VALUES
		(gen_random_uuid()::text, json_build_object('eventName', 'registrant.added', 'eventVersion', '1.0.0', 'product', 'g2w',
		 'eventKey', 'poison', 'webinarKey', 9100000000000000001, 'registrantKey', $1::text, 'email', 'poison@example.com'),
		 '{"signature_verified":"true"}', pg_current_xact_id())`, string(long)); err != nil {
		t.Fatal(err)
	}
	pool := projectorPool(t, url)

	// run starts a projector with metrics of its own (a fresh process), waits until its
	// gauge shows want, and returns its metrics and a stop function.
	run := func(want float64) (*projector.Metrics, func()) {
		t.Helper()
		m := projector.NewMetrics(prometheus.NewRegistry())
		p := projector.New(pool, projector.Config{PollInterval: 10 * time.Millisecond, LagInterval: 20 * time.Millisecond},
			slog.New(slog.DiscardHandler), m)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- p.Run(runCtx) }()
		stop := func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("projector: %v", err)
			}
		}
		waitUntil(t, func() bool {
			select {
			case err := <-done:
				t.Fatalf("the projector stopped: %v", err)
			default:
			}
			return value(t, m.ParkedEvents) == want
		})
		return m, stop
	}

	_, stop := run(1)
	stop()
	// Restarted: nothing parked by this process (its counter is 0), the gauge still 1.
	m, stop := run(1)
	defer stop()
	if n := value(t, m.Parked); n != 0 {
		t.Errorf("the restarted projector parked %v events, want 0 (the event was parked before)", n)
	}
	// Once the parked event is gone (a rebuild after the cause is fixed), the gauge drops.
	if _, err := admin.Exec(ctx, `DELETE FROM analytics._parked`); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return value(t, m.ParkedEvents) == 0 })
}
