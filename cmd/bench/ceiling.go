package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/projections"
)

// runCeiling times the set-based ceiling (projections.CeilingSQL: one INSERT … SELECT … ON
// CONFLICT building the registrants table straight from the log) into a scratch schema of
// the same shape as analytics, and returns its duration and the rows it wrote.
func runCeiling(ctx context.Context, conn *pgx.Conn) (time.Duration, int64, error) {
	const schema = "bench_ceiling"
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
		return 0, 0, fmt.Errorf("drop ceiling schema: %w", err)
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return projections.Create(ctx, tx, schema) })
	if err != nil {
		return 0, 0, fmt.Errorf("create ceiling schema: %w", err)
	}
	var rows int64
	start := time.Now()
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var err error
		rows, err = projections.RunCeiling(ctx, tx, schema)
		return err
	})
	took := time.Since(start)
	if err != nil {
		return 0, 0, err
	}
	if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
		return 0, 0, fmt.Errorf("drop ceiling schema: %w", err)
	}
	return took, rows, nil
}
