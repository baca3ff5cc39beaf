package erasure

import (
	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/eventlog"
)

// Every table is qualified with its schema, and the transaction's search_path is pinned
// (pinSearchPathSQL) so that unqualified function and operator names resolve in
// pg_catalog: Forget runs as the owner, and a name looked up in a schema another role
// created would run that role's code with the owner's rights.
var (
	logTable     = "public." + eventlog.Table
	offsetsTable = "public." + eventlog.OffsetsTable
)

// pinSearchPathSQL pins the transaction's search_path (see migrations.OwnerSearchPath).
const pinSearchPathSQL = `SET LOCAL search_path = pg_catalog, public`

// lockTimeoutSQL bounds each lock wait of Forget: the live consumer's batch in flight
// (milliseconds) or a swap's locks. A lock not had by then fails the run, which is safe to
// repeat.
const lockTimeoutSQL = `SET LOCAL lock_timeout = '30s'`

// tryRebuildLockSQL takes the rebuild lock for the transaction, without waiting.
const tryRebuildLockSQL = `SELECT pg_catalog.pg_try_advisory_xact_lock($1)`

// keptMembers are the members a redacted registrant event keeps: everything the projections
// read that is not about the person (keys, times, status, registration source, the webinar
// fields of the stub layer), and what domain.Parse requires (eventVersion, product, and
// email, which is replaced by ErasedEmail). Everything else is dropped: an allow-list, so a
// member GoTo adds later (an address, a city) is erased too, without a code change. The
// projections read nothing that is dropped except the personal columns, which become NULL.
var keptMembers = []string{
	"eventName", "eventVersion", "product", "eventKey", "timestamp",
	"webinarKey", "webinarTitle", "experienceType", "recurrenceType", "webinarCreatorKey",
	"registrantKey", "sessionKey", "joinTime",
	"registrationDate", "registrationSource", "status",
	"email",
}

// allowLogRedactionSQL is the one sanctioned way past the log's append-only trigger
// (migrations/0001_event_log.up.sql): UPDATE only, this transaction only.
const allowLogRedactionSQL = `SET LOCAL turnout.allow_log_redaction = 'on'`

// ensureConsumerSQL makes sure the live consumer's offset row exists, so that a consumer
// starting while Forget runs waits for it too.
var ensureConsumerSQL = `
INSERT INTO ` + offsetsTable + ` (consumer_group, last_processed_transaction_id)
VALUES ($1, '0') ON CONFLICT DO NOTHING`

// touchConsumerSQL takes the live consumer's offset row lock and makes a new version of the
// row, so the subscriber's next REPEATABLE READ batch retries with a fresh snapshot (see
// lockForForget). It changes no value.
var touchConsumerSQL = `
UPDATE ` + offsetsTable + ` SET consumer_group = consumer_group WHERE consumer_group = $1`

// registrantEventsSQL yields the log's registrant events that may mention one of the
// needles, with their payload parsed once. $1 holds LIKE patterns (see likePatterns): the
// needles (lower case: addresses, registrant keys) and the two escapes.
//
// Every pass of Forget reads the whole log, and parsing every payload is most of a pass's
// cost. So the raw text is searched first (lowered once per row: the inner OFFSET 0 keeps
// it from being computed per reference, the outer one keeps the parse to the rows that
// pass): a payload that holds a needle holds it as written, unless JSON escapes spell it
// ("\u0040" for "@", "\/" for "/"; no other escape can stand for a character of an address
// or a key), and only payloads with a needle or such an escape are parsed and matched
// exactly.
var registrantEventsSQL = `
SELECT transaction_id, "offset", payload::jsonb AS p, ctid
FROM (SELECT transaction_id, "offset", payload, ctid, lower(payload::text) AS t
      FROM ` + logTable + `
      WHERE event_name IN ('registrant.added', 'registrant.joined') OFFSET 0) l
WHERE t LIKE ANY ($1::text[])
OFFSET 0`

// findInLogSQL lists (webinarKey, registrantKey, email) of the registrant events of a
// person: by email ($2, case-insensitively) or else by registrant key ($3), narrowed to a
// webinar ($4) when given; $1 holds the needle (see registrantEventsSQL). It reads the
// whole log (a rare, operator-run statement).
var findInLogSQL = `
SELECT p ->> 'webinarKey', p ->> 'registrantKey', p ->> 'email'
FROM (` + registrantEventsSQL + `) l
WHERE CASE WHEN $2::text <> '' THEN lower(p ->> 'email') = lower($2::text)
           ELSE p ->> 'registrantKey' = $3::text AND ($4::text = '' OR p ->> 'webinarKey' = $4::text)
      END`

// findInRegistrantsSQL is findInLogSQL on a schema's registrants table.
func findInRegistrantsSQL(schema string) string {
	return `
SELECT webinar_key, registrant_key, email FROM ` + ident(schema) + `.registrants
WHERE CASE WHEN $1::text <> '' THEN lower(email) = lower($1::text)
           ELSE registrant_key = $2::text AND ($3::text = '' OR webinar_key = $3::text)
      END`
}

// redactLogSQL redacts the payloads of the registrant events of the registrations
// unnest($2 webinar keys, $3 registrant keys), and of those whose email is in $4 (lower
// case): only the members in $5 are kept, and a string email becomes $6. $1 holds the
// needles: the registrant keys and the emails (see registrantEventsSQL). The new payload
// is jsonb's text of the object (the raw bytes cannot be kept: they hold the data). Rows
// already redacted are left alone, so a second run changes nothing and counts 0. It
// returns the position of every row it redacted.
var redactLogSQL = `
WITH hit AS (
    SELECT transaction_id, "offset", p
    FROM (` + registrantEventsSQL + `) l
    WHERE (p ->> 'webinarKey', p ->> 'registrantKey') IN (SELECT * FROM unnest($2::text[], $3::text[]))
       OR lower(p ->> 'email') = ANY ($4::text[])
), redacted AS (
    SELECT h.transaction_id, h."offset", h.p,
           coalesce((SELECT jsonb_object_agg(m.key,
                                CASE WHEN m.key = 'email' AND jsonb_typeof(m.value) = 'string'
                                     THEN to_jsonb($6::text) ELSE m.value END)
                     FROM jsonb_each(h.p) m
                     WHERE m.key = ANY ($5::text[])), '{}') AS r
    FROM hit h
)
UPDATE ` + logTable + ` l SET payload = x.r::json
FROM redacted x
WHERE l.transaction_id = x.transaction_id AND l."offset" = x."offset" AND x.r <> x.p
RETURNING l."offset"`

// logMentionCandidatesSQL finds the registrant events whose payload mentions one of $1
// (lower case) anywhere: a superset (a substring), replaceMentions decides. The jsonb text
// has JSON escapes decoded, so "ada\u0040example.com" is found as "ada@example.com".
//
// Rows are addressed by ctid, in this transaction: the log is append-only and only an
// erasure updates it, and erasures exclude each other (the rebuild lock), so the address
// read here is the one the UPDATE finds, and it needs no knowledge of the log's key.
// Like registrantEventsSQL, it searches the raw text first ($1: likePatterns).
var logMentionCandidatesSQL = `
SELECT l.ctid::text, l.p::text FROM (` + registrantEventsSQL + `) l`

// setPayloadSQL rewrites one log row's payload, by its address.
var setPayloadSQL = `UPDATE ` + logTable + ` SET payload = $2::json WHERE ctid = $1::tid`

// eraseRegistrantsSQL erases the personal columns of the registrations unnest($1, $2) in
// schema: email becomes $3 where there was one, the rest NULL. That is what a rebuild from
// the redacted log gives (the winning event keeps its email member, as $3, and loses the
// others), so the live tables and a rebuild agree. Keys, status, registration date and
// source, first_join and the order keys stay: every count is unchanged.
func eraseRegistrantsSQL(schema string) string {
	return `
UPDATE ` + ident(schema) + `.registrants
SET email = CASE WHEN email IS NOT NULL THEN $3::text END,
    first_name = NULL, last_name = NULL, organization = NULL, job_title = NULL, phone = NULL,
    industry = NULL, comments = NULL, join_url = NULL, responses = NULL
WHERE (webinar_key, registrant_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))
  AND (email <> $3::text OR first_name IS NOT NULL OR last_name IS NOT NULL
       OR organization IS NOT NULL OR job_title IS NOT NULL OR phone IS NOT NULL
       OR industry IS NOT NULL OR comments IS NOT NULL OR join_url IS NOT NULL
       OR responses IS NOT NULL)`
}

// registrantTextColumns are the registrants columns that hold what a person typed or GoTo
// copied from a payload's strings; responses is jsonb, handled as its text.
const registrantTextColumns = `first_name, last_name, organization, job_title, phone, industry, comments, join_url, responses::text`

// registrantMentionCandidatesSQL finds the registrants rows of schema whose text columns
// mention one of $1 (lower case): a superset, replaceMentions decides.
func registrantMentionCandidatesSQL(schema string) string {
	return `
SELECT webinar_key, registrant_key, ARRAY[` + registrantTextColumns + `]
FROM ` + ident(schema) + `.registrants r
WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) e
              WHERE position(e IN lower(concat_ws(' ', ` + registrantTextColumns + `))) > 0)`
}

// setRegistrantTextSQL writes back the text columns of one registrants row.
func setRegistrantTextSQL(schema string) string {
	return `
UPDATE ` + ident(schema) + `.registrants
SET first_name = $3, last_name = $4, organization = $5, job_title = $6, phone = $7,
    industry = $8, comments = $9, join_url = $10, responses = $11::jsonb
WHERE webinar_key = $1 AND registrant_key = $2`
}

// eraseParkedSQL replaces the error text of the parked events of the log rows at offsets
// $1 (the log's offset is unique on its own) by $2.
func eraseParkedSQL(schema string) string {
	return `
UPDATE ` + ident(schema) + `._parked SET error = $2
WHERE "offset" = ANY ($1::bigint[]) AND error <> $2`
}

// parkedMentionCandidatesSQL finds the parked events whose error text mentions one of $1,
// by row address (see logMentionCandidatesSQL).
func parkedMentionCandidatesSQL(schema string) string {
	return `
SELECT ctid::text, error FROM ` + ident(schema) + `._parked
WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) e WHERE position(e IN lower(error)) > 0)`
}

// setParkedErrorSQL rewrites one parked event's error text, by its address.
func setParkedErrorSQL(schema string) string {
	return `UPDATE ` + ident(schema) + `._parked SET error = $2 WHERE ctid = $1::tid`
}

// listPrefetchSQL lists a schema's tables whose name starts with a prefix.
const listPrefetchSQL = `SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = $1 AND starts_with(tablename, $2)`

// rawScanSQL reads every raw delivery of a table (see deleteRaw), with its row address:
// the delete that follows is in the same transaction, and the row's address is all the
// tables have in common.
func rawScanSQL(table string) string {
	return `SELECT ctid::text, body, convert_to(headers::text, 'UTF8') FROM public.` + ident(table)
}

// rawDeleteSQL deletes raw deliveries by row address.
func rawDeleteSQL(table string) string {
	return `DELETE FROM public.` + ident(table) + ` WHERE ctid = ANY ($1::text[]::tid[])`
}

// schemaExistsSQL tells whether a schema exists.
const schemaExistsSQL = `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)`

// tableExistsSQL tells whether schema.table exists.
const tableExistsSQL = `SELECT to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL`

// ident quotes a schema or table name.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }
