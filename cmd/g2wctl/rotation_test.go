package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/g2wsim"
	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/scenario"
)

// TestRotationLosesNoDelivery rotates the secret key the way docs/operations.md says, on the
// emulator, with a real ingest (the binary, on a real database): deliveries before the
// rotation (old key), between `secret rotate` and the new key's validFrom (still the old
// key, ingest holding both), after it (the new key) and once the old key is retired are all
// answered 2xx and stored.
func TestRotationLosesNoDelivery(t *testing.T) {
	t.Parallel()
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", bin+"/", "../ingest").CombinedOutput(); err != nil {
		t.Fatalf("go build ingest: %v\n%s", err, out)
	}
	dbURL := pgtest.URL(t)

	// The emulator's clock: real time until the test moves it past the new key's validFrom.
	var skew atomic.Int64 // nanoseconds ahead of real time
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	sim, err := g2wsim.New(g2wsim.Config{ClientID: testClientID, ClientSecret: testClientSecret, Now: now, VisibilityDelay: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	simSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(simSrv.Close)
	f := &fixture{sim: simSrv, tokenFile: filepath.Join(t.TempDir(), "g2w.json")}
	f.env = map[string]string{"G2W_CLIENT_ID": testClientID, "G2W_CLIENT_SECRET": testClientSecret,
		"G2W_API_URL": simSrv.URL + g2wsim.BasePath, "G2W_AUTH_URL": simSrv.URL + "/oauth", "G2W_TOKEN_FILE": f.tokenFile,
		"G2W_CLIENT_CREDENTIALS": "true"}
	keysOf := func(out string) string {
		t.Helper()
		m := secretLine.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no G2W_SECRET_KEYS line in %q", out)
		}
		return m[1]
	}

	addr := freeAddr(t)
	callback := "http://" + addr + "/gotowebinar/callback"
	var ingest *exec.Cmd
	startIngest := func(keys string) {
		t.Helper()
		if ingest != nil {
			stopIngest(ingest)
		}
		ingest = exec.Command(filepath.Join(bin, "ingest"))
		ingest.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "G2W_SECRET_KEYS="+keys, "INGEST_ADDR="+addr, "LOG_LEVEL=warn")
		ingest.Stderr = os.Stderr
		if err := ingest.Start(); err != nil {
			t.Fatal(err)
		}
		waitAnswers(t, callback)
	}
	t.Cleanup(func() {
		if ingest != nil {
			stopIngest(ingest)
		}
	})

	// The order `make demo` uses: the key first, ingest with it (answering GoTo's callback
	// check), then setup.
	out, _, err := f.run(t, nil, "secret", "create")
	if err != nil {
		t.Fatal(err)
	}
	oldKey := keysOf(out)
	startIngest(oldKey)
	if _, errOut, err := f.run(t, nil, "setup", "--callback", callback); err != nil {
		t.Fatalf("setup: %v\n%s", err, errOut)
	}

	events := scenario.Generate(11).Events
	parts := [][][]byte{events[:len(events)/4], events[len(events)/4 : len(events)/2], events[len(events)/2 : 3*len(events)/4], events[3*len(events)/4:]}
	d := g2wsim.NewDeliverer(sim, g2wsim.DeliveryConfig{Concurrency: 4, Backoff: 50 * time.Millisecond})
	deliver := func(phase string, part [][]byte, wantKey string) {
		t.Helper()
		if got := sim.Targets("registrant.added", g2wsim.DefaultOrganizers(1)[0].Key); len(got) != 1 || got[0].Secret != wantKey {
			t.Fatalf("%s: GoTo would sign with another key than the expected one", phase)
		}
		r, err := d.Deliver(t.Context(), part)
		if err != nil || r.Delivered != len(part) || r.Failed != 0 || r.Unrouted != 0 {
			t.Errorf("%s: report %+v, %v; want all %d delivered", phase, r, err, len(part))
		}
	}

	deliver("before the rotation", parts[0], oldKey)
	validFrom := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	out, _, err = f.run(t, nil, "secret", "rotate", "--valid-from", validFrom.Format(time.RFC3339))
	if err != nil {
		t.Fatal(err)
	}
	both := keysOf(out)
	newKey, ok := strings.CutPrefix(both, oldKey+",")
	if !ok || newKey == "" {
		t.Fatalf("secret rotate printed %q, want %s,<new>", both, oldKey)
	}
	startIngest(both)
	deliver("between rotate and validFrom", parts[1], oldKey)
	skew.Store(int64(time.Until(validFrom) + time.Second))
	deliver("after validFrom", parts[2], newKey)
	startIngest(newKey) // the old key retired
	deliver("with the old key retired", parts[3], newKey)

	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	var stored int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM "+eventlog.Table).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != len(events) {
		t.Errorf("%d events stored, want all %d", stored, len(events))
	}
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

// waitAnswers waits until the callback answers GET with 200, as GoTo's check wants.
func waitAnswers(t *testing.T, u string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(u)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within 60s: %v", u, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func stopIngest(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}
