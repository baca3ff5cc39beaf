package projector

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the projector's Prometheus instruments.
type Metrics struct {
	Applied         prometheus.Counter
	Parked          prometheus.Counter
	LagEvents       prometheus.Gauge
	LagSeconds      prometheus.Gauge
	RebuildProgress prometheus.Gauge
	RebuildEvents   prometheus.Counter
	HandlerDuration prometheus.Histogram
}

// NewMetrics creates the projector's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "turnout_projector_applied_total",
			Help: "Events applied to the analytics projections by the live projector.",
		}),
		Parked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "turnout_projector_parked_total",
			Help: "Events parked in analytics._parked after their last retry failed.",
		}),
		LagEvents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "turnout_projector_lag_events",
			Help: "Visible log rows after the live projector's position.",
		}),
		LagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "turnout_projector_lag_seconds",
			Help: "Age of the oldest visible log row not yet applied (0 when none).",
		}),
		RebuildProgress: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "turnout_projector_rebuild_progress_ratio",
			Help: "Progress of the running rebuild, 0..1 (1 when none is running).",
		}),
		RebuildEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "turnout_projector_rebuild_events_total",
			Help: "Events applied to the shadow schema by rebuilds.",
		}),
		HandlerDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "turnout_projector_handler_duration_seconds",
			Help:    "Time the live handler took per message, retries and parking included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
	}
	m.RebuildProgress.Set(1)
	reg.MustRegister(m.Applied, m.Parked, m.LagEvents, m.LagSeconds, m.RebuildProgress, m.RebuildEvents, m.HandlerDuration)
	return m
}
