package projections

import (
	"context"
	"testing"

	"github.com/turnout-analytics/turnout/internal/pgtest"
)

// TestParkedInLogOrderAcrossAnXidOfMoreDigits: Parked lists the first events in log order
// even when their transaction ids cross a power of ten, where their text sorts the other
// way ("999" after "1000").
func TestParkedInLogOrderAcrossAnXidOfMoreDigits(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	create(t, pool, "parked_order")
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO parked_order._parked (epoch, transaction_id, "offset", event_key, event_name, error, attempts)
		VALUES (1, '1000', 2, 'second', 'registrant.added', '22P02', 1), (1, '999', 1, 'first', 'registrant.added', '22P02', 1)`); err != nil {
		t.Fatal(err)
	}
	n, list, err := Parked(ctx, pool, "parked_order", 1)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || len(list) != 1 || list[0].EventKey != "first" || list[0].TxID != 999 {
		t.Fatalf("Parked(limit 1) = %d, %+v; want 2 parked, the first one the event of transaction 999", n, list)
	}
}
