package projector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/turnout-analytics/turnout/internal/projections"
)

// Querier is what the read-only helpers need: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// ProjectionStatus describes one projection schema.
type ProjectionStatus struct {
	Schema string `json:"schema"`
	// Role is "live" for Schema and "rebuild" for a rebuild in progress.
	Role string `json:"role"`
	// Exists is false when the schema has not been created yet.
	Exists bool `json:"exists"`
	// Version is the projections version stored in the schema.
	Version string `json:"version,omitempty"`
	// Position is the last applied log position (the consumer offset for live, the
	// rebuild's _progress for a shadow).
	Position Position `json:"position"`
	// LagEvents is the number of visible log rows after Position.
	LagEvents int64 `json:"lag_events"`
	// LagSeconds is the age of the oldest of those rows (0 when none).
	LagSeconds float64 `json:"lag_seconds"`
	// ParkedCount is the number of parked events; Parked lists the first few.
	ParkedCount int64         `json:"parked_count"`
	Parked      []ParkedEvent `json:"parked"`
}

// Position is a log position, as shown by Status.
type Position struct {
	TransactionID uint64 `json:"transaction_id"`
	Offset        int64  `json:"offset"`
}

// ParkedEvent is one row of a schema's _parked table.
type ParkedEvent struct {
	Position
	EventKey  string    `json:"event_key"`
	EventName string    `json:"event_name"`
	Error     string    `json:"error"`
	Attempts  int       `json:"attempts"`
	ParkedAt  time.Time `json:"parked_at"`
}

// Status reports the live projection and, when a rebuild is in progress, its shadow
// schema, with at most parkedLimit parked events each.
func Status(ctx context.Context, q Querier, parkedLimit int) ([]ProjectionStatus, error) {
	live, err := consumerPosition(ctx, q)
	if err != nil {
		return nil, err
	}
	st, err := schemaStatus(ctx, q, Schema, "live", live, parkedLimit)
	if err != nil {
		return nil, err
	}
	out := []ProjectionStatus{st}
	shadow, err := schemaExists(ctx, q, ShadowSchema)
	if err != nil {
		return nil, err
	}
	if shadow {
		var hasProgress bool
		if err := q.QueryRow(ctx, tableExistsSQL, ShadowSchema, "_progress").Scan(&hasProgress); err != nil {
			return nil, fmt.Errorf("look up rebuild progress: %w", err)
		}
		var pos projections.Position
		if hasProgress {
			if err := q.QueryRow(ctx, progressSQL(ShadowSchema)).Scan(&pos.TxID, &pos.Offset); err != nil {
				return nil, fmt.Errorf("read rebuild progress: %w", err)
			}
		}
		st, err := schemaStatus(ctx, q, ShadowSchema, "rebuild", pos, parkedLimit)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func schemaStatus(ctx context.Context, q Querier, schema, role string, pos projections.Position, parkedLimit int) (ProjectionStatus, error) {
	st := ProjectionStatus{
		Schema: schema, Role: role,
		Position: Position{TransactionID: pos.TxID, Offset: pos.Offset},
		Parked:   []ParkedEvent{},
	}
	l, err := lagAfter(ctx, q, pos)
	if err != nil {
		return st, err
	}
	st.LagEvents, st.LagSeconds = l.Events, l.Seconds
	if st.Exists, err = schemaExists(ctx, q, schema); err != nil || !st.Exists {
		return st, err
	}
	v, ok, err := projections.StoredVersion(ctx, q, schema)
	if err != nil {
		return st, fmt.Errorf("read %s version: %w", schema, err)
	}
	if ok {
		st.Version = v
	}
	var hasParked bool
	if err := q.QueryRow(ctx, tableExistsSQL, schema, "_parked").Scan(&hasParked); err != nil {
		return st, fmt.Errorf("look up %s parked table: %w", schema, err)
	}
	if !hasParked {
		return st, nil
	}
	if err := q.QueryRow(ctx, parkedCountSQL(schema)).Scan(&st.ParkedCount); err != nil {
		return st, fmt.Errorf("count %s parked events: %w", schema, err)
	}
	rows, err := q.Query(ctx, parkedFirstSQL(schema), parkedLimit)
	if err != nil {
		return st, fmt.Errorf("list %s parked events: %w", schema, err)
	}
	st.Parked, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ParkedEvent, error) {
		var pe ParkedEvent
		err := r.Scan(&pe.TransactionID, &pe.Offset, &pe.EventKey, &pe.EventName, &pe.Error, &pe.Attempts, &pe.ParkedAt)
		return pe, err
	})
	if err != nil {
		return st, fmt.Errorf("list %s parked events: %w", schema, err)
	}
	return st, nil
}

type lag struct {
	Events  int64
	Seconds float64
}

// lagAfter counts the visible log rows after pos and the age of the oldest of them.
func lagAfter(ctx context.Context, q Querier, pos projections.Position) (lag, error) {
	var l lag
	if err := q.QueryRow(ctx, lagSQL, pos.TxID, pos.Offset).Scan(&l.Events, &l.Seconds); err != nil {
		return lag{}, fmt.Errorf("measure lag: %w", err)
	}
	return l, nil
}

// consumerPosition is the live consumer's committed position (zero before its first run).
func consumerPosition(ctx context.Context, q Querier) (projections.Position, error) {
	var pos projections.Position
	err := q.QueryRow(ctx, consumerPositionSQL, ConsumerGroup).Scan(&pos.TxID, &pos.Offset)
	if errors.Is(err, pgx.ErrNoRows) {
		return projections.Position{}, nil
	}
	if err != nil {
		return projections.Position{}, fmt.Errorf("read consumer position: %w", err)
	}
	return pos, nil
}

func schemaExists(ctx context.Context, q Querier, schema string) (bool, error) {
	var ok bool
	if err := q.QueryRow(ctx, schemaExistsSQL, schema).Scan(&ok); err != nil {
		return false, fmt.Errorf("look up schema %s: %w", schema, err)
	}
	return ok, nil
}
