package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/domain"
	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/webhook"
)

// Requeue's SQL. Both stores are read by id, in pages, only rows not admitted yet; a
// row is marked once the log transaction holding its event committed, so a run killed
// in between admits it again next time as a duplicate (dedup by eventKey) and marks it.
const (
	requeueQuarantineSQL = `
SELECT id, received_at, reason, signature_verified, headers, body
FROM ingest_quarantine
WHERE admitted_at IS NULL AND id > $1 AND ($2 = '' OR reason = $2) AND received_at >= $3
ORDER BY id
LIMIT $4`
	requeueUnverifiedSQL = `
SELECT id, received_at, reason, false, headers, body
FROM ingest_unverified
WHERE admitted_at IS NULL AND id > $1 AND ($2 = '' OR reason = $2) AND received_at >= $3
ORDER BY id
LIMIT $4`
	admitQuarantineSQL = `
UPDATE ingest_quarantine SET admitted_at = now(), admitted_by = $2
WHERE id = ANY($1) AND admitted_at IS NULL`
	admitUnverifiedSQL = `
UPDATE ingest_unverified SET admitted_at = now(), admitted_by = $2
WHERE id = ANY($1) AND admitted_at IS NULL`
)

// requeuePage is how many stored deliveries Requeue holds at once: bodies are up to 1 MiB.
const requeuePage = 100

// Store names in a RequeueReport.
const (
	SourceQuarantine = "quarantine"
	SourceUnverified = "unverified"
)

// Reasons a stored delivery still fails re-examination, beyond domain's refusal reasons.
const (
	// StillUnverified: its signature does not verify with any configured key.
	StillUnverified = "signature"
)

// RequeueOptions selects what Requeue re-examines and how.
type RequeueOptions struct {
	// SecretKeys are the keys to verify unverified deliveries with (the ones ingest is
	// configured with now). Without keys nothing unverified can be admitted.
	SecretKeys [][]byte
	// Reason, when set, limits the run to rows stored with this reason (a quarantine
	// reason such as invalid_key, or a signature reason such as bad).
	Reason string
	// Since, when set, limits the run to rows received at or after it.
	Since time.Time
	// DryRun reports what would be admitted without writing anything.
	DryRun bool
	// RunID is recorded as admitted_by on every admitted row and in the log row's
	// metadata (MetaAdmittedBy).
	RunID string
}

// RequeueReport is what a Requeue run did, counted by store and reason.
type RequeueReport struct {
	// Admitted counts deliveries appended to the log (would be, in a dry run), by store
	// and the reason they had been kept for.
	Admitted map[string]map[string]int
	// Duplicates counts deliveries that now pass but whose eventKey was already in the
	// log; they are marked admitted too.
	Duplicates map[string]map[string]int
	// Failing counts deliveries that still fail, by store and current reason
	// (StillUnverified or a domain refusal reason).
	Failing map[string]map[string]int
}

func newRequeueReport() RequeueReport {
	return RequeueReport{Admitted: map[string]map[string]int{}, Duplicates: map[string]map[string]int{},
		Failing: map[string]map[string]int{}}
}

func bump(m map[string]map[string]int, source, reason string) {
	if m[source] == nil {
		m[source] = map[string]int{}
	}
	m[source][reason]++
}

// Total returns the sum of a report's counts.
func Total(m map[string]map[string]int) int {
	n := 0
	for _, byReason := range m {
		for _, c := range byReason {
			n += c
		}
	}
	return n
}

// Lines renders counts as sorted "store reason count" lines, for printing.
func Lines(m map[string]map[string]int) []string {
	var out []string
	for source, byReason := range m {
		for reason, c := range byReason {
			out = append(out, fmt.Sprintf("%s\t%s\t%d", source, reason, c))
		}
	}
	sort.Strings(out)
	return out
}

// Requeue re-examines the quarantined and unverified deliveries not admitted yet under
// the current acceptance rule and opts.SecretKeys, appends those that now pass to the
// log (dedup by eventKey, as live deliveries), and marks each such row admitted (when,
// and by opts.RunID); rows are never deleted. It is idempotent: a second run finds only
// rows that still fail. Quarantined rows stored verified are not verified again (their
// signature held when they arrived; the replay window is not applied to re-admissions).
func Requeue(ctx context.Context, pool *pgxpool.Pool, opts RequeueOptions) (RequeueReport, error) {
	rep := newRequeueReport()
	var verifier *webhook.Verifier
	if len(opts.SecretKeys) > 0 {
		v, err := webhook.NewVerifier(opts.SecretKeys...)
		if err != nil {
			return rep, fmt.Errorf("requeue: %w", err)
		}
		verifier = v
	}
	if opts.RunID == "" {
		return rep, errors.New("requeue: a run id is required")
	}
	for _, src := range []struct{ name, selectSQL, admitSQL string }{
		{SourceQuarantine, requeueQuarantineSQL, admitQuarantineSQL},
		{SourceUnverified, requeueUnverifiedSQL, admitUnverifiedSQL},
	} {
		r := requeuer{pool: pool, opts: opts, verifier: verifier, source: src.name, admitSQL: src.admitSQL, rep: &rep}
		var after int64
		for {
			rows, err := r.page(ctx, src.selectSQL, after)
			if err != nil {
				return rep, err
			}
			if len(rows) == 0 {
				break
			}
			after = rows[len(rows)-1].id
			if err := r.admit(ctx, rows); err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

type storedDelivery struct {
	id         int64
	receivedAt time.Time
	reason     string
	verified   bool
	headers    map[string]string
	body       []byte
}

type requeuer struct {
	pool     *pgxpool.Pool
	opts     RequeueOptions
	verifier *webhook.Verifier
	source   string
	admitSQL string
	rep      *RequeueReport
	a        appender
}

func (r *requeuer) page(ctx context.Context, query string, after int64) ([]storedDelivery, error) {
	rows, err := r.pool.Query(ctx, query, after, r.opts.Reason, r.opts.Since, requeuePage)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", r.source, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storedDelivery, error) {
		var d storedDelivery
		var headers []byte
		if err := row.Scan(&d.id, &d.receivedAt, &d.reason, &d.verified, &headers, &d.body); err != nil {
			return d, err
		}
		if err := json.Unmarshal(headers, &d.headers); err != nil {
			return d, fmt.Errorf("decode headers of row %d: %w", d.id, err)
		}
		return d, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", r.source, err)
	}
	return out, nil
}

// admit re-examines one page, appends what passes and marks it.
func (r *requeuer) admit(ctx context.Context, rows []storedDelivery) error {
	var (
		ids     []int64
		reasons []string
		batch   []Delivery
	)
	for _, d := range rows {
		if !d.verified && !r.verifies(d) {
			bump(r.rep.Failing, r.source, StillUnverified)
			continue
		}
		acc, err := domain.Accept(d.body)
		if err != nil {
			var ve *domain.ValidationError
			if !errors.As(err, &ve) {
				return fmt.Errorf("accept row %d: %w", d.id, err)
			}
			bump(r.rep.Failing, r.source, ve.Reason)
			continue
		}
		del := Delivery{Entry: eventlog.Entry{
			Body: d.body, EventName: acc.EventName, EventKey: acc.EventKey,
			SignatureVerified: true, ReceivedAt: d.receivedAt,
		}, AdmittedBy: r.opts.RunID}
		if len(acc.Findings) > 0 {
			del.DataQuality = findingsJSON(acc.Findings)
		}
		ids, reasons, batch = append(ids, d.id), append(reasons, d.reason), append(batch, del)
	}
	if len(batch) == 0 {
		return nil
	}
	if r.opts.DryRun {
		for _, reason := range reasons {
			bump(r.rep.Admitted, r.source, reason)
		}
		return nil
	}
	outcomes, err := r.a.append(ctx, r.pool, batch, nil)
	if err != nil {
		return fmt.Errorf("append re-admitted deliveries: %w", err)
	}
	if _, err := r.pool.Exec(ctx, r.admitSQL, ids, r.opts.RunID); err != nil {
		return fmt.Errorf("mark %s rows admitted: %w", r.source, err)
	}
	for i, o := range outcomes {
		if o == Stored {
			bump(r.rep.Admitted, r.source, reasons[i])
		} else {
			bump(r.rep.Duplicates, r.source, reasons[i])
		}
	}
	return nil
}

// verifies checks a stored delivery's signature with the current keys, as the callback
// would (an absent timestamp header signs ":" + body).
func (r *requeuer) verifies(d storedDelivery) bool {
	if r.verifier == nil {
		return false
	}
	return r.verifier.Verify(d.headers[webhook.HeaderTimestamp], d.body, d.headers[webhook.HeaderSignature]) == nil
}
