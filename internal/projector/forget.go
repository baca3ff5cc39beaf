package projector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErasedEmail replaces an erased person's email in the event log and in analytics. The log
// keeps an address rather than dropping the member because registrant.added requires a
// valid email: a redacted payload must still parse (domain.Parse), so a rebuild applies it
// exactly as before. ".invalid" is reserved (RFC 2606): it can never be anyone's address.
const ErasedEmail = "erased@invalid"

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
		if strings.TrimSpace(p.Email) != p.Email || !strings.Contains(p.Email, "@") {
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

// ForgetResult counts what Forget changed. It never holds the person's data.
type ForgetResult struct {
	// Registrations is the number of (webinar, registrant) pairs found to be the person's.
	Registrations int `json:"registrations"`
	// Registrants is the number of analytics.registrants rows erased.
	Registrants int64 `json:"registrants"`
	// ShadowExists tells whether an interrupted rebuild's shadow schema was found;
	// ShadowRegistrants and ShadowPrefetchDropped say what was erased in it.
	ShadowExists          bool  `json:"shadow_exists"`
	ShadowRegistrants     int64 `json:"shadow_registrants"`
	ShadowPrefetchDropped int   `json:"shadow_prefetch_dropped"`
	// LogEvents is the number of event log rows whose payload was redacted.
	LogEvents int64 `json:"log_events"`
	// QuarantineDeleted is the number of ingest_quarantine rows deleted.
	QuarantineDeleted int64 `json:"quarantine_deleted"`
}

// Changed tells whether Forget changed anything.
func (r ForgetResult) Changed() bool {
	return r.Registrants+r.ShadowRegistrants+r.LogEvents+r.QuarantineDeleted > 0 || r.ShadowPrefetchDropped > 0
}

// registration is one (webinar, registrant) pair; webinar "" matches any webinar (only in
// the quarantine match of a registrant key given without a webinar key).
type registration struct{ webinar, registrant string }

// Forget erases a person's personal data, in one transaction:
//
//   - the event log: the payloads of their registrant events keep only the members in
//     keptMembers, email replaced by ErasedEmail (allowed by the log's append-only trigger
//     for this transaction only, with SET LOCAL turnout.allow_log_redaction);
//   - analytics.registrants (and an interrupted rebuild's shadow): their rows keep keys,
//     status, registration date and source and first join, the personal columns become
//     NULL and email ErasedEmail — exactly what a rebuild from the redacted log produces,
//     so conversion figures do not change and a rebuild keeps the person erased;
//   - ingest_quarantine: the deliveries that mention their email or registrant key are
//     deleted (a body is not trusted to be JSON, so it cannot be redacted member by member).
//
// Forget refuses while a rebuild runs (ErrRebuildRunning), and serialises with the live
// projector through the consumer's offset row (see touchConsumerSQL).
func Forget(ctx context.Context, pool *pgxpool.Pool, who Person) (ForgetResult, error) {
	if err := who.Validate(); err != nil {
		return ForgetResult{}, err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return ForgetResult{}, fmt.Errorf("begin forget: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := lockForForget(ctx, tx); err != nil {
		return ForgetResult{}, err
	}

	regs, emails, err := findRegistrations(ctx, tx, who)
	if err != nil {
		return ForgetResult{}, err
	}
	res := ForgetResult{Registrations: len(regs)}
	webinars, registrants := splitRegistrations(regs)
	// The log's email match: in email mode, also rows that carry the address without a
	// usable key pair. In key mode only the registration's own rows are the person's.
	logEmails := []string{}
	if who.Email != "" {
		logEmails = append(logEmails, strings.ToLower(who.Email))
	}
	tag, err := tx.Exec(ctx, redactLogSQL, webinars, registrants, logEmails, keptMembers, ErasedEmail)
	if err != nil {
		return ForgetResult{}, fmt.Errorf("redact event log: %w", err)
	}
	res.LogEvents = tag.RowsAffected()

	if res.Registrants, err = eraseRegistrants(ctx, tx, Schema, webinars, registrants); err != nil {
		return ForgetResult{}, err
	}
	if res.ShadowExists, err = schemaExists(ctx, tx, ShadowSchema); err != nil {
		return ForgetResult{}, err
	}
	if res.ShadowExists {
		if res.ShadowRegistrants, err = eraseRegistrants(ctx, tx, ShadowSchema, webinars, registrants); err != nil {
			return ForgetResult{}, err
		}
		if res.ShadowPrefetchDropped, err = dropPrefetchedIn(ctx, tx); err != nil {
			return ForgetResult{}, err
		}
	}

	quarantineRegs := regs
	if who.RegistrantKey != "" {
		quarantineRegs = append(quarantineRegs, registration{webinar: who.WebinarKey, registrant: who.RegistrantKey})
	}
	if res.QuarantineDeleted, err = deleteQuarantined(ctx, tx, emails, quarantineRegs); err != nil {
		return ForgetResult{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return ForgetResult{}, fmt.Errorf("commit forget: %w", err)
	}
	return res, nil
}

// lockForForget takes, in order: the rebuild lock (without waiting: a running rebuild is
// refused, not waited for, since it may run for an hour), then the live consumer's offset
// row, and opts in to redacting the log.
//
// Why the offset row: the live subscriber reads a batch of log rows in a REPEATABLE READ
// transaction that starts by locking that row. Taking it first waits for the batch in
// flight to commit (its rows are then visible to this transaction, and erased with the
// rest); updating it makes the next batch, whose snapshot may predate this commit, fail
// with a serialization error and retry with a fresh snapshot, so it never projects a
// payload as it was before the redaction. The swap relies on the same rule.
func lockForForget(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+forgetLockTimeout+`'`); err != nil {
		return fmt.Errorf("set lock timeout: %w", err)
	}
	var locked bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, int64(rebuildLockKey)).Scan(&locked); err != nil {
		return fmt.Errorf("take rebuild lock: %w", err)
	}
	if !locked {
		return ErrRebuildRunning
	}
	if _, err := tx.Exec(ctx, ensureConsumerSQL, ConsumerGroup); err != nil {
		return fmt.Errorf("ensure consumer offset row: %w", err)
	}
	if _, err := tx.Exec(ctx, touchConsumerSQL, ConsumerGroup); err != nil {
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
	collect := func(what, query string) error {
		rows, err := tx.Query(ctx, query, who.Email, who.RegistrantKey, who.WebinarKey)
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
	if err := collect("the event log", findInLogSQL); err != nil {
		return nil, nil, err
	}
	for _, schema := range []string{Schema, ShadowSchema} {
		var exists bool
		if err := tx.QueryRow(ctx, tableExistsSQL, schema, "registrants").Scan(&exists); err != nil {
			return nil, nil, fmt.Errorf("look up %s.registrants: %w", schema, err)
		}
		if exists {
			if err := collect(schema, findInRegistrantsSQL(schema)); err != nil {
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

// eraseRegistrants erases the personal columns of the given registrations in schema.
func eraseRegistrants(ctx context.Context, tx pgx.Tx, schema string, webinars, registrants []string) (int64, error) {
	var exists bool
	if err := tx.QueryRow(ctx, tableExistsSQL, schema, "registrants").Scan(&exists); err != nil {
		return 0, fmt.Errorf("look up %s.registrants: %w", schema, err)
	}
	if !exists {
		return 0, nil
	}
	tag, err := tx.Exec(ctx, eraseRegistrantsSQL(schema), webinars, registrants, ErasedEmail)
	if err != nil {
		return 0, fmt.Errorf("erase %s.registrants: %w", schema, err)
	}
	return tag.RowsAffected(), nil
}

// dropPrefetchedIn drops an interrupted rebuild's prefetch tables: parsed log rows, with
// every personal field, that were staged before the erasure. A resumed rebuild drops and
// parses them again anyway (see dropPrefetched).
func dropPrefetchedIn(ctx context.Context, tx pgx.Tx) (int, error) {
	rows, err := tx.Query(ctx, listPrefetchSQL, ShadowSchema, prefetchPrefix)
	if err != nil {
		return 0, fmt.Errorf("list prefetch tables: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("list prefetch tables: %w", err)
	}
	for _, t := range tables {
		if _, err := tx.Exec(ctx, "DROP TABLE "+pgx.Identifier{ShadowSchema, t}.Sanitize()); err != nil {
			return 0, fmt.Errorf("drop prefetch table: %w", err)
		}
	}
	return len(tables), nil
}

// deleteQuarantined deletes the quarantined deliveries that mention one of emails, or the
// registrant key (and, when known, the webinar key) of one of regs. The database narrows
// the candidates by substring (case-insensitively, on bytes: bodies may be invalid UTF-8);
// mentions then requires the match to stand alone, so that forgetting ada@example.com never
// deletes a delivery of lada@example.com.
func deleteQuarantined(ctx context.Context, tx pgx.Tx, emails []string, regs []registration) (int64, error) {
	needles := slices.Clone(emails)
	for _, r := range regs {
		needles = append(needles, r.registrant)
	}
	if len(needles) == 0 {
		return 0, nil
	}
	rows, err := tx.Query(ctx, quarantineCandidatesSQL, needles)
	if err != nil {
		return 0, fmt.Errorf("search quarantine: %w", err)
	}
	var ids []int64
	var (
		id   int64
		body []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &body}, func() error {
		if mentions(body, emails, regs) {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("search quarantine: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	tag, err := tx.Exec(ctx, deleteQuarantineSQL, ids)
	if err != nil {
		return 0, fmt.Errorf("delete quarantined deliveries: %w", err)
	}
	return tag.RowsAffected(), nil
}

// mentions tells whether body holds one of emails (ASCII case-insensitively) or the
// registrant key of one of regs together with its webinar key (when not ""), each as a
// token of its own rather than part of a longer address or number.
func mentions(body []byte, emails []string, regs []registration) bool {
	lower := asciiLower(body)
	for _, e := range emails {
		if containsToken(lower, asciiLower([]byte(e)), isEmailBefore, isEmailAfter) {
			return true
		}
	}
	for _, r := range regs {
		if containsToken(lower, []byte(r.registrant), isDigit, isDigit) &&
			(r.webinar == "" || containsToken(lower, []byte(r.webinar), isDigit, isDigit)) {
			return true
		}
	}
	return false
}

// containsToken reports whether tok occurs in s with neither a byte before it for which
// joinsBefore holds nor a byte after it for which joinsAfter holds.
func containsToken(s, tok []byte, joinsBefore, joinsAfter func(s []byte, i int) bool) bool {
	if len(tok) == 0 {
		return false
	}
	for from := 0; from+len(tok) <= len(s); {
		i := indexFrom(s, tok, from)
		if i < 0 {
			return false
		}
		end := i + len(tok)
		if (i == 0 || !joinsBefore(s, i-1)) && (end == len(s) || !joinsAfter(s, end)) {
			return true
		}
		from = i + 1
	}
	return false
}

func indexFrom(s, tok []byte, from int) int {
	i := bytes.Index(s[from:], tok)
	if i < 0 {
		return -1
	}
	return from + i
}

func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isDigit(s []byte, i int) bool { return '0' <= s[i] && s[i] <= '9' }

// isEmailBefore: a byte that would make the match the tail of a longer local part.
func isEmailBefore(s []byte, i int) bool {
	return isAlnum(s[i]) || strings.IndexByte("._%+-", s[i]) >= 0
}

// isEmailAfter: a byte that would make the match the head of a longer domain. A dot ends
// the address unless a label follows it ("ada@example.com." ends a sentence;
// "ada@example.com.au" is another address).
func isEmailAfter(s []byte, i int) bool {
	if s[i] == '.' {
		return i+1 < len(s) && isAlnum(s[i+1])
	}
	return isAlnum(s[i]) || s[i] == '-' || s[i] == '_'
}
