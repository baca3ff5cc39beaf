package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// CeilingSQL returns the benchmark's ceiling statement for schema: one INSERT … SELECT …
// ON CONFLICT that builds the registrants table straight from the log's registrant.added
// rows. For a log of registrant.added events it yields the same registrants rows as
// ApplyLog (it maintains nothing else: no webinars, no counters).
func CeilingSQL(schema string) (string, error) {
	st, err := statementsFor(schema)
	if err != nil {
		return "", err
	}
	return st.ceiling, nil
}

// RunCeiling runs CeilingSQL(schema) in tx and returns the number of rows it wrote.
func RunCeiling(ctx context.Context, tx pgx.Tx, schema string) (int64, error) {
	q, err := CeilingSQL(schema)
	if err != nil {
		return 0, err
	}
	tag, err := tx.Exec(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("run ceiling on %s: %w", schema, err)
	}
	return tag.RowsAffected(), nil
}
