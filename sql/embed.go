// Package sql embeds Turnout's SQL that is not a migration: the DDL and views of the
// analytics schema (analytics/) and the statements that project the event log into it
// (projections/). Importers alias it (e.g. turnoutsql) to avoid the clash with database/sql.
//
// Files are templates: every occurrence of {{schema}} is replaced by the sanitized
// identifier of the target schema, so the same SQL builds "analytics" and a shadow schema
// such as "analytics_rebuild".
package sql

import "embed"

// FS holds analytics/*.sql and projections/*.sql.
//
//go:embed analytics/*.sql projections/*.sql
var FS embed.FS
