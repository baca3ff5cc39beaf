// Package sql embeds Turnout's SQL that is not a migration: the DDL and views of the
// analytics schema (analytics/) and the statements that project the event log into it
// (projections/). Importers alias it (e.g. turnoutsql) to avoid the clash with database/sql.
//
// Files are valid SQL on their own and name the analytics tables unqualified: the caller sets
// search_path for its transaction (internal/projections), so the same SQL builds and
// maintains "analytics" and a shadow schema such as "analytics_rebuild". The one composition
// left is of the staging INSERT (projections/stage_insert.sql): it marks the source it reads
// and the table it fills with comments, /* TEMPLATE_BEGIN: name */ … /* TEMPLATE_END */, as
// River's sqlctemplate does, around defaults that make it the live apply's statement.
package sql

import "embed"

// FS holds analytics/*.sql and projections/*.sql.
//
//go:embed analytics/*.sql projections/*.sql
var FS embed.FS
