// Package projectionstest renders an analytics schema as comparable text, for tests that
// check two builds of the schema are equal (rebuild equals live, any delivery order gives
// the same tables).
//
// It does not import internal/projections, so that package's own tests can use it; the
// lists of tables and views it dumps are checked against a schema created by
// projections.Create in this package's tests.
package projectionstest

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// Querier is what Dump needs: satisfied by *pgx.Conn, pgx.Tx and *pgxpool.Pool.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// publicColumns are the columns whose values do not depend on where in the log an event
// sits (offsets) or on when the schema was built: what must be equal for any delivery order.
// Its keys are every table of the schema except _meta, _parked and _progress.
var publicColumns = map[string]string{
	"webinars": `webinar_key, title, description, organizer_key, account_key, experience_type,
		recurrence_type, recurrence_key, time_zone, status, created_at, updated_at,
		registrant_count, attendee_count`,
	"webinar_times": `webinar_key, start_time, end_time`,
	"registrants": `webinar_key, registrant_key, email, first_name, last_name, organization,
		job_title, phone, industry, comments, registration_date, registration_source, status,
		join_url, responses, first_join`,
	"joins":             `event_key, webinar_key, session_key, registrant_key, join_time`,
	"sessions":          `webinar_key, session_key, start_time, end_time, registrants_attended`,
	"session_attendees": `webinar_key, session_key, registrant_key, attendance_seconds, intervals`,
	"attendance":        `webinar_key, session_key, registrant_key, join_time, leave_time`,
}

// views lists the views of an analytics schema.
var views = []string{"webinar_conversion", "conversion_by_source", "session_attendance",
	"registrations_daily", "no_shows", "time_to_join"}

// Dump returns every row of every table of schema (of _meta only the version: its
// created_at differs between builds), each row rendered as its record text, sorted, keyed by
// table name. Two schemas built from the same log rows, by any mix of Apply and ApplyLog,
// dump equal.
func Dump(ctx context.Context, q Querier, schema string) (map[string][]string, error) {
	out := map[string][]string{}
	rows, err := Rows(ctx, q, "SELECT t.version FROM "+pgx.Identifier{schema, "_meta"}.Sanitize()+" t")
	if err != nil {
		return nil, fmt.Errorf("dump %s._meta: %w", schema, err)
	}
	out["_meta"] = rows
	for table := range publicColumns {
		rows, err := Rows(ctx, q, "SELECT t::text FROM "+pgx.Identifier{schema, table}.Sanitize()+" t")
		if err != nil {
			return nil, fmt.Errorf("dump %s.%s: %w", schema, table, err)
		}
		out[table] = rows
	}
	return out, nil
}

// DumpPublic is Dump restricted to the columns that do not record log positions (offsets
// and the order keys derived from them), plus the views. It is what must be equal when the
// same events are delivered in a different order and so get different offsets.
func DumpPublic(ctx context.Context, q Querier, schema string) (map[string][]string, error) {
	out := map[string][]string{}
	for table, cols := range publicColumns {
		rows, err := Rows(ctx, q, "SELECT ROW("+cols+")::text FROM "+pgx.Identifier{schema, table}.Sanitize())
		if err != nil {
			return nil, fmt.Errorf("dump %s.%s: %w", schema, table, err)
		}
		out[table] = rows
	}
	for _, view := range views {
		rows, err := Rows(ctx, q, "SELECT v::text FROM "+pgx.Identifier{schema, view}.Sanitize()+" v")
		if err != nil {
			return nil, fmt.Errorf("dump %s.%s: %w", schema, view, err)
		}
		out[view] = rows
	}
	return out, nil
}

// Rows runs sql, which selects one text column, and returns its values sorted.
func Rows(ctx context.Context, q Querier, sql string) ([]string, error) {
	rows, err := q.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	// Sorted in Go, not by ORDER BY, so the order does not depend on the database collation.
	slices.Sort(out)
	return out, nil
}
