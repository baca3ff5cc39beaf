package projectionstest_test

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/projections"
	"github.com/turnout-analytics/turnout/internal/projections/projectionstest"
)

// TestDumpCoversSchema pins the lists this package keeps apart from internal/projections:
// Dump must cover exactly projections.Tables, and DumpPublic's columns and views must exist
// in a freshly created schema (a renamed column or view fails the query).
func TestDumpCoversSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return projections.Create(ctx, tx, "dumped") }); err != nil {
		t.Fatal(err)
	}

	all, err := projectionstest.Dump(ctx, pool, "dumped")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for table := range all {
		got = append(got, table)
	}
	want := slices.Clone(projections.Tables)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Dump covers %v, projections.Tables is %v", got, want)
	}
	if v := all["_meta"]; !slices.Equal(v, []string{projections.Version}) {
		t.Errorf("_meta dumps %v, want the version %q", v, projections.Version)
	}

	if _, err := projectionstest.DumpPublic(ctx, pool, "dumped"); err != nil {
		t.Fatal(err)
	}
}
