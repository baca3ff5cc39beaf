package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// batcherStats is what ingest's /metrics says about its batcher: cumulative sums and
// counts of turnout_ingest_batch_commit_seconds, _batch_queue_seconds and _batch_size,
// and how many deliveries waited over 50 ms for a worker. Two samples around a phase
// say where a delivery's time went in it: waiting for a batch worker, or in its batch's
// transaction.
type batcherStats struct {
	commitSum, commitCount float64
	queueSum, queueCount   float64
	queueOver50ms          float64
	commitOver50ms         float64
	sizeSum                float64
	// Answers 200 to the callback, and those that took ingest over 50 ms from the
	// request's start (turnout_ingest_request_duration_seconds): set against the load
	// generator's figures, they tell ingest's time from the client's.
	answered, answeredOver50ms float64
}

// Series read from ingest's /metrics.
var batcherSeries = map[string]func(*batcherStats, float64){
	"turnout_ingest_batch_commit_seconds_sum":               func(s *batcherStats, v float64) { s.commitSum = v },
	"turnout_ingest_batch_commit_seconds_count":             func(s *batcherStats, v float64) { s.commitCount = v },
	"turnout_ingest_batch_queue_seconds_sum":                func(s *batcherStats, v float64) { s.queueSum = v },
	"turnout_ingest_batch_queue_seconds_count":              func(s *batcherStats, v float64) { s.queueCount = v },
	`turnout_ingest_batch_queue_seconds_bucket{le="0.05"}`:  func(s *batcherStats, v float64) { s.queueOver50ms = -v },
	`turnout_ingest_batch_commit_seconds_bucket{le="0.05"}`: func(s *batcherStats, v float64) { s.commitOver50ms = -v },
	"turnout_ingest_batch_size_sum":                         func(s *batcherStats, v float64) { s.sizeSum = v },
}

// parseBatcherStats reads the batcher's series from a Prometheus text exposition.
func parseBatcherStats(r io.Reader) (batcherStats, error) {
	var s batcherStats
	seen := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if ok && strings.Contains(name, `code="200"`) && strings.Contains(name, `route="/gotowebinar/callback"`) {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return s, fmt.Errorf("parse %s: %w", name, err)
			}
			switch {
			case strings.HasPrefix(name, "turnout_ingest_request_duration_seconds_count{"):
				s.answered += v
				s.answeredOver50ms += v
			case strings.HasPrefix(name, "turnout_ingest_request_duration_seconds_bucket{") && strings.Contains(name, `le="0.05"`):
				s.answeredOver50ms -= v
			}
			continue
		}
		set, want := batcherSeries[name]
		if !ok || !want {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return s, fmt.Errorf("parse %s: %w", name, err)
		}
		set(&s, v)
		seen++
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("read metrics: %w", err)
	}
	if seen != len(batcherSeries) {
		return s, fmt.Errorf("metrics: %d of the %d batcher series found", seen, len(batcherSeries))
	}
	// The bucket counts deliveries that waited 50 ms or less; over = count - bucket.
	s.queueOver50ms += s.queueCount
	s.commitOver50ms += s.commitCount
	return s, nil
}

// sampleBatcher fetches ingest's batcher stats from its operations listener.
func sampleBatcher(ctx context.Context, opsAddr string) (batcherStats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+opsAddr+"/metrics", nil)
	if err != nil {
		return batcherStats{}, fmt.Errorf("metrics request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return batcherStats{}, fmt.Errorf("fetch metrics: %w", err)
	}
	defer resp.Body.Close()
	return parseBatcherStats(resp.Body)
}

// plus returns s with what changed from a to b added: the sum of several phases' stats.
func (s batcherStats) plus(a, b batcherStats) batcherStats {
	s.commitSum += b.commitSum - a.commitSum
	s.commitCount += b.commitCount - a.commitCount
	s.queueSum += b.queueSum - a.queueSum
	s.queueCount += b.queueCount - a.queueCount
	s.queueOver50ms += b.queueOver50ms - a.queueOver50ms
	s.commitOver50ms += b.commitOver50ms - a.commitOver50ms
	s.answered += b.answered - a.answered
	s.answeredOver50ms += b.answeredOver50ms - a.answeredOver50ms
	s.sizeSum += b.sizeSum - a.sizeSum
	return s
}

// describeBatcher summarises the batcher between samples a and b, over a phase of d.
func describeBatcher(a, b batcherStats, d time.Duration) string {
	batches, deliveries := b.commitCount-a.commitCount, b.queueCount-a.queueCount
	if batches == 0 || deliveries == 0 {
		return "no batches"
	}
	commit := time.Duration((b.commitSum - a.commitSum) / batches * float64(time.Second))
	queue := time.Duration((b.queueSum - a.queueSum) / deliveries * float64(time.Second))
	busy := (b.commitSum - a.commitSum) / d.Seconds()
	r := func(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }
	return fmt.Sprintf("%.0f batches of %.1f on average; mean wait for a worker %s, mean transaction %s; workers in transactions %.2f s per s; %.0f transactions over 50ms; %.0f deliveries waited over 50ms for a worker; %.0f of %.0f answered 200 over 50ms after ingest began handling them",
		batches, (b.sizeSum-a.sizeSum)/batches, r(queue), r(commit), busy, b.commitOver50ms-a.commitOver50ms, b.queueOver50ms-a.queueOver50ms,
		b.answeredOver50ms-a.answeredOver50ms, b.answered-a.answered)
}
