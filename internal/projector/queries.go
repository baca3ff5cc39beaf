package projector

import (
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/eventlog"
)

// Log positions are compared as rows: (transaction_id, "offset") is the log order, the
// order the watermill-sql subscriber reads in, and the primary key, so a row comparison
// is an index range scan. Only rows with transaction_id < pg_snapshot_xmin(…) are ever
// considered: every transaction below the oldest running one has finished, so that set
// never grows behind a position (the subscriber's own visibility rule).
const visibleAfter = `(transaction_id, "offset") > ($1::xid8, $2::bigint)
	AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())`

// batchEndSQL finds the end of the next rebuild batch: the position of the $3-th visible
// row after ($1, $2), or of the last one when fewer remain, and how many rows that is.
var batchEndSQL = `
WITH batch AS (
	SELECT transaction_id, "offset" FROM ` + eventlog.Table + `
	WHERE ` + visibleAfter + `
	ORDER BY transaction_id, "offset"
	LIMIT $3
)
SELECT transaction_id, "offset", (SELECT count(*) FROM batch)
FROM batch ORDER BY transaction_id DESC, "offset" DESC LIMIT 1`

// rangeRowsSQL reads the rows of one batch for the event-by-event fallback.
var rangeRowsSQL = `
SELECT transaction_id, "offset", received_at, payload, coalesce(event_key, ''), coalesce(event_name, '')
FROM ` + eventlog.Table + `
WHERE (transaction_id, "offset") > ($1::xid8, $2::bigint)
  AND (transaction_id, "offset") <= ($3::xid8, $4::bigint)
ORDER BY transaction_id, "offset"`

// lagSQL counts the visible rows after a position and the age of the oldest of them.
var lagSQL = `
SELECT count(*), coalesce(extract(epoch FROM now() - min(received_at)), 0)::float8
FROM ` + eventlog.Table + `
WHERE ` + visibleAfter

// consumerPositionSQL reads the live consumer's position (absent before its first run).
var consumerPositionSQL = `
SELECT last_processed_transaction_id, coalesce(offset_acked, 0)
FROM ` + eventlog.OffsetsTable + ` WHERE consumer_group = $1`

// lockConsumerSQL makes sure the consumer group's row exists and locks it. The live
// subscriber's SELECT takes the same row lock (FOR UPDATE) at the start of each batch, so
// holding it blocks live consumption until the swap commits.
var (
	ensureConsumerSQL = `
INSERT INTO ` + eventlog.OffsetsTable + ` (consumer_group, offset_acked, last_processed_transaction_id)
VALUES ($1, 0, '0') ON CONFLICT DO NOTHING`
	lockConsumerSQL = `
SELECT 1 FROM ` + eventlog.OffsetsTable + ` WHERE consumer_group = $1 FOR UPDATE`
	setConsumerSQL = `
UPDATE ` + eventlog.OffsetsTable + `
SET offset_acked = $2, last_processed_transaction_id = $3::xid8 WHERE consumer_group = $1`
)

// schemaExistsSQL tells whether a schema exists.
const schemaExistsSQL = `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`

// tableExistsSQL tells whether schema.table exists.
const tableExistsSQL = `SELECT to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL`

// rebuildLockKey is the advisory lock that serialises rebuilds (and the live projector's
// start-up check) across processes.
const rebuildLockKey = 7_406_113_501

// ident quotes a schema name.
func ident(schema string) string { return pgx.Identifier{schema}.Sanitize() }

// parkedDDL creates the parked-events table of a schema. The projector owns it; it is
// created in the same transaction as projections.Create.
func parkedDDL(schema string) string {
	return fmt.Sprintf(`
CREATE TABLE %[1]s._parked (
	transaction_id xid8        NOT NULL,
	"offset"       bigint      NOT NULL,
	event_key      text        NOT NULL,
	event_name     text        NOT NULL,
	error          text        NOT NULL,
	attempts       integer     NOT NULL,
	parked_at      timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (transaction_id, "offset")
);
COMMENT ON TABLE %[1]s._parked IS
	'Log rows the projector could not apply (after retries); the stream went on without them. Position, GoTo eventKey and eventName, last error.'`, ident(schema))
}

// parkSQL records a parked event. A redelivered event that is parked again keeps its
// first record (the projector may see a message twice across a shutdown).
func parkSQL(schema string) string {
	return `INSERT INTO ` + ident(schema) + `._parked
	(transaction_id, "offset", event_key, event_name, error, attempts)
VALUES ($1::xid8, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`
}

// progressDDL creates a shadow schema's rebuild position, a single row.
func progressDDL(schema string) string {
	return fmt.Sprintf(`
CREATE TABLE %[1]s._progress (transaction_id xid8 NOT NULL, "offset" bigint NOT NULL);
INSERT INTO %[1]s._progress VALUES ('0', 0)`, ident(schema))
}

func progressSQL(schema string) string {
	return `SELECT transaction_id, "offset" FROM ` + ident(schema) + `._progress`
}

func setProgressSQL(schema string) string {
	return `UPDATE ` + ident(schema) + `._progress SET transaction_id = $1::xid8, "offset" = $2`
}

func parkedCountSQL(schema string) string {
	return `SELECT count(*) FROM ` + ident(schema) + `._parked`
}

func parkedFirstSQL(schema string) string {
	return `SELECT transaction_id, "offset", event_key, event_name, error, attempts, parked_at
FROM ` + ident(schema) + `._parked ORDER BY transaction_id, "offset" LIMIT $1`
}

// staleStatsSQL lists the tables of a schema that changed by more than 10% (plus 50 rows)
// since they were last analyzed: the rule autovacuum applies, checked more often.
const staleStatsSQL = `
SELECT relname FROM pg_stat_user_tables
WHERE schemaname = $1 AND n_mod_since_analyze > 50 + 0.1 * n_live_tup`
