package faults

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/projections/projectionstest"
	"github.com/turnout-analytics/turnout/internal/scenario"
)

const secret = "faults-secret"

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds cmd/ingest and cmd/projector once per test run: the crash tests need real
// processes to SIGKILL.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "turnout-faults-bin-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-race", "-o", binDir+string(os.PathSeparator), "../../cmd/ingest", "../../cmd/projector").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// proc is a running binary whose output is kept for the failure message.
type proc struct {
	cmd *exec.Cmd
	out *bytes.Buffer
	mu  *sync.Mutex
}

func start(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(filepath.Join(binaries(t), bin), args...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{cmd: cmd, out: &bytes.Buffer{}, mu: &sync.Mutex{}}
	cmd.Stdout, cmd.Stderr = lockedWriter{p}, lockedWriter{p}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() { p.kill() })
	return p
}

type lockedWriter struct{ p *proc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

// kill sends SIGKILL: no shutdown hook, no drain, no deferred commit runs.
func (p *proc) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// stablePort returns a free loopback port below the kernel's ephemeral range, for a server
// that is stopped and started again on the same port. While it is down, a port in the
// ephemeral range can become the local end of an outgoing connection (the services'
// reconnects go to that very port), and the restart's bind would then fail.
func stablePort(t *testing.T) int {
	t.Helper()
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				lo = n
			}
		}
	}
	for range 200 {
		port := 10000 + rand.IntN(lo-10000)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // taken
		}
		l.Close()
		return port
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
}

// events returns the scenario's realistic stream plus n synthetic registrations and joins,
// every body with its own eventKey.
func events(n int) [][]byte {
	out := scenario.Generate(6).Events
	for i := range n {
		w := int64(9100000000000000000) + int64(i%25)
		r := int64(5300000000000000000) + int64(i)
		out = append(out, fmt.Appendf(nil, `{"eventName":"registrant.added","eventVersion":"1.0.0","product":"g2w","eventKey":"fault-a-%d","webinarKey":%d,"webinarTitle":"Faults %d","registrantKey":%d,"email":"f%d@example.com","firstName":"Zoë","registrationSource":"Email","timestamp":"2026-11-20T10:00:00.%03dZ"}`, i, w, w%100, r, i, i%1000))
		if i%3 == 0 {
			out = append(out, fmt.Appendf(nil, `{"eventName":"registrant.joined","eventVersion":"1.0.0","product":"g2w","eventKey":"fault-j-%d","webinarKey":%d,"sessionKey":%d,"registrantKey":%d,"joinTime":%d,"timestamp":"2026-12-01T15:00:00.000Z"}`, i, w, w+7, r, 1795100000000+int64(i)))
		}
	}
	return out
}

func eventKey(body []byte) string {
	i := bytes.Index(body, []byte(`"eventKey":"`))
	rest := body[i+len(`"eventKey":"`):]
	return string(rest[:bytes.IndexByte(rest, '"')])
}

func post(client *http.Client, base string, body []byte) (int, error) {
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + ":"))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, base+"/gotowebinar/callback", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Webhook-Signature-Timestamp", ts)
	req.Header.Set("X-Webhook-Signature", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestIngestKilledUnderLoadLosesNothing sends a load of signed deliveries from 16 senders
// that retry anything not answered 2xx (as GoTo would), SIGKILLs ingest several times
// mid-load and restarts it. Every event that got a 2xx must be in the log exactly once, and
// once the projector has caught up the analytics tables must equal a rebuild from the log.
func TestIngestKilledUnderLoadLosesNothing(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	bodies := events(1500)
	addr, opsAddr := freeAddr(t), freeAddr(t)
	env := []string{"DATABASE_URL=" + dbURL, "G2W_SECRET_KEYS=" + secret, "INGEST_ADDR=" + addr, "PROJECTOR_ADDR=" + freeAddr(t), "INGEST_OPS_ADDR=" + opsAddr}
	base := "http://" + addr
	client := &http.Client{Timeout: 5 * time.Second}
	ready := func() (bool, error) {
		resp, err := client.Get("http://" + opsAddr + "/readyz")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}

	var mu sync.Mutex
	ingest := start(t, "ingest", env)
	waitFor(t, 60*time.Second, "ingest to be ready", ready)

	acked := map[string]bool{}
	work := make(chan []byte)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range work {
				for attempt := 0; ; attempt++ {
					code, err := post(client, base, body)
					if err == nil && code == http.StatusOK {
						mu.Lock()
						acked[eventKey(body)] = true
						mu.Unlock()
						break
					}
					if err == nil && code != http.StatusServiceUnavailable {
						t.Errorf("delivery answered %d: only 200 or 503 expected", code)
						break
					}
					if attempt > 2000 {
						t.Errorf("delivery never accepted: %v", err)
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}

	// The killer: at random moments while deliveries flow, SIGKILL and restart ingest.
	r := rand.New(rand.NewPCG(1, 2))
	kills := 0
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		for kills < 4 {
			time.Sleep(time.Duration(150+r.IntN(350)) * time.Millisecond)
			mu.Lock()
			n := len(acked)
			mu.Unlock()
			if n >= len(bodies) {
				return
			}
			ingest.kill()
			kills++
			ingest = start(t, "ingest", env, "-migrate=false")
			waitFor(t, 60*time.Second, "ingest to restart", ready)
		}
	}()
	for _, b := range bodies {
		work <- b
	}
	close(work)
	wg.Wait()
	<-killerDone
	if kills == 0 {
		t.Fatal("the load finished before ingest was killed: make the load bigger")
	}

	pool := openPool(t, dbURL)
	rows, lost := assertLoggedOnce(t, pool, acked)
	t.Logf("sent %d events, ingest SIGKILLed %d times, %d acknowledged, %d in the log, lost: %d",
		len(bodies), kills, len(acked), rows, lost)

	// The projector catches up; its tables must equal a rebuild from the same log.
	projector := start(t, "projector", env, "-migrate=false")
	waitCaughtUp(t, pool)
	projector.kill()
	assertRebuildEqualsLive(t, pool, env)
}

// TestProjectorKilledRepeatedlyEqualsCleanRebuild SIGKILLs the live projector at random
// moments while it works through the log, and a rebuild mid-way more than once; a killed
// rebuild must leave the live schema untouched, and the final tables must equal a clean
// rebuild.
func TestProjectorKilledRepeatedlyEqualsCleanRebuild(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	pool := openPool(t, dbURL)
	ctx := context.Background()
	env := []string{"DATABASE_URL=" + dbURL, "PROJECTOR_ADDR=" + freeAddr(t), "REBUILD_BATCH_SIZE=300", "PROJECTOR_BATCH_SIZE=20"}
	evs := events(4000)
	appendToLog(t, pool, evs)

	// Live, killed at random moments, several times.
	r := rand.New(rand.NewPCG(3, 4))
	for range 5 {
		p := start(t, "projector", env, "-migrate=false")
		time.Sleep(time.Duration(100+r.IntN(400)) * time.Millisecond)
		p.kill()
	}
	p := start(t, "projector", env, "-migrate=false")
	waitCaughtUp(t, pool)
	p.kill()
	t.Logf("live projector SIGKILLed 5 times over %d events, then caught up", len(evs))
	live, err := projectionstest.Dump(ctx, pool, "analytics")
	if err != nil {
		t.Fatal(err)
	}

	// A rebuild killed before its swap leaves analytics exactly as it was.
	for i := range 3 {
		rb := start(t, "projector", env, "rebuild", "-migrate=false")
		waitFor(t, 60*time.Second, "the rebuild to record progress", func() (bool, error) {
			var n int
			err := pool.QueryRow(ctx, `SELECT count(*) FROM analytics_rebuild._progress`).Scan(&n)
			return err == nil && n > 0, err
		})
		time.Sleep(time.Duration(r.IntN(150)) * time.Millisecond)
		rb.kill()
		if rb.cmd.ProcessState.Success() {
			t.Fatalf("round %d: the rebuild finished before it was killed: make the log bigger", i)
		}
		after, err := projectionstest.Dump(ctx, pool, "analytics")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(after, live) {
			t.Fatalf("round %d: a rebuild killed before its swap changed the live analytics schema", i)
		}
	}
	t.Logf("3 rebuilds SIGKILLed before their swap: the live schema was untouched each time")
	assertRebuildEqualsLive(t, pool, env)
}

// assertLoggedOnce checks that no event key is in the log twice and that every
// acknowledged one is there; it returns the log's row count and how many acknowledged
// events are missing.
func assertLoggedOnce(t *testing.T, pool *pgxpool.Pool, acked map[string]bool) (rows, lost int) {
	t.Helper()
	ctx := context.Background()
	var distinct int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT event_key) FROM `+eventlog.Table).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != distinct {
		t.Errorf("log holds %d rows for %d distinct event keys: something was stored twice", rows, distinct)
	}
	keys, err := pool.Query(ctx, `SELECT event_key FROM `+eventlog.Table)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := pgx.CollectRows(keys, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	inLog := make(map[string]bool, len(stored))
	for _, k := range stored {
		inLog[k] = true
	}
	for k := range acked {
		if !inLog[k] {
			lost++
			if lost <= 10 {
				t.Errorf("event %s was answered 2xx but is not in the log", k)
			}
		}
	}
	return rows, lost
}

func openPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func appendToLog(t *testing.T, pool *pgxpool.Pool, bodies [][]byte) {
	t.Helper()
	for start := 0; start < len(bodies); start += 500 {
		chunk := bodies[start:min(start+500, len(bodies))]
		payloads := make([]string, len(chunk))
		for i, b := range chunk {
			payloads[i] = string(b)
		}
		_, err := pool.Exec(context.Background(), `
			INSERT INTO `+eventlog.Table+` (uuid, payload, metadata, transaction_id)
			SELECT gen_random_uuid()::text, p::json, '{"signature_verified":"true"}', pg_current_xact_id()
			FROM unnest($1::text[]) AS p`, payloads)
		if err != nil {
			t.Fatalf("append to log: %v", err)
		}
	}
}

// waitCaughtUp waits until the live consumer's position is at the last row of the log.
func waitCaughtUp(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	waitCaughtUpWithin(t, pool, 120*time.Second)
}

func waitCaughtUpWithin(t *testing.T, pool *pgxpool.Pool, within time.Duration) {
	t.Helper()
	waitFor(t, within, "the projector to catch up", func() (bool, error) {
		pos, err := eventlog.ReadPosition(context.Background(), pool, "projector")
		if err != nil {
			return false, err
		}
		var ok bool
		err = pool.QueryRow(context.Background(), `SELECT NOT EXISTS (SELECT FROM `+eventlog.Table+` l
			WHERE (l.epoch, l.transaction_id, l."offset") > ($1::integer, $2::text::xid8, $3::bigint))`,
			pos.Epoch, strconv.FormatUint(pos.TxID, 10), pos.Offset).Scan(&ok)
		return ok, err
	})
}

// assertRebuildEqualsLive runs `projector rebuild` to completion and compares every table
// with what the live projector had built.
func assertRebuildEqualsLive(t *testing.T, pool *pgxpool.Pool, env []string) {
	t.Helper()
	ctx := context.Background()
	live, err := projectionstest.Dump(ctx, pool, "analytics")
	if err != nil {
		t.Fatal(err)
	}
	rb := start(t, "projector", env, "rebuild", "-migrate=false")
	if err := rb.cmd.Wait(); err != nil {
		rb.mu.Lock()
		defer rb.mu.Unlock()
		t.Fatalf("projector rebuild: %v\n%s", err, tail(rb.out.String(), 20))
	}
	rebuilt, err := projectionstest.Dump(ctx, pool, "analytics")
	if err != nil {
		t.Fatal(err)
	}
	for table, want := range rebuilt {
		if !reflect.DeepEqual(live[table], want) {
			t.Errorf("analytics.%s differs between the crashed-and-restarted live projector (%d rows) and a clean rebuild (%d rows)",
				table, len(live[table]), len(want))
		}
	}
}

func tail(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
