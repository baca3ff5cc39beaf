package projector

import (
	"context"
	"database/sql"
	"errors"
	"sync"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/jackc/pgx/v5"
)

// serialBeginner hands the watermill-sql subscriber transactions whose every use is
// serialised with the handler's. Why: when the router closes, the subscriber stops waiting
// for the in-flight message and goes on to write its offset and commit on the same
// transaction, while the handler may still be running statements on it. A pgx connection
// is not safe for concurrent use, so without this the two would race on one connection.
// With it, the subscriber's ack/commit waits until the handler has finished (and released
// or rolled back its savepoint).
type serialBeginner struct {
	wsql.Beginner
}

func (b serialBeginner) BeginTx(ctx context.Context, opts *sql.TxOptions) (wsql.Tx, error) {
	tx, err := b.Beginner.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &serialTx{inner: tx}, nil
}

// serialTx is a wsql.Tx guarded by a mutex the handler also takes (see lock).
type serialTx struct {
	mu    sync.Mutex
	inner wsql.Tx
}

func (t *serialTx) ExecContext(ctx context.Context, query string, args ...any) (wsql.Result, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inner.ExecContext(ctx, query, args...)
}

// QueryContext holds the lock only while the query starts: the subscriber reads all rows of
// its SELECT before it hands out the first message, so rows are never read concurrently
// with a handler.
func (t *serialTx) QueryContext(ctx context.Context, query string, args ...any) (wsql.Rows, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inner.QueryContext(ctx, query, args...)
}

func (t *serialTx) Commit() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inner.Commit()
}

func (t *serialTx) Rollback() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inner.Rollback()
}

// lock gives the handler exclusive use of the subscriber's pgx transaction until unlock.
func (t *serialTx) lock() (pgx.Tx, func(), error) {
	t.mu.Lock()
	var tx pgx.Tx
	switch in := t.inner.(type) {
	case *wsql.PgxTx:
		tx = in.Tx
	case wsql.PgxTx:
		tx = in.Tx
	}
	if tx == nil {
		t.mu.Unlock()
		return nil, nil, errors.New("subscriber transaction is not a pgx transaction")
	}
	return tx, t.mu.Unlock, nil
}

// subscriberTx returns the subscriber's transaction for the message's context.
func subscriberTx(ctx context.Context) (*serialTx, error) {
	tx, ok := wsql.TxFromContext(ctx)
	if !ok {
		return nil, errors.New("message context carries no subscriber transaction")
	}
	st, ok := tx.(*serialTx)
	if !ok {
		return nil, errors.New("subscriber transaction was not begun by serialBeginner")
	}
	return st, nil
}
