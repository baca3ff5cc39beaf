package projector

import (
	"github.com/turnout-analytics/turnout/internal/eventlog"
)

// forgetLockTimeout bounds each lock wait of Forget: the live consumer's batch in flight
// (milliseconds) or a swap's locks. A lock not had by then fails the run, which is safe to
// repeat.
const forgetLockTimeout = "30s"

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

// touchConsumerSQL takes the live consumer's offset row lock and makes a new version of the
// row, so the subscriber's next REPEATABLE READ batch retries with a fresh snapshot (see
// lockForForget). It changes no value.
var touchConsumerSQL = `
UPDATE ` + eventlog.OffsetsTable + ` SET offset_acked = offset_acked WHERE consumer_group = $1`

// registrantEventsSQL yields the log's registrant events with their payload parsed once
// (OFFSET 0 keeps the subquery from being flattened, which would parse it per reference).
var registrantEventsSQL = `
SELECT transaction_id, "offset", payload::jsonb AS p FROM ` + eventlog.Table + `
WHERE event_name IN ('registrant.added', 'registrant.joined')
OFFSET 0`

// findInLogSQL lists (webinarKey, registrantKey, email) of the registrant events of a
// person: by email ($1, case-insensitively) or else by registrant key ($2), narrowed to a
// webinar ($3) when given. It reads the whole log (a rare, operator-run statement).
var findInLogSQL = `
SELECT p ->> 'webinarKey', p ->> 'registrantKey', p ->> 'email'
FROM (` + registrantEventsSQL + `) l
WHERE CASE WHEN $1::text <> '' THEN lower(p ->> 'email') = lower($1::text)
           ELSE p ->> 'registrantKey' = $2::text AND ($3::text = '' OR p ->> 'webinarKey' = $3::text)
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
// unnest($1 webinar keys, $2 registrant keys), and of those whose email is in $3 (lower
// case): only the members in $4 are kept, and a string email becomes $5. The new payload
// is jsonb's text of the object (the raw bytes cannot be kept: they hold the data). Rows
// already redacted are left alone, so a second run changes nothing and counts 0.
var redactLogSQL = `
WITH hit AS (
    SELECT transaction_id, "offset", p
    FROM (` + registrantEventsSQL + `) l
    WHERE (p ->> 'webinarKey', p ->> 'registrantKey') IN (SELECT * FROM unnest($1::text[], $2::text[]))
       OR lower(p ->> 'email') = ANY ($3::text[])
), redacted AS (
    SELECT h.transaction_id, h."offset", h.p,
           coalesce((SELECT jsonb_object_agg(m.key,
                                CASE WHEN m.key = 'email' AND jsonb_typeof(m.value) = 'string'
                                     THEN to_jsonb($5::text) ELSE m.value END)
                     FROM jsonb_each(h.p) m
                     WHERE m.key = ANY ($4::text[])), '{}') AS r
    FROM hit h
)
UPDATE ` + eventlog.Table + ` l SET payload = x.r::json
FROM redacted x
WHERE l.transaction_id = x.transaction_id AND l."offset" = x."offset" AND x.r <> x.p`

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

// listPrefetchSQL lists a schema's tables whose name starts with a prefix.
const listPrefetchSQL = `SELECT tablename FROM pg_tables WHERE schemaname = $1 AND starts_with(tablename, $2)`

// quarantineCandidatesSQL finds the quarantined bodies that contain one of $1 as a
// substring, ASCII case-insensitively. Bodies are bytea and may be invalid UTF-8, so they
// are never converted to text: encode(…, 'escape') renders any bytes as ASCII text (bytes
// above 0x7f as \nnn), the needles are rendered the same way, and lower() then only folds
// ASCII letters. A superset: mentions decides.
const quarantineCandidatesSQL = `
SELECT q.id, q.body FROM ingest_quarantine q
WHERE EXISTS (
    SELECT 1 FROM unnest($1::text[]) n
    WHERE position(lower(encode(convert_to(n, 'UTF8'), 'escape')) IN lower(encode(q.body, 'escape'))) > 0)`

// deleteQuarantineSQL deletes quarantined deliveries by id.
const deleteQuarantineSQL = `DELETE FROM ingest_quarantine WHERE id = ANY ($1::bigint[])`
