package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/projections"
	"github.com/turnout-analytics/turnout/internal/projections/projectionstest"
	"github.com/turnout-analytics/turnout/internal/projector"
	"github.com/turnout-analytics/turnout/internal/rebuild"
	"github.com/turnout-analytics/turnout/internal/scenario"
)

// generator makes the tests' streams: stream takes them from internal/scenario (the one
// scenario generator), and event builds single hand-made events (a poison event, a person
// to forget) from the domain package's samples, with 19-digit keys as bare JSON integers, as
// live GoTo sends them.
type generator struct {
	r         *rand.Rand
	seq       int
	webinars  int // webinars streamed so far: the next stream's first ordinal
	templates map[string]map[string]any
}

func newGenerator(t *testing.T, seed int64) *generator {
	t.Helper()
	g := &generator{r: rand.New(rand.NewSource(seed)), templates: map[string]map[string]any{}}
	for _, name := range []string{"webinar_created", "webinar_changed", "registrant_added", "registrant_joined"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "internal", "domain", "testdata", name+".json"))
		if err != nil {
			t.Fatalf("read sample payload: %v", err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("decode sample %s: %v", name, err)
		}
		g.templates[name] = m
	}
	return g
}

func (g *generator) event(template string, set map[string]any) []byte {
	g.seq++
	p := map[string]any{}
	for k, v := range g.templates[template] {
		p[k] = v
	}
	ts := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC).Add(time.Duration(g.seq) * time.Minute)
	p["timestamp"] = ts.Format("2006-01-02T15:04:05.000Z")
	p["eventKey"] = fmt.Sprintf("00000000-0000-4000-8000-%012d", g.seq)
	for k, v := range set {
		p[k] = v
	}
	b, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	return b
}

// stream returns the events of `webinars` webinars with about regs registrants each, in a
// shuffled order (projections must not depend on it). Successive streams of one generator
// have disjoint keys, so a test can append more of the same account to a log.
func (g *generator) stream(webinars, regs int) [][]byte {
	sc := scenario.GenerateWith(scenario.Options{
		Seed: g.r.Uint64(), Webinars: webinars, RegistrantsPerWebinar: regs, JoinRate: 0.67, FirstWebinar: g.webinars,
	})
	g.webinars += webinars
	out := sc.Events
	g.r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// appendEvents publishes bodies to the log the way ingest does, chunk rows per transaction.
func appendEvents(t *testing.T, pool *pgxpool.Pool, bodies [][]byte, chunk int) {
	t.Helper()
	if err := publish(pool, bodies, chunk); err != nil {
		t.Fatalf("append events: %v", err)
	}
}

func publish(pool *pgxpool.Pool, bodies [][]byte, chunk int) error {
	pub, err := wsql.NewPublisher(wsql.BeginnerFromPgx(pool), eventlog.PublisherConfig(), nil)
	if err != nil {
		return err
	}
	for i := 0; i < len(bodies); i += chunk {
		var msgs []*message.Message
		for _, b := range bodies[i:min(i+chunk, len(bodies))] {
			var env struct{ EventName, EventKey string }
			_ = json.Unmarshal(b, &env)
			msgs = append(msgs, eventlog.NewMessage(eventlog.Entry{
				Body: b, EventName: env.EventName, EventKey: env.EventKey, SignatureVerified: true, ReceivedAt: time.Now(),
			}))
		}
		if err := pub.Publish(eventlog.Topic, msgs...); err != nil {
			return err
		}
	}
	return nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("wait for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testEnv is the environment for run: the test database, an ephemeral port, fast polls.
func testEnv(url string, extra ...string) func(string) string {
	env := map[string]string{
		"DATABASE_URL":             url,
		"PROJECTOR_ADDR":           "127.0.0.1:0",
		"PROJECTOR_POLL_INTERVAL":  "10ms",
		"PROJECTOR_RETRY_INTERVAL": "5ms",
		"PROJECTOR_LAG_INTERVAL":   "100ms",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return func(k string) string { return env[k] }
}

// syncBuffer is a goroutine-safe output buffer for run.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startLive runs the live projector; the returned stop cancels it and returns run's error.
func startLive(t *testing.T, getenv func(string) string) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	out := &syncBuffer{}
	go func() { done <- run(ctx, []string{"-migrate=false"}, getenv, out, out) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				err = errors.New("live projector did not stop")
			}
			if err != nil {
				t.Logf("live projector output:\n%s", out.String())
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	// Wait until the start-up build of analytics is done, so that events appended from
	// now on are applied live, not by that build.
	db := openPool(t, getenv)
	waitFor(t, 30*time.Second, "the live projector to create analytics", func() (bool, error) {
		var ok bool
		err := db.QueryRow(context.Background(), `SELECT to_regclass('analytics._parked') IS NOT NULL`).Scan(&ok)
		return ok, err
	})
	return stop
}

// openPool opens a pool to the test database named in getenv, closed with the test.
func openPool(t *testing.T, getenv func(string) string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), getenv("DATABASE_URL"))
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// runCommand runs a one-shot command and returns its output (stdout).
func runCommand(t *testing.T, getenv func(string) string, args ...string) string {
	t.Helper()
	out, _ := runCommandLogs(t, getenv, args...)
	return out
}

// runCommandLogs runs a one-shot command and returns its output and its logs.
func runCommandLogs(t *testing.T, getenv func(string) string, args ...string) (stdout, logs string) {
	t.Helper()
	out, errs := &syncBuffer{}, &syncBuffer{}
	if err := run(context.Background(), append(args, "-migrate=false"), getenv, out, errs); err != nil {
		t.Fatalf("projector %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errs.String())
	}
	return out.String(), errs.String()
}

// consumerCaughtUp tells whether the live consumer's position is past every row of the
// log, committed or not: rows behind the cluster-wide horizon (another test's open
// transaction holds it back) are not applied yet, and must not count as caught up.
func consumerCaughtUp(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	pos, err := eventlog.ReadPosition(ctx, pool, projector.ConsumerGroup)
	if err != nil {
		return false, err
	}
	end := eventlog.Position{Epoch: math.MaxInt32, TxID: math.MaxInt64, Offset: math.MaxInt64}
	left, err := eventlog.ReadRange(ctx, pool, pos, end)
	return err == nil && len(left) == 0 && pos.Offset > 0, err
}

// reference builds the projections from the whole log in one set-based pass (parking what
// cannot be applied), in a throwaway schema, and dumps it: the expected result of any
// correct projector.
func reference(t *testing.T, pool *pgxpool.Pool) map[string][]string {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // always rolled back: a throwaway schema
	if err := projections.Create(ctx, tx, "reference"); err != nil {
		t.Fatalf("create reference: %v", err)
	}
	end := eventlog.Position{Epoch: math.MaxInt32, TxID: math.MaxInt64, Offset: math.MaxInt64}
	if err := rebuild.ApplyRange(ctx, tx, "reference", eventlog.Position{}, end, func(eventlog.Record, error) {}); err != nil {
		t.Fatalf("apply log to reference: %v", err)
	}
	d, err := projectionstest.Dump(ctx, tx, "reference")
	if err != nil {
		t.Fatalf("dump reference: %v", err)
	}
	return d
}

func dump(t *testing.T, pool *pgxpool.Pool, schema string) map[string][]string {
	t.Helper()
	d, err := projectionstest.Dump(context.Background(), pool, schema)
	if err != nil {
		t.Fatalf("dump %s: %v", schema, err)
	}
	return d
}

func assertSameTables(t *testing.T, what string, got, want map[string][]string) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	for table := range want {
		if !reflect.DeepEqual(got[table], want[table]) {
			t.Errorf("%s: table %s differs: %d rows, want %d", what, table, len(got[table]), len(want[table]))
		}
	}
}
