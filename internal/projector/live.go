package projector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/turnout-analytics/turnout/internal/domain"
	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/projections"
)

// handlerTimeout bounds one attempt's statements. They run detached from the router's
// context so that a shutdown never interrupts a statement half-way (see apply).
const handlerTimeout = 30 * time.Second

// ackDeadline bounds how long the subscriber waits for one message. After a database
// outage the subscriber's transaction is dead, but watermill-sql resends a nacked message
// on that same transaction until this deadline before it rolls back and starts over on a
// new connection, so the deadline is the projector's recovery time (watermill-sql's
// default of 30 s left analytics frozen for 27 s after a 2 s outage, measured by
// internal/faults TestDatabaseRestartUnderLoad). A healthy event takes about a millisecond.
const ackDeadline = 3 * time.Second

// Run is the live projector. It first makes sure analytics exists at the current
// projections.Version (rebuilding it in-process when not), then consumes the log until ctx
// is cancelled, when it stops gracefully: the message in flight finishes and what was
// acknowledged is committed.
func (p *Projector) Run(ctx context.Context) error {
	if err := p.ensureCurrentRetrying(ctx); err != nil {
		return err
	}
	wlog := watermillLogger(p.log)
	sub, err := wsql.NewSubscriber(serialBeginner{wsql.BeginnerFromPgx(p.pool)}, wsql.SubscriberConfig{
		ConsumerGroup:    ConsumerGroup,
		AckDeadline:      ptr(ackDeadline),
		PollInterval:     p.cfg.PollInterval,
		ResendInterval:   p.cfg.RetryInterval,
		RetryInterval:    time.Second,
		SchemaAdapter:    newLogSchema(p.cfg.BatchSize),
		OffsetsAdapter:   eventlog.OffsetsAdapter(),
		InitializeSchema: false,
	}, wlog)
	if err != nil {
		return fmt.Errorf("create subscriber: %w", err)
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: handlerTimeout}, wlog)
	if err != nil {
		return fmt.Errorf("create router: %w", err)
	}
	retry := middleware.Retry{
		MaxRetries:      p.cfg.MaxRetries,
		InitialInterval: p.cfg.RetryInterval,
		MaxInterval:     10 * p.cfg.RetryInterval,
		Multiplier:      2,
		// An event the domain rejects will be rejected again: park it at once.
		ShouldRetry: func(rp middleware.RetryParams) bool {
			var verr *domain.ValidationError
			return !errors.As(rp.Err, &verr)
		},
	}
	router.AddConsumerHandler("projector", eventlog.Topic, sub, p.handler(retry.Middleware(p.apply)))

	lagCtx, stopLag := context.WithCancel(ctx)
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		p.refreshLag(lagCtx)
	}()
	defer func() { stopLag(); <-lagDone }()

	runErr := make(chan error, 1)
	// Router.Run gets a context that is not cancelled with ctx: cancelling it would
	// interrupt the subscriber mid-batch; Close lets the batch end cleanly instead.
	go func() { runErr <- router.Run(context.WithoutCancel(ctx)) }()
	select {
	case err := <-runErr:
		if err != nil {
			return fmt.Errorf("run router: %w", err)
		}
		return errors.New("run router: stopped unexpectedly")
	case <-ctx.Done():
	}
	select {
	case <-router.Running():
	case err := <-runErr:
		runErr <- err
	}
	if err := router.Close(); err != nil {
		return fmt.Errorf("close router: %w", err)
	}
	if err := <-runErr; err != nil {
		return fmt.Errorf("run router: %w", err)
	}
	return nil
}

// ensureCurrentRetrying is ensureCurrent, retried with backoff while the database is
// unreachable: a service that starts, or is building analytics, while PostgreSQL restarts
// must wait for it, not exit (the build resumes from its recorded progress).
func (p *Projector) ensureCurrentRetrying(ctx context.Context) error {
	wait := 500 * time.Millisecond
	for {
		err := p.ensureCurrent(ctx)
		if err == nil || ctx.Err() != nil || !connectionLost(err) {
			return err
		}
		p.log.Warn("database unavailable while preparing analytics; retrying", "error", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// connectionLost reports whether err means the database went away (shut down, restarted,
// unreachable) rather than refused what was asked: worth waiting for.
func connectionLost(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P01-57P03: admin/crash shutdown, cannot connect now.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	return errors.As(err, &netErr) || errors.As(err, &connectErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(err.Error(), "conn closed") // pgx's own error for a connection it closed
}

func ptr[T any](v T) *T { return &v }

// handler wraps the retried apply: it times the message and, when the last retry failed,
// parks the event in the same transaction and acknowledges it, so the stream goes on.
func (p *Projector) handler(applyWithRetries message.HandlerFunc) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		start := time.Now()
		defer func() { p.metrics.HandlerDuration.Observe(time.Since(start).Seconds()) }()
		_, err := applyWithRetries(msg)
		if err == nil {
			p.metrics.Applied.Inc()
			return nil
		}
		if msg.Context().Err() != nil {
			// Shutting down or past the ack deadline: not the event's fault.
			return err
		}
		if perr := p.park(msg, err); perr != nil {
			return errors.Join(err, perr)
		}
		return nil
	}
}

// apply applies one message under a savepoint of the subscriber's transaction.
func (p *Projector) apply(msg *message.Message) ([]*message.Message, error) {
	txID, offset, receivedAt, err := logPosition(msg)
	if err != nil {
		return nil, err
	}
	st, err := subscriberTx(msg.Context())
	if err != nil {
		return nil, err
	}
	tx, unlock, err := st.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Detached from the router's context on purpose: a statement interrupted by
	// cancellation would leave the connection (and the subscriber's transaction) broken.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(msg.Context()), handlerTimeout)
	defer cancel()
	// One round trip per event: SAVEPOINT, the projection statements and RELEASE go out as
	// one pipelined batch. If any of them fails, the transaction is in the aborted state
	// until ROLLBACK TO SAVEPOINT undoes exactly this event's writes.
	ev := projections.Event{Offset: offset, ReceivedAt: receivedAt, Payload: msg.Payload}
	b := &pgx.Batch{}
	b.Queue("SAVEPOINT turnout_event")
	if err := projections.QueueApply(b, Schema, ev); err != nil {
		return nil, err
	}
	b.Queue("RELEASE SAVEPOINT turnout_event")
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		err = fmt.Errorf("apply event at offset %d (tx %d): %w", offset, txID, err)
		if _, rbErr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT turnout_event"); rbErr != nil {
			return nil, errors.Join(err, fmt.Errorf("roll back to savepoint: %w", rbErr))
		}
		return nil, err
	}
	return nil, nil
}

// park records a message that failed its last attempt in analytics._parked, inside the
// subscriber's transaction, so it is acknowledged together with the record.
func (p *Projector) park(msg *message.Message, cause error) error {
	txID, offset, _, err := logPosition(msg)
	if err != nil {
		return err
	}
	st, err := subscriberTx(msg.Context())
	if err != nil {
		return err
	}
	tx, unlock, err := st.lock()
	if err != nil {
		return err
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(msg.Context()), handlerTimeout)
	defer cancel()
	attempts := p.cfg.MaxRetries + 1
	var verr *domain.ValidationError
	if errors.As(cause, &verr) {
		attempts = 1
	}
	ev := parkedEvent{TxID: txID, Offset: offset}
	ev.EventName, ev.EventKey = envelopeOf(msg)
	if err := parkEvent(ctx, tx, Schema, ev, cause, attempts); err != nil {
		return err
	}
	p.metrics.Parked.Inc()
	// Identifiers only: the error text may quote the payload, which holds personal data.
	p.log.Warn("parked event", "offset", offset, "transaction_id", txID,
		"event_key", ev.EventKey, "event_name", ev.EventName, "attempts", attempts)
	return nil
}

type parkedEvent struct {
	TxID      uint64
	Offset    int64
	EventKey  string
	EventName string
}

// parkEvent inserts one parked record under its own savepoint, so a failure to park
// leaves the surrounding transaction usable.
func parkEvent(ctx context.Context, tx pgx.Tx, schema string, ev parkedEvent, cause error, attempts int) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin savepoint: %w", err)
	}
	if _, err := sp.Exec(ctx, parkSQL(schema), ev.TxID, ev.Offset, ev.EventKey, ev.EventName, cause.Error(), attempts); err != nil {
		return errors.Join(fmt.Errorf("park event at offset %d: %w", ev.Offset, err), sp.Rollback(ctx))
	}
	if err := sp.Commit(ctx); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}

// refreshLag updates the lag gauges every LagInterval until ctx ends.
func (p *Projector) refreshLag(ctx context.Context) {
	t := time.NewTicker(p.cfg.LagInterval)
	defer t.Stop()
	for {
		pos, err := consumerPosition(ctx, p.pool)
		if err == nil {
			var l lag
			if l, err = lagAfter(ctx, p.pool, pos); err == nil {
				p.metrics.LagEvents.Set(float64(l.Events))
				p.metrics.LagSeconds.Set(l.Seconds)
			}
		}
		if err != nil && ctx.Err() == nil {
			p.log.Warn("refresh lag metrics", "error", err)
		}
		if err := p.analyzeGrown(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("analyze analytics tables", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// analyzeGrown analyzes the analytics tables that changed by more than a tenth since their
// last ANALYZE. The live statements are prepared once per connection and, having no
// parameters, keep the plan made at their first execution until the statistics of a table
// they read change. Planned while a table is nearly empty, that plan seq-scans it (found in
// make bench-live: the webinar counter update scanning every webinar for each event), and
// autovacuum's analyze, at most once a minute, comes too late for a table that grows fast.
// Fresh statistics invalidate those plans, so the next execution plans for the real size.
func (p *Projector) analyzeGrown(ctx context.Context) error {
	rows, err := p.pool.Query(ctx, staleStatsSQL, Schema)
	if err != nil {
		return fmt.Errorf("find tables to analyze: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("find tables to analyze: %w", err)
	}
	for _, t := range tables {
		if _, err := p.pool.Exec(ctx, "ANALYZE "+pgx.Identifier{Schema, t}.Sanitize()); err != nil {
			return fmt.Errorf("analyze %s: %w", t, err)
		}
	}
	return nil
}

// watermillLogger adapts slog for Watermill, lowering its per-batch info chatter to debug
// (and its debug to trace level, which the JSON handler drops).
func watermillLogger(l *slog.Logger) watermill.LoggerAdapter {
	return watermill.NewSlogLoggerWithLevelMapping(l, map[slog.Level]slog.Level{
		slog.LevelInfo:  slog.LevelDebug,
		slog.LevelDebug: watermill.LevelTrace,
	})
}

// envelopeOf returns the event's name and key as the log's generated columns see them
// (payload ->> 'eventName', payload ->> 'eventKey'), so live and rebuild park alike;
// ingest's metadata is the fallback for a payload that is not a JSON object.
func envelopeOf(msg *message.Message) (name, key string) {
	var env struct {
		EventName json.RawMessage `json:"eventName"`
		EventKey  json.RawMessage `json:"eventKey"`
	}
	if err := json.Unmarshal(msg.Payload, &env); err != nil {
		return msg.Metadata.Get(eventlog.MetaEventName), msg.Metadata.Get(eventlog.MetaEventKey)
	}
	return jsonText(env.EventName), jsonText(env.EventKey)
}

// jsonText is ->> for one value: a string's contents, any other value's JSON text.
func jsonText(raw json.RawMessage) string {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s
	}
	if string(raw) == "null" {
		return ""
	}
	return string(raw)
}
