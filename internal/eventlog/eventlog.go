// Package eventlog owns Turnout's event log: the Watermill SQL topic that holds every
// accepted GoToWebinar delivery, raw and append-only; how messages are written to it
// (Watermill's publisher); how they are read back (ReadCommitted, ReadRange, BatchEnd);
// and the consumers' positions in it (ReadPosition, LockPosition, AdvancePosition), which
// readers move in their own transaction. No other package names the log's tables.
//
// The tables are created by migrations (migrations/0001_event_log.up.sql, and
// 0004_log_epochs.up.sql for the epoch that keeps the order across a logical restore).
package eventlog

import (
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Topic is the Watermill topic of the event log.
const Topic = "gotowebinar_events"

// Table and OffsetsTable are the quoted SQL names of the log and of the consumer offsets,
// as watermill-sql derives them from Topic.
const (
	Table        = `"watermill_gotowebinar_events"`
	OffsetsTable = `"watermill_offsets_gotowebinar_events"`
)

// Metadata keys stored with every log row (the metadata JSON column).
const (
	MetaEventName         = "event_name"
	MetaEventKey          = "event_key"
	MetaSignatureVerified = "signature_verified"
	MetaReceivedAt        = "received_at"
)

// PublisherConfig is the configuration for publishing to the log. Schema initialisation is
// off: migrations own the tables.
func PublisherConfig() wsql.PublisherConfig {
	return wsql.PublisherConfig{SchemaAdapter: wsql.DefaultPostgreSQLSchema{}, AutoInitializeSchema: false}
}

// Entry is one delivery to append.
type Entry struct {
	Body              []byte // raw request body, stored byte for byte
	EventName         string
	EventKey          string
	SignatureVerified bool
	ReceivedAt        time.Time
}

// NewMessage turns an entry into the Watermill message the publisher stores. The payload is
// the raw body; everything else goes into metadata.
func NewMessage(e Entry) *message.Message {
	m := message.NewMessage(watermill.NewUUID(), e.Body)
	m.Metadata.Set(MetaEventName, e.EventName)
	m.Metadata.Set(MetaEventKey, e.EventKey)
	m.Metadata.Set(MetaSignatureVerified, strconv.FormatBool(e.SignatureVerified))
	m.Metadata.Set(MetaReceivedAt, e.ReceivedAt.UTC().Format(time.RFC3339Nano))
	return m
}
