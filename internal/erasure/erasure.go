// Package erasure erases one person's personal data from Turnout (GDPR): from the event
// log's payloads, the analytics schema (and an interrupted rebuild's shadow), the parked
// events' error texts, and the raw deliveries kept outside the log (ingest_quarantine and
// ingest_unverified). It is what `projector forget` runs.
//
// Forget runs as the database owner (it rewrites the log and deletes raw deliveries, which
// no service role may do), so it trusts no name resolution: it pins search_path for its
// transaction and qualifies every table with its schema.
package erasure

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/projections"
	"github.com/turnout-analytics/turnout/internal/rebuild"
)

// ErasedEmail replaces an erased person's email in the event log and in analytics. The log
// keeps an address rather than dropping the member because registrant.added requires a
// valid email: a redacted payload must still parse (domain.Parse), so a rebuild applies it
// exactly as before. ".invalid" is reserved (RFC 2606): it can never be anyone's address.
const ErasedEmail = "erased@invalid"

// ErasedParkedError replaces the error text of the person's parked events: a PostgreSQL
// error can quote the value it failed on, which may be one of theirs.
const ErasedParkedError = "(error text erased by projector forget)"

// ErrRebuildRunning is returned by Forget while a rebuild (or the live projector's start-up
// build) holds the rebuild lock: its batches may hold payloads read before the erasure.
var ErrRebuildRunning = errors.New("a rebuild is running; run forget again when it has finished")

// Person identifies whose personal data Forget erases: every registration with Email
// (compared case-insensitively), or the registration(s) with RegistrantKey, narrowed to one
// webinar by WebinarKey. Exactly one of Email and RegistrantKey is set.
type Person struct {
	Email         string
	RegistrantKey string
	WebinarKey    string
}

// Validate reports what is wrong with p as a Forget request, naming the flag-like field.
func (p Person) Validate() error {
	var errs []error
	switch {
	case p.Email == "" && p.RegistrantKey == "":
		errs = append(errs, errors.New("email or registrant-key is required"))
	case p.Email != "" && p.RegistrantKey != "":
		errs = append(errs, errors.New("email and registrant-key are exclusive: give one"))
	}
	if p.Email != "" {
		// Only characters an address is made of: the email is matched as a token inside JSON
		// text and free text, where a quote or a backslash would not stand for itself.
		if strings.TrimSpace(p.Email) != p.Email || !strings.Contains(p.Email, "@") ||
			strings.ContainsFunc(p.Email, func(r rune) bool { return r < 0x21 || r == '"' || r == '\\' || r == 0x7f }) {
			errs = append(errs, errors.New("email must be an email address"))
		}
		if strings.EqualFold(p.Email, ErasedEmail) {
			errs = append(errs, fmt.Errorf("email %s is the erasure placeholder, not a person", ErasedEmail))
		}
	}
	if p.WebinarKey != "" && p.RegistrantKey == "" {
		errs = append(errs, errors.New("webinar-key narrows registrant-key and needs it"))
	}
	return errors.Join(errs...)
}

// Result counts what Forget changed. It never holds the person's data.
type Result struct {
	// Registrations is the number of (webinar, registrant) pairs found to be the person's.
	Registrations int `json:"registrations"`
	// Registrants is the number of analytics.registrants rows erased.
	Registrants int64 `json:"registrants"`
	// ShadowExists tells whether an interrupted rebuild's shadow schema was found;
	// ShadowRegistrants and ShadowPrefetchDropped say what was erased in it.
	ShadowExists          bool  `json:"shadow_exists"`
	ShadowRegistrants     int64 `json:"shadow_registrants"`
	ShadowPrefetchDropped int   `json:"shadow_prefetch_dropped"`
	// LogEvents is the number of the person's event log rows whose payload was redacted.
	LogEvents int64 `json:"log_events"`
	// LogMentions and RegistrantMentions count other people's log rows and analytics (and
	// shadow) registrants rows whose free text mentioned the person's email, now replaced by
	// ErasedEmail (email mode only).
	LogMentions        int64 `json:"log_mentions"`
	RegistrantMentions int64 `json:"registrant_mentions"`
	// Parked is the number of parked events (analytics._parked, and the shadow's) whose
	// error text was erased or redacted.
	Parked int64 `json:"parked"`
	// QuarantineDeleted and UnverifiedDeleted are the raw deliveries deleted from
	// ingest_quarantine and ingest_unverified.
	QuarantineDeleted int64 `json:"quarantine_deleted"`
	UnverifiedDeleted int64 `json:"unverified_deleted"`
	// Vacuum is the statement that reclaims the old row versions, which still hold the data
	// until VACUUM runs ("" when nothing changed).
	Vacuum string `json:"vacuum,omitempty"`
}

// Changed tells whether Forget changed anything.
func (r Result) Changed() bool {
	return r.Registrants+r.ShadowRegistrants+r.LogEvents+r.LogMentions+r.RegistrantMentions+
		r.Parked+r.QuarantineDeleted+r.UnverifiedDeleted > 0 || r.ShadowPrefetchDropped > 0
}

// registration is one (webinar, registrant) pair; webinar "" matches any webinar (only in
// the raw-delivery match of a registrant key given without a webinar key).
type registration struct{ webinar, registrant string }

// Forget erases a person's personal data, in one transaction:
//
//   - the event log: the payloads of their registrant events keep only the members in
//     keptMembers, email replaced by ErasedEmail (allowed by the log's append-only trigger
//     for this transaction only, with SET LOCAL turnout.allow_log_redaction); in email
//     mode, their address is also replaced wherever other registrant events mention it;
//   - analytics.registrants (and an interrupted rebuild's shadow): their rows keep keys,
//     status, registration date and source and first join, the personal columns become
//     NULL and email ErasedEmail, and mentions in other rows are replaced as in the log —
//     exactly what a rebuild from the redacted log produces, so conversion figures do not
//     change and a rebuild keeps the person erased;
//   - _parked: the error text of their parked events is erased, mentions elsewhere replaced;
//   - ingest_quarantine and ingest_unverified: the raw deliveries that mention their email
//     (also JSON-escaped) or registrant key are deleted (a body is not trusted to be JSON,
//     so it cannot be redacted member by member).
//
// Forget refuses while a rebuild runs (ErrRebuildRunning), and serialises with the live
// projector through the consumer's offset row (see lockForForget).
func Forget(ctx context.Context, pool *pgxpool.Pool, who Person) (Result, error) {
	if err := who.Validate(); err != nil {
		return Result{}, err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("begin forget: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := lockForForget(ctx, tx); err != nil {
		return Result{}, err
	}

	regs, emails, err := findRegistrations(ctx, tx, who)
	if err != nil {
		return Result{}, err
	}
	res := Result{Registrations: len(regs)}
	webinars, registrants := splitRegistrations(regs)
	// The log's email match: in email mode, also rows that carry the address without a
	// usable key pair. In key mode only the registration's own rows are the person's.
	logEmails := []string{}
	if who.Email != "" {
		logEmails = append(logEmails, strings.ToLower(who.Email))
	}
	needles := append(slices.Clone(registrants), logEmails...)
	rows, err := tx.Query(ctx, redactLogSQL, likePatterns(needles), webinars, registrants, logEmails, keptMembers, ErasedEmail)
	if err != nil {
		return Result{}, fmt.Errorf("redact event log: %w", err)
	}
	redacted, err := pgx.CollectRows(rows, pgx.RowTo[int64]) // their log offsets
	if err != nil {
		return Result{}, fmt.Errorf("redact event log: %w", err)
	}
	res.LogEvents = int64(len(redacted))
	if res.LogMentions, err = redactLogMentions(ctx, tx, logEmails); err != nil {
		return Result{}, err
	}

	if res.ShadowExists, err = schemaExists(ctx, tx, projections.ShadowSchema); err != nil {
		return Result{}, err
	}
	for _, schema := range []string{projections.Schema, projections.ShadowSchema} {
		n, err := eraseRegistrants(ctx, tx, schema, webinars, registrants)
		if err != nil {
			return Result{}, err
		}
		m, err := redactRegistrantMentions(ctx, tx, schema, logEmails)
		if err != nil {
			return Result{}, err
		}
		p, err := eraseParked(ctx, tx, schema, redacted, emails)
		if err != nil {
			return Result{}, err
		}
		if schema == projections.Schema {
			res.Registrants = n
		} else {
			res.ShadowRegistrants = n
		}
		res.RegistrantMentions += m
		res.Parked += p
	}
	if res.ShadowExists {
		if res.ShadowPrefetchDropped, err = dropPrefetchedIn(ctx, tx); err != nil {
			return Result{}, err
		}
	}

	rawRegs := regs
	if who.RegistrantKey != "" {
		rawRegs = append(rawRegs, registration{webinar: who.WebinarKey, registrant: who.RegistrantKey})
	}
	if res.QuarantineDeleted, err = deleteRaw(ctx, tx, quarantineTable, emails, rawRegs); err != nil {
		return Result{}, err
	}
	if res.UnverifiedDeleted, err = deleteRaw(ctx, tx, unverifiedTable, emails, rawRegs); err != nil {
		return Result{}, err
	}
	if res.Changed() {
		res.Vacuum = vacuumSQL(res)
	}
	if err := tx.Commit(ctx); err != nil {
		return Result{}, fmt.Errorf("commit forget: %w", err)
	}
	return res, nil
}

// addressed is a row read for a rewrite in this transaction: its ctid and a text.
type addressed struct {
	CTID string
	Text string
}

// lockForForget pins the transaction's search_path, then takes, in order: the rebuild lock
// (without waiting: a running rebuild is refused, not waited for, since it may run for an
// hour), then the live consumer's offset row, and opts in to redacting the log.
//
// Why the offset row: the live subscriber reads a batch of log rows in a REPEATABLE READ
// transaction that starts by locking that row. Taking it first waits for the batch in
// flight to commit (its rows are then visible to this transaction, and erased with the
// rest); updating it makes the next batch, whose snapshot may predate this commit, fail
// with a serialization error and retry with a fresh snapshot, so it never projects a
// payload as it was before the redaction. The swap relies on the same rule.
func lockForForget(ctx context.Context, tx pgx.Tx) error {
	for _, stmt := range []string{pinSearchPathSQL, lockTimeoutSQL} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("set up forget transaction: %w", err)
		}
	}
	var locked bool
	if err := tx.QueryRow(ctx, tryRebuildLockSQL, int64(rebuild.LockKey)).Scan(&locked); err != nil {
		return fmt.Errorf("take rebuild lock: %w", err)
	}
	if !locked {
		return ErrRebuildRunning
	}
	if _, err := tx.Exec(ctx, ensureConsumerSQL, rebuild.ConsumerGroup); err != nil {
		return fmt.Errorf("ensure consumer offset row: %w", err)
	}
	if _, err := tx.Exec(ctx, touchConsumerSQL, rebuild.ConsumerGroup); err != nil {
		return fmt.Errorf("lock consumer offset row: %w", err)
	}
	if _, err := tx.Exec(ctx, allowLogRedactionSQL); err != nil {
		return fmt.Errorf("allow log redaction: %w", err)
	}
	return nil
}

// findRegistrations returns the person's registrations, from the log and from analytics
// (and the shadow, if any), and the (lower-case) email addresses they were registered with.
func findRegistrations(ctx context.Context, tx pgx.Tx, who Person) ([]registration, []string, error) {
	seen := map[registration]bool{}
	emailSet := map[string]bool{}
	if who.Email != "" {
		emailSet[strings.ToLower(who.Email)] = true
	}
	// The log's first cut (see registrantEventsSQL): the address, or the registrant key.
	needle := strings.ToLower(cmp.Or(who.Email, who.RegistrantKey))
	collect := func(what, query string, args ...any) error {
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("find registrations in %s: %w", what, err)
		}
		defer rows.Close()
		for rows.Next() {
			var webinar, registrant, email *string
			if err := rows.Scan(&webinar, &registrant, &email); err != nil {
				return fmt.Errorf("find registrations in %s: %w", what, err)
			}
			if webinar != nil && registrant != nil {
				seen[registration{*webinar, *registrant}] = true
			}
			if email != nil && *email != "" && !strings.EqualFold(*email, ErasedEmail) {
				emailSet[strings.ToLower(*email)] = true
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("find registrations in %s: %w", what, err)
		}
		return nil
	}
	if err := collect("the event log", findInLogSQL, likePatterns([]string{needle}), who.Email, who.RegistrantKey, who.WebinarKey); err != nil {
		return nil, nil, err
	}
	for _, schema := range []string{projections.Schema, projections.ShadowSchema} {
		exists, err := tableExists(ctx, tx, schema, "registrants")
		if err != nil {
			return nil, nil, err
		}
		if exists {
			if err := collect(schema, findInRegistrantsSQL(schema), who.Email, who.RegistrantKey, who.WebinarKey); err != nil {
				return nil, nil, err
			}
		}
	}
	regs := make([]registration, 0, len(seen))
	for r := range seen {
		regs = append(regs, r)
	}
	slices.SortFunc(regs, func(a, b registration) int {
		return strings.Compare(a.webinar+"\x00"+a.registrant, b.webinar+"\x00"+b.registrant)
	})
	emails := make([]string, 0, len(emailSet))
	for e := range emailSet {
		emails = append(emails, e)
	}
	slices.Sort(emails)
	return regs, emails, nil
}

// splitRegistrations returns the pairs as two parallel arrays, for unnest($1, $2).
func splitRegistrations(regs []registration) (webinars, registrants []string) {
	webinars, registrants = make([]string, 0, len(regs)), make([]string, 0, len(regs))
	for _, r := range regs {
		webinars = append(webinars, r.webinar)
		registrants = append(registrants, r.registrant)
	}
	return webinars, registrants
}

// redactLogMentions replaces each of emails where other registrant events mention it (in
// free text such as comments or responses). The database narrows the candidates by a
// case-insensitive substring of the payload's jsonb text, in which JSON escapes such as
// \u0040 are already decoded; replaceMentions then replaces whole addresses only. The
// result is still valid JSON: an address and ErasedEmail need no escaping.
func redactLogMentions(ctx context.Context, tx pgx.Tx, emails []string) (int64, error) {
	if len(emails) == 0 {
		return 0, nil
	}
	rows, err := tx.Query(ctx, logMentionCandidatesSQL, likePatterns(emails))
	if err != nil {
		return 0, fmt.Errorf("find mentions in the event log: %w", err)
	}
	candidates, err := pgx.CollectRows(rows, pgx.RowToStructByPos[addressed])
	if err != nil {
		return 0, fmt.Errorf("find mentions in the event log: %w", err)
	}
	var n int64
	for _, c := range candidates {
		redacted, changed := replaceMentions(c.Text, emails, ErasedEmail)
		if !changed {
			continue
		}
		tag, err := tx.Exec(ctx, setPayloadSQL, c.CTID, redacted)
		if err != nil {
			return 0, fmt.Errorf("redact a mention in the event log: %w", err)
		}
		n += tag.RowsAffected()
	}
	return n, nil
}

// eraseRegistrants erases the personal columns of the given registrations in schema.
func eraseRegistrants(ctx context.Context, tx pgx.Tx, schema string, webinars, registrants []string) (int64, error) {
	exists, err := tableExists(ctx, tx, schema, "registrants")
	if err != nil || !exists {
		return 0, err
	}
	tag, err := tx.Exec(ctx, eraseRegistrantsSQL(schema), webinars, registrants, ErasedEmail)
	if err != nil {
		return 0, fmt.Errorf("erase %s.registrants: %w", schema, err)
	}
	return tag.RowsAffected(), nil
}

// redactRegistrantMentions replaces emails in the free-text columns of other people's
// registrants rows in schema, as redactLogMentions does in their payloads (so a rebuild
// from the redacted log gives the same rows).
func redactRegistrantMentions(ctx context.Context, tx pgx.Tx, schema string, emails []string) (int64, error) {
	exists, err := tableExists(ctx, tx, schema, "registrants")
	if err != nil || !exists || len(emails) == 0 {
		return 0, err
	}
	rows, err := tx.Query(ctx, registrantMentionCandidatesSQL(schema), emails)
	if err != nil {
		return 0, fmt.Errorf("find mentions in %s.registrants: %w", schema, err)
	}
	type candidate struct {
		Webinar, Registrant string
		Columns             []*string
	}
	candidates, err := pgx.CollectRows(rows, pgx.RowToStructByPos[candidate])
	if err != nil {
		return 0, fmt.Errorf("find mentions in %s.registrants: %w", schema, err)
	}
	var n int64
	for _, c := range candidates {
		changed := false
		for _, col := range c.Columns {
			if col == nil {
				continue
			}
			if r, ok := replaceMentions(*col, emails, ErasedEmail); ok {
				*col, changed = r, true
			}
		}
		if !changed {
			continue
		}
		args := []any{c.Webinar, c.Registrant}
		for _, col := range c.Columns {
			args = append(args, col)
		}
		tag, err := tx.Exec(ctx, setRegistrantTextSQL(schema), args...)
		if err != nil {
			return 0, fmt.Errorf("redact a mention in %s.registrants: %w", schema, err)
		}
		n += tag.RowsAffected()
	}
	return n, nil
}

// eraseParked erases the error text of the person's parked events in schema (redacted are
// the offsets of their log rows) and replaces emails where other parked errors quote them.
func eraseParked(ctx context.Context, tx pgx.Tx, schema string, redacted []int64, emails []string) (int64, error) {
	exists, err := tableExists(ctx, tx, schema, "_parked")
	if err != nil || !exists {
		return 0, err
	}
	tag, err := tx.Exec(ctx, eraseParkedSQL(schema), redacted, ErasedParkedError)
	if err != nil {
		return 0, fmt.Errorf("erase %s._parked: %w", schema, err)
	}
	n := tag.RowsAffected()
	if len(emails) == 0 {
		return n, nil
	}
	rows, err := tx.Query(ctx, parkedMentionCandidatesSQL(schema), emails)
	if err != nil {
		return 0, fmt.Errorf("find mentions in %s._parked: %w", schema, err)
	}
	candidates, err := pgx.CollectRows(rows, pgx.RowToStructByPos[addressed])
	if err != nil {
		return 0, fmt.Errorf("find mentions in %s._parked: %w", schema, err)
	}
	for _, c := range candidates {
		r, ok := replaceMentions(c.Text, emails, ErasedEmail)
		if !ok {
			continue
		}
		tag, err := tx.Exec(ctx, setParkedErrorSQL(schema), c.CTID, r)
		if err != nil {
			return 0, fmt.Errorf("redact a mention in %s._parked: %w", schema, err)
		}
		n += tag.RowsAffected()
	}
	return n, nil
}

// dropPrefetchedIn drops an interrupted rebuild's prefetch tables: parsed log rows, with
// every personal field, that were staged before the erasure. A resumed rebuild parses them
// again from the redacted log.
func dropPrefetchedIn(ctx context.Context, tx pgx.Tx) (int, error) {
	rows, err := tx.Query(ctx, listPrefetchSQL, projections.ShadowSchema, rebuild.PrefetchPrefix)
	if err != nil {
		return 0, fmt.Errorf("list prefetch tables: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("list prefetch tables: %w", err)
	}
	for _, t := range tables {
		if _, err := tx.Exec(ctx, "DROP TABLE "+pgx.Identifier{projections.ShadowSchema, t}.Sanitize()); err != nil {
			return 0, fmt.Errorf("drop prefetch table: %w", err)
		}
	}
	return len(tables), nil
}

// rawTable is a table of raw deliveries kept outside the log: body bytea, headers jsonb.
type rawTable struct {
	name string // unqualified, in schema public
}

var (
	quarantineTable = rawTable{name: "ingest_quarantine"}
	unverifiedTable = rawTable{name: "ingest_unverified"} // migration 0003
)

// deleteRaw deletes the deliveries of t that mention one of emails, or the registrant key
// (and, when known, the webinar key) of one of regs, in their body or headers. Every row is
// read: a body may hold an address JSON-escaped (\u0040), which no substring search of the
// raw bytes finds, so mentions decides on the bytes and on their unescaped form.
func deleteRaw(ctx context.Context, tx pgx.Tx, t rawTable, emails []string, regs []registration) (int64, error) {
	if len(emails) == 0 && len(regs) == 0 {
		return 0, nil
	}
	rows, err := tx.Query(ctx, rawScanSQL(t.name))
	if err != nil {
		return 0, fmt.Errorf("search %s: %w", t.name, err)
	}
	var (
		ctids         []string
		ctid          string
		body, headers []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&ctid, &body, &headers}, func() error {
		if mentions(body, emails, regs) || mentions(headers, emails, regs) {
			ctids = append(ctids, ctid)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("search %s: %w", t.name, err)
	}
	if len(ctids) == 0 {
		return 0, nil
	}
	tag, err := tx.Exec(ctx, rawDeleteSQL(t.name), ctids)
	if err != nil {
		return 0, fmt.Errorf("delete from %s: %w", t.name, err)
	}
	return tag.RowsAffected(), nil
}

// likePatterns turns needles (lower case) into the LIKE patterns of registrantEventsSQL:
// each needle anywhere (its %, _ and \ taken literally), and the JSON escapes that could
// spell one.
func likePatterns(needles []string) []string {
	escape := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	patterns := []string{`%\\u%`, `%\\/%`}
	for _, n := range needles {
		patterns = append(patterns, "%"+escape.Replace(n)+"%")
	}
	return patterns
}

// schemaExists tells whether a schema exists.
func schemaExists(ctx context.Context, tx pgx.Tx, schema string) (bool, error) {
	var ok bool
	if err := tx.QueryRow(ctx, schemaExistsSQL, schema).Scan(&ok); err != nil {
		return false, fmt.Errorf("look up schema %s: %w", schema, err)
	}
	return ok, nil
}

// tableExists tells whether schema.table exists.
func tableExists(ctx context.Context, tx pgx.Tx, schema, table string) (bool, error) {
	var ok bool
	if err := tx.QueryRow(ctx, tableExistsSQL, schema, table).Scan(&ok); err != nil {
		return false, fmt.Errorf("look up %s.%s: %w", schema, table, err)
	}
	return ok, nil
}

// vacuumSQL is the VACUUM that reclaims the row versions Forget left behind.
func vacuumSQL(r Result) string {
	tables := []string{logTable, "public." + quarantineTable.name}
	if r.UnverifiedDeleted > 0 {
		tables = append(tables, "public."+unverifiedTable.name)
	}
	tables = append(tables, ident(projections.Schema)+".registrants")
	if r.Parked > 0 {
		tables = append(tables, ident(projections.Schema)+"._parked")
	}
	return "VACUUM " + strings.Join(tables, ", ") + ";"
}
