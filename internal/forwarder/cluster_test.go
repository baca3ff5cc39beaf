package forwarder_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/turnout-analytics/turnout/internal/forwarder"
	"github.com/turnout-analytics/turnout/internal/natstest"
	"github.com/turnout-analytics/turnout/internal/pgtest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// forwarderBinary builds cmd/forwarder (with -race) once per test run: the crash test
// needs a real process to SIGKILL.
func forwarderBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "turnout-forwarder-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "forwarder")
		if out, err := exec.Command("go", "build", "-race", "-o", binPath, "../../cmd/forwarder").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a forwarder process; its output is kept for the failure message.
type proc struct {
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	out  bytes.Buffer
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func startForwarder(t *testing.T, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(forwarderBinary(t), "-migrate=false")
	cmd.Env = append(os.Environ(), env...)
	p := &proc{cmd: cmd}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = p
	if err := cmd.Start(); err != nil {
		t.Fatalf("start forwarder: %v", err)
	}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("forwarder output (tail):\n%s", tailOf(p.out.String(), 4000))
			p.mu.Unlock()
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("forwarder did not start: %v", err)
	}
	p.addr = strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	go func() { _, _ = io.Copy(p, stdout) }()
	return p
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// kill sends SIGKILL: no shutdown, no deferred advance.
func (p *proc) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

func (p *proc) healthz() int {
	resp, err := http.Get("http://" + p.addr + "/healthz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// scrape returns the value of one sample of the forwarder's /metrics ("" if absent).
func (p *proc) scrape(t *testing.T, sample string) string {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			return v
		}
	}
	return ""
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

// faultEnv is what a fault may act on.
type faultEnv struct {
	t         *testing.T
	cluster   *natstest.Cluster
	nc        *nats.Conn
	forwarder *proc
	restart   func() *proc
}

// TestClusterFaultsLoseNothing runs the forwarder binary against a 3-node JetStream
// cluster with an R3 stream while the real ingest handler takes a load of signed
// deliveries, and injects one fault mid-run. Afterwards a JetStream consumer must read
// exactly the log's events: every eventKey once, none missing.
func TestClusterFaultsLoseNothing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		fault func(e *faultEnv)
	}{
		{"stream leader SIGKILLed", func(e *faultEnv) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			leader, err := e.cluster.StreamLeader(ctx, e.nc, forwarder.StreamName)
			if err != nil {
				e.t.Fatalf("find stream leader: %v", err)
			}
			e.t.Logf("SIGKILL stream leader %s", e.cluster.Nodes[leader].Name)
			e.cluster.Kill(leader)
		}},
		{"forwarder SIGKILLed", func(e *faultEnv) {
			// Three times, 700 ms apart, to land at least once between JetStream's acks
			// and the position's commit (the restarted forwarder then publishes that batch
			// again, and JetStream drops the copies).
			for range 3 {
				e.t.Logf("SIGKILL forwarder (its duplicate acks so far: %s)",
					e.forwarder.scrape(e.t, `turnout_forwarder_acks_total{result="duplicate"}`))
				e.forwarder.kill()
				time.Sleep(300 * time.Millisecond)
				e.forwarder = e.restart()
				time.Sleep(700 * time.Millisecond)
			}
		}},
		{"NATS unreachable for 10s", func(e *faultEnv) {
			e.t.Log("every NATS server down for 10s")
			for i := range e.cluster.Nodes {
				e.cluster.Shutdown(i)
			}
			down := time.Now()
			sawWaiting := false
			for time.Since(down) < 10*time.Second {
				if e.forwarder.healthz() == http.StatusServiceUnavailable {
					sawWaiting = true
				}
				time.Sleep(250 * time.Millisecond)
			}
			if !sawWaiting {
				e.t.Error("/healthz never answered 503 while NATS was down")
			}
			for i := range e.cluster.Nodes {
				if err := e.cluster.Restart(i); err != nil {
					e.t.Fatal(err)
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Not parallel with each other: each runs 3 servers, a forwarder and a load,
			// and the point is the fault, not contention.
			pool, dbURL := pgtest.Pool(t)
			base, drainIngest := startIngest(t, pool)
			cluster := natstest.New(t, 3)
			env := []string{
				"DATABASE_URL=" + dbURL,
				"NATS_URL=" + cluster.URLs(),
				"FORWARDER_STREAM_REPLICAS=3",
				"FORWARDER_BATCH_SIZE=200",
				"FORWARDER_ACK_WAIT=2s",
				"FORWARDER_RETRY_WAIT=200ms",
				"LOG_LEVEL=info",
			}
			restart := func() *proc { return startForwarder(t, append(env, "FORWARDER_ADDR="+freeAddr(t))...) }
			e := &faultEnv{t: t, cluster: cluster, restart: restart}
			e.forwarder = restart()

			nc, err := nats.Connect(cluster.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			e.nc = nc
			waitStream(t, nc, 3)

			// The load runs 6 s; the fault strikes 2 s in.
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
			defer cancel()
			loaded := make(chan int, 1)
			go func() { loaded <- load(ctx, t, base, 0, 1_000_000, 8) }()
			time.Sleep(2 * time.Second)
			before := len(wholeLog(t, pool))
			tc.fault(e)
			acked := <-loaded
			drainIngest()
			log := wholeLog(t, pool)
			t.Logf("%d deliveries acknowledged; %d in the log when the fault struck, %d at the end", acked, before, len(log))
			if len(log) < acked || before == 0 || len(log) == before {
				t.Fatalf("the load did not run across the fault: %d acknowledged, %d before, %d after", acked, before, len(log))
			}
			waitCaughtUp(t, pool, log[len(log)-1].Position, 90*time.Second)
			// Bring back any server the fault stopped before reading the stream.
			for i := range cluster.Nodes {
				if err := cluster.Restart(i); err != nil {
					t.Fatal(err)
				}
			}
			checkStreamIsTheLog(t, log, readStream(t, nc))
			t.Logf("forwarder metrics: retries %s, duplicate acks %s, nats waits %s",
				e.forwarder.scrape(t, "turnout_forwarder_retries_total"),
				e.forwarder.scrape(t, `turnout_forwarder_acks_total{result="duplicate"}`),
				e.forwarder.scrape(t, `turnout_forwarder_waits_total{dependency="nats"}`))
		})
	}
}

// waitStream waits until the forwarder has created TURNOUT with the given replicas.
func waitStream(t *testing.T, nc *nats.Conn, replicas int) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := js.Stream(ctx, forwarder.StreamName)
		cancel()
		if err == nil {
			if got := s.CachedInfo().Config.Replicas; got != replicas {
				t.Fatalf("stream has %d replicas, want %d", got, replicas)
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the forwarder did not create the stream within 30s")
}
