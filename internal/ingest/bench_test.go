package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
)

// BenchmarkCallback drives signed deliveries, each with a new event key, through the real
// HTTP handler into PostgreSQL from about 32 concurrent senders. It reports deliveries
// per second and the mean batch size. Run with:
//
//	go test -run '^$' -bench Callback -benchtime 20000x ./internal/ingest
func BenchmarkCallback(b *testing.B) {
	for _, cfg := range []Config{
		{BatchWorkers: 1}, {BatchWorkers: 2}, {BatchWorkers: 3}, {BatchWorkers: 4},
	} {
		b.Run(fmt.Sprintf("workers=%d,wait=%s", cfg.BatchWorkers, cfg.BatchWait), func(b *testing.B) { benchCallback(b, cfg) })
	}
}

func benchCallback(b *testing.B, cfg Config) {
	pool, _ := pgtest.Pool(b)
	cfg.SecretKeys = [][]byte{testKey}
	svc, err := New(pool, cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(svc.Close)
	srv := httptest.NewServer(svc.Handler())
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	var (
		seq       atomic.Int64
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
	)
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		mine := make([]time.Duration, 0, 1024)
		defer func() {
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		}()
		for pb.Next() {
			start := time.Now()
			body := joined(fmt.Sprintf("bench-%d", seq.Add(1)))
			req, _ := http.NewRequest(http.MethodPost, srv.URL+CallbackPath, bytes.NewReader(body))
			for k, v := range signed(testKey, body) {
				req.Header[k] = v
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body) // read to EOF so the connection is reused
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
			mine = append(mine, time.Since(start))
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	var m dto.Metric
	if err := svc.metrics.batchSize.Write(&m); err == nil && m.Histogram.GetSampleCount() > 0 {
		b.ReportMetric(m.Histogram.GetSampleSum()/float64(m.Histogram.GetSampleCount()), "mean_batch")
	}
	if len(latencies) > 0 {
		slices.Sort(latencies)
		b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99_ms")
	}
}

// BenchmarkBatcher measures the append path alone (group commit through the batcher, no
// HTTP, no signature, no parsing) from about 32 concurrent submitters.
func BenchmarkBatcher(b *testing.B) {
	for _, cfg := range []Config{
		{BatchWorkers: 1}, {BatchWorkers: 2}, {BatchWorkers: 3}, {BatchWorkers: 4},
	} {
		b.Run(fmt.Sprintf("workers=%d,wait=%s", cfg.BatchWorkers, cfg.BatchWait), func(b *testing.B) { benchBatcher(b, cfg) })
	}
}

func benchBatcher(b *testing.B, cfg Config) {
	pool, _ := pgtest.Pool(b)
	cfg.SecretKeys = [][]byte{testKey}
	svc, err := New(pool, cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(svc.Close)
	var seq atomic.Int64
	now := time.Now()
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			key := fmt.Sprintf("bench-%d", seq.Add(1))
			if _, err := svc.batcher.submit(ctx, Delivery{Entry: eventlog.Entry{
				Body: joined(key), EventName: "registrant.joined", EventKey: key, SignatureVerified: true, ReceivedAt: now,
			}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	var m dto.Metric
	if err := svc.metrics.batchSize.Write(&m); err == nil && m.Histogram.GetSampleCount() > 0 {
		b.ReportMetric(m.Histogram.GetSampleSum()/float64(m.Histogram.GetSampleCount()), "mean_batch")
	}
}
