package rebuild

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/projections"
)

// Stats summarises a finished rebuild.
type Stats struct {
	From     eventlog.Position // where this run started (non-zero when it resumed)
	To       eventlog.Position // the position swapped in, handed to the live consumer
	Resumed  bool              // an interrupted rebuild's shadow schema was reused
	Events   int64             // log rows applied by this run
	Duration time.Duration
}

// EventsPerSecond is the run's throughput.
func (s Stats) EventsPerSecond() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Events) / s.Duration.Seconds()
}

// Progress receives a rebuild's progress. Implementations: NewBarProgress, NewLogProgress.
type Progress interface {
	// Start is called once, with the number of committed log rows still to apply.
	Start(from eventlog.Position, resumed bool, total int64)
	// Update is called after every batch with the rows applied so far by this run.
	Update(done int64)
	// Finish is called once the shadow schema has been swapped in.
	Finish(stats Stats)
}

// The projector's schemas are created and renamed through the owner's functions of
// migration 0005 (each refuses any other name, and creates for turnout_projector), so no
// service role needs CREATE on the database, which would let it create a schema named
// after the owner, the first place the owner's default search_path looks (migration
// 0008 revokes it). Dropping needs only ownership of the schema, so DROP SCHEMA stays.
const (
	createSchemaSQL = `SELECT public.turnout_create_schema($1)`
	renameSchemaSQL = `SELECT public.turnout_rename_schema($1, $2)`
)

// swapLockTimeout bounds how long the swap waits for a lock. The swap holds the live
// consumer's position lock, and its DROP SCHEMA queues an ACCESS EXCLUSIVE lock that makes
// new readers wait behind a long-running report; giving up and retrying keeps both short.
const (
	swapLockTimeout = "5s"
	swapAttempts    = 10
)

// Rebuild rebuilds every projection from the whole log into the shadow schema, in batches
// of Config.BatchSize rows, each its own short transaction, then swaps it in for analytics
// and moves the live consumer's position to the last applied row, in one transaction.
// Readers keep querying analytics meanwhile. A rebuild that was interrupted resumes from the
// shadow's _progress when its projections version is current. Rebuilds are serialised
// across processes by an advisory lock.
func (b *Builder) Rebuild(ctx context.Context, prog Progress) (Stats, error) {
	unlock, err := b.lock(ctx)
	if err != nil {
		return Stats{}, err
	}
	defer unlock()
	return b.rebuild(ctx, prog)
}

// EnsureCurrent rebuilds analytics when it is missing or at another projections version.
func (b *Builder) EnsureCurrent(ctx context.Context) error {
	unlock, err := b.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	v, exists, err := projections.StoredVersion(ctx, b.pool, projections.Schema)
	if err != nil {
		return fmt.Errorf("read analytics version: %w", err)
	}
	switch {
	case exists && v == projections.Version:
		return nil
	case exists:
		b.log.Info("analytics is at another projections version; rebuilding", "stored", v, "current", projections.Version)
	default:
		b.log.Info("analytics does not exist; building it from the log")
	}
	_, err = b.rebuild(ctx, NewLogProgress(b.log, 10*time.Second))
	return err
}

// lock takes the rebuild advisory lock on a dedicated connection. The connection stays idle
// (outside any transaction) while held, so it does not hold back the log's horizon.
func (b *Builder) lock(ctx context.Context) (func(), error) {
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire connection: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(LockKey)); err != nil {
		conn.Release()
		return nil, fmt.Errorf("take rebuild lock: %w", err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, int64(LockKey)); err != nil {
			// Closing the session releases the lock anyway.
			_ = conn.Conn().Close(ctx)
		}
		conn.Release()
	}, nil
}

func (b *Builder) rebuild(ctx context.Context, prog Progress) (Stats, error) {
	began := time.Now()
	if err := eventlog.Ahead(ctx, b.pool); err != nil {
		return Stats{}, err
	}
	from, resumed, err := b.prepareShadow(ctx)
	if err != nil {
		return Stats{}, err
	}
	total, err := eventlog.LagAfter(ctx, b.pool, from)
	if err != nil {
		return Stats{}, err
	}
	prog.Start(from, resumed, total.Events)
	b.metrics.Progress.Set(0)
	stats := Stats{From: from, Resumed: resumed}
	pos, n, err := b.applyBatches(ctx, from, func(applied int64) {
		b.metrics.Events.Add(float64(applied - stats.Events))
		stats.Events = applied
		if total.Events > 0 {
			b.metrics.Progress.Set(min(1, float64(stats.Events)/float64(total.Events)))
		}
		prog.Update(stats.Events)
	})
	if err != nil {
		return Stats{}, err
	}
	stats.Events = n
	if err := b.tidyShadow(ctx); err != nil {
		return Stats{}, err
	}
	final, n, err := b.swap(ctx, pos)
	if err != nil {
		return Stats{}, err
	}
	stats.Events += n
	stats.To = final
	stats.Duration = time.Since(began)
	b.metrics.Events.Add(float64(n))
	b.metrics.Progress.Set(1)
	prog.Finish(stats)
	return stats, nil
}

// tidyShadow prepares the shadow's tables for readers before they go live. The batches
// rewrite each webinars row (its layers and counters) once per batch, so a fresh build
// leaves many dead versions of that small table, which every webinar_conversion query
// would wade through (measured: 87 ms instead of 1.4 ms over 1,000 webinars) until
// autovacuum came by: those tables are vacuumed. The big, insert-only ones are only
// analyzed (a sample, cheap), so readers get good plans from the first query; vacuuming
// them would read every page again for little gain, and autovacuum's insert threshold
// takes care of them. VACUUM cannot run in a transaction, which is fine: the shadow has
// no readers yet.
func (b *Builder) tidyShadow(ctx context.Context) error {
	if err := b.dropPrefetched(ctx); err != nil {
		return err
	}
	for _, table := range projections.Tables {
		command := "ANALYZE "
		if table == "webinars" || table == "webinar_times" || table == "_meta" {
			command = "VACUUM (ANALYZE) "
		}
		name := pgx.Identifier{projections.ShadowSchema, table}.Sanitize()
		if _, err := b.pool.Exec(ctx, command+name); err != nil {
			return fmt.Errorf("%s%s: %w", strings.ToLower(command), name, err)
		}
	}
	return nil
}

// prepareShadow returns where to start: the _progress of a resumable shadow schema, or the
// beginning of the log in a freshly created one.
func (b *Builder) prepareShadow(ctx context.Context) (eventlog.Position, bool, error) {
	v, exists, err := projections.StoredVersion(ctx, b.pool, projections.ShadowSchema)
	if err != nil {
		return eventlog.Position{}, false, fmt.Errorf("read shadow version: %w", err)
	}
	if exists && v == projections.Version {
		pos, ok, err := projections.ReadProgress(ctx, b.pool, projections.ShadowSchema)
		if err != nil {
			return eventlog.Position{}, false, err
		}
		if ok {
			b.log.Info("resuming rebuild", "position", pos.String())
			if err := b.dropPrefetched(ctx); err != nil {
				return eventlog.Position{}, false, err
			}
			return pos, true, nil
		}
	}
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return eventlog.Position{}, false, fmt.Errorf("begin shadow creation: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+ident(projections.ShadowSchema)+` CASCADE`); err != nil {
		return eventlog.Position{}, false, fmt.Errorf("drop stale shadow schema: %w", err)
	}
	if _, err := tx.Exec(ctx, createSchemaSQL, projections.ShadowSchema); err != nil {
		return eventlog.Position{}, false, fmt.Errorf("create shadow schema: %w", err)
	}
	if err := projections.CreateIn(ctx, tx, projections.ShadowSchema); err != nil {
		return eventlog.Position{}, false, fmt.Errorf("create shadow projections: %w", err)
	}
	if err := grantReader(ctx, tx, projections.ShadowSchema); err != nil {
		return eventlog.Position{}, false, err
	}
	if err := projections.CreateProgress(ctx, tx, projections.ShadowSchema); err != nil {
		return eventlog.Position{}, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return eventlog.Position{}, false, fmt.Errorf("commit shadow creation: %w", err)
	}
	return eventlog.Position{}, false, nil
}

// applyNext finds the next batch after `after` and applies it to schema within tx.
func (b *Builder) applyNext(ctx context.Context, tx pgx.Tx, schema string, after eventlog.Position) (eventlog.Position, int64, error) {
	upTo, n, err := eventlog.BatchEnd(ctx, tx, after, b.cfg.BatchSize)
	if err != nil || n == 0 {
		return after, 0, err
	}
	if err := ApplyRange(ctx, tx, schema, after, upTo, b.logParked(schema)); err != nil {
		return after, 0, err
	}
	return upTo, n, nil
}

// ApplyRange applies the log rows in (after, upTo] to schema within tx, set-based; when
// that fails because of an event (a data error), it splits the range in halves, recursively,
// to find the failing events, parks each of them in schema's _parked, and applies the rest.
// Errors that are not an event's fault (lost connection, permission, cancellation) are
// returned: the caller rolls back and nothing is parked.
//
// parked is called for each event parked, after its record is written.
func ApplyRange(ctx context.Context, tx pgx.Tx, schema string, after, upTo eventlog.Position, parked func(eventlog.Record, error)) error {
	err := tryApply(ctx, tx, schema, after, upTo)
	if err == nil || !EventFault(err) || ctx.Err() != nil {
		return err
	}
	recs, rerr := eventlog.ReadRange(ctx, tx, after, upTo)
	if rerr != nil {
		return errors.Join(err, rerr)
	}
	return bisect(ctx, tx, schema, after, recs, err, parked)
}

// bisect applies recs (which follow `after` in the log, and failed as a set with cause).
func bisect(ctx context.Context, tx pgx.Tx, schema string, after eventlog.Position, recs []eventlog.Record, cause error, parked func(eventlog.Record, error)) error {
	if len(recs) == 1 {
		if err := projections.Park(ctx, tx, schema, recs[0], cause, 1); err != nil {
			return err
		}
		parked(recs[0], cause)
		return nil
	}
	mid := len(recs) / 2
	halves := []struct {
		after eventlog.Position
		recs  []eventlog.Record
	}{{after, recs[:mid]}, {recs[mid-1].Position, recs[mid:]}}
	for _, h := range halves {
		err := tryApply(ctx, tx, schema, h.after, h.recs[len(h.recs)-1].Position)
		if err == nil {
			continue
		}
		if !EventFault(err) || ctx.Err() != nil {
			return err
		}
		if err := bisect(ctx, tx, schema, h.after, h.recs, err, parked); err != nil {
			return err
		}
	}
	return nil
}

// tryApply applies (after, upTo] under a savepoint, rolled back on failure.
func tryApply(ctx context.Context, tx pgx.Tx, schema string, after, upTo eventlog.Position) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin savepoint: %w", err)
	}
	_, applyErr := projections.ApplyLog(ctx, sp, schema, after, upTo)
	if applyErr == nil {
		if err := sp.Commit(ctx); err != nil {
			return fmt.Errorf("release savepoint: %w", err)
		}
		return nil
	}
	if err := sp.Rollback(ctx); err != nil {
		return errors.Join(fmt.Errorf("apply log rows: %w", applyErr), err)
	}
	return fmt.Errorf("apply log rows: %w", applyErr)
}

// EventFault reports whether err is the fault of the events being applied, so that
// retrying them elsewhere cannot help and they are parked: a data exception (class 22,
// e.g. a cast that fails), an integrity violation (class 23), or a value beyond a program
// limit (54000, e.g. a key too long for an index entry). Every other failure —
// a lost connection, a privilege or a missing table (class 42: the schema is not what
// the projector expects), a cancellation — is the environment's, and parking the events
// would lose them.
func EventFault(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgerrcode.IsDataException(pgErr.Code) || pgerrcode.IsIntegrityConstraintViolation(pgErr.Code) ||
		pgErr.Code == pgerrcode.ProgramLimitExceeded
}

// swap applies what arrived since the last batch and swaps the shadow in, retrying when a
// lock could not be had in time.
func (b *Builder) swap(ctx context.Context, pos eventlog.Position) (eventlog.Position, int64, error) {
	for attempt := 1; ; attempt++ {
		final, n, err := b.trySwap(ctx, pos)
		var pgErr *pgconn.PgError
		if err != nil && errors.As(err, &pgErr) && pgErr.Code == pgerrcode.LockNotAvailable && attempt < swapAttempts && ctx.Err() == nil {
			b.log.Warn("swap could not get its locks in time; retrying", "attempt", attempt, "lock_timeout", swapLockTimeout)
			continue
		}
		return final, n, err
	}
}

// trySwap is the swap transaction. Holding the live consumer's position lock stops the
// live projector (its LockPosition waits), so once the last rows are applied to the shadow
// nobody else applies anything; the shadow replaces analytics and the position is set to
// the shadow's, so live consumption continues exactly after it — whether or not a live
// projector is running.
func (b *Builder) trySwap(ctx context.Context, pos eventlog.Position) (eventlog.Position, int64, error) {
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return pos, 0, fmt.Errorf("begin swap: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+swapLockTimeout+`'`); err != nil {
		return pos, 0, fmt.Errorf("set lock timeout: %w", err)
	}
	if _, err := eventlog.LockPosition(ctx, tx, ConsumerGroup); err != nil {
		return pos, 0, err
	}
	var total int64
	for {
		next, n, err := b.applyNext(ctx, tx, projections.ShadowSchema, pos)
		if err != nil {
			return pos, 0, err
		}
		if n == 0 {
			break
		}
		pos, total = next, total+n
	}
	liveExists, err := SchemaExists(ctx, tx, projections.Schema)
	if err != nil {
		return pos, 0, err
	}
	if liveExists {
		if _, err := tx.Exec(ctx, `DROP SCHEMA `+ident(projections.Schema)+` CASCADE`); err != nil {
			return pos, 0, fmt.Errorf("drop the replaced analytics schema: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, renameSchemaSQL, projections.ShadowSchema, projections.Schema); err != nil {
		return pos, 0, fmt.Errorf("rename shadow schema: %w", err)
	}
	if err := projections.DropProgress(ctx, tx, projections.Schema); err != nil {
		return pos, 0, err
	}
	if err := eventlog.AdvancePosition(ctx, tx, ConsumerGroup, pos); err != nil {
		return pos, 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return pos, 0, fmt.Errorf("commit swap: %w", err)
	}
	return pos, total, nil
}

// logParked logs a parked event: identifiers and the SQLSTATE only, since the error's
// message may quote the payload, which holds personal data.
func (b *Builder) logParked(schema string) func(eventlog.Record, error) {
	return func(rec eventlog.Record, cause error) {
		b.log.Warn("parked event", "schema", schema, "position", rec.Position.String(),
			"event_key", rec.EventKey, "event_name", rec.EventName, "reason", projections.ParkReason(cause))
	}
}
