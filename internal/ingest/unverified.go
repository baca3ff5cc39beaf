package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// SQL of the unverified store (migrations/0003_ingest_admission.up.sql).
const (
	insertUnverifiedSQL = `
INSERT INTO ingest_unverified (received_at, reason, headers, body, size_bytes)
VALUES ($1, $2, $3, $4, $5)`

	// evictUnverifiedSQL deletes the oldest rows beyond the bounds: a row goes when more
	// than $1 rows, or more than $2 bytes, are newer than or equal to it. One pass over the
	// table newest first; the store is small (bounded) and the pass runs at most once per
	// evictEvery, so the window sum is cheap. It returns what is left.
	evictUnverifiedSQL = `
WITH ranked AS (
    SELECT id,
           row_number() OVER w AS n,
           sum(size_bytes) OVER w AS total
    FROM ingest_unverified
    WINDOW w AS (ORDER BY id DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), gone AS (
    DELETE FROM ingest_unverified u USING ranked r
    WHERE u.id = r.id AND (r.n > $1 OR r.total > $2)
    RETURNING u.size_bytes
)
SELECT (SELECT count(*) FROM gone),
       (SELECT count(*) FROM ingest_unverified) - (SELECT count(*) FROM gone),
       (SELECT coalesce(sum(size_bytes), 0) FROM ingest_unverified) - (SELECT coalesce(sum(size_bytes), 0) FROM gone)`
)

// Defaults of the unverified store's bounds and writers.
const (
	DefaultUnverifiedMaxRows  = 100_000
	DefaultUnverifiedMaxBytes = 256 << 20
	// unverifiedWriters bounds the inserts into the store in flight at once: anyone can
	// send unverified deliveries, and they must not take the connections authentic ones
	// need. A delivery that finds no writer free is not kept (counted as dropped).
	unverifiedWriters = 2
	// unverifiedMaxBody is the largest body kept: real deliveries are a few KiB, and a
	// forger's megabyte bodies would otherwise turn into database writes at whatever rate
	// it can send. A larger unverified body is counted as dropped.
	unverifiedMaxBody = 64 << 10
	// evictEvery is how often the store is trimmed to its bounds while deliveries arrive;
	// between passes it can exceed them by what arrives in that time.
	evictEvery = time.Second
)

// unverifiedHeaders are the request headers kept with an unverified body: the two the
// signature covers, so `ingest requeue` can verify it again, and a few for diagnosis.
var unverifiedHeaders = quarantinedHeaders

// unverifiedStore keeps deliveries that did not verify, bounded in rows and bytes.
type unverifiedStore struct {
	pool     *pgxpool.Pool
	maxRows  int64
	maxBytes int64
	metrics  *metrics
	logger   *slog.Logger
	writers  chan struct{}

	dirty chan struct{} // a non-blocking signal that rows were added since the last pass
	stop  chan struct{}
	done  sync.WaitGroup
}

func newUnverifiedStore(pool *pgxpool.Pool, cfg Config, m *metrics, logger *slog.Logger) *unverifiedStore {
	u := &unverifiedStore{
		pool: pool, maxRows: int64(cfg.UnverifiedMaxRows), maxBytes: cfg.UnverifiedMaxBytes,
		metrics: m, logger: logger,
		writers: make(chan struct{}, unverifiedWriters),
		dirty:   make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	u.dirty <- struct{}{} // one pass at start: reports the store's size, applies new bounds
	u.done.Add(1)
	go u.evictLoop()
	return u
}

// errNotKept reports an unverified delivery that was not stored: too large, or no writer
// was free.
var errNotKept = fmt.Errorf("%w: unverified delivery not kept", ErrUnavailable)

// keep stores one unverified delivery. It returns errNotKept when the body is over
// unverifiedMaxBody or every writer is busy, and the database's error when the insert
// failed.
func (u *unverifiedStore) keep(ctx context.Context, received time.Time, reason string, h http.Header, body []byte) error {
	if len(body) > unverifiedMaxBody {
		u.metrics.unverifiedDropped.Inc()
		return errNotKept
	}
	select {
	case u.writers <- struct{}{}:
	default:
		u.metrics.unverifiedDropped.Inc()
		return errNotKept
	}
	defer func() { <-u.writers }()
	headers := keptHeaders(h, unverifiedHeaders)
	hb, err := json.Marshal(headers)
	if err != nil {
		return fmt.Errorf("encode unverified headers: %w", err)
	}
	if body == nil {
		body = []byte{}
	}
	if _, err := u.pool.Exec(ctx, insertUnverifiedSQL, received, reason, hb, body, len(body)+len(hb)); err != nil {
		u.metrics.unverifiedDropped.Inc()
		return fmt.Errorf("insert unverified delivery: %w", err)
	}
	u.metrics.unverifiedStored.WithLabelValues(reason).Inc()
	select {
	case u.dirty <- struct{}{}:
	default:
	}
	return nil
}

// evictLoop trims the store to its bounds at most once per evictEvery, after rows were
// added.
func (u *unverifiedStore) evictLoop() {
	defer u.done.Done()
	t := time.NewTicker(evictEvery)
	defer t.Stop()
	for {
		select {
		case <-u.stop:
			return
		case <-t.C:
		}
		select {
		case <-u.dirty:
		default:
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := u.evict(ctx); err != nil {
			u.logger.Warn("evict unverified deliveries", slog.Any("error", err))
			select { // try again next tick
			case u.dirty <- struct{}{}:
			default:
			}
		}
		cancel()
	}
}

// evict deletes the oldest rows beyond the bounds and updates the store's gauges.
func (u *unverifiedStore) evict(ctx context.Context) error {
	var evicted, rows, bytes int64
	if err := u.pool.QueryRow(ctx, evictUnverifiedSQL, u.maxRows, u.maxBytes).Scan(&evicted, &rows, &bytes); err != nil {
		return fmt.Errorf("evict: %w", err)
	}
	u.metrics.unverifiedEvicted.Add(float64(evicted))
	u.metrics.unverifiedRows.Set(float64(rows))
	u.metrics.unverifiedBytes.Set(float64(bytes))
	return nil
}

// close stops the eviction loop.
func (u *unverifiedStore) close() {
	close(u.stop)
	u.done.Wait()
}

// keptHeaders picks the named headers of h (several values joined as net/http would).
func keptHeaders(h http.Header, names []string) map[string]string {
	out := make(map[string]string, len(names))
	for _, n := range names {
		if v := h.Values(n); len(v) > 0 {
			out[n] = strings.Join(v, ", ")
		}
	}
	return out
}
