package projections

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/turnout-analytics/turnout/internal/eventlog"
)

// Schema names: the live projection readers query, and where a rebuild builds its
// replacement before swapping it in.
const (
	Schema       = "analytics"
	ShadowSchema = "analytics_rebuild"
)

// Park records in schema's _parked table, inside tx, a log row that could not be applied,
// under a savepoint of its own so that a failure to park leaves tx usable. The error is
// recorded by its SQLSTATE and the names PostgreSQL attaches to it, never by its message:
// messages quote the offending value ("invalid input syntax …: \"…\""), which may be
// personal data, and _parked outlives erasure otherwise.
func Park(ctx context.Context, tx pgx.Tx, schema string, rec eventlog.Record, cause error, attempts int) error {
	st, err := loadStatements()
	if err != nil {
		return err
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin savepoint: %w", err)
	}
	if err := UseSchema(ctx, sp, schema); err != nil {
		return errors.Join(err, sp.Rollback(ctx))
	}
	if _, err := sp.Exec(ctx, st.park, rec.Epoch, strconv.FormatUint(rec.TxID, 10), rec.Offset,
		rec.EventKey, rec.EventName, ParkReason(cause), attempts); err != nil {
		return errors.Join(fmt.Errorf("park event at %v: %w", rec.Position, err), sp.Rollback(ctx))
	}
	if err := sp.Commit(ctx); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}

// ParkReason renders cause without the values it may quote: the SQLSTATE and the table,
// column, constraint and data type PostgreSQL names, or "not a PostgreSQL error".
func ParkReason(cause error) string {
	var pgErr *pgconn.PgError
	if !errors.As(cause, &pgErr) {
		return "not a PostgreSQL error"
	}
	parts := []string{"SQLSTATE " + pgErr.Code}
	for _, kv := range [][2]string{{"table", pgErr.TableName}, {"column", pgErr.ColumnName},
		{"constraint", pgErr.ConstraintName}, {"type", pgErr.DataTypeName}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+" "+kv[1])
		}
	}
	return strings.Join(parts, ", ")
}

// CreateProgress adds the _progress table to a shadow schema, inside tx.
func CreateProgress(ctx context.Context, tx pgx.Tx, schema string) error {
	st, err := loadStatements()
	if err != nil {
		return err
	}
	if err := UseSchema(ctx, tx, schema); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, st.progress); err != nil {
		return fmt.Errorf("create %s progress: %w", schema, err)
	}
	return nil
}

// ReadProgress returns the position recorded in schema's _progress; ok=false when the
// schema has none (it is not an interrupted rebuild).
func ReadProgress(ctx context.Context, q Querier, schema string) (pos eventlog.Position, ok bool, err error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{schema, "_progress"}.Sanitize()).Scan(&exists); err != nil {
		return pos, false, fmt.Errorf("look up %s progress: %w", schema, err)
	}
	if !exists {
		return pos, false, nil
	}
	var tx string
	if err := q.QueryRow(ctx, `SELECT epoch, transaction_id::text, "offset" FROM `+pgx.Identifier{schema, "_progress"}.Sanitize()).Scan(&pos.Epoch, &tx, &pos.Offset); err != nil {
		return pos, false, fmt.Errorf("read %s progress: %w", schema, err)
	}
	if pos.TxID, err = strconv.ParseUint(tx, 10, 64); err != nil {
		return pos, false, fmt.Errorf("read %s progress: %w", schema, err)
	}
	return pos, true, nil
}

// SetProgress records pos in schema's _progress, inside tx.
func SetProgress(ctx context.Context, tx pgx.Tx, schema string, pos eventlog.Position) error {
	if _, err := tx.Exec(ctx, `UPDATE `+pgx.Identifier{schema, "_progress"}.Sanitize()+
		` SET epoch = $1, transaction_id = $2::text::xid8, "offset" = $3`,
		pos.Epoch, strconv.FormatUint(pos.TxID, 10), pos.Offset); err != nil {
		return fmt.Errorf("record %s progress: %w", schema, err)
	}
	return nil
}

// DropProgress removes schema's _progress, inside tx: the schema is no longer a shadow.
func DropProgress(ctx context.Context, tx pgx.Tx, schema string) error {
	if _, err := tx.Exec(ctx, `DROP TABLE `+pgx.Identifier{schema, "_progress"}.Sanitize()); err != nil {
		return fmt.Errorf("drop %s progress: %w", schema, err)
	}
	return nil
}

// ParkedEvent is one row of a schema's _parked table.
type ParkedEvent struct {
	eventlog.Position
	EventKey  string    `json:"event_key"`
	EventName string    `json:"event_name"`
	Error     string    `json:"error"`
	Attempts  int       `json:"attempts"`
	ParkedAt  time.Time `json:"parked_at"`
}

// Parked returns how many events schema has parked and the first limit of them in log
// order; 0 and none when the schema has no _parked table.
func Parked(ctx context.Context, q Querier, schema string, limit int) (int64, []ParkedEvent, error) {
	var exists bool
	table := pgx.Identifier{schema, "_parked"}.Sanitize()
	if err := q.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil {
		return 0, nil, fmt.Errorf("look up %s parked events: %w", schema, err)
	}
	if !exists {
		return 0, []ParkedEvent{}, nil
	}
	var n int64
	if err := q.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		return 0, nil, fmt.Errorf("count %s parked events: %w", schema, err)
	}
	// The ORDER BY names p's columns: unqualified, transaction_id would be the text output
	// column, in which "999" sorts after "1000".
	rows, err := q.Query(ctx, `SELECT epoch, transaction_id::text, "offset", event_key, event_name, error, attempts, parked_at
		FROM `+table+` p ORDER BY p.epoch, p.transaction_id, p."offset" LIMIT $1`, limit)
	if err != nil {
		return 0, nil, fmt.Errorf("list %s parked events: %w", schema, err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ParkedEvent, error) {
		var (
			pe ParkedEvent
			tx string
		)
		if err := r.Scan(&pe.Epoch, &tx, &pe.Offset, &pe.EventKey, &pe.EventName, &pe.Error, &pe.Attempts, &pe.ParkedAt); err != nil {
			return pe, err
		}
		var err error
		pe.TxID, err = strconv.ParseUint(tx, 10, 64)
		return pe, err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("list %s parked events: %w", schema, err)
	}
	return n, list, nil
}
