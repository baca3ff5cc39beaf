package forwarder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
)

// Header names of every published message, besides Watermill's own
// _watermill_message_uuid, which is the eventKey too (a Watermill subscriber's msg.UUID).
const (
	HeaderMsgID       = nats.MsgIdHdr     // "Nats-Msg-Id": the event's eventKey, JetStream's dedup key
	HeaderPosition    = "log_position"    // the event's position in Turnout's log
	HeaderReceivedAt  = "received_at"     // when ingest's transaction started, RFC 3339 UTC
	HeaderSource      = "source"          // where the event came from: SourceGoToWebinar
	SourceGoToWebinar = "gotowebinar"     // the value of HeaderSource
	SubjectPrefix     = "turnout.events." // + eventName
)

// Message is one log event as it is published.
type Message struct {
	EventName  string
	EventKey   string
	Position   string // the log position, as text
	ReceivedAt time.Time
	Payload    []byte // the raw delivery, byte for byte
}

// Subject is the NATS subject of an event: SubjectPrefix + its eventName. Ingest only
// stores events whose name the spec knows, so this never changes a real name; a
// character NATS would read as a wildcard or separator in a token is replaced by '_' so
// that a malformed name still lands in the stream instead of stalling the forwarder.
func Subject(eventName string) string {
	if eventName == "" {
		eventName = "_"
	}
	clean := strings.Map(func(r rune) rune {
		switch {
		case r == '*' || r == '>' || r <= ' ' || r == 0x7f:
			return '_'
		}
		return r
	}, eventName)
	for strings.Contains(clean, "..") { // an empty token is not a subject
		clean = strings.ReplaceAll(clean, "..", "._.")
	}
	clean = strings.Trim(clean, ".")
	if clean == "" {
		clean = "_"
	}
	return SubjectPrefix + clean
}

// ackMarshaler is Watermill's header marshaler with one addition: the NATS reply subject
// on which JetStream answers the publish with its PubAck. The reply subject travels in
// the message metadata (replyKey) and is taken out of the headers again.
type ackMarshaler struct{ wmnats.NATSMarshaler }

const replyKey = "_turnout_reply"

func (m *ackMarshaler) Marshal(topic string, msg *message.Message) (*nats.Msg, error) {
	nm, err := m.NATSMarshaler.Marshal(topic, msg)
	if err != nil {
		return nil, fmt.Errorf("marshal message: %w", err)
	}
	nm.Reply = nm.Header.Get(replyKey)
	nm.Header.Del(replyKey)
	return nm, nil
}

// Publisher publishes batches of events to JetStream with Watermill's NATS publisher and
// waits for JetStream to acknowledge every one.
//
// Why not Watermill's JetStream mode: it publishes synchronously, one round trip per
// message (about 1/20 of what the stream accepts here). Instead the publisher runs in
// Watermill's core mode with a marshaler that sets a reply subject, exactly as nats.go's
// own PublishAsync does: the messages leave in log order, pipelined on one connection, and
// JetStream answers each with a PubAck on a subscription of ours. Nats-Msg-Id makes a
// re-publish of an event JetStream already stored (an ack lost, a forwarder killed before
// it moved its position) a duplicate that JetStream acknowledges without storing it again,
// within the stream's duplicate window.
type Publisher struct {
	nc      *nats.Conn
	wm      *wmnats.Publisher
	sub     *nats.Subscription
	inbox   string // reply subjects are inbox + "<batch>.<index>"
	metrics *Metrics

	mu    sync.Mutex
	batch uint64        // number of the batch being published; acks of others are ignored
	acked []ackResult   // per index of the current batch
	left  int           // indexes of the current batch not acknowledged yet
	done  chan struct{} // closed when left reaches 0
}

type ackResult uint8

const (
	notAcked ackResult = iota
	stored
	duplicate
)

// NewPublisher returns a publisher on nc (which it does not close). The logger is
// Watermill's.
func NewPublisher(nc *nats.Conn, logger watermill.LoggerAdapter, m *Metrics) (*Publisher, error) {
	wm, err := wmnats.NewPublisherWithNatsConn(nc, wmnats.PublisherPublishConfig{
		Marshaler:         &ackMarshaler{},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		JetStream:         wmnats.JetStreamConfig{Disabled: true}, // see the type's comment
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("create watermill nats publisher: %w", err)
	}
	p := &Publisher{nc: nc, wm: wm, inbox: nats.NewInbox() + ".", metrics: m}
	// The subscription survives reconnects: nats.go re-subscribes by itself.
	p.sub, err = nc.Subscribe(p.inbox+">", p.onAck)
	if err != nil {
		return nil, fmt.Errorf("subscribe to publish acks: %w", err)
	}
	// Acks arrive as fast as messages leave; never drop one for a slow consumer.
	if err := p.sub.SetPendingLimits(-1, -1); err != nil {
		return nil, fmt.Errorf("set ack subscription limits: %w", err)
	}
	return p, nil
}

// Close stops listening for acks. The connection stays open.
func (p *Publisher) Close() error {
	if err := p.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("unsubscribe publish acks: %w", err)
	}
	return nil
}

// pubAck is JetStream's answer to a publish: a PubAck, or an API error.
type pubAck struct {
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
	Error     *struct {
		Code        int    `json:"code"`
		Description string `json:"description"`
	} `json:"error"`
}

func (p *Publisher) onAck(m *nats.Msg) {
	tail := strings.TrimPrefix(m.Subject, p.inbox)
	b, i, ok := strings.Cut(tail, ".")
	if !ok {
		return
	}
	batch, err1 := strconv.ParseUint(b, 10, 64)
	idx, err2 := strconv.Atoi(i)
	if err1 != nil || err2 != nil {
		return
	}
	// An empty body with status 503 is "no responders": no stream (or no leader) took
	// the message. An error body is JetStream refusing it. Neither is an ack: the event
	// stays unacknowledged and is published again.
	if len(m.Data) == 0 {
		p.metrics.PublishErrors.WithLabelValues("no_responders").Inc()
		return
	}
	var a pubAck
	if err := json.Unmarshal(m.Data, &a); err != nil || a.Error != nil || a.Seq == 0 {
		p.metrics.PublishErrors.WithLabelValues("refused").Inc()
		return
	}
	res := stored
	if a.Duplicate {
		res = duplicate
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if batch != p.batch || idx < 0 || idx >= len(p.acked) || p.acked[idx] != notAcked {
		return // an ack of an earlier batch, or a second ack of a re-published event
	}
	p.acked[idx] = res
	p.left--
	if p.left == 0 {
		close(p.done)
	}
}

// Publish publishes every message and returns once JetStream has acknowledged all of
// them, re-publishing those it did not acknowledge within ackWait (after a pause of
// retryWait), until ctx ends. The error is ctx's: nothing else stops it, because the caller may
// not move past an event that is not in the stream.
func (p *Publisher) Publish(ctx context.Context, msgs []Message, ackWait, retryWait time.Duration) error {
	if len(msgs) == 0 {
		return nil
	}
	p.mu.Lock()
	p.batch++
	batch := p.batch
	p.acked = make([]ackResult, len(msgs))
	p.left = len(msgs)
	p.done = make(chan struct{})
	done := p.done
	p.mu.Unlock()

	wms := make([]*message.Message, len(msgs))
	for i, m := range msgs {
		wm := message.NewMessage(m.EventKey, m.Payload)
		wm.Metadata.Set(HeaderMsgID, m.EventKey)
		wm.Metadata.Set(HeaderPosition, m.Position)
		wm.Metadata.Set(HeaderReceivedAt, m.ReceivedAt.UTC().Format(time.RFC3339Nano))
		wm.Metadata.Set(HeaderSource, SourceGoToWebinar)
		wm.Metadata.Set(replyKey, p.inbox+strconv.FormatUint(batch, 10)+"."+strconv.Itoa(i))
		wms[i] = wm
	}

	pending := make([]int, len(msgs))
	for i := range pending {
		pending[i] = i
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			p.metrics.Retries.Add(float64(len(pending)))
		}
		sent := 0
		for _, i := range pending {
			if err := p.wm.Publish(Subject(msgs[i].EventName), wms[i]); err != nil {
				// Disconnected with the reconnect buffer full, or closed: wait, then try
				// again with whatever is still unacknowledged.
				p.metrics.PublishErrors.WithLabelValues("send").Inc()
				break
			}
			sent++
		}
		p.metrics.Published.Add(float64(sent))
		if sent == len(pending) {
			// Push the messages out now rather than when the buffer fills.
			_ = p.nc.FlushTimeout(ackWait)
		}
		timer := time.NewTimer(ackWait)
		select {
		case <-done:
			timer.Stop()
			p.countAcks()
			return nil
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
		pending = p.unacked()
		if len(pending) == 0 {
			p.countAcks()
			return nil
		}
		p.metrics.Waits.WithLabelValues("nats").Inc()
		select {
		case <-done:
			p.countAcks()
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(retryWait):
		}
		if pending = p.unacked(); len(pending) == 0 {
			p.countAcks()
			return nil
		}
	}
}

func (p *Publisher) unacked() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for i, a := range p.acked {
		if a == notAcked {
			out = append(out, i)
		}
	}
	return out
}

func (p *Publisher) countAcks() {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s, d int
	for _, a := range p.acked {
		switch a {
		case stored:
			s++
		case duplicate:
			d++
		}
	}
	p.metrics.Acks.WithLabelValues("stored").Add(float64(s))
	p.metrics.Acks.WithLabelValues("duplicate").Add(float64(d))
}
