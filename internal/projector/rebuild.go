package projector

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/turnout-analytics/turnout/internal/projections"
)

// RebuildStats summarises a finished rebuild.
type RebuildStats struct {
	From     projections.Position // where this run started (non-zero when it resumed)
	To       projections.Position // the position swapped in, handed to the live consumer
	Resumed  bool                 // an interrupted rebuild's shadow schema was reused
	Events   int64                // log rows applied by this run
	Duration time.Duration
}

// EventsPerSecond is the run's throughput.
func (s RebuildStats) EventsPerSecond() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Events) / s.Duration.Seconds()
}

// Progress receives a rebuild's progress. Implementations: NewBarProgress, NewLogProgress.
type Progress interface {
	// Start is called once, with the number of visible log rows still to apply.
	Start(from projections.Position, resumed bool, total int64)
	// Update is called after every batch with the rows applied so far by this run.
	Update(done int64)
	// Finish is called once the shadow schema has been swapped in.
	Finish(stats RebuildStats)
}

// swapLockTimeout bounds how long the swap waits for a lock. The swap holds the live
// consumer's row lock, and its DROP SCHEMA queues an ACCESS EXCLUSIVE lock that makes new
// readers wait behind a long-running report; giving up and retrying keeps both short.
const (
	swapLockTimeout = "5s"
	swapAttempts    = 10
)

// Rebuild rebuilds every projection from the whole log into ShadowSchema, in batches of
// RebuildBatchSize rows, each its own short transaction, then swaps it in for Schema and
// moves the live consumer's offset to the last applied row, in one transaction. Readers
// keep querying Schema meanwhile. A rebuild that was interrupted resumes from the shadow
// schema's _progress when its projections version is current. Rebuilds are serialised
// across processes by an advisory lock.
func (p *Projector) Rebuild(ctx context.Context, prog Progress) (RebuildStats, error) {
	unlock, err := p.lockRebuild(ctx)
	if err != nil {
		return RebuildStats{}, err
	}
	defer unlock()
	return p.rebuild(ctx, prog)
}

// ensureCurrent rebuilds Schema when it is missing or at another projections version.
func (p *Projector) ensureCurrent(ctx context.Context) error {
	unlock, err := p.lockRebuild(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	exists, err := schemaExists(ctx, p.pool, Schema)
	if err != nil {
		return err
	}
	if exists {
		v, ok, err := projections.StoredVersion(ctx, p.pool, Schema)
		if err != nil {
			return fmt.Errorf("read analytics version: %w", err)
		}
		if ok && v == projections.Version {
			return nil
		}
		p.log.Info("analytics is at another projections version; rebuilding", "stored", v, "current", projections.Version)
	} else {
		p.log.Info("analytics does not exist; building it from the log")
	}
	_, err = p.rebuild(ctx, NewLogProgress(p.log, 10*time.Second))
	return err
}

// lockRebuild takes the rebuild advisory lock on a dedicated connection. The connection
// stays idle (outside any transaction) while held, so it does not hold back xmin.
func (p *Projector) lockRebuild(ctx context.Context) (func(), error) {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire connection: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(rebuildLockKey)); err != nil {
		conn.Release()
		return nil, fmt.Errorf("take rebuild lock: %w", err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, int64(rebuildLockKey)); err != nil {
			// Closing the session releases the lock anyway.
			_ = conn.Conn().Close(ctx)
		}
		conn.Release()
	}, nil
}

func (p *Projector) rebuild(ctx context.Context, prog Progress) (RebuildStats, error) {
	began := time.Now()
	from, resumed, err := p.prepareShadow(ctx)
	if err != nil {
		return RebuildStats{}, err
	}
	total, err := lagAfter(ctx, p.pool, from)
	if err != nil {
		return RebuildStats{}, err
	}
	prog.Start(from, resumed, total.Events)
	p.metrics.RebuildProgress.Set(0)
	stats := RebuildStats{From: from, Resumed: resumed}
	pos, n, err := p.applyBatches(ctx, from, func(applied int64) {
		p.metrics.RebuildEvents.Add(float64(applied - stats.Events))
		stats.Events = applied
		if total.Events > 0 {
			p.metrics.RebuildProgress.Set(min(1, float64(stats.Events)/float64(total.Events)))
		}
		prog.Update(stats.Events)
	})
	if err != nil {
		return RebuildStats{}, err
	}
	stats.Events = n
	if err := p.tidyShadow(ctx); err != nil {
		return RebuildStats{}, err
	}
	final, n, err := p.swap(ctx, pos)
	if err != nil {
		return RebuildStats{}, err
	}
	stats.Events += n
	stats.To = final
	stats.Duration = time.Since(began)
	p.metrics.RebuildEvents.Add(float64(n))
	p.metrics.RebuildProgress.Set(1)
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
func (p *Projector) tidyShadow(ctx context.Context) error {
	if err := p.dropPrefetched(ctx); err != nil {
		return err
	}
	for _, table := range projections.Tables {
		command := "ANALYZE "
		if table == "webinars" || table == "webinar_times" || table == "_meta" {
			command = "VACUUM (ANALYZE) "
		}
		name := pgx.Identifier{ShadowSchema, table}.Sanitize()
		if _, err := p.pool.Exec(ctx, command+name); err != nil {
			return fmt.Errorf("%s%s: %w", strings.ToLower(command), name, err)
		}
	}
	return nil
}

// prepareShadow returns where to start: the _progress of a resumable shadow schema, or the
// beginning of the log in a freshly created one.
func (p *Projector) prepareShadow(ctx context.Context) (projections.Position, bool, error) {
	exists, err := schemaExists(ctx, p.pool, ShadowSchema)
	if err != nil {
		return projections.Position{}, false, err
	}
	if exists {
		pos, ok, err := p.resumePosition(ctx)
		if err != nil {
			return projections.Position{}, false, err
		}
		if ok {
			p.log.Info("resuming rebuild", "transaction_id", pos.TxID, "offset", pos.Offset)
			if err := p.dropPrefetched(ctx); err != nil {
				return projections.Position{}, false, err
			}
			return pos, true, nil
		}
	}
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return projections.Position{}, false, fmt.Errorf("begin shadow creation: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+ident(ShadowSchema)+` CASCADE`); err != nil {
		return projections.Position{}, false, fmt.Errorf("drop stale shadow schema: %w", err)
	}
	if err := projections.Create(ctx, tx, ShadowSchema); err != nil {
		return projections.Position{}, false, fmt.Errorf("create shadow projections: %w", err)
	}
	if err := grantReader(ctx, tx, ShadowSchema); err != nil {
		return projections.Position{}, false, err
	}
	if _, err := tx.Exec(ctx, parkedDDL(ShadowSchema)); err != nil {
		return projections.Position{}, false, fmt.Errorf("create shadow parked table: %w", err)
	}
	if _, err := tx.Exec(ctx, progressDDL(ShadowSchema)); err != nil {
		return projections.Position{}, false, fmt.Errorf("create shadow progress table: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return projections.Position{}, false, fmt.Errorf("commit shadow creation: %w", err)
	}
	return projections.Position{}, false, nil
}

// resumePosition reads the shadow's _progress when the shadow is at the current version.
func (p *Projector) resumePosition(ctx context.Context) (projections.Position, bool, error) {
	var hasProgress, hasParked bool
	if err := p.pool.QueryRow(ctx, tableExistsSQL, ShadowSchema, "_progress").Scan(&hasProgress); err != nil {
		return projections.Position{}, false, fmt.Errorf("look up shadow progress: %w", err)
	}
	if err := p.pool.QueryRow(ctx, tableExistsSQL, ShadowSchema, "_parked").Scan(&hasParked); err != nil {
		return projections.Position{}, false, fmt.Errorf("look up shadow parked table: %w", err)
	}
	if !hasProgress || !hasParked {
		return projections.Position{}, false, nil
	}
	v, ok, err := projections.StoredVersion(ctx, p.pool, ShadowSchema)
	if err != nil || !ok || v != projections.Version {
		// Unreadable or another version: start over (the caller drops the schema).
		return projections.Position{}, false, nil //nolint:nilerr // a stale shadow is rebuilt, not an error
	}
	var pos projections.Position
	if err := p.pool.QueryRow(ctx, progressSQL(ShadowSchema)).Scan(&pos.TxID, &pos.Offset); err != nil {
		return projections.Position{}, false, fmt.Errorf("read shadow progress: %w", err)
	}
	return pos, true, nil
}

// applyNext finds the next batch after `after` and applies it to schema within tx.
func (p *Projector) applyNext(ctx context.Context, tx pgx.Tx, schema string, after projections.Position) (projections.Position, int64, error) {
	var (
		upTo projections.Position
		n    int64
	)
	err := tx.QueryRow(ctx, batchEndSQL, after.TxID, after.Offset, p.cfg.RebuildBatchSize).Scan(&upTo.TxID, &upTo.Offset, &n)
	if errors.Is(err, pgx.ErrNoRows) {
		return after, 0, nil
	}
	if err != nil {
		return after, 0, fmt.Errorf("find rebuild batch: %w", err)
	}
	if err := p.applyRange(ctx, tx, schema, after, upTo); err != nil {
		return after, 0, err
	}
	return upTo, n, nil
}

// applyRange applies the log rows in (after, upTo] set-based; when that fails (a poison
// event fails the whole statement) it redoes them one by one under a savepoint each and
// parks the failures, as the live projector does.
func (p *Projector) applyRange(ctx context.Context, tx pgx.Tx, schema string, after, upTo projections.Position) error {
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
		return errors.Join(fmt.Errorf("apply log batch: %w", applyErr), err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("apply log batch: %w", applyErr)
	}
	var pgErr *pgconn.PgError
	code := ""
	if errors.As(applyErr, &pgErr) {
		code = pgErr.Code
	}
	p.log.Info("batch failed as a set; applying it event by event",
		"after_offset", after.Offset, "up_to_offset", upTo.Offset, "sqlstate", code)
	return p.applyOneByOne(ctx, tx, schema, after, upTo)
}

type logRow struct {
	parkedEvent
	ReceivedAt time.Time
	Payload    []byte
}

func (p *Projector) applyOneByOne(ctx context.Context, tx pgx.Tx, schema string, after, upTo projections.Position) error {
	rows, err := tx.Query(ctx, rangeRowsSQL, after.TxID, after.Offset, upTo.TxID, upTo.Offset)
	if err != nil {
		return fmt.Errorf("read log batch: %w", err)
	}
	batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (logRow, error) {
		var lr logRow
		err := r.Scan(&lr.TxID, &lr.Offset, &lr.ReceivedAt, &lr.Payload, &lr.EventKey, &lr.EventName)
		return lr, err
	})
	if err != nil {
		return fmt.Errorf("read log batch: %w", err)
	}
	for _, lr := range batch {
		sp, err := tx.Begin(ctx)
		if err != nil {
			return fmt.Errorf("begin savepoint: %w", err)
		}
		ev := projections.Event{Offset: lr.Offset, ReceivedAt: lr.ReceivedAt, Payload: lr.Payload}
		applyErr := projections.Apply(ctx, sp, schema, ev)
		if applyErr == nil {
			if err := sp.Commit(ctx); err != nil {
				return fmt.Errorf("release savepoint: %w", err)
			}
			continue
		}
		if err := sp.Rollback(ctx); err != nil {
			return errors.Join(fmt.Errorf("apply event at offset %d: %w", lr.Offset, applyErr), err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("apply event at offset %d: %w", lr.Offset, applyErr)
		}
		if err := parkEvent(ctx, tx, schema, lr.parkedEvent, fmt.Errorf("apply event at offset %d (tx %d): %w", lr.Offset, lr.TxID, applyErr), 1); err != nil {
			return err
		}
		p.log.Warn("parked event", "schema", schema, "offset", lr.Offset, "transaction_id", lr.TxID,
			"event_key", lr.EventKey, "event_name", lr.EventName)
	}
	return nil
}

// swap applies what arrived since the last batch and swaps the shadow in, retrying when a
// lock could not be had in time.
func (p *Projector) swap(ctx context.Context, pos projections.Position) (projections.Position, int64, error) {
	for attempt := 1; ; attempt++ {
		final, n, err := p.trySwap(ctx, pos)
		var pgErr *pgconn.PgError
		if err != nil && errors.As(err, &pgErr) && pgErr.Code == "55P03" && attempt < swapAttempts && ctx.Err() == nil {
			p.log.Warn("swap could not get its locks in time; retrying", "attempt", attempt, "lock_timeout", swapLockTimeout)
			continue
		}
		return final, n, err
	}
}

// trySwap is the swap transaction. Holding the consumer group's row lock stops the live
// subscriber (its SELECT … FOR UPDATE waits), so once the last rows are applied to the
// shadow nobody else applies anything; the shadow replaces Schema and the consumer's
// offset is set to the shadow's position, so live consumption continues exactly after
// it — whether or not a live projector is running.
func (p *Projector) trySwap(ctx context.Context, pos projections.Position) (projections.Position, int64, error) {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return pos, 0, fmt.Errorf("begin swap: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+swapLockTimeout+`'`); err != nil {
		return pos, 0, fmt.Errorf("set lock timeout: %w", err)
	}
	if _, err := tx.Exec(ctx, ensureConsumerSQL, ConsumerGroup); err != nil {
		return pos, 0, fmt.Errorf("ensure consumer offset row: %w", err)
	}
	if _, err := tx.Exec(ctx, lockConsumerSQL, ConsumerGroup); err != nil {
		return pos, 0, fmt.Errorf("lock consumer offset row: %w", err)
	}
	var total int64
	for {
		next, n, err := p.applyNext(ctx, tx, ShadowSchema, pos)
		if err != nil {
			return pos, 0, err
		}
		if n == 0 {
			break
		}
		pos, total = next, total+n
	}
	liveExists, err := schemaExists(ctx, tx, Schema)
	if err != nil {
		return pos, 0, err
	}
	if liveExists {
		const retired = Schema + "_retired"
		if _, err := tx.Exec(ctx, `ALTER SCHEMA `+ident(Schema)+` RENAME TO `+ident(retired)); err != nil {
			return pos, 0, fmt.Errorf("retire analytics schema: %w", err)
		}
		if _, err := tx.Exec(ctx, `DROP SCHEMA `+ident(retired)+` CASCADE`); err != nil {
			return pos, 0, fmt.Errorf("drop retired analytics schema: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `ALTER SCHEMA `+ident(ShadowSchema)+` RENAME TO `+ident(Schema)); err != nil {
		return pos, 0, fmt.Errorf("rename shadow schema: %w", err)
	}
	if _, err := tx.Exec(ctx, `DROP TABLE `+ident(Schema)+`._progress`); err != nil {
		return pos, 0, fmt.Errorf("drop rebuild progress: %w", err)
	}
	if _, err := tx.Exec(ctx, setConsumerSQL, ConsumerGroup, pos.Offset, pos.TxID); err != nil {
		return pos, 0, fmt.Errorf("move consumer offset: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return pos, 0, fmt.Errorf("commit swap: %w", err)
	}
	return pos, total, nil
}
