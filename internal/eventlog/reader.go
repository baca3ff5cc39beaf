package eventlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Querier is what the reader needs: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Record is one log row as readers see it.
type Record struct {
	Position
	ReceivedAt time.Time
	// Payload is the delivery's body, byte for byte.
	Payload []byte
	// EventName and EventKey are the payload's eventName and eventKey as text (->>), ""
	// when absent.
	EventName, EventKey string
}

// committed is the log's visibility rule, for a row aliased l: the row is before the
// horizon (eventlog_horizon(), migration 0004), so it is committed, and no row can ever
// appear before it again. Within the current epoch that is the watermill-sql subscriber's
// rule, transaction_id < pg_snapshot_xmin: every transaction below the oldest running one
// has finished, so the set of rows before it never grows behind a reader's position (a
// plain "offset" order would skip rows whose transaction commits late). Every row of an
// older epoch was written by a cluster that no longer writes here, so it is committed.
const committed = `(l.epoch, l.transaction_id) < (SELECT h.epoch, h.xmin FROM public.eventlog_horizon() h)`

// after selects the rows after the position ($1, $2, $3); a row comparison on the primary
// key, so an index range scan.
const after = `(l.epoch, l.transaction_id, l."offset") > ($1::integer, $2::text::xid8, $3::bigint)`

// recordColumns are the columns Record scans, in order.
const recordColumns = `l.epoch, l.transaction_id::text, l."offset", l.received_at, l.payload::text,
	coalesce(l.event_name, ''), coalesce(l.event_key, '')`

var (
	readAfterSQL = `SELECT ` + recordColumns + ` FROM ` + Table + ` l
WHERE ` + after + ` AND ` + committed + `
ORDER BY l.epoch, l.transaction_id, l."offset" LIMIT $4`

	readRangeSQL = `SELECT ` + recordColumns + ` FROM ` + Table + ` l
WHERE ` + after + `
  AND (l.epoch, l.transaction_id, l."offset") <= ($4::integer, $5::text::xid8, $6::bigint)
ORDER BY l.epoch, l.transaction_id, l."offset"`

	// batchEndSQL is the position of the $4-th committed row after the position, or of
	// the last one when fewer remain, and how many rows that is. The ORDER BY names the
	// batch's columns: unqualified, transaction_id would be the text output column, and
	// "999" sorts after "1000" (TestBatchEndAcrossAnXidOfMoreDigits).
	batchEndSQL = `WITH batch AS (
	SELECT l.epoch, l.transaction_id, l."offset" FROM ` + Table + ` l
	WHERE ` + after + ` AND ` + committed + `
	ORDER BY l.epoch, l.transaction_id, l."offset" LIMIT $4
)
SELECT epoch, transaction_id::text, "offset", (SELECT count(*) FROM batch)
FROM batch ORDER BY batch.epoch DESC, batch.transaction_id DESC, batch."offset" DESC LIMIT 1`

	lagSQL = `SELECT count(*), coalesce(extract(epoch FROM now() - min(l.received_at)), 0)::float8
FROM ` + Table + ` l WHERE ` + after + ` AND ` + committed

	// lagBoundedSQL is lagSQL over the first $4 rows only.
	lagBoundedSQL = `SELECT count(*), coalesce(extract(epoch FROM now() - min(b.received_at)), 0)::float8
FROM (SELECT l.received_at FROM ` + Table + ` l WHERE ` + after + ` AND ` + committed + `
      ORDER BY l.epoch, l.transaction_id, l."offset" LIMIT $4) b`

	// aheadSQL counts the rows of the current epoch whose xid this cluster has not handed
	// out yet (at or above the snapshot's xmax): rows no reader would ever see, because the
	// xid rule treats them as still running. Only a log copied from another cluster that
	// shares this one's system identifier (a physical clone that ran on) can have them.
	aheadSQL = `SELECT count(*) FROM ` + Table + ` l, public.eventlog_horizon() h
WHERE l.epoch = h.epoch AND l.transaction_id >= pg_snapshot_xmax(pg_current_snapshot())`
)

// ReadCommitted returns up to limit committed rows after pos, in log order. Rows are
// returned only once every row before them is committed, so a reader that advances its
// position to the last row it read never skips one.
func ReadCommitted(ctx context.Context, q Querier, pos Position, limit int) ([]Record, error) {
	rows, err := q.Query(ctx, readAfterSQL, pos.Epoch, txText(pos.TxID), pos.Offset, limit)
	if err != nil {
		return nil, fmt.Errorf("read log after %v: %w", pos, err)
	}
	recs, err := pgx.CollectRows(rows, scanRecord)
	if err != nil {
		return nil, fmt.Errorf("read log after %v: %w", pos, err)
	}
	return recs, nil
}

// ReadRange returns the rows in (from, upTo], in log order, without the visibility rule:
// the caller got upTo from a committed read (BatchEnd, ReadCommitted).
func ReadRange(ctx context.Context, q Querier, from, upTo Position) ([]Record, error) {
	rows, err := q.Query(ctx, readRangeSQL, from.Epoch, txText(from.TxID), from.Offset,
		upTo.Epoch, txText(upTo.TxID), upTo.Offset)
	if err != nil {
		return nil, fmt.Errorf("read log range (%v, %v]: %w", from, upTo, err)
	}
	recs, err := pgx.CollectRows(rows, scanRecord)
	if err != nil {
		return nil, fmt.Errorf("read log range (%v, %v]: %w", from, upTo, err)
	}
	return recs, nil
}

// BatchEnd returns the position of the n-th committed row after pos (or of the last one
// when fewer remain) and how many rows that is; count 0 when there is none.
func BatchEnd(ctx context.Context, q Querier, pos Position, n int) (end Position, count int64, err error) {
	var tx string
	err = q.QueryRow(ctx, batchEndSQL, pos.Epoch, txText(pos.TxID), pos.Offset, n).Scan(&end.Epoch, &tx, &end.Offset, &count)
	if errors.Is(err, pgx.ErrNoRows) {
		return pos, 0, nil
	}
	if err != nil {
		return pos, 0, fmt.Errorf("find log batch after %v: %w", pos, err)
	}
	if end.TxID, err = parseTx(tx); err != nil {
		return pos, 0, err
	}
	return end, count, nil
}

// Lag is how far a position is behind the log.
type Lag struct {
	// Events is the number of committed rows after the position.
	Events int64 `json:"lag_events"`
	// Seconds is the age of the oldest of them (0 when none).
	Seconds float64 `json:"lag_seconds"`
}

// LagAfter measures the committed rows after pos.
func LagAfter(ctx context.Context, q Querier, pos Position) (Lag, error) {
	var l Lag
	if err := q.QueryRow(ctx, lagSQL, pos.Epoch, txText(pos.TxID), pos.Offset).Scan(&l.Events, &l.Seconds); err != nil {
		return Lag{}, fmt.Errorf("measure lag after %v: %w", pos, err)
	}
	return l, nil
}

// LagAtMost is LagAfter counting at most limit rows: Events is min(lag, limit), and Seconds
// the age of the oldest of those. Counting a large backlog reads all of it (about a second
// per 500,000 rows); a gauge refreshed every few seconds should not compete with the
// consumer catching up.
func LagAtMost(ctx context.Context, q Querier, pos Position, limit int64) (Lag, error) {
	var l Lag
	if err := q.QueryRow(ctx, lagBoundedSQL, pos.Epoch, txText(pos.TxID), pos.Offset, limit).Scan(&l.Events, &l.Seconds); err != nil {
		return Lag{}, fmt.Errorf("measure lag after %v: %w", pos, err)
	}
	return l, nil
}

// ErrAhead means the log holds rows that this cluster cannot have written yet: see Ahead.
var ErrAhead = errors.New("the event log has rows ahead of this cluster's transaction counter")

// Ahead returns ErrAhead (with the number of rows) when the current epoch holds rows whose
// transaction id this cluster has not assigned yet. The visibility rule would hide them
// until the cluster's counter passed them, so readers refuse to run rather than skip them
// silently. A logical restore into a new cluster never causes it (it opens a new epoch);
// copying the log from a physical clone that ran on can.
func Ahead(ctx context.Context, q Querier) error {
	var n int64
	if err := q.QueryRow(ctx, aheadSQL).Scan(&n); err != nil {
		return fmt.Errorf("check the log against the cluster: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("%w: %d rows (see docs/operations.md, \"Back up and restore\")", ErrAhead, n)
	}
	return nil
}

func scanRecord(row pgx.CollectableRow) (Record, error) {
	var (
		r       Record
		tx      string
		payload string
	)
	if err := row.Scan(&r.Epoch, &tx, &r.Offset, &r.ReceivedAt, &payload, &r.EventName, &r.EventKey); err != nil {
		return r, err
	}
	r.Payload = []byte(payload)
	var err error
	r.TxID, err = parseTx(tx)
	return r, err
}
