package faults

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/migrations"
)

// TestDatabaseRestartUnderLoad stops PostgreSQL twice while 8 senders deliver signed events
// (once with `pg_ctl stop -m fast`, once with `-m immediate`, the latter a crash: no
// checkpoint, recovery from WAL at start), keeps it down for about two seconds and starts it
// again on the same port. Neither ingest nor the projector is restarted. While the database
// is down ingest must answer 503, never 2xx; once it is back deliveries must succeed again by
// themselves; every event answered 2xx must be in the log exactly once; and the projector
// must resume on its own, catch up, and hold what a rebuild from the log builds.
func TestDatabaseRestartUnderLoad(t *testing.T) {
	t.Parallel()
	pg := newCluster(t)
	dbURL := pg.createDatabase(t, "turnout")
	if err := migrations.Up(dbURL); err != nil {
		t.Fatalf("migrate the private cluster: %v", err)
	}

	bodies := events(30000)
	addr, projectorAddr, opsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	env := []string{"DATABASE_URL=" + dbURL, "G2W_SECRET_KEYS=" + secret, "INGEST_ADDR=" + addr, "PROJECTOR_ADDR=" + projectorAddr, "INGEST_OPS_ADDR=" + opsAddr}
	base := "http://" + addr
	client := &http.Client{Timeout: 15 * time.Second}
	var ingest, projector *proc
	t.Cleanup(func() { // runs last, after the processes are killed; their output is kept
		if !t.Failed() {
			return
		}
		for name, p := range map[string]*proc{"ingest": ingest, "projector": projector} {
			if p != nil {
				p.mu.Lock()
				t.Logf("%s output (last 30 lines):\n%s", name, tail(p.out.String(), 30))
				p.mu.Unlock()
			}
		}
		t.Logf("postgres log (last 30 lines):\n%s", pg.logTail(30))
	})
	ingest = start(t, "ingest", env, "-migrate=false")
	waitFor(t, 60*time.Second, "ingest to be ready", func() (bool, error) {
		resp, err := client.Get("http://" + opsAddr + "/readyz")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	projector = start(t, "projector", env, "-migrate=false")
	// The outages are meant for the live projector: wait until its start-up build of
	// analytics has swapped in (an outage during that build is another story: see
	// waitLive).
	waitLive(t, dbURL)
	ld := &load{acked: map[string]bool{}}
	stopFeeding := make(chan struct{})
	work := make(chan []byte)
	fed := 0
	go func() {
		defer close(work)
		for _, b := range bodies {
			select {
			case work <- b:
				fed++
			case <-stopFeeding:
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range work {
				ld.deliver(t, client, base, body)
			}
		}()
	}

	// Each outage: let deliveries flow, stop the server, keep it down, start it on the
	// same port, and wait for the first delivery that began after the start to succeed.
	type outage struct {
		mode      string
		down      time.Duration
		downs503  int
		restart   time.Duration // pg_ctl start, including crash recovery after -m immediate
		recovered time.Duration // from pg_ctl start to the first 2xx
	}
	var outages []outage
	var lastUp time.Time
	for _, mode := range []string{"fast", "immediate"} {
		before := ld.ackCount()
		waitFor(t, 30*time.Second, "deliveries to flow before the outage", func() (bool, error) {
			return ld.ackCount() >= before+300, nil
		})
		pg.stop(t, mode)
		downAt := ld.markDown()
		// The outage itself: a fixed span is the point here, not a wait for a condition.
		time.Sleep(2 * time.Second)
		downs503, startAt := ld.markStarting()
		pg.start(t)
		upAt := time.Now()
		lastUp = upAt
		// Recovered means a delivery sent after the server is back succeeds, with the
		// same ingest process and its same pool.
		waitFor(t, 20*time.Second, "a delivery to succeed after the restart ("+mode+")", func() (bool, error) {
			return !ld.firstAckSentAfter(upAt).IsZero(), nil
		})
		o := outage{mode: mode, down: startAt.Sub(downAt), downs503: downs503,
			restart: upAt.Sub(startAt), recovered: ld.firstAckSentAfter(startAt).Sub(startAt)}
		outages = append(outages, o)
		if o.downs503 == 0 {
			t.Errorf("-m %s: no delivery was answered 503 while the database was down", mode)
		}
	}
	after := ld.ackCount()
	waitFor(t, 30*time.Second, "deliveries to flow after the last outage", func() (bool, error) {
		return ld.ackCount() >= after+300, nil
	})
	close(stopFeeding)
	wg.Wait()
	if fed == len(bodies) {
		t.Fatal("the senders ran out of events before the outages were over: make the load bigger")
	}
	// Neither service was restarted: both must still be there, answering.
	for name, url := range map[string]string{"ingest": base, "projector": "http://" + projectorAddr} {
		if code, err := healthz(client, url); err != nil || code != http.StatusOK {
			t.Fatalf("%s /healthz after the restarts: %d, %v (has it exited? its output is below)", name, code, err)
		}
	}

	// Every 2xx is in the log, once.
	pool := openPool(t, dbURL)
	ctx := context.Background()
	rows, lost := assertLoggedOnce(t, pool, ld.acked)
	if ld.transportErrs > 0 {
		t.Errorf("%d deliveries got no HTTP answer at all: ingest must answer 503 while the database is down", ld.transportErrs)
	}
	for _, o := range outages {
		t.Logf("outage -m %s: down %.1fs, %d deliveries answered 503 meanwhile; pg_ctl start took %dms, first 2xx %dms after it was issued",
			o.mode, o.down.Seconds(), o.downs503, o.restart.Milliseconds(), o.recovered.Milliseconds())
	}
	t.Logf("events sent: %d (%d attempts), 503s seen: %d, 2xx while down: %d, outages: %d, acknowledged: %d, in the log: %d, lost: %d",
		fed, ld.attempts, ld.total503, ld.okWhileDown, len(outages), len(ld.acked), rows, lost)

	// The projector was never restarted: it must have resumed by itself, and soon. The
	// outage kills the connection under the subscriber's open transaction, and
	// watermill-sql resends the failed message on that dead transaction until the ack
	// deadline; with watermill-sql's default (30 s) this took 27 s, with the projector's
	// own (3 s) about one.
	waitCaughtUpWithin(t, pool, 15*time.Second)
	t.Logf("projector caught up %.1fs after the database came back the last time", time.Since(lastUp).Seconds())
	var parked int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM analytics._parked`).Scan(&parked); err != nil {
		t.Fatal(err)
	}
	if parked != 0 {
		t.Errorf("%d events were parked: a database outage is not the event's fault", parked)
	}
	projector.kill()
	assertRebuildEqualsLive(t, pool, env)
}

// healthz asks a service's /healthz; an answer means the process is still running.
func healthz(client *http.Client, base string) (int, error) {
	resp, err := client.Get(base + "/healthz")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitLive waits until the projector's start-up build of analytics has been swapped in, so
// the projector is consuming the log live: this test is about the live consumer resuming
// by itself (an outage during the start-up build is TestDatabaseRestartDuringStartupBuild).
func waitLive(t *testing.T, dbURL string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	waitFor(t, 60*time.Second, "the projector to build analytics and go live", func() (bool, error) {
		var live bool
		err := conn.QueryRow(ctx, `SELECT to_regclass('analytics._meta') IS NOT NULL`).Scan(&live)
		return live, err
	})
}

// load is what the senders saw. Deliveries are classified by the database's state when
// they were sent and answered: one sent after the server had stopped and answered before
// it was started again can only be 503.
type load struct {
	mu            sync.Mutex
	acked         map[string]bool
	acks          []ack // every 2xx, in the order answered
	attempts      int
	total503      int
	transportErrs int
	down          bool      // the server is stopped and not yet being started
	downSince     time.Time // when the stop completed
	down503       int       // 503s answered during the current outage
	okWhileDown   int
}

type ack struct{ sent, answered time.Time }

func (l *load) deliver(t *testing.T, client *http.Client, base string, body []byte) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		sent := time.Now()
		code, err := post(client, base, body)
		l.mu.Lock()
		l.attempts++
		sentWhileDown := l.down && sent.After(l.downSince)
		switch {
		case err != nil:
			l.transportErrs++
		case code == http.StatusOK && sentWhileDown:
			l.okWhileDown++
			t.Errorf("event %s was answered 2xx while the database was down", eventKey(body))
		case code == http.StatusOK:
		case code == http.StatusServiceUnavailable:
			l.total503++
			if sentWhileDown {
				l.down503++
			}
		default:
			t.Errorf("delivery answered %d: only 200 or 503 expected", code)
		}
		if err == nil && code == http.StatusOK {
			l.acked[eventKey(body)] = true
			l.acks = append(l.acks, ack{sent: sent, answered: time.Now()})
		}
		l.mu.Unlock()
		if err == nil && code != http.StatusServiceUnavailable {
			return // 2xx, or a code already reported: retrying would not change it
		}
		if time.Now().After(deadline) {
			t.Errorf("event %s was never accepted within 30s (last: %d, %v)", eventKey(body), code, err)
			return
		}
		// GoTo's retry policy is undocumented; a short pause keeps the test quick.
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *load) ackCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// markDown records that the server has stopped.
func (l *load) markDown() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down, l.downSince, l.down503 = true, time.Now(), 0
	return l.downSince
}

// markStarting ends the window in which only 503 is acceptable, and returns how many 503s
// it saw and when it ended.
func (l *load) markStarting() (int, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = false
	return l.down503, time.Now()
}

// firstAckSentAfter returns when the first delivery sent after at was answered 2xx, or
// the zero time.
func (l *load) firstAckSentAfter(at time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.acks {
		if a.sent.After(at) {
			return a.answered
		}
	}
	return time.Time{}
}

// cluster is a private PostgreSQL server in a temporary directory that the test may stop
// and start: the shared test server must never be restarted.
type cluster struct {
	bin  string   // directory holding initdb and pg_ctl
	as   []string // runuser prefix when the test runs as root (initdb refuses root)
	dir  string
	port int
}

// newCluster initialises and starts a throwaway cluster on a free port with trust auth.
// fsync is off (the data is thrown away, and the OS never crashes here: a stopped or killed
// server's writes are in the page cache), but synchronous_commit stays on: with it off an
// `-m immediate` stop would lose commits already answered 2xx, which is the very loss this
// test looks for.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{bin: pgBinDir(t), dir: t.TempDir(), port: stablePort(t)}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, and initdb refuses root: need the user postgres to run the private cluster as (it comes with the PostgreSQL packages): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		// t.TempDir's parent is private to root: let postgres through it to its own dir.
		if err := os.Chmod(filepath.Dir(c.dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(c.dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.as = []string{"runuser", "-u", "postgres", "--"}
	}
	if out, err := c.command("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nfsync = off\nfull_page_writes = off\nmax_connections = 100\n", c.port, c.dir)
	f, err := os.OpenFile(filepath.Join(c.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(conf); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	c.start(t)
	t.Cleanup(func() { _ = c.command("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop").Run() })
	return c
}

func (c *cluster) data() string { return filepath.Join(c.dir, "data") }
func (c *cluster) log() string  { return filepath.Join(c.dir, "server.log") }

// command runs one of the server binaries as the cluster's owner, from the cluster's
// directory (initdb fails when it cannot return to an unreadable working directory).
func (c *cluster) command(bin string, args ...string) *exec.Cmd {
	argv := append(append(append([]string{}, c.as...), filepath.Join(c.bin, bin)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = c.dir
	return cmd
}

// start starts the server and waits until it accepts connections.
func (c *cluster) start(t *testing.T) {
	t.Helper()
	if out, err := c.command("pg_ctl", "-D", c.data(), "-l", c.log(), "-w", "-t", "30", "start").CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, c.logTail(20))
	}
}

// stop stops the server with the given shutdown mode and waits until it is gone.
func (c *cluster) stop(t *testing.T, mode string) {
	t.Helper()
	if out, err := c.command("pg_ctl", "-D", c.data(), "-m", mode, "-w", "-t", "30", "stop").CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl stop -m %s: %v\n%s", mode, err, out)
	}
}

func (c *cluster) logTail(n int) string {
	b, err := os.ReadFile(c.log())
	if err != nil {
		return fmt.Sprintf("(read server log: %v)", err)
	}
	return tail(string(b), n)
}

// createDatabase creates a database on the cluster and returns its URL.
func (c *cluster) createDatabase(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to the private cluster: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database: %v", err)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, name)
}

// pgBinDir finds initdb and pg_ctl on PATH or in Debian's /usr/lib/postgresql/*/bin (the
// newest version). Without them the test fails: it must never skip.
func pgBinDir(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	best, bestVersion := "", -1
	for _, d := range dirs {
		v, _ := strconv.Atoi(strings.SplitN(filepath.Base(filepath.Dir(d)), ".", 2)[0])
		_, errInit := os.Stat(filepath.Join(d, "initdb"))
		_, errCtl := os.Stat(filepath.Join(d, "pg_ctl"))
		if errors.Join(errInit, errCtl) == nil && v > bestVersion {
			best, bestVersion = d, v
		}
	}
	if best == "" {
		t.Fatal("PostgreSQL's server binaries (initdb, pg_ctl) are neither on PATH nor in /usr/lib/postgresql/*/bin: install them (Debian: apt-get install postgresql)")
	}
	return best
}

// TestDatabaseRestartDuringStartupBuild stops PostgreSQL while the projector is building
// analytics at start (a first start, or after an upgrade of the projections): the process
// must wait for the database, resume the build where its progress says, and go live, not
// exit.
func TestDatabaseRestartDuringStartupBuild(t *testing.T) {
	t.Parallel()
	pg := newCluster(t)
	dbURL := pg.createDatabase(t, "turnout")
	if err := migrations.Up(dbURL); err != nil {
		t.Fatalf("migrate the private cluster: %v", err)
	}
	appendToLog(t, openPool(t, dbURL), events(20000))
	// Small batches, so that the build is still running when the database goes away.
	env := []string{"DATABASE_URL=" + dbURL, "PROJECTOR_ADDR=" + freeAddr(t), "REBUILD_BATCH_SIZE=500"}
	projector := start(t, "projector", env, "-migrate=false")
	t.Cleanup(func() {
		if t.Failed() {
			projector.mu.Lock()
			t.Logf("projector output (last 30 lines):\n%s", tail(projector.out.String(), 30))
			projector.mu.Unlock()
		}
	})

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the start-up build to record progress", func() (bool, error) {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM analytics_rebuild._progress`).Scan(&n)
		return err == nil && n > 0, err
	})
	conn.Close(ctx)
	pg.stop(t, "fast")
	time.Sleep(1500 * time.Millisecond) // the outage: a fixed span is the point
	pg.start(t)

	// The same process, never restarted, finishes the build and consumes the log.
	pool := openPool(t, dbURL)
	waitCaughtUp(t, pool)
	projector.mu.Lock()
	out := projector.out.String()
	projector.mu.Unlock()
	if !strings.Contains(out, "database unavailable while preparing analytics; retrying") {
		t.Errorf("the outage did not hit the start-up build (make the log bigger or the batches smaller)")
	}
	projector.kill()
	assertRebuildEqualsLive(t, pool, env)
}
