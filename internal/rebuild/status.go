package rebuild

import (
	"context"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/projections"
)

// ProjectionStatus describes one projection schema.
type ProjectionStatus struct {
	Schema string `json:"schema"`
	// Role is "live" for analytics and "rebuild" for a rebuild in progress.
	Role string `json:"role"`
	// Exists is false when the schema has not been created yet.
	Exists bool `json:"exists"`
	// Version is the projections version stored in the schema.
	Version string `json:"version,omitempty"`
	// Position is the last applied log position (the live consumer's position for live,
	// the rebuild's _progress for a shadow).
	Position eventlog.Position `json:"position"`
	eventlog.Lag
	// ParkedCount is the number of parked events; Parked lists the first few.
	ParkedCount int64                     `json:"parked_count"`
	Parked      []projections.ParkedEvent `json:"parked"`
}

// Status reports the live projection and, when a rebuild is in progress, its shadow
// schema, with at most parkedLimit parked events each. It fails with eventlog.ErrAhead when
// the log holds rows this cluster cannot see: a lag of 0 would then be a lie.
func Status(ctx context.Context, q eventlog.Querier, parkedLimit int) ([]ProjectionStatus, error) {
	if err := eventlog.Ahead(ctx, q); err != nil {
		return nil, err
	}
	live, err := eventlog.ReadPosition(ctx, q, ConsumerGroup)
	if err != nil {
		return nil, err
	}
	st, err := schemaStatus(ctx, q, projections.Schema, "live", live, parkedLimit)
	if err != nil {
		return nil, err
	}
	out := []ProjectionStatus{st}
	shadow, err := SchemaExists(ctx, q, projections.ShadowSchema)
	if err != nil || !shadow {
		return out, err
	}
	pos, _, err := projections.ReadProgress(ctx, q, projections.ShadowSchema)
	if err != nil {
		return nil, err
	}
	st, err = schemaStatus(ctx, q, projections.ShadowSchema, "rebuild", pos, parkedLimit)
	if err != nil {
		return nil, err
	}
	return append(out, st), nil
}

func schemaStatus(ctx context.Context, q eventlog.Querier, schema, role string, pos eventlog.Position, parkedLimit int) (ProjectionStatus, error) {
	st := ProjectionStatus{Schema: schema, Role: role, Position: pos, Parked: []projections.ParkedEvent{}}
	var err error
	if st.Lag, err = eventlog.LagAfter(ctx, q, pos); err != nil {
		return st, err
	}
	if st.Version, st.Exists, err = projections.StoredVersion(ctx, q, schema); err != nil || !st.Exists {
		return st, err
	}
	st.ParkedCount, st.Parked, err = projections.Parked(ctx, q, schema, parkedLimit)
	return st, err
}
