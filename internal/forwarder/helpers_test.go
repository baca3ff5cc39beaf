package forwarder_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/forwarder"
	"github.com/turnout-analytics/turnout/internal/ingest"
	"github.com/turnout-analytics/turnout/internal/webhook"
)

var secret = []byte("forwarder-test-secret")

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startIngest serves the real ingest handler on pool, on loopback.
//
// drain stops the server once every request it holds has finished: a load whose context
// ends leaves requests in flight that may still commit, so a test drains ingest before it
// takes the log as final.
func startIngest(t *testing.T, pool *pgxpool.Pool) (base string, drain func()) {
	t.Helper()
	svc, err := ingest.New(pool, ingest.Config{SecretKeys: [][]byte{secret}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	var once sync.Once
	drain = func() { once.Do(func() { srv.Close(); svc.Close() }) }
	t.Cleanup(drain)
	return srv.URL, drain
}

// body returns the i-th synthetic event: registrations, and a join for every third.
func body(i int) []byte {
	w := int64(9100000000000000000) + int64(i%25)
	r := int64(5300000000000000000) + int64(i/2)
	if i%3 == 2 {
		return fmt.Appendf(nil, `{"eventName":"registrant.joined","eventVersion":"1.0.0","product":"g2w","eventKey":"fwd-%d","webinarKey":%d,"sessionKey":%d,"registrantKey":%d,"joinTime":%d,"timestamp":"2026-12-01T15:00:00.000Z"}`, i, w, w+7, r, 1795100000000+int64(i))
	}
	return fmt.Appendf(nil, `{"eventName":"registrant.added","eventVersion":"1.0.0","product":"g2w","eventKey":"fwd-%d","webinarKey":%d,"webinarTitle":"Forwarded %d","registrantKey":%d,"email":"f%d@example.com","firstName":"Zoë","registrationSource":"Email","timestamp":"2026-11-20T10:00:00.%03dZ"}`, i, w, w%100, r, i, i%1000)
}

// post delivers b signed, as GoTo does, and returns the status.
func post(ctx context.Context, client *http.Client, base string, b []byte) (int, error) {
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/gotowebinar/callback", bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderTimestamp, ts)
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(secret, ts, b))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// load sends events from..to-1 from senders goroutines, each retrying a delivery until it
// is answered 2xx (as GoTo retries), and returns how many were acknowledged. It stops
// early, without error, when ctx ends.
func load(ctx context.Context, t *testing.T, base string, from, to, senders int) int {
	t.Helper()
	var (
		mu    sync.Mutex
		acked int
		next  = from
		wg    sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= to {
					return
				}
				for {
					code, err := post(ctx, client, base, body(i))
					if err == nil && code == http.StatusOK {
						mu.Lock()
						acked++
						mu.Unlock()
						break
					}
					if ctx.Err() != nil {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	return acked
}

// wholeLog returns every log row, in log order.
func wholeLog(t *testing.T, pool *pgxpool.Pool) []eventlog.Record {
	t.Helper()
	ctx := context.Background()
	// Every row, not only those before the horizon: the horizon is cluster-wide, and another
	// test's open transaction can hold it back behind rows ingest has acknowledged.
	end := eventlog.Position{Epoch: math.MaxInt32, TxID: math.MaxInt64, Offset: math.MaxInt64}
	out, err := eventlog.ReadRange(ctx, pool, eventlog.Position{}, end)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitCaughtUp waits until the forwarder's committed position is the log's last row.
func waitCaughtUp(t *testing.T, pool *pgxpool.Pool, last eventlog.Position, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var pos eventlog.Position
	var err error
	for time.Now().Before(deadline) {
		pos, err = eventlog.ReadPosition(context.Background(), pool, forwarder.ConsumerGroup)
		if err == nil && pos == last {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("forwarder position %v (err %v), want the log's last row %v within %v", pos, err, last, within)
}

// readStream reads the whole TURNOUT stream message by message (a direct get by
// sequence from the stream leader: no consumer to place, which a cluster that just lost a
// node may not manage at once), in stream order.
func readStream(t *testing.T, nc *nats.Conn) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// Right after a leader change the stream may not answer for a moment: retry each
	// request on its own short deadline.
	var s jetstream.Stream
	var info *jetstream.StreamInfo
	for {
		rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
		if s, err = js.Stream(rctx, forwarder.StreamName); err == nil {
			info, err = s.Info(rctx)
		}
		rcancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("look up stream: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		for {
			rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
			m, err := s.GetMsg(rctx, seq)
			rcancel()
			if err == nil {
				out = append(out, m)
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("read message %d: %v", seq, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return out
}

// checkStreamIsTheLog asserts the stream holds exactly the log's events: every eventKey
// once, none missing, none extra, each with its raw payload.
func checkStreamIsTheLog(t *testing.T, log []eventlog.Record, msgs []*jetstream.RawStreamMsg) {
	t.Helper()
	byKey := make(map[string]eventlog.Record, len(log))
	for _, r := range log {
		byKey[r.EventKey] = r
	}
	seen := make(map[string]int, len(msgs))
	for _, m := range msgs {
		k := m.Header.Get(forwarder.HeaderMsgID)
		seen[k]++
		if r, ok := byKey[k]; !ok {
			t.Errorf("stream holds %q, which is not in the log", k)
		} else if !bytes.Equal(m.Data, r.Payload) {
			t.Errorf("stream's body of %q differs from the log's payload", k)
		}
	}
	missing, doubled := 0, 0
	for k := range byKey {
		switch n := seen[k]; {
		case n == 0:
			missing++
		case n > 1:
			doubled++
			t.Errorf("eventKey %q is %d times in the stream", k, n)
		}
	}
	t.Logf("log: %d events; stream: %d messages; missing: %d; doubled: %d", len(log), len(msgs), missing, doubled)
	if missing > 0 || len(msgs) != len(log) {
		t.Fatalf("stream holds %d messages for %d log events, %d missing", len(msgs), len(log), missing)
	}
}
