package projector_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/projections"
	"github.com/turnout-analytics/turnout/internal/projector"
	"github.com/turnout-analytics/turnout/internal/rebuild"
)

// projectorPool connects as the service role turnout_projector (migration 0002), as a
// deployment does.
func projectorPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, "SET ROLE turnout_projector"); err != nil {
			return err
		}
		return projections.PrepareConn(ctx, conn)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// A rebuild run as another role swaps in an analytics the projector's role cannot write:
// the live projector stops with an error that names the missing privilege and the likely
// cause, instead of retrying the batch for ever.
func TestLiveNamesAPermissionError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin, url := pgtest.Pool(t)
	// Database-level grants (migrations 0002, 0005, 0008) are not copied with pgtest's
	// template. The projector has no CREATE on the database: its start-up build creates
	// analytics through public.turnout_create_schema.
	if _, err := admin.Exec(ctx, `DO $$ BEGIN
		EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO turnout_projector', current_database());
	END $$`); err != nil {
		t.Fatal(err)
	}
	logs := &syncLog{}
	p := projector.New(projectorPool(t, url), projector.Config{PollInterval: 10 * time.Millisecond, LagInterval: time.Hour},
		slog.New(slog.NewTextHandler(logs, nil)), projector.NewMetrics(prometheus.NewRegistry()))
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	waitUntil(t, func() bool {
		select {
		case err := <-done:
			t.Fatalf("the projector stopped before analytics was built: %v\n%s", err, logs.String())
		default:
		}
		v, ok, err := projections.StoredVersion(ctx, admin, projections.Schema)
		return err == nil && ok && v == projections.Version
	})

	// The superuser rebuilds: analytics is now the superuser's.
	if _, err := rebuild.New(admin, rebuild.Config{}, slog.New(slog.DiscardHandler), rebuild.NewMetrics(prometheus.NewRegistry())).
		Rebuild(ctx, quiet{}); err != nil {
		t.Fatalf("rebuild as the superuser: %v", err)
	}
	if _, err := admin.Exec(ctx, `INSERT INTO `+eventlog.Table+` (uuid, payload, metadata, transaction_id) VALUES
		(gen_random_uuid()::text, '{"eventName":"registrant.added","eventKey":"k1","webinarKey":1,"registrantKey":2}', '{}', pg_current_xact_id())`); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, projector.ErrPermission) || !strings.Contains(err.Error(), "owned by postgres") {
			t.Fatalf("Run returned %v, want ErrPermission naming the owner of analytics", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the projector kept running without the privilege it needs; logs:\n%s", logs.String())
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type quiet struct{}

func (quiet) Start(eventlog.Position, bool, int64) {}
func (quiet) Update(int64)                         {}
func (quiet) Finish(rebuild.Stats)                 {}

// syncLog is a goroutine-safe log buffer.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
