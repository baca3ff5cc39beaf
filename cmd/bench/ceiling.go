package main

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/projections"
)

// ceilingSchema is the scratch schema the ceiling statement writes into.
const ceilingSchema = "bench_ceiling"

// ceilingInsert is the set-based ceiling: one INSERT … SELECT … ON CONFLICT building
// bench_ceiling.registrants straight from the log's registrant.added rows, read from the CTE
// of ceilingSource.
//
//go:embed ceiling.sql
var ceilingInsert string

// ceilingSource is the CTE ceiling.sql reads: the log's registrant.added rows. MATERIALIZED
// parses each payload once; inlined, every ->> of the INSERT would re-parse the JSON.
const ceilingSource = `WITH e AS MATERIALIZED (
    SELECT l."offset" AS pos, l.payload::jsonb AS p
    FROM ` + eventlog.Table + ` l
    WHERE l.event_name = 'registrant.added'
)
`

var ceilingSQL = ceilingSource + ceilingInsert

// runCeiling times the ceiling into a scratch schema of the same shape as analytics, and
// returns its duration and the rows it wrote. The schema is dropped afterwards unless keep.
func runCeiling(ctx context.Context, conn *pgx.Conn, keep bool) (time.Duration, int64, error) {
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+ceilingSchema+" CASCADE"); err != nil {
		return 0, 0, fmt.Errorf("drop ceiling schema: %w", err)
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return projections.Create(ctx, tx, ceilingSchema) })
	if err != nil {
		return 0, 0, fmt.Errorf("create ceiling schema: %w", err)
	}
	var rows int64
	start := time.Now()
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, ceilingSQL)
		rows = tag.RowsAffected()
		return err
	})
	took := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("run ceiling: %w", err)
	}
	if keep {
		return took, rows, nil
	}
	if _, err := conn.Exec(ctx, "DROP SCHEMA "+ceilingSchema+" CASCADE"); err != nil {
		return 0, 0, fmt.Errorf("drop ceiling schema: %w", err)
	}
	return took, rows, nil
}
