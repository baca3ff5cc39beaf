package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/webhook"
)

// TestUnverifiedStoreIsBounded fills the unverified store past its bounds: an eviction
// pass keeps the newest rows within both the row and the byte bound, counts what it
// evicted, and reports what is left; a body too large to keep is refused all the same
// and counted as dropped.
func TestUnverifiedStoreIsBounded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cfg      Config
		send     int
		wantRows int
	}{
		{"row bound", Config{UnverifiedMaxRows: 5}, 12, 5},
		// Each row below costs its body plus its headers, a few hundred bytes: the newest
		// rows whose sizes add up to at most 1,000 bytes stay (wantRows -1: computed).
		{"byte bound", Config{UnverifiedMaxRows: 100, UnverifiedMaxBytes: 1000}, 12, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool, _ := pgtest.Pool(t)
			svc, base := testService(t, pool, tt.cfg)
			for i := range tt.send {
				body := created(fmt.Sprintf("unverified-%03d", i), "9100000000000000001", `,"webinarTitle":"`+string(bytes.Repeat([]byte("t"), 100))+`"`)
				if code, resp := post(t, base, body, signed([]byte("unknown-key"), body)); code != http.StatusUnauthorized {
					t.Fatalf("forged delivery %d: got %d %s, want 401", i, code, resp)
				}
			}
			// The background pass (once a second) may have run already; this one makes sure.
			if tt.wantRows < 0 {
				// Every row here has the same size (same-length keys and signatures).
				size := count(t, pool, `SELECT size_bytes FROM ingest_unverified ORDER BY id DESC LIMIT 1`)
				tt.wantRows = int(tt.cfg.UnverifiedMaxBytes) / size
				if tt.wantRows < 1 || tt.wantRows >= tt.send {
					t.Fatalf("byte bound keeps %d of %d rows: pick another bound", tt.wantRows, tt.send)
				}
			}
			if err := svc.unverifiedStore.evict(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := count(t, pool, countUnverified); n != tt.wantRows {
				t.Errorf("after eviction: %d rows, want %d", n, tt.wantRows)
			}
			// The newest are kept.
			if n := count(t, pool, `SELECT count(*) FROM ingest_unverified
				WHERE convert_from(body, 'UTF8') LIKE '%unverified-011%'`); n != 1 {
				t.Errorf("the newest delivery was evicted")
			}
			if got := testutil.ToFloat64(svc.metrics.unverifiedEvicted); got != float64(tt.send-tt.wantRows) {
				t.Errorf("evicted_total = %v, want %d", got, tt.send-tt.wantRows)
			}
			if got := testutil.ToFloat64(svc.metrics.unverifiedRows); got != float64(tt.wantRows) {
				t.Errorf("unverified_rows = %v, want %d", got, tt.wantRows)
			}
			bytesLeft := count(t, pool, `SELECT coalesce(sum(size_bytes), 0)::int FROM ingest_unverified`)
			if got := testutil.ToFloat64(svc.metrics.unverifiedBytes); got != float64(bytesLeft) || (tt.cfg.UnverifiedMaxBytes > 0 && int64(bytesLeft) > tt.cfg.UnverifiedMaxBytes) {
				t.Errorf("unverified_bytes = %v, table holds %d, bound %d", got, bytesLeft, tt.cfg.UnverifiedMaxBytes)
			}
			if got := testutil.ToFloat64(svc.metrics.unverifiedStored.WithLabelValues(reasonBad)); got != float64(tt.send) {
				t.Errorf("unverified_stored_total{bad} = %v, want %d", got, tt.send)
			}
		})
	}

	t.Run("too large to keep", func(t *testing.T) {
		t.Parallel()
		pool, _ := pgtest.Pool(t)
		svc, base := testService(t, pool, Config{})
		body := sizedEvent(t, "unverified-large", unverifiedMaxBody+1)
		if code, resp := post(t, base, body, signed([]byte("unknown-key"), body)); code != http.StatusUnauthorized {
			t.Fatalf("got %d %s, want 401", code, resp)
		}
		if n := count(t, pool, countUnverified); n != 0 {
			t.Errorf("ingest_unverified has %d rows, want 0", n)
		}
		if got := testutil.ToFloat64(svc.metrics.unverifiedDropped); got != 1 {
			t.Errorf("unverified_dropped_total = %v, want 1", got)
		}
		// Observe mode cannot answer 2xx for what it did not keep.
		_, obase := testService(t, pool, Config{Mode: Observe, SecretKeys: [][]byte{testKey}})
		if code, resp := post(t, obase, body, http.Header{webhook.HeaderSignature: {"AAAA"}}); code != http.StatusServiceUnavailable {
			t.Errorf("observe mode: got %d %s, want 503", code, resp)
		}
	})
}

// TestUnverifiedStoreAsIngestRole runs the store's writes and eviction as turnout_ingest,
// with the grants of migration 0003, and checks that role still cannot read a body.
func TestUnverifiedStoreAsIngestRole(t *testing.T) {
	t.Parallel()
	_, dbURL := pgtest.Pool(t)
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, "SET ROLE turnout_ingest")
		return err
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	svc, base := testService(t, pool, Config{UnverifiedMaxRows: 1})
	for i := range 3 {
		body := created(fmt.Sprintf("as-ingest-%d", i), "1", "")
		if code, resp := post(t, base, body, signed([]byte("unknown-key"), body)); code != http.StatusUnauthorized {
			t.Fatalf("got %d %s, want 401", code, resp)
		}
	}
	if got := testutil.ToFloat64(svc.metrics.unverifiedStored.WithLabelValues(reasonBad)); got != 3 {
		t.Fatalf("kept %v of 3 as turnout_ingest", got)
	}
	if err := svc.unverifiedStore.evict(context.Background()); err != nil {
		t.Fatalf("evict as turnout_ingest: %v", err)
	}
	if n := count(t, pool, countUnverified); n != 1 {
		t.Errorf("after eviction: %d rows, want 1", n)
	}
	var body []byte
	err = pool.QueryRow(context.Background(), `SELECT body FROM ingest_unverified LIMIT 1`).Scan(&body)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != pgerrcode.InsufficientPrivilege {
		t.Errorf("turnout_ingest reading a body: %v, want insufficient_privilege", err)
	}
}
