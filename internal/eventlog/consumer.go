package eventlog

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// A consumer's position is one row of OffsetsTable, keyed by its consumer group: the last
// log row it has applied. It is moved in the consumer's own transaction, together with
// what the consumer wrote, so both commit or neither does.
var (
	readPositionSQL = `SELECT last_processed_epoch, last_processed_transaction_id::text, coalesce(offset_acked, 0)
FROM ` + OffsetsTable + ` WHERE consumer_group = $1`

	ensurePositionSQL = `INSERT INTO ` + OffsetsTable + `
	(consumer_group, offset_acked, last_processed_transaction_id, last_processed_epoch)
VALUES ($1, 0, '0', 0) ON CONFLICT DO NOTHING`

	lockPositionSQL = readPositionSQL + ` FOR UPDATE`

	advancePositionSQL = `UPDATE ` + OffsetsTable + `
SET last_processed_epoch = $2, last_processed_transaction_id = $3::text::xid8, offset_acked = $4
WHERE consumer_group = $1`
)

// ReadPosition returns the committed position of a consumer group (zero before its first
// advance), without locking it.
func ReadPosition(ctx context.Context, q Querier, group string) (Position, error) {
	pos, err := scanPosition(q.QueryRow(ctx, readPositionSQL, group))
	if errors.Is(err, pgx.ErrNoRows) {
		return Position{}, nil
	}
	if err != nil {
		return Position{}, fmt.Errorf("read position of %s: %w", group, err)
	}
	return pos, nil
}

// LockPosition creates the group's position row if needed and locks it for the rest of
// tx, returning the position. Whoever holds the lock is the group's only writer: a second
// live consumer, or a rebuild moving the position, waits.
func LockPosition(ctx context.Context, tx pgx.Tx, group string) (Position, error) {
	pos, err := scanPosition(tx.QueryRow(ctx, lockPositionSQL, group))
	if errors.Is(err, pgx.ErrNoRows) {
		// The group's first lock: one more round trip, once.
		if _, err := tx.Exec(ctx, ensurePositionSQL, group); err != nil {
			return Position{}, fmt.Errorf("create position of %s: %w", group, err)
		}
		pos, err = scanPosition(tx.QueryRow(ctx, lockPositionSQL, group))
	}
	if err != nil {
		return Position{}, fmt.Errorf("lock position of %s: %w", group, err)
	}
	return pos, nil
}

// AdvancePosition sets the group's position inside tx, which must hold LockPosition's lock.
func AdvancePosition(ctx context.Context, tx pgx.Tx, group string, pos Position) error {
	tag, err := tx.Exec(ctx, advancePositionSQL, group, pos.Epoch, txText(pos.TxID), pos.Offset)
	if err != nil {
		return fmt.Errorf("advance position of %s to %v: %w", group, pos, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("advance position of %s: no position row (lock it first)", group)
	}
	return nil
}

func scanPosition(row pgx.Row) (Position, error) {
	var (
		pos Position
		tx  string
	)
	if err := row.Scan(&pos.Epoch, &tx, &pos.Offset); err != nil {
		return Position{}, err
	}
	var err error
	pos.TxID, err = parseTx(tx)
	return pos, err
}

// xid8 travels as text: pgx has no binary codec for it, and text keeps the full 64 bits.
func txText(tx uint64) string { return strconv.FormatUint(tx, 10) }

func parseTx(s string) (uint64, error) {
	tx, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse transaction id %q: %w", s, err)
	}
	return tx, nil
}
