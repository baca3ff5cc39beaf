package rebuild

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/turnout-analytics/turnout/internal/eventlog"
)

// rate tracks a rebuild's throughput and estimated time to completion.
type rate struct {
	start time.Time
	total int64
}

func (r rate) eta(done int64, now time.Time) (perSecond float64, eta time.Duration) {
	elapsed := now.Sub(r.start).Seconds()
	if elapsed <= 0 || done <= 0 {
		return 0, 0
	}
	perSecond = float64(done) / elapsed
	if left := r.total - done; left > 0 {
		eta = time.Duration(float64(left) / perSecond * float64(time.Second))
	}
	return perSecond, eta
}

// BarProgress draws a progress bar on a terminal, redrawn in place at most every 100ms.
type BarProgress struct {
	mu    sync.Mutex
	w     io.Writer
	r     rate
	drawn time.Time
	now   func() time.Time
}

// NewBarProgress returns a Progress drawing on w, which should be a terminal.
func NewBarProgress(w io.Writer) *BarProgress { return &BarProgress{w: w, now: time.Now} }

// Start implements Progress.
func (b *BarProgress) Start(from eventlog.Position, resumed bool, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.r = rate{start: b.now(), total: total}
	verb := "rebuilding"
	if resumed {
		verb = fmt.Sprintf("resuming at %v,", from)
	}
	fmt.Fprintf(b.w, "%s %d events to apply\n", verb, total)
}

// Update implements Progress.
func (b *BarProgress) Update(done int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if now.Sub(b.drawn) < 100*time.Millisecond {
		return
	}
	b.drawn = now
	const width = 30
	ratio := 1.0
	if b.r.total > 0 {
		ratio = min(1, float64(done)/float64(b.r.total))
	}
	filled := int(ratio * width)
	perSecond, eta := b.r.eta(done, now)
	fmt.Fprintf(b.w, "\r[%s%s] %5.1f%% %d/%d  %.0f events/s  ETA %s ",
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), ratio*100,
		done, b.r.total, perSecond, eta.Round(time.Second))
}

// Finish implements Progress.
func (b *BarProgress) Finish(s Stats) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintf(b.w, "\rrebuilt: %d events in %.1fs (%.0f events/s)%s\n",
		s.Events, s.Duration.Seconds(), s.EventsPerSecond(), strings.Repeat(" ", 30))
}

// LogProgress reports progress as slog lines, at most one per interval.
type LogProgress struct {
	mu     sync.Mutex
	log    *slog.Logger
	every  time.Duration
	r      rate
	logged time.Time
}

// NewLogProgress returns a Progress that logs to l at most every interval.
func NewLogProgress(l *slog.Logger, every time.Duration) *LogProgress {
	return &LogProgress{log: l, every: every}
}

// Start implements Progress.
func (p *LogProgress) Start(from eventlog.Position, resumed bool, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.r = rate{start: time.Now(), total: total}
	p.logged = p.r.start
	p.log.Info("rebuild started", "resumed", resumed, "from_epoch", from.Epoch, "from_transaction_id", from.TxID,
		"from_offset", from.Offset, "total_events", total)
}

// Update implements Progress.
func (p *LogProgress) Update(done int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.logged) < p.every {
		return
	}
	p.logged = now
	perSecond, eta := p.r.eta(done, now)
	p.log.Info("rebuild progress", "events", done, "total_events", p.r.total,
		"events_per_second", int64(perSecond), "eta_seconds", int64(eta.Seconds()))
}

// Finish implements Progress.
func (p *LogProgress) Finish(s Stats) {
	p.log.Info("rebuild finished", "events", s.Events, "seconds", s.Duration.Seconds(),
		"events_per_second", int64(s.EventsPerSecond()),
		"epoch", s.To.Epoch, "transaction_id", s.To.TxID, "offset", s.To.Offset)
}
