package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/eventlog"
)

// claimKeysSQL records the batch's event keys and returns the ones that were new.
//
// ON CONFLICT DO NOTHING waits for a concurrent transaction that inserted the same key and
// skips it if that one commits, so a redelivery racing in another batch is reported as a
// duplicate exactly once. The keys must be distinct (a repeated key in one statement is
// fine for DO NOTHING, but we dedupe first so RETURNING maps one-to-one) and sorted: two
// batches claiming overlapping keys in different orders could otherwise deadlock.
const claimKeysSQL = `
INSERT INTO ingest_event_keys (event_key)
SELECT unnest($1::text[])
ON CONFLICT DO NOTHING
RETURNING event_key`

// quarantineSQL stores an authentic delivery that could not enter the log.
const quarantineSQL = `
INSERT INTO ingest_quarantine (received_at, reason, detail, signature_verified, headers, body)
VALUES ($1, $2, $3, $4, $5, $6)`

// maxAppendAttempts bounds retries of a batch that lost a deadlock or serialization race.
// Sorted keys make deadlocks unlikely, but foreign sessions (an operator's script) could
// still take the same rows in another order; a retry is cheaper than a 503.
const maxAppendAttempts = 3

// Outcome is what happened to one appended entry.
type Outcome uint8

// Outcomes of Append.
const (
	// Stored: the entry is now in the event log.
	Stored Outcome = iota + 1
	// Duplicate: an entry with the same event key was already in the log (or earlier in
	// the same batch); nothing was written for this one.
	Duplicate
)

// String returns the outcome's name as used in responses and metrics.
func (o Outcome) String() string {
	switch o {
	case Stored:
		return "stored"
	case Duplicate:
		return "duplicate"
	default:
		return "unknown"
	}
}

// Metadata keys ingest adds to a log row beside eventlog's own (the metadata JSON column).
const (
	// MetaDataQuality holds the payload's data-quality findings as a JSON list of
	// {"field": JSON pointer, "problem": domain.Problem*}; absent when there are none.
	MetaDataQuality = "data_quality"
	// MetaAdmittedBy names the `ingest requeue` run that admitted the event; absent for
	// live deliveries.
	MetaAdmittedBy = "admitted_by"
)

// Delivery is one accepted delivery to append: the log entry and what ingest records
// beside it.
type Delivery struct {
	eventlog.Entry
	// DataQuality is the JSON list of the payload's findings (MetaDataQuality); "" when
	// there are none.
	DataQuality string
	// AdmittedBy is MetaAdmittedBy; "" for live deliveries.
	AdmittedBy string
}

func (d Delivery) message() *message.Message {
	m := eventlog.NewMessage(d.Entry)
	if d.DataQuality != "" {
		m.Metadata.Set(MetaDataQuality, d.DataQuality)
	}
	if d.AdmittedBy != "" {
		m.Metadata.Set(MetaAdmittedBy, d.AdmittedBy)
	}
	return m
}

// Store writes accepted deliveries to the event log and refused ones to the quarantine.
// It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool}
}

// Append stores entries in one transaction: it claims their event keys in
// ingest_event_keys and publishes the entries whose key was new to the event log with
// Watermill's SQL publisher, then commits. It appends one Outcome per entry, in order, to
// out and returns it. On error nothing of the batch is stored.
func (s *Store) Append(ctx context.Context, entries []Delivery, out []Outcome) ([]Outcome, error) {
	var a appender
	return a.append(ctx, s.pool, entries, out)
}

// appender holds the scratch space of one batch worker, reused from batch to batch.
type appender struct {
	keys  []string
	first map[string]int // event key → index of its first entry in the batch
	fresh map[string]struct{}
	msgs  []*message.Message
	exec  commitOnInsert
	pub   *wsql.Publisher // publishes through exec; built on first use
}

func (a *appender) append(ctx context.Context, pool *pgxpool.Pool, entries []Delivery, out []Outcome) ([]Outcome, error) {
	if len(entries) == 0 {
		return out, nil
	}
	a.dedupe(entries)
	var err error
	for attempt := 1; ; attempt++ {
		err = a.commit(ctx, pool, entries)
		if err == nil || attempt == maxAppendAttempts || !retryable(err) {
			break
		}
	}
	if err != nil {
		return out, err
	}
	for i, e := range entries {
		if _, isNew := a.fresh[e.EventKey]; isNew && a.first[e.EventKey] == i {
			out = append(out, Stored)
		} else {
			out = append(out, Duplicate)
		}
	}
	return out, nil
}

// dedupe fills a.keys with the batch's distinct event keys, sorted, and a.first with
// where each first occurs.
func (a *appender) dedupe(entries []Delivery) {
	if a.first == nil {
		a.first = make(map[string]int, len(entries))
		a.fresh = make(map[string]struct{}, len(entries))
	}
	clear(a.first)
	a.keys = a.keys[:0]
	for i, e := range entries {
		if _, seen := a.first[e.EventKey]; !seen {
			a.first[e.EventKey] = i
			a.keys = append(a.keys, e.EventKey)
		}
	}
	slices.Sort(a.keys)
}

// commit runs the batch's transaction, leaving the new keys in a.fresh.
//
// The transaction takes two round trips instead of four: BEGIN is pipelined with the key
// claim, and the log INSERT that Watermill's publisher issues is pipelined with COMMIT
// (see commitOnInsert). The transaction is driven with plain BEGIN/COMMIT statements on
// an acquired connection rather than a pgx.Tx, because pgx.Tx sends BEGIN and COMMIT as
// round trips of their own.
func (a *appender) commit(ctx context.Context, pool *pgxpool.Pool, entries []Delivery) (err error) {
	clear(a.fresh)
	pc, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	// Release destroys a connection left inside a transaction, so even a failed
	// rollback cannot hand a half-done batch to the next user of the connection.
	defer pc.Release()
	conn := pc.Conn()
	defer func() {
		if err != nil && !conn.IsClosed() && conn.PgConn().TxStatus() != 'I' {
			// The rollback error adds nothing: the transaction is lost either way.
			_, _ = conn.Exec(context.WithoutCancel(ctx), rollbackSQL)
		}
	}()

	var b pgx.Batch
	b.Queue(beginSQL)
	b.Queue(claimKeysSQL, a.keys)
	br := conn.SendBatch(ctx, &b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return fmt.Errorf("begin append: %w", err)
	}
	rows, _ := br.Query() // a query error surfaces from ForEachRow
	var key string
	_, err = pgx.ForEachRow(rows, []any{&key}, func() error {
		a.fresh[key] = struct{}{}
		return nil
	})
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("claim event keys: %w", err)
	}

	if len(a.fresh) == 0 {
		if _, err := conn.Exec(ctx, commitSQL); err != nil {
			return fmt.Errorf("commit append: %w", err)
		}
		return nil
	}
	a.msgs = a.msgs[:0]
	for i, e := range entries {
		if _, isNew := a.fresh[e.EventKey]; isNew && a.first[e.EventKey] == i {
			m := e.message()
			// The publisher runs its INSERT with the first message's context.
			m.SetContext(ctx)
			a.msgs = append(a.msgs, m)
		}
	}
	if a.pub == nil {
		// Its only log line is a Trace carrying the query arguments, i.e. the payloads,
		// which must never be logged: hence the no-op logger.
		a.pub, err = wsql.NewPublisher(&a.exec, eventlog.PublisherConfig(), watermill.NopLogger{})
		if err != nil {
			return fmt.Errorf("create log publisher: %w", err)
		}
	}
	a.exec = commitOnInsert{conn: conn}
	err = a.pub.Publish(eventlog.Topic, a.msgs...)
	committed := a.exec.committed
	a.exec = commitOnInsert{}
	clear(a.msgs) // drop references to the bodies until the next batch
	if err != nil {
		return fmt.Errorf("publish to event log: %w", err)
	}
	if !committed {
		return errors.New("publish to event log: the publisher issued no INSERT")
	}
	return nil
}

// Transaction control, sent as statements so they can share a pipeline with the batch's
// other statements.
const (
	beginSQL    = "BEGIN"
	commitSQL   = "COMMIT"
	rollbackSQL = "ROLLBACK"
)

// commitOnInsert is the database handle given to Watermill's publisher inside a batch
// transaction. Its ExecContext sends the publisher's INSERT and then COMMIT in one
// pipeline, so the log rows and the batch's key claims commit together one round trip
// after they are sent. If the INSERT fails, PostgreSQL skips the rest of the pipeline:
// COMMIT never runs and the transaction is left aborted for the caller to roll back.
//
// It serves exactly one ExecContext per transaction (Publish issues one INSERT for all
// its messages) and supports no queries.
type commitOnInsert struct {
	conn      *pgx.Conn
	committed bool
}

// ExecContext runs query with args, then COMMIT, in one round trip.
func (e *commitOnInsert) ExecContext(ctx context.Context, query string, args ...any) (wsql.Result, error) {
	if e.conn == nil || e.committed {
		return nil, errors.New("insert into event log: no open batch transaction")
	}
	var b pgx.Batch
	b.Queue(query, args...)
	b.Queue(commitSQL)
	br := e.conn.SendBatch(ctx, &b)
	tag, err := br.Exec()
	if err != nil {
		_ = br.Close()
		return nil, err // the publisher wraps it
	}
	ctag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("commit append: %w", err)
	}
	// COMMIT of an aborted transaction "succeeds" with the tag ROLLBACK.
	if ctag.String() != commitSQL {
		return nil, fmt.Errorf("commit append: transaction ended with %q", ctag.String())
	}
	e.committed = true
	return rowsAffected(tag.RowsAffected()), nil
}

// QueryContext is not used by the publisher and not supported.
func (e *commitOnInsert) QueryContext(context.Context, string, ...any) (wsql.Rows, error) {
	return nil, errors.New("query event log: not supported inside a batch append")
}

type rowsAffected int64

func (n rowsAffected) RowsAffected() (int64, error) { return int64(n), nil }

// retryable reports whether err is a transient conflict worth retrying the batch for.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgErr.Code == pgerrcode.DeadlockDetected || pgErr.Code == pgerrcode.SerializationFailure
}

// Quarantined is an authentic (or, in observe mode, unverified) delivery that was refused.
type Quarantined struct {
	ReceivedAt        time.Time
	Reason            string // a domain.Reason* code
	Detail            string // names the field and rule; never payload values
	SignatureVerified bool
	Headers           map[string]string // the few headers worth keeping for diagnosis
	Body              []byte            // raw, possibly not JSON or UTF-8
}

// Quarantine stores a refused delivery in ingest_quarantine.
func (s *Store) Quarantine(ctx context.Context, q Quarantined) error {
	headers := q.Headers
	if headers == nil {
		headers = map[string]string{} // the column is NOT NULL; {} rather than null
	}
	body := q.Body
	if body == nil {
		body = []byte{}
	}
	_, err := s.pool.Exec(ctx, quarantineSQL, q.ReceivedAt, q.Reason, q.Detail, q.SignatureVerified, headers, body)
	if err != nil {
		return fmt.Errorf("insert quarantine: %w", err)
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}
