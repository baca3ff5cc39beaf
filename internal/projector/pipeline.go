package projector

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/projections"
)

// prefetchPrefix names the unlogged tables that hold parsed, not yet applied batches in the
// shadow schema.
const prefetchPrefix = "_prefetch_"

// prefetched is one batch, parsed and waiting in its table.
type prefetched struct {
	after, upTo projections.Position
	n           int64
	table       string // empty: the batch could not be parsed as a set
}

// applyBatches applies the log after `from` to the shadow schema in batches of
// RebuildBatchSize rows, each applied and recorded in _progress in its own short
// transaction, and returns the last position applied and the number of rows.
//
// It is a two-stage pipeline, because a rebuild has two halves of about equal cost:
// parsing the payloads, which does not depend on the projection's state, and applying
// them, which must happen one batch at a time. A prefetcher (its own connection, so its own
// core) parses batch k+1 into an unlogged table while this goroutine applies batch k.
// Measured with make bench-replay: the rebuild takes about a third less time.
func (p *Projector) applyBatches(ctx context.Context, from projections.Position, applied func(total int64)) (projections.Position, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan prefetched, 1) // at most one parsed batch waits: bounded memory and disk
	prefetchErr := make(chan error, 1)
	go func() {
		defer close(ready)
		prefetchErr <- p.prefetch(ctx, from, ready)
	}()

	pos, total := from, int64(0)
	for b := range ready {
		if err := p.applyPrefetchedBatch(ctx, b); err != nil {
			cancel()
			for range ready { // let the prefetcher finish; its tables go with the shadow
			}
			<-prefetchErr
			return pos, total, err
		}
		pos, total = b.upTo, total+b.n
		applied(total)
	}
	if err := <-prefetchErr; err != nil {
		return pos, total, err
	}
	return pos, total, nil
}

// prefetch parses batch after batch into their own tables and hands them over, until no
// visible row is left.
func (p *Projector) prefetch(ctx context.Context, after projections.Position, ready chan<- prefetched) error {
	for k := 0; ; k++ {
		b, err := p.prefetchOne(ctx, after, fmt.Sprintf("%s%d", prefetchPrefix, k))
		if err != nil || b.n == 0 {
			return err
		}
		select {
		case ready <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
		after = b.upTo
	}
}

func (p *Projector) prefetchOne(ctx context.Context, after projections.Position, table string) (prefetched, error) {
	b := prefetched{after: after, table: table}
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return b, fmt.Errorf("begin prefetch: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	err = tx.QueryRow(ctx, batchEndSQL, after.TxID, after.Offset, p.cfg.RebuildBatchSize).Scan(&b.upTo.TxID, &b.upTo.Offset, &b.n)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, nil
	}
	if err != nil {
		return b, fmt.Errorf("find rebuild batch: %w", err)
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return b, fmt.Errorf("begin savepoint: %w", err)
	}
	if _, err := projections.PrefetchLog(ctx, sp, ShadowSchema, table, after, b.upTo); err != nil {
		// A payload that cannot be staged (a poison event: a cast fails) fails the whole
		// batch; hand it over unparsed, for the applier to redo event by event.
		if rbErr := sp.Rollback(ctx); rbErr != nil || ctx.Err() != nil {
			return b, errors.Join(err, rbErr)
		}
		b.table = ""
	} else if err := sp.Commit(ctx); err != nil {
		return b, fmt.Errorf("release savepoint: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return b, fmt.Errorf("commit prefetch: %w", err)
	}
	return b, nil
}

// applyPrefetchedBatch applies one prefetched batch and records the progress, in one
// transaction. If the batch fails as a set (a poison event fails the whole statement), it
// is redone from the log event by event, parking the failures, as applyRange does.
func (p *Projector) applyPrefetchedBatch(ctx context.Context, b prefetched) error {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin rebuild batch: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if b.table == "" {
		p.log.Info("batch could not be parsed as a set; applying it event by event",
			"after_offset", b.after.Offset, "up_to_offset", b.upTo.Offset)
		if err := p.applyOneByOne(ctx, tx, ShadowSchema, b.after, b.upTo); err != nil {
			return err
		}
		return p.commitBatch(ctx, tx, b)
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin savepoint: %w", err)
	}
	if _, applyErr := projections.ApplyPrefetched(ctx, sp, ShadowSchema, b.table); applyErr != nil {
		if err := sp.Rollback(ctx); err != nil {
			return errors.Join(applyErr, err)
		}
		if ctx.Err() != nil {
			return applyErr
		}
		p.log.Info("batch failed as a set; applying it event by event",
			"after_offset", b.after.Offset, "up_to_offset", b.upTo.Offset)
		if _, err := tx.Exec(ctx, "DROP TABLE "+pgx.Identifier{ShadowSchema, b.table}.Sanitize()); err != nil {
			return fmt.Errorf("drop prefetch table: %w", err)
		}
		if err := p.applyOneByOne(ctx, tx, ShadowSchema, b.after, b.upTo); err != nil {
			return err
		}
	} else if err := sp.Commit(ctx); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return p.commitBatch(ctx, tx, b)
}

// commitBatch records a batch's end in _progress and commits its transaction.
func (p *Projector) commitBatch(ctx context.Context, tx pgx.Tx, b prefetched) error {
	if _, err := tx.Exec(ctx, setProgressSQL(ShadowSchema), b.upTo.TxID, b.upTo.Offset); err != nil {
		return fmt.Errorf("record rebuild progress: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit rebuild batch: %w", err)
	}
	return nil
}

// dropPrefetched drops the prefetch tables a stopped rebuild left in the shadow schema:
// before resuming (their batches are parsed again) and before the swap (they must never go
// live).
func (p *Projector) dropPrefetched(ctx context.Context) error {
	rows, err := p.pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = $1 AND starts_with(tablename, $2)`,
		ShadowSchema, prefetchPrefix)
	if err != nil {
		return fmt.Errorf("list prefetch tables: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list prefetch tables: %w", err)
	}
	for _, t := range tables {
		if _, err := p.pool.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{ShadowSchema, t}.Sanitize()); err != nil {
			return fmt.Errorf("drop prefetch table: %w", err)
		}
	}
	return nil
}
