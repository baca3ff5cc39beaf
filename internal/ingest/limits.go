package ingest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// errBusy refuses a delivery when the bytes of bodies being read are at their budget: it
// is answered 503 with Retry-After, so an authentic sender retries.
var errBusy = errors.New("too many deliveries being read")

// Bodies are read against a byte budget, so the memory unauthenticated senders can make
// ingest hold is bounded whatever they claim or send. Each read reserves what its body may
// cost: its Content-Length (at least minReadWeight), or MaxBodyBytes when the length is not
// declared. The budget is split in two halves. Bodies of up to smallBody bytes (real
// deliveries are 1-2 KiB) share one half and wait up to readWait for their share; larger
// ones share the other half and take their share only if it is free at once (else 503).
// So a flood of large claims cannot hold up the small deliveries. With the default budget
// the small half admits 2,048 reads of real size, more than the connection cap lets
// anyone hold open; a sender that opens hundreds of connections each claiming 16 KiB and
// then stalls can fill it until ReadTimeout cuts them off, and meanwhile deliveries are
// answered 503 busy, which GoTo can retry: memory stays bounded either way.
const (
	minReadWeight = 4 << 10
	smallBody     = 16 << 10
	readWait      = time.Second
)

// readBudget bounds the bytes of request bodies held at once.
type readBudget struct{ small, large *semaphore.Weighted }

func newReadBudget(bytes int64) readBudget {
	return readBudget{small: semaphore.NewWeighted(bytes / 2), large: semaphore.NewWeighted(bytes / 2)}
}

// acquire reserves the share of a body of contentLength (-1: unknown, up to max) and
// returns its release, or errBusy.
func (b readBudget) acquire(ctx context.Context, contentLength, max int64) (func(), error) {
	w := contentLength
	if w < 0 || w > max {
		w = max
	}
	w = max64(w, minReadWeight)
	if w > smallBody {
		if !b.large.TryAcquire(w) {
			return nil, errBusy
		}
		return func() { b.large.Release(w) }, nil
	}
	release := func() { b.small.Release(w) }
	// The usual case, a budget with room, needs no timer (the deadline's was ~2 µs a
	// delivery in make bench-ingest's profile).
	if b.small.TryAcquire(w) {
		return release, nil
	}
	ctx, cancel := context.WithTimeout(ctx, readWait)
	defer cancel()
	if err := b.small.Acquire(ctx, w); err != nil {
		return nil, errBusy
	}
	return release, nil
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// connLimiter caps the connections a server holds. Connections are accepted (the kernel
// would otherwise queue them unseen); when one more than the cap is open, the connection
// idle the longest is closed to make room, and if none is idle the new one is. So idle
// keep-alive connections cannot lock senders out, and the descriptors held stay near the
// cap. Slow senders of headers or bodies are the server's timeouts' business.
type connLimiter struct {
	max     int
	onEvict func()

	mu   sync.Mutex
	open int
	idle map[net.Conn]time.Time
}

func newConnLimiter(max int, onEvict func()) *connLimiter {
	return &connLimiter{max: max, onEvict: onEvict, idle: make(map[net.Conn]time.Time)}
}

// track is an http.Server ConnState hook.
func (l *connLimiter) track(c net.Conn, state http.ConnState) {
	var victim net.Conn
	l.mu.Lock()
	switch state {
	case http.StateNew:
		l.open++
		if l.open > l.max {
			victim = c
			var oldest time.Time
			for ic, since := range l.idle {
				if victim == c || since.Before(oldest) {
					victim, oldest = ic, since
				}
			}
			delete(l.idle, victim)
		}
	case http.StateIdle:
		l.idle[c] = time.Now()
	case http.StateActive:
		delete(l.idle, c)
	case http.StateClosed, http.StateHijacked:
		delete(l.idle, c)
		l.open--
	}
	l.mu.Unlock()
	if victim != nil {
		// The server sees the close as a read error and moves it to StateClosed, which
		// gives its count back.
		_ = victim.Close()
		if l.onEvict != nil {
			l.onEvict()
		}
	}
}
