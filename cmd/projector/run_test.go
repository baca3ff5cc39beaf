package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/projector"
	"github.com/turnout-analytics/turnout/internal/rebuild"
)

func TestConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"missing database", map[string]string{}, []string{"DATABASE_URL"}},
		{"bad durations and sizes", map[string]string{
			"DATABASE_URL": "postgres://x", "PROJECTOR_POLL_INTERVAL": "soon", "REBUILD_BATCH_SIZE": "0",
			"PROJECTOR_MAX_RETRIES": "-1", "PROJECTOR_BATCH_SIZE": "many",
		}, []string{"PROJECTOR_POLL_INTERVAL", "REBUILD_BATCH_SIZE", "PROJECTOR_MAX_RETRIES", "PROJECTOR_BATCH_SIZE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), []string{"status"}, func(k string) string { return tt.env[k] }, &syncBuffer{}, &syncBuffer{})
			if err == nil {
				t.Fatal("run succeeded with a bad configuration")
			}
			for _, v := range tt.want {
				if !strings.Contains(err.Error(), v) {
					t.Errorf("error %q does not name %s", err, v)
				}
			}
		})
	}
	if err := run(context.Background(), []string{"frobnicate"}, func(string) string { return "" }, &syncBuffer{}, &syncBuffer{}); err == nil {
		t.Error("an unknown command was accepted")
	}
}

// Live: appended events become visible; a rebuild afterwards leaves every table identical.
func TestLiveThenRebuildEqualsLive(t *testing.T) {
	t.Parallel()
	pool, url := pgtest.Pool(t)
	ctx := context.Background()
	env := testEnv(url, "REBUILD_BATCH_SIZE", "97")
	stop := startLive(t, env)

	events := newGenerator(t, 1).stream(12, 15)
	appendEvents(t, pool, events, 7)
	waitFor(t, 30*time.Second, "live projector to catch up", func() (bool, error) { return consumerCaughtUp(ctx, pool) })
	live := dump(t, pool, projector.Schema)
	if len(live["registrants"]) == 0 || len(live["webinars"]) != 12 {
		t.Fatalf("live analytics has %d webinars and %d registrants, want 12 and some", len(live["webinars"]), len(live["registrants"]))
	}
	assertSameTables(t, "live vs reference", live, reference(t, pool))
	if err := stop(); err != nil {
		t.Fatalf("stop live projector: %v", err)
	}

	runCommand(t, env, "rebuild")
	assertSameTables(t, "rebuild vs live", dump(t, pool, projector.Schema), live)
	st := status(t, env)
	if len(st) != 1 || st[0].Events != 0 || st[0].Position.Offset == 0 {
		t.Errorf("status after rebuild = %+v, want one caught-up projection", st)
	}
}

// poisonEvent is a log row no projection can store, whatever the settings: a registrant
// key too long for a btree index entry (SQLSTATE 54000), which the log accepts (it has no
// such index) and the registrants primary key refuses. Ingest would refuse it today; logs
// written before the acceptance rule may hold such rows.
func poisonEvent(g *generator, eventKey string) []byte {
	long := make([]byte, 12000)
	for i := range long {
		long[i] = "0123456789abcdefghijklmnopqrstuvwxyz"[g.r.Intn(36)]
	}
	return g.event("registrant_added", map[string]any{
		"eventKey": eventKey, "registrantKey": string(long), "email": "poison@example.com",
	})
}

// A poison event is parked at once (its data will fail again: no retries), leaves nothing
// behind, and the events behind it are applied; status shows it; a rebuild parks the same
// event.
func TestPoisonEventIsParked(t *testing.T) {
	t.Parallel()
	pool, url := pgtest.Pool(t)
	ctx := context.Background()
	env := testEnv(url, "PROJECTOR_MAX_RETRIES", "2")
	stop := startLive(t, env)

	g := newGenerator(t, 2)
	before := g.stream(1, 3)
	appendEvents(t, pool, before, 100)
	poisonKey := "11111111-2222-4333-8444-555555555555"
	appendEvents(t, pool, [][]byte{poisonEvent(g, poisonKey)}, 1)
	after := g.stream(1, 3)
	appendEvents(t, pool, after, 100)
	waitFor(t, 30*time.Second, "live projector to get past the poison event", func() (bool, error) { return consumerCaughtUp(ctx, pool) })

	var attempts int
	var key, errText string
	if err := pool.QueryRow(ctx, `SELECT attempts, event_key, error FROM analytics._parked`).Scan(&attempts, &key, &errText); err != nil {
		t.Fatalf("read parked event: %v", err)
	}
	if attempts != 1 || key != poisonKey || !strings.Contains(errText, "54000") {
		t.Errorf("parked (attempts %d, key %s, error %q), want 1 attempt of %s with SQLSTATE 54000", attempts, key, errText, poisonKey)
	}
	var poisonRows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM analytics.registrants WHERE email = 'poison@example.com'`).Scan(&poisonRows); err != nil {
		t.Fatal(err)
	}
	if poisonRows != 0 {
		t.Errorf("the poison event left %d registrant rows behind", poisonRows)
	}
	if got := len(dump(t, pool, projector.Schema)["webinars"]); got != 2 {
		t.Errorf("%d webinars projected, want 2 (the events behind the poison one too)", got)
	}

	human := runCommand(t, env, "status")
	for _, want := range []string{"analytics", "live", poisonKey, "registrant.added"} {
		if !strings.Contains(human, want) {
			t.Errorf("status output lacks %q:\n%s", want, human)
		}
	}
	st := status(t, env)
	if len(st) != 1 || st[0].ParkedCount != 1 || len(st[0].Parked) != 1 || st[0].Parked[0].EventKey != poisonKey || st[0].Events != 0 {
		t.Errorf("status -json = %+v, want one parked event and no lag", st)
	}
	live := dump(t, pool, projector.Schema)
	if err := stop(); err != nil {
		t.Fatalf("stop live projector: %v", err)
	}

	runCommand(t, env, "rebuild")
	assertSameTables(t, "rebuild vs live with a poison event", dump(t, pool, projector.Schema), live)
	st = status(t, env)
	if st[0].ParkedCount != 1 || st[0].Parked[0].EventKey != poisonKey {
		t.Errorf("after rebuild, parked = %+v, want the same poison event", st[0].Parked)
	}
}

// Under the most hostile settings the configuration allows — the longest retry chains
// that fit the deadline, or the shortest deadline with no retries, batches of one or of
// many — a poison event in the middle of a burst is parked and every event behind it is
// applied: the stream never stalls on it.
func TestPoisonEventUnderHostileSettings(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		env  []string
	}{
		{"longest retry budget the deadline allows", []string{
			"PROJECTOR_MAX_RETRIES", "20", "PROJECTOR_RETRY_INTERVAL", "100ms", "PROJECTOR_BATCH_DEADLINE", "38s",
			"PROJECTOR_BATCH_TARGET", "37s", "PROJECTOR_MIN_BATCH", "1000", "PROJECTOR_BATCH_SIZE", "1000"}},
		{"shortest deadline, no retries", []string{
			"PROJECTOR_MAX_RETRIES", "0", "PROJECTOR_BATCH_DEADLINE", "1s", "PROJECTOR_BATCH_TARGET", "1ms",
			"PROJECTOR_MIN_BATCH", "1", "PROJECTOR_BATCH_SIZE", "1"}},
		{"one-row batches, retries", []string{
			"PROJECTOR_MAX_RETRIES", "5", "PROJECTOR_RETRY_INTERVAL", "1ms", "PROJECTOR_BATCH_DEADLINE", "1s",
			"PROJECTOR_BATCH_TARGET", "100ms", "PROJECTOR_MIN_BATCH", "1", "PROJECTOR_BATCH_SIZE", "1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool, url := pgtest.Pool(t)
			ctx := context.Background()
			env := testEnv(url, tt.env...)
			if _, err := loadConfig(env); err != nil {
				t.Fatalf("settings refused: %v", err)
			}
			startLive(t, env)
			g := newGenerator(t, 7)
			events := g.stream(4, 10)
			burst := append(append(append([][]byte{}, events[:len(events)/2]...), poisonEvent(g, "poison-key")), events[len(events)/2:]...)
			appendEvents(t, pool, burst, len(burst))
			waitFor(t, 60*time.Second, "the projector to get past the poison event", func() (bool, error) { return consumerCaughtUp(ctx, pool) })
			var parked int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM analytics._parked WHERE event_key = 'poison-key'`).Scan(&parked); err != nil {
				t.Fatal(err)
			}
			if parked != 1 {
				t.Errorf("%d parked records of the poison event, want 1", parked)
			}
			assertSameTables(t, "after the poison event vs reference", dump(t, pool, projector.Schema), reference(t, pool))
		})
	}
}

// Settings whose retries cannot fit in the batch deadline are refused at start, naming them.
func TestRetryBudgetMustFitTheDeadline(t *testing.T) {
	t.Parallel()
	env := testEnv("postgres://x", "PROJECTOR_MAX_RETRIES", "20", "PROJECTOR_RETRY_INTERVAL", "100ms", "PROJECTOR_BATCH_DEADLINE", "10s")
	_, err := loadConfig(env)
	if err == nil || !strings.Contains(err.Error(), "retry budget") || !strings.Contains(err.Error(), "BatchDeadline") {
		t.Fatalf("loadConfig = %v, want the retry budget refused", err)
	}
}

// A rebuild while the live projector runs and events keep arriving: afterwards every
// event is applied exactly once.
func TestRebuildWhileLiveAndIngesting(t *testing.T) {
	t.Parallel()
	pool, url := pgtest.Pool(t)
	ctx := context.Background()
	env := testEnv(url, "REBUILD_BATCH_SIZE", "50", "PROJECTOR_BATCH_SIZE", "20")
	g := newGenerator(t, 3)
	appendEvents(t, pool, g.stream(8, 20), 25)
	stop := startLive(t, env)

	more := g.stream(8, 20)
	appended := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < len(more) && err == nil; i += 10 {
			err = publish(pool, more[i:min(i+10, len(more))], 5)
		}
		appended <- err
	}()
	runCommand(t, env, "rebuild")
	if err := <-appended; err != nil {
		t.Fatalf("append events: %v", err)
	}
	waitFor(t, 30*time.Second, "live projector to catch up", func() (bool, error) { return consumerCaughtUp(ctx, pool) })
	if err := stop(); err != nil {
		t.Fatalf("stop live projector: %v", err)
	}
	assertSameTables(t, "rebuild during live vs reference", dump(t, pool, projector.Schema), reference(t, pool))
}

// A rebuild cancelled mid-way leaves analytics untouched; the next one resumes and ends equal.
func TestInterruptedRebuildResumes(t *testing.T) {
	t.Parallel()
	pool, url := pgtest.Pool(t)
	ctx := context.Background()
	env := testEnv(url, "REBUILD_BATCH_SIZE", "10")
	g := newGenerator(t, 4)
	appendEvents(t, pool, g.stream(3, 10), 50)
	runCommand(t, env, "rebuild") // analytics now holds the first part
	analyticsBefore := dump(t, pool, projector.Schema)
	statusBefore := status(t, env)[0]

	// Enough events (about 1,000, a hundred batches) that the interrupted rebuild is still
	// running when the poll below sees its first batches, even when the poll is starved of
	// CPU: a rebuild that finished first would leave no analytics_rebuild to see.
	appendEvents(t, pool, g.stream(30, 20), 50)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(rctx, []string{"rebuild", "-migrate=false"}, env, &syncBuffer{}, &syncBuffer{}) }()
	waitFor(t, 30*time.Second, "a few rebuild batches", func() (bool, error) {
		var offset int64
		err := pool.QueryRow(ctx, `SELECT "offset" FROM analytics_rebuild._progress`).Scan(&offset)
		if err != nil && strings.Contains(err.Error(), "does not exist") {
			return false, nil
		}
		return offset > 0, err
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted rebuild returned %v, want context.Canceled", err)
	}
	assertSameTables(t, "analytics after an interrupted rebuild", dump(t, pool, projector.Schema), analyticsBefore)
	st := status(t, env)
	if len(st) != 2 || st[1].Role != "rebuild" || st[1].Position.Offset == 0 || st[0].Position != statusBefore.Position {
		t.Fatalf("status after interruption = %+v, want live unchanged at %+v and a rebuild in progress", st, statusBefore.Position)
	}
	resumeAt := st[1].Position

	_, out := runCommandLogs(t, env, "rebuild")
	var started struct {
		Resumed    bool  `json:"resumed"`
		FromOffset int64 `json:"from_offset"`
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, `"rebuild started"`) {
			if err := json.Unmarshal([]byte(line), &started); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !started.Resumed || started.FromOffset != resumeAt.Offset {
		t.Errorf("second rebuild started at %+v, want a resume at offset %d", started, resumeAt.Offset)
	}
	assertSameTables(t, "resumed rebuild vs reference", dump(t, pool, projector.Schema), reference(t, pool))
	if st := status(t, env); len(st) != 1 || st[0].Events != 0 {
		t.Errorf("status after resumed rebuild = %+v, want only live, caught up", st)
	}
}

// A live projector stopped mid-stream and restarted resumes without loss or double count.
func TestLiveRestartResumes(t *testing.T) {
	t.Parallel()
	pool, url := pgtest.Pool(t)
	ctx := context.Background()
	env := testEnv(url, "PROJECTOR_BATCH_SIZE", "5")
	g := newGenerator(t, 5)
	stop := startLive(t, env)
	appendEvents(t, pool, g.stream(10, 20), 10)
	waitFor(t, 30*time.Second, "the live projector to apply some events", func() (bool, error) {
		st, err := rebuild.Status(ctx, pool, 0)
		return err == nil && st[0].Position.Offset > 0, err
	})
	if err := stop(); err != nil {
		t.Fatalf("stop live projector: %v", err)
	}
	mid := status(t, env)[0]
	if mid.Events == 0 {
		t.Log("the projector caught up before it was stopped; the restart is still checked")
	}
	appendEvents(t, pool, g.stream(3, 10), 10)

	startLive(t, env)
	waitFor(t, 30*time.Second, "the restarted projector to catch up", func() (bool, error) { return consumerCaughtUp(ctx, pool) })
	assertSameTables(t, "restarted live vs reference", dump(t, pool, projector.Schema), reference(t, pool))
}

func status(t *testing.T, env func(string) string) []rebuild.ProjectionStatus {
	t.Helper()
	out, logs := runCommandLogs(t, env, "status", "-json")
	if logs != "" {
		t.Errorf("status -json logged on its output stream's neighbour: %s", logs)
	}
	var st []rebuild.ProjectionStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("decode status -json: %v\n%s", err, out)
	}
	return st
}

func TestHelpListsCommandsAndEnvironment(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"rebuild", "-h"}, {"forget", "-h"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, func(string) string { return "" }, &out, &out); err != nil {
			t.Fatalf("run %v: %v", args, err)
		}
		for _, want := range []string{"rebuild", "status", "forget", "DATABASE_URL", "REBUILD_BATCH_SIZE", "-migrate"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("run %v: help does not mention %q:\n%s", args, want, out.String())
			}
		}
	}
}
