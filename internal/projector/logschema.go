package projector

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/turnout-analytics/turnout/internal/eventlog"
)

// Metadata keys the projector's schema adapter adds to every message it reads, so the
// handler knows the row's place in the log. They are prefixed so they never clobber the
// metadata ingest stored (which has its own received_at, the HTTP arrival time; the
// projections use the log row's received_at column, as a rebuild does).
const (
	metaOffset        = "log_offset"
	metaTransactionID = "log_transaction_id"
	metaReceivedAt    = "log_received_at"
)

// logSchema is eventlog's watermill-sql schema adapter with a SELECT that also returns the
// row's received_at, and an UnmarshalMessage that copies offset, transaction id and
// received_at into the message metadata: watermill keeps them in its Row, which a handler
// never sees.
type logSchema struct {
	wsql.DefaultPostgreSQLSchema
}

func newLogSchema(batchSize int) logSchema {
	return logSchema{eventlog.SchemaAdapter(batchSize)}
}

func (s logSchema) batchSize() int {
	if s.SubscribeBatchSize == 0 {
		return 100
	}
	return s.SubscribeBatchSize
}

// SelectQuery is DefaultPostgreSQLSchema.SelectQuery with received_at added to the column
// list. It keeps the default's shape on purpose: the subquery avoids a planner trap with
// ORDER BY … LIMIT (see watermill-sql's comment), and the pg_snapshot_xmin filter is the
// visibility rule the rebuild relies on too.
func (s logSchema) SelectQuery(params wsql.SelectQueryParams) (wsql.Query, error) {
	next, err := params.OffsetsAdapter.NextOffsetQuery(wsql.NextOffsetQueryParams{
		Topic:         params.Topic,
		ConsumerGroup: params.ConsumerGroup,
	})
	if err != nil {
		return wsql.Query{}, fmt.Errorf("build next offset query: %w", err)
	}
	q := `
	SELECT * FROM (
		WITH last_processed AS (
			` + next.Query + `
		)
		SELECT "offset", transaction_id, uuid, payload, metadata, received_at FROM ` + s.MessagesTable(params.Topic) + `
		WHERE (
			(transaction_id = (SELECT last_processed_transaction_id FROM last_processed)
			 AND "offset" > (SELECT offset_acked FROM last_processed))
			OR transaction_id > (SELECT last_processed_transaction_id FROM last_processed)
		)
		AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
	) AS messages
	ORDER BY transaction_id ASC, "offset" ASC
	LIMIT ` + strconv.Itoa(s.batchSize())
	return wsql.Query{Query: q, Args: next.Args}, nil
}

// UnmarshalMessage scans a row of SelectQuery into a message, as the default adapter
// does, and records the row's position and received_at in the metadata.
func (s logSchema) UnmarshalMessage(params wsql.UnmarshalMessageParams) (wsql.Row, error) {
	var (
		r          wsql.Row
		txID       wsql.XID8
		receivedAt time.Time
	)
	if err := params.Row.Scan(&r.Offset, &txID, &r.UUID, &r.Payload, &r.Metadata, &receivedAt); err != nil {
		return wsql.Row{}, fmt.Errorf("scan log row: %w", err)
	}
	msg := message.NewMessage(string(r.UUID), r.Payload)
	if r.Metadata != nil {
		if err := json.Unmarshal(r.Metadata, &msg.Metadata); err != nil {
			return wsql.Row{}, fmt.Errorf("decode log row metadata: %w", err)
		}
	}
	if msg.Metadata == nil {
		msg.Metadata = message.Metadata{}
	}
	msg.Metadata.Set(metaOffset, strconv.FormatInt(r.Offset, 10))
	msg.Metadata.Set(metaTransactionID, strconv.FormatUint(uint64(txID), 10))
	msg.Metadata.Set(metaReceivedAt, receivedAt.UTC().Format(time.RFC3339Nano))
	r.Msg = msg
	// The offsets adapter's ack query reads the transaction id from here.
	r.ExtraData = map[string]any{"transaction_id": txID}
	return r, nil
}

// logPosition reads back what UnmarshalMessage stored.
func logPosition(msg *message.Message) (txID uint64, offset int64, receivedAt time.Time, err error) {
	if offset, err = strconv.ParseInt(msg.Metadata.Get(metaOffset), 10, 64); err != nil {
		return 0, 0, time.Time{}, fmt.Errorf("parse %s metadata: %w", metaOffset, err)
	}
	if txID, err = strconv.ParseUint(msg.Metadata.Get(metaTransactionID), 10, 64); err != nil {
		return 0, 0, time.Time{}, fmt.Errorf("parse %s metadata: %w", metaTransactionID, err)
	}
	if receivedAt, err = time.Parse(time.RFC3339Nano, msg.Metadata.Get(metaReceivedAt)); err != nil {
		return 0, 0, time.Time{}, fmt.Errorf("parse %s metadata: %w", metaReceivedAt, err)
	}
	return txID, offset, receivedAt, nil
}
