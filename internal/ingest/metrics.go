package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/turnout-analytics/turnout/internal/domain"
)

// Delivery outcomes, the values of turnout_ingest_deliveries_total's outcome label.
const (
	outcomeStored           = "stored"
	outcomeDuplicate        = "duplicate"
	outcomeQuarantined      = "quarantined"
	outcomeUnauthorized     = "unauthorized"
	outcomeTooLarge         = "too_large"
	outcomeUnavailable      = "unavailable"
	outcomeUnverifiedStored = "unverified_stored"
	outcomeBadRequest       = "bad_request" // the body could not be read (client aborted)
	outcomeBusy             = "busy"        // the read budget was spent: 503, retry
)

// Values of turnout_ingest_signature_failures_total's reason label.
const (
	reasonMissing      = "missing"           // no signature header
	reasonBad          = "bad"               // a signature no configured key made
	reasonStale        = "stale"             // verified, but the timestamp is outside the replay window
	reasonBadTimestamp = "bad_timestamp"     // verified, but the timestamp does not parse (window on)
	reasonNoTimestamp  = "missing_timestamp" // verified, but without the timestamp header (required)
)

// metrics are the service's Prometheus instruments, on a registry of its own so several
// services (tests, a benchmark) can live in one process.
type metrics struct {
	registry          *prometheus.Registry
	deliveries        *prometheus.CounterVec
	signatureFailures *prometheus.CounterVec
	duplicates        prometheus.Counter
	quarantined       *prometheus.CounterVec
	batchSize         prometheus.Histogram
	batchCommit       prometheus.Histogram
	batchQueue        prometheus.Histogram
	batchStalls       prometheus.Counter
	requestDuration   *prometheus.HistogramVec
	dataQuality       *prometheus.CounterVec
	unverifiedStored  *prometheus.CounterVec
	unverifiedDropped prometheus.Counter
	unverifiedEvicted prometheus.Counter
	unverifiedRows    prometheus.Gauge
	unverifiedBytes   prometheus.Gauge
	connsEvicted      prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_ingest_deliveries_total",
			Help: "Webhook deliveries received, by outcome.",
		}, []string{"outcome"}),
		signatureFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_ingest_signature_failures_total",
			Help: "Deliveries whose signature was missing or wrong, or (replay window on) whose signed timestamp was stale or unparseable; refused in enforce mode, stored unverified in observe mode.",
		}, []string{"reason"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "turnout_ingest_duplicates_total",
			Help: "Deliveries acknowledged as redeliveries of an event key already in the log.",
		}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_ingest_quarantined_total",
			Help: "Deliveries stored in ingest_quarantine instead of the log, by validation reason.",
		}, []string{"reason"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "turnout_ingest_batch_size",
			Help:    "Deliveries per group-commit transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}),
		// With batchQueue, where a delivery's time goes: waiting for a worker, then its
		// batch's transaction. Their sum over a minute, against the workers' count, is how
		// busy the batcher is: near one second per second and worker, deliveries queue.
		batchCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "turnout_ingest_batch_commit_seconds",
			Help:    "Duration of each group-commit transaction, connection acquisition included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		batchQueue: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "turnout_ingest_batch_queue_seconds",
			Help:    "Time each delivery waited for a batch worker to take it.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		batchStalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "turnout_ingest_batch_stalls_total",
			Help: "Batches still in their transaction after INGEST_BATCH_STALL_AFTER, so that another worker took the deliveries behind them.",
		}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "turnout_ingest_request_duration_seconds",
			Help:    "HTTP request duration, by route pattern and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "code"}),
		dataQuality: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_ingest_data_quality_total",
			Help: "Data-quality findings of accepted deliveries (stored all the same), by event, field (JSON pointer, array indexes as *) and problem; see README \"Data quality\".",
		}, []string{"event", "field", "problem"}),
		unverifiedStored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnout_ingest_unverified_stored_total",
			Help: "Deliveries whose signature (or signed timestamp) did not verify, kept in ingest_unverified, by reason.",
		}, []string{"reason"}),
		unverifiedDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "turnout_ingest_unverified_dropped_total",
			Help: "Unverified deliveries not kept: body over 64 KiB, every store writer busy, or the insert failed.",
		}),
		unverifiedEvicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "turnout_ingest_unverified_evicted_total",
			Help: "Rows evicted from ingest_unverified, oldest first, to keep it within its row and byte bounds.",
		}),
		unverifiedRows: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "turnout_ingest_unverified_rows",
			Help: "Rows in ingest_unverified after the last eviction pass.",
		}),
		unverifiedBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "turnout_ingest_unverified_bytes",
			Help: "Bytes (bodies and headers) in ingest_unverified after the last eviction pass.",
		}),
		connsEvicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "turnout_ingest_connections_evicted_total",
			Help: "Connections closed because the connection cap was reached (the longest idle first).",
		}),
	}
	m.registry.MustRegister(
		m.dataQuality, m.unverifiedStored, m.unverifiedDropped, m.unverifiedEvicted, m.unverifiedRows,
		m.unverifiedBytes, m.connsEvicted,
		m.deliveries, m.signatureFailures, m.duplicates, m.quarantined, m.batchSize, m.requestDuration,
		m.batchCommit, m.batchQueue, m.batchStalls,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Pre-create the label values so dashboards see zeros rather than absent series.
	for _, o := range []string{outcomeStored, outcomeDuplicate, outcomeQuarantined, outcomeUnauthorized,
		outcomeTooLarge, outcomeUnavailable, outcomeUnverifiedStored, outcomeBadRequest, outcomeBusy} {
		m.deliveries.WithLabelValues(o)
	}
	for _, r := range []string{domain.ReasonMalformedJSON, domain.ReasonInvalidUTF8, domain.ReasonDuplicateKey,
		domain.ReasonTooDeep, domain.ReasonMissingEventKey, domain.ReasonEventKeyTooLong,
		domain.ReasonMissingEventName, domain.ReasonMissingKey, domain.ReasonInvalidKey} {
		m.quarantined.WithLabelValues(r)
	}
	for _, r := range []string{reasonMissing, reasonBad, reasonStale, reasonBadTimestamp, reasonNoTimestamp} {
		m.signatureFailures.WithLabelValues(r)
		m.unverifiedStored.WithLabelValues(r)
	}
	return m
}
