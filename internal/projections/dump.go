package projections

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// Tables lists the tables of an analytics schema, in dependency order.
var Tables = []string{"_meta", "webinars", "webinar_times", "registrants", "joins", "sessions", "session_attendees", "attendance"}

// publicColumns are the columns whose values do not depend on where in the log an event
// sits (offsets) or on when the schema was built: what must be equal for any delivery order.
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

// Dump returns every row of every table of schema (of _meta only the version: its
// created_at differs between builds), each row rendered as its record text, sorted, keyed by
// table name. Two schemas built from the same log rows, by any mix of Apply and ApplyLog,
// dump equal.
func Dump(ctx context.Context, q Querier, schema string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, table := range Tables {
		row := "t::text"
		if table == "_meta" {
			row = "t.version"
		}
		rows, err := dumpQuery(ctx, q, "SELECT "+row+" FROM "+pgx.Identifier{schema, table}.Sanitize()+" t")
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
		rows, err := dumpQuery(ctx, q, "SELECT ROW("+cols+")::text FROM "+pgx.Identifier{schema, table}.Sanitize())
		if err != nil {
			return nil, fmt.Errorf("dump %s.%s: %w", schema, table, err)
		}
		out[table] = rows
	}
	for _, view := range Views {
		rows, err := dumpQuery(ctx, q, "SELECT v::text FROM "+pgx.Identifier{schema, view}.Sanitize()+" v")
		if err != nil {
			return nil, fmt.Errorf("dump %s.%s: %w", schema, view, err)
		}
		out[view] = rows
	}
	return out, nil
}

// Views lists the views of an analytics schema.
var Views = []string{"webinar_conversion", "conversion_by_source", "session_attendance",
	"registrations_daily", "no_shows", "time_to_join"}

func dumpQuery(ctx context.Context, q Querier, sql string) ([]string, error) {
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
