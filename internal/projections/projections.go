// Package projections builds the analytics schema (the tables and views analysts and
// Grafana query) from event log rows.
//
// Every rule is a commutative last-writer-wins on a total order key (see
// sql/analytics/schema.sql), so the result does not depend on the order, batching or
// repetition of the events applied: the live projector (one event per call to Apply) and a
// rebuild (ApplyLog, thousands of events per statement) agree by construction.
//
// The package owns the whole analytics schema: its tables, views and functions, the parked
// events (_parked) and a rebuild's position (_progress). The SQL lives in the embedded
// files of the sql package, valid SQL with unqualified names: each entry point sets the
// transaction's search_path to the target schema (UseSchema). Nothing here commits: the
// caller owns the transaction. No Watermill here either; the log is read through
// public.eventlog_range (owned by internal/eventlog's migration).
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
const Version = "4"

// Tables lists the tables of an analytics schema that hold projected rows (with _meta), in
// dependency order: what a rebuild analyzes before the swap.
var Tables = []string{"_meta", "webinars", "webinar_times", "registrants", "joins", "sessions", "session_attendees", "attendance"}

// Querier is what read-only helpers need: satisfied by *pgx.Conn, pgx.Tx and *pgxpool.Pool.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Create creates schema (which must not exist) with all tables, indexes, functions and
// views, and records Version in its _meta table. It needs CREATE on the database, which
// only the owner has: the projector's own schemas are created by the owner's function
// public.turnout_create_schema and filled with CreateIn (internal/rebuild).
func Create(ctx context.Context, tx pgx.Tx, schema string) error {
	if _, err := tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	return CreateIn(ctx, tx, schema)
}

// CreateIn creates in schema, which must exist and be empty, all tables, indexes,
// functions and views, and records Version in its _meta table.
func CreateIn(ctx context.Context, tx pgx.Tx, schema string) error {
	st, err := loadStatements()
	if err != nil {
		return err
	}
	if err := UseSchema(ctx, tx, schema); err != nil {
		return err
	}
	// No arguments: pgx sends these multi-statement scripts with the simple protocol.
	if _, err := tx.Exec(ctx, st.schema); err != nil {
		return fmt.Errorf("create tables in %s: %w", schema, err)
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

// searchPathSQL sets the transaction's search_path (reverted at its end, or at the rollback
// of the savepoint it ran in).
const searchPathSQL = `SELECT set_config('search_path', $1, true)`

// searchPath is the search_path under which the SQL files run for schema: the schema
// first, then public for the log's tables and functions (pg_catalog is searched first
// anyway, so no object of the schema can stand in for a built-in).
func searchPath(schema string) string { return pgx.Identifier{schema}.Sanitize() + ", public" }

// UseSchema points tx's unqualified names at schema for the rest of the transaction: every
// entry point of this package calls it before running the SQL files.
func UseSchema(ctx context.Context, tx pgx.Tx, schema string) error {
	if schema == "" {
		return errors.New("use schema: empty schema name")
	}
	if _, err := tx.Exec(ctx, searchPathSQL, searchPath(schema)); err != nil {
		return fmt.Errorf("set search_path to %s: %w", schema, err)
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

// statements is the SQL of the sql package.
type statements struct {
	schema, views, meta                                       string
	stageCreate, stageClear, stageEvents, stageLog, stageLast string
	webinarCreated, webinarChanged                            string
	timesDelete, timesInsert                                  string
	registrants                                               string
	restTables, restViews, restSnapshots, restRegistrants     string
	restWebinars                                              string
	park, progress                                            string
}

// stageTable is the session's staging table, which the projection statements read: the
// default of stage_insert.sql's "stage" region.
const stageTable = "pg_temp.turnout_stage"

// fillTemplate returns sql with its region /* TEMPLATE_BEGIN: name */ … /* TEMPLATE_END */,
// markers included, replaced by with. The markers are comments around a default, the way
// River's sqlctemplate marks them, so the file stays valid SQL on its own. A missing region
// is an error: the file and the code disagree.
func fillTemplate(sql, name, with string) (string, error) {
	begin := "/* TEMPLATE_BEGIN: " + name + " */"
	const end = "/* TEMPLATE_END */"
	i := strings.Index(sql, begin)
	if i < 0 {
		return "", fmt.Errorf("fill template %q: no %s", name, begin)
	}
	j := strings.Index(sql[i:], end)
	if j < 0 {
		return "", fmt.Errorf("fill template %q: no %s after its begin", name, end)
	}
	return sql[:i] + with + sql[i+j+len(end):], nil
}

var (
	loadOnce sync.Once
	loaded   *statements
	loadErr  error
)

// loadStatements reads every SQL file once.
func loadStatements() (*statements, error) {
	loadOnce.Do(func() { loaded, loadErr = readStatements() })
	return loaded, loadErr
}

func readStatements() (*statements, error) {
	var err error
	load := func(name string) string {
		b, e := turnoutsql.FS.ReadFile(name)
		if e != nil {
			err = errors.Join(err, fmt.Errorf("read %s: %w", name, e))
		}
		return string(b)
	}
	// The staging INSERT is shared; only where its rows come from differs. As written it
	// reads the events of a live apply; the log's chunks replace its source.
	stageInsert := load("projections/stage_insert.sql")
	stageLog, e := fillTemplate(stageInsert, "source", load("projections/stage_from_log.sql"))
	err = errors.Join(err, e)
	st := &statements{
		schema:          load("analytics/schema.sql"),
		views:           load("analytics/views.sql"),
		stageCreate:     load("projections/stage_create.sql"),
		stageClear:      load("projections/stage_clear.sql"),
		stageEvents:     stageInsert,
		stageLog:        stageLog,
		stageLast:       load("projections/stage_last.sql"),
		webinarCreated:  load("projections/webinar_created.sql"),
		webinarChanged:  load("projections/webinar_changed.sql"),
		timesDelete:     load("projections/webinar_times_delete.sql"),
		timesInsert:     load("projections/webinar_times_insert.sql"),
		registrants:     load("projections/registrants.sql"),
		restTables:      load("analytics/rest_tables.sql"),
		restViews:       load("analytics/rest_views.sql"),
		restSnapshots:   load("projections/rest_snapshots.sql"),
		restWebinars:    load("projections/rest_webinars.sql"),
		restRegistrants: load("projections/rest_registrants.sql"),
		park:            load("projections/park.sql"),
		progress:        load("analytics/progress.sql"),
		meta:            "INSERT INTO _meta (version) VALUES ($1)",
	}
	if err != nil {
		return nil, fmt.Errorf("load sql: %w", err)
	}
	return st, nil
}
