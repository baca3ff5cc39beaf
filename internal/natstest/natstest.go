// Package natstest starts real nats-server processes with JetStream on loopback: a single
// server or a cluster of several, each in a temporary directory on ports of its own, which
// can be killed and restarted on the same ports. Tests and benchmarks use it; nothing here
// talks to a NATS that happens to run on the machine (4222).
//
// It needs the nats-server binary (Debian: apt-get install nats-server), found on PATH or
// in /usr/sbin.
package natstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Binary returns the path of nats-server.
func Binary() (string, error) {
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/nats-server", "/usr/local/bin/nats-server"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("nats-server not found on PATH or in /usr/sbin (Debian: apt-get install nats-server)")
}

// Node is one nats-server of a cluster.
type Node struct {
	Name        string
	ClientPort  int
	ClusterPort int
	dir         string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	out    *bytes.Buffer
}

// URL is the node's client URL.
func (n *Node) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.ClientPort) }

// Cluster is a set of nats-server processes with JetStream, routed to each other when
// there are several.
type Cluster struct {
	Nodes []*Node
	bin   string
	dir   string
}

// Start starts n servers (n ≥ 1; a cluster when n > 1) with JetStream, in temporary
// directories under dir, and waits until JetStream answers on every one.
func Start(ctx context.Context, dir string, n int) (*Cluster, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin, dir: dir}
	used := map[int]bool{}
	for i := range n {
		node := &Node{Name: "n" + strconv.Itoa(i+1), dir: filepath.Join(dir, "n"+strconv.Itoa(i+1))}
		if node.ClientPort, err = stablePort(used); err != nil {
			return nil, err
		}
		if n > 1 {
			if node.ClusterPort, err = stablePort(used); err != nil {
				return nil, err
			}
		}
		c.Nodes = append(c.Nodes, node)
	}
	for i := range c.Nodes {
		if err := c.writeConfig(i); err != nil {
			return nil, err
		}
		if err := c.Restart(i); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if err := c.WaitReady(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// New starts n servers for a test and stops them when it ends; it fails the test if they
// do not start.
func New(t testing.TB, n int) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Start(ctx, t.TempDir(), n)
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.Nodes {
				t.Logf("nats-server %s output (tail):\n%s", n.Name, tail(n.Output(), 3000))
			}
		}
		c.Stop()
	})
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (c *Cluster) writeConfig(i int) error {
	n := c.Nodes[i]
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return fmt.Errorf("create node directory: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %s\nlisten: 127.0.0.1:%d\n", n.Name, n.ClientPort)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n  max_memory_store: 256MB\n  max_file_store: 8GB\n}\n", filepath.Join(n.dir, "js"))
	if len(c.Nodes) > 1 {
		var routes []string
		for _, o := range c.Nodes {
			if o != n {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", o.ClusterPort))
			}
		}
		fmt.Fprintf(&b, "cluster {\n  name: turnout-test\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n", n.ClusterPort, strings.Join(routes, ", "))
	}
	if err := os.WriteFile(filepath.Join(n.dir, "nats.conf"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write node config: %w", err)
	}
	return nil
}

// URLs is every node's client URL, comma-separated, as nats.Connect takes them.
func (c *Cluster) URLs() string {
	var u []string
	for _, n := range c.Nodes {
		u = append(u, n.URL())
	}
	return strings.Join(u, ",")
}

// Restart starts node i again (on the same ports and store) if it is not running.
func (c *Cluster) Restart(i int) error {
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return nil
	}
	cmd := exec.Command(c.bin, "-c", filepath.Join(n.dir, "nats.conf"))
	if n.out == nil {
		n.out = &bytes.Buffer{}
	}
	w := lockedWriter{n}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start nats-server %s: %w", n.Name, err)
	}
	n.cmd = cmd
	exited := make(chan struct{})
	n.exited = exited
	// Reap it, so a SIGKILL does not leave a zombie behind.
	go func() { _ = cmd.Wait(); close(exited) }()
	return nil
}

type lockedWriter struct{ n *Node }

func (w lockedWriter) Write(b []byte) (int, error) {
	// Never hold n.mu here: Restart holds it while the process starts.
	outMu.Lock()
	defer outMu.Unlock()
	return w.n.out.Write(b)
}

var outMu sync.Mutex

// Output is what node printed so far.
func (n *Node) Output() string {
	outMu.Lock()
	defer outMu.Unlock()
	if n.out == nil {
		return ""
	}
	return n.out.String()
}

// Kill SIGKILLs node i: no shutdown, no leadership transfer.
func (c *Cluster) Kill(i int) { c.stop(i, syscall.SIGKILL) }

// Shutdown stops node i with SIGTERM, nats-server's graceful shutdown (it flushes its
// stores), and waits for it to exit (SIGKILL after 20 s).
func (c *Cluster) Shutdown(i int) { c.stop(i, syscall.SIGTERM) }

func (c *Cluster) stop(i int, sig syscall.Signal) {
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(sig)
	select {
	case <-n.exited:
	case <-time.After(20 * time.Second):
		_ = n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.exited
	}
	n.cmd = nil
}

// Stop kills every node.
func (c *Cluster) Stop() {
	for i := range c.Nodes {
		c.Kill(i)
	}
}

// WaitReady waits until every running node answers JetStream API requests (a cluster
// needs a meta leader first).
func (c *Cluster) WaitReady(ctx context.Context) error {
	for _, n := range c.Nodes {
		n.mu.Lock()
		running := n.cmd != nil
		n.mu.Unlock()
		if !running {
			continue
		}
		if err := waitJetStream(ctx, n.URL()); err != nil {
			return fmt.Errorf("nats-server %s: %w\n%s", n.Name, err, tail(n.Output(), 2000))
		}
	}
	return nil
}

func waitJetStream(ctx context.Context, url string) error {
	var last error
	for {
		if last = pingJetStream(ctx, url); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("jetstream not ready: %w (last: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func pingJetStream(ctx context.Context, url string) error {
	nc, err := nats.Connect(url, nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(actx)
	return err
}

// StreamLeader returns the index of the node that leads stream.
func (c *Cluster) StreamLeader(ctx context.Context, nc *nats.Conn, stream string) (int, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, fmt.Errorf("open jetstream: %w", err)
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("look up stream: %w", err)
	}
	info := s.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return 0, errors.New("stream has no leader")
	}
	for i, n := range c.Nodes {
		if n.Name == info.Cluster.Leader {
			return i, nil
		}
	}
	return 0, fmt.Errorf("stream leader %q is not one of ours", info.Cluster.Leader)
}

// stablePort returns a free loopback port below the kernel's ephemeral range, so a node
// restarted on it never finds it taken by the local end of an outgoing connection.
func stablePort(used map[int]bool) (int, error) {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				lo = n
			}
		}
	}
	for range 500 {
		port := 10000 + rand.IntN(lo-10000)
		if used[port] || port == 4222 || port == 6222 || port == 8222 {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // taken
		}
		l.Close()
		used[port] = true
		return port, nil
	}
	return 0, errors.New("no free port below the ephemeral range")
}
