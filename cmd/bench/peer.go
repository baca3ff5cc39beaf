package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/ingest"
	"github.com/turnout-analytics/turnout/internal/webhook"
)

// peerCommand is the hidden subcommand that serves the Watermill peer (see serveWatermillPeer).
const peerCommand = "watermill-peer"

// peerTopic is the peer's own Watermill topic: its table is the one watermill-sql's
// DefaultPostgreSQLSchema creates, in the benchmark's database.
const peerTopic = "bench_peer_events"

// serveWatermillPeer serves, on addr, the receiver a Go developer would write from
// Watermill's documentation ("Publishing within a transaction" with watermill-sql): a chi
// router, the body read with io.ReadAll, the HMAC signature checked, then per request a
// transaction begun on a pgx pool, a watermill-sql Publisher made on that transaction
// publishing the one message, the commit, and 200 after it. No validation, no
// deduplication, no batching. Its pool has one connection per sender (conns), so its
// transactions are never queued for a connection and PostgreSQL group-commits them: the
// strongest version of that receiver, not a straw man.
func serveWatermillPeer(ctx context.Context, addr, dbURL string, conns int) error {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return fmt.Errorf("parse database URL: %w", err)
	}
	cfg.MaxConns = int32(conns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open pool: %w", err)
	}
	defer pool.Close()
	schema := wsql.DefaultPostgreSQLSchema{}
	if err := createPeerTable(ctx, pool, schema); err != nil {
		return err
	}
	verifier, err := webhook.NewVerifier([]byte(benchSecret))
	if err != nil {
		return fmt.Errorf("peer verifier: %w", err)
	}
	pubCfg := wsql.PublisherConfig{SchemaAdapter: schema}

	r := chi.NewRouter()
	r.Post(ingest.CallbackPath, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, ingest.DefaultMaxBodyBytes))
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		if err := verifier.Verify(r.Header.Get(webhook.HeaderTimestamp), body, r.Header.Get(webhook.HeaderSignature)); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		tx, err := pool.Begin(r.Context())
		if err != nil {
			http.Error(w, "begin", http.StatusServiceUnavailable)
			return
		}
		defer func() { _ = tx.Rollback(context.WithoutCancel(r.Context())) }() // a no-op after Commit
		pub, err := wsql.NewPublisher(wsql.TxFromPgx(tx), pubCfg, watermill.NopLogger{})
		if err != nil {
			http.Error(w, "publisher", http.StatusInternalServerError)
			return
		}
		msg := message.NewMessage(watermill.NewUUID(), body)
		msg.SetContext(r.Context())
		if err := pub.Publish(peerTopic, msg); err != nil {
			http.Error(w, "publish", http.StatusServiceUnavailable)
			return
		}
		if err := tx.Commit(r.Context()); err != nil {
			http.Error(w, "commit", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"status":"stored"}`)
	})
	return serveReference(ctx, addr, r, "Watermill peer")
}

// createPeerTable runs watermill-sql's own schema initialisation for the peer's topic (what
// AutoInitializeSchema would do, which a publisher on a transaction may not).
func createPeerTable(ctx context.Context, pool *pgxpool.Pool, schema wsql.DefaultPostgreSQLSchema) error {
	queries, err := schema.SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams{Topic: peerTopic})
	if err != nil {
		return fmt.Errorf("peer schema: %w", err)
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, q := range queries {
			if _, err := tx.Exec(ctx, q.Query, q.Args...); err != nil {
				return fmt.Errorf("create peer table: %w", err)
			}
		}
		return nil
	})
}

// measureWatermillPeer starts this program's Watermill peer as a process of its own (as
// ingest is) on dbURL and drives it with the lean client for d at the given concurrency.
// It returns the rate of 2xx answers and the CPU split per delivery, after checking that
// every 2xx is a row in the peer's table.
func measureWatermillPeer(ctx context.Context, dbURL string, senders int, d time.Duration, postmaster int) (float64, cpuEach, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, cpuEach{}, fmt.Errorf("find own executable: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return 0, cpuEach{}, err
	}
	cmd := exec.CommandContext(ctx, self, peerCommand, addr, dbURL, strconv.Itoa(senders))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, cpuEach{}, fmt.Errorf("start Watermill peer: %w", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := waitReady(ctx, "http://"+addr+"/readyz", 10*time.Second); err != nil {
		return 0, cpuEach{}, fmt.Errorf("the Watermill peer did not start: %w", err)
	}
	client := newRawClient(addr, 2*senders)
	defer client.close()
	var seq, acked atomic.Int64
	deliver := func(ctx context.Context) (int, error) {
		n := seq.Add(1)
		code, err := client.post(ctx, fmt.Appendf(nil, deliveryBody, n, n, n))
		if err == nil && code/100 == 2 {
			acked.Add(1)
		}
		return code, err
	}
	if _, _, err := closedLoop(ctx, deliver, senders, 2*time.Second); err != nil {
		return 0, cpuEach{}, err
	}
	before, err := sampleCPU(cmd.Process.Pid, postmaster)
	if err != nil {
		return 0, cpuEach{}, err
	}
	ok, _, err := closedLoop(ctx, deliver, senders, d)
	if err != nil {
		return 0, cpuEach{}, err
	}
	after, err := sampleCPU(cmd.Process.Pid, postmaster)
	if err != nil {
		return 0, cpuEach{}, err
	}
	// MessagesTable returns the name quoted, ready for SQL.
	stored, err := countRows(ctx, dbURL, wsql.DefaultPostgreSQLSchema{}.MessagesTable(peerTopic))
	if err != nil {
		return 0, cpuEach{}, err
	}
	if stored < acked.Load() {
		return 0, cpuEach{}, fmt.Errorf("the Watermill peer LOST DELIVERIES: %d acknowledged but only %d stored", acked.Load(), stored)
	}
	return float64(ok) / d.Seconds(), perDelivery(before, after, ok, "peer"), nil
}
