package forwarder

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the forwarder's Prometheus instruments, on a registry of their own so
// several forwarders (tests, a benchmark) can live in one process.
type Metrics struct {
	Registry      *prometheus.Registry
	LagEvents     prometheus.Gauge
	LagSeconds    prometheus.Gauge
	Published     prometheus.Counter
	Acks          *prometheus.CounterVec
	Retries       prometheus.Counter
	PublishErrors *prometheus.CounterVec
	Forwarded     prometheus.Counter
	Waits         *prometheus.CounterVec
}

// NewMetrics registers the forwarder's instruments, with the Go and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		LagEvents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "turnout_forwarder_lag_events",
			Help: "Committed log events past the forwarder's position (not yet acknowledged by JetStream).",
		}),
		LagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "turnout_forwarder_lag_seconds",
			Help: "Age of the oldest log event not yet forwarded (0 when caught up).",
		}),
		Published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "turnout_forwarder_published_total",
			Help: "Messages sent to JetStream, re-publishes included.",
		}),
		Acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_forwarder_acks_total",
			Help: "JetStream acknowledgements, by result: stored, or duplicate (a re-publish JetStream dropped by its Nats-Msg-Id).",
		}, []string{"result"}),
		Retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "turnout_forwarder_retries_total",
			Help: "Messages published again because JetStream had not acknowledged them in time.",
		}),
		PublishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_forwarder_publish_errors_total",
			Help: "Publishes that failed, by reason: send (connection), no_responders (no stream leader), refused (JetStream error).",
		}, []string{"reason"}),
		Forwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "turnout_forwarder_forwarded_total",
			Help: "Log events whose position was advanced past after JetStream acknowledged them.",
		}),
		Waits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_forwarder_waits_total",
			Help: "Times the forwarder waited for a dependency, by dependency: database (a failed query, tried again after the retry wait), nats (a batch not wholly acknowledged within the ack wait).",
		}, []string{"dependency"}),
	}
	m.Registry.MustRegister(m.LagEvents, m.LagSeconds, m.Published, m.Acks, m.Retries,
		m.PublishErrors, m.Forwarded, m.Waits,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"stored", "duplicate"} {
		m.Acks.WithLabelValues(r)
	}
	for _, r := range []string{"send", "no_responders", "refused"} {
		m.PublishErrors.WithLabelValues(r)
	}
	for _, d := range []string{"database", "nats"} {
		m.Waits.WithLabelValues(d)
	}
	return m
}
