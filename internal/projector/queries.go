package projector

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/rebuild"
)

// What forget.go (GDPR erasure) uses from this package, until it moves to a package of its
// own (internal/erasure): the shadow schema's prefetch tables, the rebuild lock it takes,
// and schema lookups.
const (
	prefetchPrefix = rebuild.PrefetchPrefix
	rebuildLockKey = rebuild.LockKey
)

// tableExistsSQL tells whether schema.table exists.
const tableExistsSQL = `SELECT to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL`

func schemaExists(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, schema string) (bool, error) {
	return rebuild.SchemaExists(ctx, q, schema)
}

// ident quotes a schema name.
func ident(schema string) string { return pgx.Identifier{schema}.Sanitize() }

// ensureConsumerSQL makes sure the live consumer's position row exists (at the start of the
// log), so that forget can lock it (eventlog.LockPosition does the same).
var ensureConsumerSQL = `INSERT INTO ` + eventlog.OffsetsTable + `
	(consumer_group, offset_acked, last_processed_transaction_id, last_processed_epoch)
VALUES ($1, 0, '0', 0) ON CONFLICT DO NOTHING`
