package eventlog

import (
	"cmp"
	"fmt"
)

// Position is a place in log order: the (epoch, transaction_id, "offset") of a log row.
// The zero Position is before every row.
//
// Epoch is the span of the log written by one PostgreSQL cluster (migration 0004): it is
// what keeps the order after a logical restore into another cluster, whose xids start
// over. Within an epoch, rows are in the order their writers were assigned xids, then
// appended; see Horizon for why that order is safe to read behind.
type Position struct {
	Epoch  int32  `json:"epoch"`
	TxID   uint64 `json:"transaction_id"`
	Offset int64  `json:"offset"`
}

// Compare returns -1, 0 or +1 as p is before, at or after q in log order.
func (p Position) Compare(q Position) int {
	if c := cmp.Compare(p.Epoch, q.Epoch); c != 0 {
		return c
	}
	if c := cmp.Compare(p.TxID, q.TxID); c != 0 {
		return c
	}
	return cmp.Compare(p.Offset, q.Offset)
}

// String renders p as epoch/transaction/offset.
func (p Position) String() string {
	return fmt.Sprintf("%d/%d/%d", p.Epoch, p.TxID, p.Offset)
}
