package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"
)

// diskProbe times a small durable write — 8 KiB written and flushed with fdatasync, as
// PostgreSQL flushes its WAL at each commit — every interval, in a file of dir (the
// throwaway cluster's disk: both live under the system's temp directory). A latency target
// for a service that answers only after its commit cannot be met through a disk whose
// flushes stall, so the benchmark reports the disk's own flush times beside the latencies
// it measures at the same time.
type diskProbe struct {
	cancel context.CancelFunc
	done   chan []time.Duration
}

// startDiskProbe starts probing; stop returns the flush latencies.
func startDiskProbe(ctx context.Context, dir string, interval time.Duration) (*diskProbe, error) {
	f, err := os.CreateTemp(dir, "bench-disk-probe-*")
	if err != nil {
		return nil, fmt.Errorf("create disk probe file: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &diskProbe{cancel: cancel, done: make(chan []time.Duration, 1)}
	go func() {
		defer os.Remove(f.Name())
		defer f.Close()
		page := make([]byte, 8<<10)
		var lat []time.Duration
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				p.done <- lat
				return
			case <-tick.C:
			}
			start := time.Now()
			if _, err := f.WriteAt(page, 0); err != nil {
				continue // a probe that cannot write reports fewer samples, not a failure
			}
			if err := syscall.Fdatasync(int(f.Fd())); err != nil {
				continue
			}
			lat = append(lat, time.Since(start))
		}
	}()
	return p, nil
}

// stop ends the probe and returns its flush latencies.
func (p *diskProbe) stop() []time.Duration {
	p.cancel()
	return <-p.done
}

// describeFlushes summarises flush latencies: median, worst, and how long flushes of
// over 50 ms took in all (the time every commit waiting behind them waited too).
func describeFlushes(lat []time.Duration) string {
	if len(lat) == 0 {
		return "no samples"
	}
	var stalled time.Duration
	for _, d := range lat {
		if d > 50*time.Millisecond {
			stalled += d
		}
	}
	return fmt.Sprintf("8 KiB fdatasync every 10ms: p50 %s, max %s, %s in flushes over 50ms",
		pct(lat, 50), slices.Max(lat).Round(100*time.Microsecond), stalled.Round(time.Millisecond))
}
