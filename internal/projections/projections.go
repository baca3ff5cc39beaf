// Package projections builds the analytics schema (the tables and views analysts and
// Grafana query) from event log rows.
//
// Every rule is a commutative last-writer-wins on a total order key (see
// sql/analytics/schema.sql), so the result does not depend on the order, batching or
// repetition of the events applied: the live projector (one event per call to Apply) and a
// rebuild (ApplyLog, thousands of events per statement) agree by construction.
//
// The SQL lives in the embedded files of the sql package, templated once per schema name.
// Nothing here commits: the caller owns the transaction. No Watermill here either.
package projections

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	turnoutsql "github.com/turnout-analytics/turnout/sql"
)

// Version identifies the schema + semantics; the projector rebuilds when the stored version
// differs. Bump it on any DDL or semantics change.
const Version = "3"

// Querier is what read-only helpers need: satisfied by *pgx.Conn, pgx.Tx and *pgxpool.Pool.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Create creates schema (which must not exist) with all tables, indexes and views, and
// records Version in its _meta table.
func Create(ctx context.Context, tx pgx.Tx, schema string) error {
	st, err := statementsFor(schema)
	if err != nil {
		return err
	}
	// No arguments: pgx sends these multi-statement scripts with the simple protocol.
	if _, err := tx.Exec(ctx, st.schema); err != nil {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	if _, err := tx.Exec(ctx, st.restTables); err != nil {
		return fmt.Errorf("create REST tables in %s: %w", schema, err)
	}
	if _, err := tx.Exec(ctx, st.views); err != nil {
		return fmt.Errorf("create views in %s: %w", schema, err)
	}
	if _, err := tx.Exec(ctx, st.restViews); err != nil {
		return fmt.Errorf("create REST views in %s: %w", schema, err)
	}
	if _, err := tx.Exec(ctx, st.meta, Version); err != nil {
		return fmt.Errorf("record version in %s: %w", schema, err)
	}
	return nil
}

// StoredVersion returns the version recorded in schema, ok=false if the schema does not
// exist. A schema that exists without a version record (not built by Create) reports
// version "" and ok=true, which differs from every Version.
func StoredVersion(ctx context.Context, q Querier, schema string) (version string, ok bool, err error) {
	var hasSchema, hasMeta bool
	err = q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
	                              to_regclass($2) IS NOT NULL`,
		schema, pgx.Identifier{schema, "_meta"}.Sanitize()).Scan(&hasSchema, &hasMeta)
	if err != nil {
		return "", false, fmt.Errorf("look up schema %s: %w", schema, err)
	}
	if !hasSchema {
		return "", false, nil
	}
	if !hasMeta {
		return "", true, nil
	}
	err = q.QueryRow(ctx, "SELECT version FROM "+pgx.Identifier{schema, "_meta"}.Sanitize()+" ORDER BY created_at DESC LIMIT 1").Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", true, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read version of %s: %w", schema, err)
	}
	return version, true, nil
}

// statements is the SQL of the sql package rendered for one schema.
type statements struct {
	schema, views, meta                                       string
	stageCreate, stageClear, stageEvents, stageLog, stageLast string
	prefetchLog                                               string
	webinarCreated, webinarChanged                            string
	timesDelete, timesInsert                                  string
	registrants, ceiling                                      string
	restTables, restViews, restSnapshots, restRegistrants     string
	park, progress                                            string
}

var rendered sync.Map // schema name -> *statements

// statementsFor renders (once per schema name) every SQL file for schema.
// stageTable is the session's staging table, which the projection statements read.
const stageTable = "pg_temp.turnout_stage"

func statementsFor(schema string) (*statements, error) {
	if v, ok := rendered.Load(schema); ok {
		return v.(*statements), nil
	}
	if schema == "" {
		return nil, errors.New("render sql: empty schema name")
	}
	ident := pgx.Identifier{schema}.Sanitize()
	var err error
	load := func(name string) string {
		b, e := turnoutsql.FS.ReadFile(name)
		if e != nil {
			err = errors.Join(err, fmt.Errorf("read %s: %w", name, e))
			return ""
		}
		return strings.ReplaceAll(string(b), "{{schema}}", ident)
	}
	// The staging INSERT is shared; only where its rows come from differs.
	stageInsert := load("projections/stage_insert.sql")
	stageFrom := func(name string) string {
		return strings.ReplaceAll(strings.ReplaceAll(stageInsert, "{{source}}", load(name)), "{{stage}}", stageTable)
	}
	st := &statements{
		schema:      load("analytics/schema.sql"),
		views:       load("analytics/views.sql"),
		stageCreate: load("projections/stage_create.sql"),
		stageClear:  load("projections/stage_clear.sql"),
		stageEvents: stageFrom("projections/stage_from_events.sql"),
		stageLog:    stageFrom("projections/stage_from_log.sql"),
		// {{stage}} stays: PrefetchLog names a table per chunk.
		prefetchLog:     strings.ReplaceAll(stageInsert, "{{source}}", load("projections/stage_from_log.sql")),
		stageLast:       load("projections/stage_last.sql"),
		webinarCreated:  load("projections/webinar_created.sql"),
		webinarChanged:  load("projections/webinar_changed.sql"),
		timesDelete:     load("projections/webinar_times_delete.sql"),
		timesInsert:     load("projections/webinar_times_insert.sql"),
		registrants:     load("projections/registrants.sql"),
		restTables:      load("analytics/rest_tables.sql"),
		restViews:       load("analytics/rest_views.sql"),
		restSnapshots:   load("projections/rest_snapshots.sql"),
		restRegistrants: load("projections/rest_registrants.sql"),
		ceiling:         load("projections/ceiling.sql"),
		park:            load("projections/park.sql"),
		progress:        load("analytics/progress.sql"),
		meta:            "INSERT INTO " + ident + "._meta (version) VALUES ($1)",
	}
	if err != nil {
		return nil, fmt.Errorf("render sql for %s: %w", schema, err)
	}
	v, _ := rendered.LoadOrStore(schema, st)
	return v.(*statements), nil
}
