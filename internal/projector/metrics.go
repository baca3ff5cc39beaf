package projector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/turnout-analytics/turnout/internal/rebuild"
)

// Metrics are the projector's Prometheus instruments.
type Metrics struct {
	Applied       prometheus.Counter
	Parked        prometheus.Counter
	ParkedEvents  prometheus.Gauge
	LagEvents     prometheus.Gauge
	LagSeconds    prometheus.Gauge
	BatchDuration prometheus.Histogram
	BatchLimit    prometheus.Gauge
	Rebuild       *rebuild.Metrics
}

// NewMetrics creates the projector's metrics (and the start-up build's) and registers them
// with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "turnout_projector_applied_total",
			Help: "Events applied to the analytics projections by the live projector.",
		}),
		Parked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "turnout_projector_parked_total",
			Help: "Events parked in analytics._parked by the live projector.",
		}),
		// The counter starts again at 0 when the projector restarts; the gauge reads the
		// table, so an alert on it holds for as long as any event stays parked.
		ParkedEvents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "turnout_projector_parked_events",
			Help: "Events parked in analytics._parked now (rows of the table, refreshed every lag interval); they stay until a rebuild applies them.",
		}),
		LagEvents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "turnout_projector_lag_events",
			Help: "Committed log rows after the live projector's position (counted up to 100,000).",
		}),
		LagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "turnout_projector_lag_seconds",
			Help: "Age of the oldest committed log row not yet applied (0 when none).",
		}),
		// The name predates micro-batches (it timed one message); dashboards use it.
		BatchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "turnout_projector_handler_duration_seconds",
			Help:    "Time the live projector took per batch transaction, splitting and parking included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		BatchLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "turnout_projector_batch_limit",
			Help: "The live projector's current adaptive batch limit (log rows per transaction).",
		}),
	}
	reg.MustRegister(m.Applied, m.Parked, m.ParkedEvents, m.LagEvents, m.LagSeconds, m.BatchDuration, m.BatchLimit)
	m.Rebuild = rebuild.NewMetrics(reg)
	return m
}
