package projector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/projections"
	"github.com/turnout-analytics/turnout/internal/rebuild"
)

// maxFailureBackoff caps the wait between failed batches (the database is down, say).
const maxFailureBackoff = 5 * time.Second

// lagGaugeLimit is where the lag_events gauge saturates: counting further would make the
// refresh compete with the catch-up it measures (see eventlog.LagAtMost).
const lagGaugeLimit = 100_000

// ErrPermission is returned by Run when the projector's role may not do what a batch
// needs. It stops the projector instead of retrying for ever: the cause is a deployment
// mistake, typically an analytics schema swapped in by a rebuild run as another role.
var ErrPermission = errors.New("the projector's database role lacks a privilege it needs on analytics or the event log")

// batch is what one step did.
type batch struct {
	events int64
	took   time.Duration
	pos    eventlog.Position // the position after the batch (the locked one when empty)
}

// Run is the live projector. It first makes sure analytics exists at the current
// projections version (building it in-process when not), then applies the log in
// micro-batches until ctx is cancelled, when it stops after the batch in flight.
func (p *Projector) Run(ctx context.Context) error {
	if err := p.ensureCurrentRetrying(ctx); err != nil {
		return err
	}
	if err := eventlog.Ahead(ctx, p.pool); err != nil {
		if ctx.Err() != nil {
			return nil //nolint:nilerr // stopped while starting: nothing was applied
		}
		return err
	}
	lagCtx, stopLag := context.WithCancel(ctx)
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		p.refreshLag(lagCtx)
	}()
	defer func() { stopLag(); <-lagDone }()

	limit, failWait := p.cfg.MinBatch, p.cfg.RetryInterval
	for {
		p.metrics.BatchLimit.Set(float64(limit))
		b, err := p.step(ctx, limit, false)
		if errors.Is(err, errCareful) {
			b, err = p.step(ctx, limit, true)
		}
		if ctx.Err() != nil {
			return nil //nolint:nilerr // stopping: the batch in flight was rolled back or committed
		}
		if err != nil {
			if err := p.fatal(ctx, err); err != nil {
				return err
			}
			p.log.Warn("batch failed; retrying", "error", err, "batch_limit", limit, "retry_in", failWait)
			// Smaller: a batch that ran out of time gets through halved.
			limit = max(p.cfg.MinBatch, limit/2)
			sleep(ctx, failWait)
			failWait = min(2*failWait, maxFailureBackoff)
			continue
		}
		failWait = p.cfg.RetryInterval
		limit = p.adapt(limit, b)
		if b.events == 0 {
			p.idle(ctx, b.pos)
		}
	}
}

// fullCheckEvery bounds how long idle polls trust the position they last saw (see idle).
const fullCheckEvery = time.Second

// idle waits until a row is committed after pos (or fullCheckEvery passes, or ctx ends),
// polling every PollInterval with one cheap query outside any transaction, instead of a
// batch transaction per poll. pos may have moved meanwhile (a rebuild's swap moves it);
// a stale pos only makes the next, real, step find nothing, and the periodic full check
// covers a position that moved backwards.
func (p *Projector) idle(ctx context.Context, pos eventlog.Position) {
	until := time.Now().Add(fullCheckEvery)
	for ctx.Err() == nil && time.Now().Before(until) {
		sleep(ctx, p.cfg.PollInterval)
		if _, n, err := eventlog.BatchEnd(ctx, p.pool, pos, 1); err != nil || n > 0 {
			return // rows to apply, or an error the next step reports
		}
	}
}

// adapt returns the next batch limit: doubled after a full batch that took less than the
// target (there is a backlog, and the batch can grow), halved after one that took more
// than twice the target (the band between keeps the limit from oscillating).
func (p *Projector) adapt(limit int, b batch) int {
	switch {
	case b.took > 2*p.cfg.BatchTarget:
		return max(p.cfg.MinBatch, limit/2)
	case b.events >= int64(limit):
		return min(p.cfg.MaxBatch, 2*limit)
	}
	return limit
}

// asyncCommitSQL turns off the wait for the WAL flush at the batch's commit (see step).
const asyncCommitSQL = `SET LOCAL synchronous_commit = off`

// errCareful asks for a batch to be redone carefully: it failed as a whole in a way that
// splitting or retrying may resolve.
var errCareful = errors.New("batch failed as a whole; redo it with savepoints")

// step applies one batch of at most limit committed rows after the consumer position, and
// advances the position, in one transaction. The fast path (careful false) applies the
// batch directly in the transaction, without savepoints: the fewest round trips, which is
// what freshness is made of. If that fails because of an event or transiently, the
// transaction is lost; step returns errCareful and Run redoes the batch carefully: under
// savepoints, split to park the failing events, transient failures retried.
func (p *Projector) step(ctx context.Context, limit int, careful bool) (batch, error) {
	start := time.Now()
	// Detached from ctx on purpose: a statement interrupted by cancellation would fail the
	// batch for nothing; shutdown waits for it instead (bounded by the deadline).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.BatchDeadline)
	defer cancel()
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return batch{}, fmt.Errorf("begin batch: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	pos, err := eventlog.LockPosition(ctx, tx, ConsumerGroup)
	if err != nil {
		return batch{}, err
	}
	end, n, err := eventlog.BatchEnd(ctx, tx, pos, limit)
	if err != nil || n == 0 {
		return batch{pos: pos}, err
	}
	// Asynchronous commit: the batch does not wait for its WAL to reach the disk. A crash
	// can lose the last batches' commits, but only whole, position included, so they are
	// applied again from the durable log after the restart; analytics is derived data.
	// What it saves is a disk flush per batch, the largest part of a small batch's time
	// on a machine whose flushes stall (see BENCHMARKS.md).
	if _, err := tx.Exec(ctx, asyncCommitSQL); err != nil {
		return batch{}, fmt.Errorf("set synchronous_commit: %w", err)
	}
	if careful {
		if err := p.applyRetrying(ctx, tx, pos, end); err != nil {
			return batch{}, err
		}
	} else if _, err := projections.ApplyLog(ctx, tx, Schema, pos, end); err != nil {
		if rebuild.EventFault(err) || transient(err) {
			return batch{}, errors.Join(errCareful, err)
		}
		return batch{}, err
	}
	if err := eventlog.AdvancePosition(ctx, tx, ConsumerGroup, end); err != nil {
		return batch{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return batch{}, fmt.Errorf("commit batch: %w", err)
	}
	took := time.Since(start)
	p.metrics.Applied.Add(float64(n))
	p.metrics.BatchDuration.Observe(took.Seconds())
	return batch{events: n, took: took, pos: end}, nil
}

// applyRetrying applies (after, upTo] to analytics, parking the events that fail because of
// their data, and retrying after a transient failure (a deadlock, a serialization failure, a
// lock timeout) up to MaxRetries times. Validate guarantees the waits fit in the batch's
// deadline.
func (p *Projector) applyRetrying(ctx context.Context, tx pgx.Tx, after, upTo eventlog.Position) error {
	for attempt := 0; ; attempt++ {
		err := rebuild.ApplyRange(ctx, tx, Schema, after, upTo, p.parked)
		if err == nil || !transient(err) || attempt >= p.cfg.MaxRetries {
			return err
		}
		p.log.Info("batch failed transiently; retrying", "error", err, "attempt", attempt+1)
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(p.cfg.backoff(attempt)):
		}
	}
}

// parked counts and logs a parked event: identifiers and the SQLSTATE only, since an
// error's message may quote the payload, which holds personal data.
func (p *Projector) parked(rec eventlog.Record, cause error) {
	p.metrics.Parked.Inc()
	p.log.Warn("parked event", "position", rec.Position.String(), "event_key", rec.EventKey,
		"event_name", rec.EventName, "reason", projections.ParkReason(cause))
}

// transient reports whether err is worth retrying in the same transaction: class 40
// (transaction rollback: serialization failure, deadlock) or a lock timeout.
func transient(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) &&
		(pgerrcode.IsTransactionRollback(pgErr.Code) || pgErr.Code == pgerrcode.LockNotAvailable)
}

// ownerSQL tells who owns a schema, or one of its relations, that the current role does
// not act as (the schema's owner when it acts as every owner), and whether it acts as all
// of them. The schema alone is not enough: a rebuild run as another role creates its
// schema for turnout_projector (public.turnout_create_schema) but the tables in it as
// itself.
const ownerSQL = `
SELECT coalesce(foreign_owner, n.nspowner)::regrole::text,
       pg_has_role(n.nspowner, 'USAGE') AND foreign_owner IS NULL
FROM pg_namespace n
LEFT JOIN LATERAL (SELECT c.relowner AS foreign_owner FROM pg_class c
                   WHERE c.relnamespace = n.oid AND NOT pg_has_role(c.relowner, 'USAGE') LIMIT 1) f ON true
WHERE n.nspname = $1`

// fatal returns the error Run stops with when err is not worth retrying, nil otherwise.
// Class 42 (a missing privilege, a missing or different table) is a deployment mistake
// that no retry fixes; an event log ahead of the cluster needs an operator. A schema the
// role may not use does not fail with 42501 but hides its objects (the statements' names
// no longer resolve: 42883, 42P01), so a class 42 error is checked against the owner of
// analytics before it is reported.
func (p *Projector) fatal(ctx context.Context, err error) error {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, eventlog.ErrAhead):
		return err
	case !errors.As(err, &pgErr) || !pgerrcode.IsSyntaxErrororAccessRuleViolation(pgErr.Code):
		return nil
	}
	var (
		owner string
		acts  bool
	)
	ownErr := p.pool.QueryRow(ctx, ownerSQL, Schema).Scan(&owner, &acts)
	if pgErr.Code == pgerrcode.InsufficientPrivilege || (ownErr == nil && !acts) {
		return fmt.Errorf("%w: %s (or its tables) is owned by %s (replaced by a rebuild run as another role? run `projector rebuild` "+
			"as the projector's role, see docs/operations.md): %w", ErrPermission, Schema, owner, err)
	}
	return fmt.Errorf("analytics is not what this projector expects (run `projector rebuild`): %w", err)
}

// ensureCurrentRetrying is rebuild's EnsureCurrent, retried with backoff while the
// database is unreachable: a service that starts, or is building analytics, while
// PostgreSQL restarts must wait for it, not exit (the build resumes from its progress).
func (p *Projector) ensureCurrentRetrying(ctx context.Context) error {
	wait := 500 * time.Millisecond
	for {
		err := p.builder.EnsureCurrent(ctx)
		if err == nil || ctx.Err() != nil || !connectionLost(err) {
			return err
		}
		p.log.Warn("database unavailable while preparing analytics; retrying", "error", err, "retry_in", wait)
		sleep(ctx, wait)
		wait = min(2*wait, 10*time.Second)
	}
}

// connectionLost reports whether err means the database went away (shut down, restarted,
// unreachable) rather than refused what was asked: worth waiting for.
func connectionLost(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P01-57P03: admin/crash shutdown, cannot connect now.
		return pgerrcode.IsConnectionException(pgErr.Code) || pgErr.Code == pgerrcode.AdminShutdown ||
			pgErr.Code == pgerrcode.CrashShutdown || pgErr.Code == pgerrcode.CannotConnectNow
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	return errors.As(err, &netErr) || errors.As(err, &connectErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, pgconn.ErrConnClosed) || pgconn.SafeToRetry(err)
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// refreshLag updates the lag and parked-events gauges every LagInterval until ctx ends.
func (p *Projector) refreshLag(ctx context.Context) {
	t := time.NewTicker(p.cfg.LagInterval)
	defer t.Stop()
	for {
		pos, err := eventlog.ReadPosition(ctx, p.pool, ConsumerGroup)
		if err == nil {
			var l eventlog.Lag
			if l, err = eventlog.LagAtMost(ctx, p.pool, pos, lagGaugeLimit); err == nil {
				p.metrics.LagEvents.Set(float64(l.Events))
				p.metrics.LagSeconds.Set(l.Seconds)
			}
		}
		if err != nil && ctx.Err() == nil {
			p.log.Warn("refresh lag metrics", "error", err)
		}
		if n, _, err := projections.Parked(ctx, p.pool, Schema, 0); err == nil {
			p.metrics.ParkedEvents.Set(float64(n))
		} else if ctx.Err() == nil {
			p.log.Warn("refresh parked events metric", "error", err)
		}
		if err := p.analyzeGrown(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("analyze analytics tables", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// staleStatsSQL lists the tables of a schema that changed by more than 10% (plus 50 rows)
// since they were last analyzed: the rule autovacuum applies, checked more often.
const staleStatsSQL = `
SELECT relname FROM pg_stat_user_tables
WHERE schemaname = $1 AND n_mod_since_analyze > 50 + 0.1 * n_live_tup`

// analyzeGrown analyzes the analytics tables that changed by more than a tenth since their
// last ANALYZE. The batch statements are prepared once per connection and keep the plan
// made at their first executions until the statistics of a table they read change.
// Planned while a table is nearly empty, that plan seq-scans it (found in make
// bench-live: the webinar counter update scanning every webinar for each event), and
// autovacuum's analyze, at most once a minute, comes too late for a table that grows fast.
// Fresh statistics invalidate those plans, so the next execution plans for the real size.
func (p *Projector) analyzeGrown(ctx context.Context) error {
	rows, err := p.pool.Query(ctx, staleStatsSQL, Schema)
	if err != nil {
		return fmt.Errorf("find tables to analyze: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("find tables to analyze: %w", err)
	}
	for _, t := range tables {
		if _, err := p.pool.Exec(ctx, "ANALYZE "+pgx.Identifier{Schema, t}.Sanitize()); err != nil {
			return fmt.Errorf("analyze %s: %w", t, err)
		}
	}
	return nil
}
