package ingest

import (
	"log/slog"
	"sync"
	"time"
)

// failureLog logs failed batches at most once per interval and counts the ones it left
// out. During a database outage every batch fails: one line per batch was ~1,300 lines per
// 2-second outage under load (internal/faults TestDatabaseRestartUnderLoad), drowning the
// log; the metrics still count every failed delivery.
type failureLog struct {
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	last    time.Time
	skipped int
}

func newFailureLog(every time.Duration) *failureLog {
	return &failureLog{every: every, now: time.Now}
}

func (f *failureLog) batchFailed(l *slog.Logger, size int, err error) {
	f.mu.Lock()
	now := f.now()
	if !f.last.IsZero() && now.Sub(f.last) < f.every {
		f.skipped++
		f.mu.Unlock()
		return
	}
	skipped := f.skipped
	f.last, f.skipped = now, 0
	f.mu.Unlock()
	l.Error("append batch", slog.Int("size", size), slog.Int("failed_batches_not_logged", skipped), slog.Any("error", err))
}
