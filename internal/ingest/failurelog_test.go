package ingest

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestFailureLogThrottles(t *testing.T) {
	var out bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&out, nil))
	clock := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	f := newFailureLog(time.Second)
	f.now = func() time.Time { return clock }
	down := errors.New("connection refused")
	for range 500 { // an outage: every batch fails within the same second
		f.batchFailed(logger, 10, down)
		clock = clock.Add(time.Millisecond)
	}
	if n := strings.Count(out.String(), "\n"); n != 1 {
		t.Fatalf("%d lines for 500 failed batches in 0.5 s, want 1:\n%s", n, out.String())
	}
	clock = clock.Add(time.Second)
	f.batchFailed(logger, 10, down)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], `"failed_batches_not_logged":499`) {
		t.Fatalf("after the interval, want a second line counting the 499 left out:\n%s", out.String())
	}
}
