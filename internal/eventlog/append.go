package eventlog

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
)

// MetaSource names where an event Turnout wrote itself came from ("rest": GoToWebinar's REST
// reporting API, read by reconcile). Webhook deliveries carry no source.
const MetaSource = "source"

// claimKeysSQL records event keys in ingest's dedup table and returns the ones that were new:
// the same claim ingest makes, so a key is in the log at most once whoever appends it.
// ON CONFLICT DO NOTHING waits for a concurrent transaction holding the same key and skips
// it if that one commits. Keys are passed distinct and sorted, so two appenders claiming
// overlapping keys cannot deadlock.
const claimKeysSQL = `
INSERT INTO ingest_event_keys (event_key)
SELECT unnest($1::text[])
ON CONFLICT DO NOTHING
RETURNING event_key`

// OwnEvent is an event that Turnout itself appends (not a webhook delivery): its payload must
// carry eventName and eventKey at the top level, like GoTo's (the log's generated columns
// read them from there).
type OwnEvent struct {
	Payload    []byte
	EventName  string
	EventKey   string
	Source     string // stored in metadata as MetaSource
	ReceivedAt time.Time
}

// AppendTx appends the records whose event key is not in the log yet, inside tx, through the
// path ingest uses: the keys are claimed in ingest_event_keys and the new records published
// with Watermill's SQL publisher, so they commit (or roll back) with whatever else the caller
// does in tx. It returns how many records were new. A key repeated within records is
// appended once.
//
// Records are authentic by construction (they come from an authenticated API call, not from
// an anonymous POST), so they are stored with signature_verified true.
func AppendTx(ctx context.Context, tx pgx.Tx, records []OwnEvent) (int, error) {
	if len(records) == 0 {
		return 0, nil
	}
	keys := make([]string, 0, len(records))
	for _, r := range records {
		keys = append(keys, r.EventKey)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	rows, err := tx.Query(ctx, claimKeysSQL, keys)
	if err != nil {
		return 0, fmt.Errorf("claim event keys: %w", err)
	}
	fresh, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("claim event keys: %w", err)
	}
	if len(fresh) == 0 {
		return 0, nil
	}
	isFresh := make(map[string]bool, len(fresh))
	for _, k := range fresh {
		isFresh[k] = true
	}
	msgs := make([]*message.Message, 0, len(fresh))
	for _, r := range records {
		if !isFresh[r.EventKey] {
			continue
		}
		isFresh[r.EventKey] = false // a repeat within records is appended once
		m := NewMessage(Entry{Body: r.Payload, EventName: r.EventName, EventKey: r.EventKey,
			SignatureVerified: true, ReceivedAt: r.ReceivedAt})
		if r.Source != "" {
			m.Metadata.Set(MetaSource, r.Source)
		}
		m.SetContext(ctx) // the publisher runs its INSERT with the first message's context
		msgs = append(msgs, m)
	}
	// Its only log line is a Trace carrying the payloads, which must never be logged.
	pub, err := wsql.NewPublisher(wsql.TxFromPgx(tx), PublisherConfig(), watermill.NopLogger{})
	if err != nil {
		return 0, fmt.Errorf("create log publisher: %w", err)
	}
	if err := pub.Publish(Topic, msgs...); err != nil {
		return 0, fmt.Errorf("publish to event log: %w", err)
	}
	return len(msgs), nil
}
