package pgtest

import (
	"context"
	"testing"
)

func TestPoolIsMigratedAndIsolated(t *testing.T) {
	t.Parallel()
	a, _ := Pool(t)
	b, _ := Pool(t)
	ctx := context.Background()
	if _, err := a.Exec(ctx, `INSERT INTO ingest_event_keys (event_key) VALUES ('only-in-a')`); err != nil {
		t.Fatalf("insert into migrated table: %v", err)
	}
	var n int
	if err := b.QueryRow(ctx, `SELECT count(*) FROM ingest_event_keys`).Scan(&n); err != nil {
		t.Fatalf("query second database: %v", err)
	}
	if n != 0 {
		t.Fatalf("databases are not isolated: second database sees %d rows", n)
	}
}
