package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"

	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/webhook"
)

func TestReadPgbenchLog(t *testing.T) {
	tests := []struct {
		name    string
		log     string
		want    []time.Duration
		wantErr string
	}{
		{
			name: "fixed rate, with schedule lag",
			// time already counts from the scheduled start: the lag is part of it.
			log:  "0 1 611 0 1795783737 409107 217\n1 2 8225 0 1795783737 405052 8074\n",
			want: []time.Duration{611 * time.Microsecond, 8225 * time.Microsecond},
		},
		{
			name: "flat out, no lag column",
			log:  "3 7 1200 0 1795783737 409107\n",
			want: []time.Duration{1200 * time.Microsecond},
		},
		{name: "skipped transaction", log: "0 1 skipped 0 1795783737 409107 60000\n", wantErr: "skipped"},
		{name: "failed transaction", log: "0 1 failed 0 1795783737 409107 0\n", wantErr: "failed"},
		{name: "short line", log: "0 1 611\n", wantErr: "unexpected line"},
		{name: "not a number", log: "0 1 6x1 0 1795783737 409107 217\n", wantErr: "unexpected line"},
		{name: "empty", log: "", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readPgbenchLog(strings.NewReader(tt.log), nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("latencies = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProcTicksCountsThisProcessCPU(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	before, err := procTicks(self, false)
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until the kernel has charged at least two ticks (20 ms) to us.
	deadline := time.Now().Add(5 * time.Second)
	x := 0
	for time.Now().Before(deadline) {
		for i := range 1_000_000 {
			x += i
		}
		after, err := procTicks(self, false)
		if err != nil {
			t.Fatal(err)
		}
		if after-before >= 2 {
			withChildren, err := procTicks(self, true)
			if err != nil {
				t.Fatal(err)
			}
			if withChildren < after {
				t.Fatalf("with children %d < own %d ticks", withChildren, after)
			}
			return
		}
	}
	t.Fatalf("no CPU time charged after 5 s of spinning (%d)", x)
}

func TestPerDelivery(t *testing.T) {
	a := cpuShares{loadgen: 100, service: 1000, postgres: 50}
	b := cpuShares{loadgen: 300, service: 1400, postgres: 250}
	// 200, 400 and 200 ticks of 10 ms over 1,000 deliveries: 2 ms, 4 ms, 2 ms each.
	got := perDelivery(a, b, 1000, "ingest")
	if got.loadgen != 2*time.Millisecond || got.service != 4*time.Millisecond || got.postgres != 2*time.Millisecond {
		t.Fatalf("perDelivery = %+v", got)
	}
	if got.total() != 8*time.Millisecond {
		t.Fatalf("total = %s, want 8ms", got.total())
	}
	if s := got.String(); s != "CPU each: load generator 2ms, ingest 4ms, PostgreSQL 2ms, total 8ms" {
		t.Fatalf("String() = %q", s)
	}
	if s := perDelivery(a, b, 1000, "").String(); strings.Contains(s, "ingest") {
		t.Fatalf("no service named, yet %q", s)
	}
	if got := perDelivery(a, b, 0, "ingest"); got.total() != 0 {
		t.Fatalf("no deliveries: %+v, want zero", got)
	}
}

func TestHTTPFloorAnswersLikeIngest(t *testing.T) {
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serveHTTPFloor(ctx, addr) }()
	if err := waitReady(ctx, "http://"+addr+"/readyz", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	client := newRawClient(addr, 1)
	code, err := client.post(ctx, []byte(fmt.Sprintf(deliveryBody, 1, 1, 1)))
	if err != nil || code != http.StatusOK {
		t.Fatalf("post = %d, %v; want 200", code, err)
	}
	client.close()
	if len(client.conns) != 0 {
		t.Fatalf("%d idle connections left after close", len(client.conns))
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("serveHTTPFloor returned %v after its context ended", err)
	}
}

func TestDiskProbeTimesFlushes(t *testing.T) {
	p, err := startDiskProbe(context.Background(), t.TempDir(), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	lat := p.stop()
	if len(lat) == 0 {
		t.Fatal("no flush timed in 100ms")
	}
	for _, d := range lat {
		if d <= 0 {
			t.Fatalf("flush latency %s", d)
		}
	}
	if s := describeFlushes(lat); !strings.Contains(s, "p50 ") {
		t.Fatalf("describeFlushes = %q", s)
	}
}

func TestDescribeFlushesCountsStalls(t *testing.T) {
	lat := []time.Duration{time.Millisecond, 2 * time.Millisecond, 60 * time.Millisecond, 300 * time.Millisecond}
	got := describeFlushes(lat)
	if !strings.Contains(got, "max 300ms") || !strings.Contains(got, "360ms in flushes over 50ms") {
		t.Fatalf("describeFlushes = %q", got)
	}
	if got := describeFlushes(nil); got != "no samples" {
		t.Fatalf("describeFlushes(nil) = %q", got)
	}
}

func TestWatermillPeerStoresSignedDeliveriesAndRefusesForged(t *testing.T) {
	pool, dbURL := pgtest.Pool(t)
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- serveWatermillPeer(ctx, addr, dbURL, 2) }()
	if err := waitReady(ctx, "http://"+addr+"/readyz", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	client := newRawClient(addr, 1)
	defer client.close()
	body := []byte(fmt.Sprintf(deliveryBody, 1, 1, 1))
	for range 2 { // no dedup: a redelivery is a second row
		if code, err := client.post(ctx, body); err != nil || code != http.StatusOK {
			t.Fatalf("signed post = %d, %v; want 200", code, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/gotowebinar/callback", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(webhook.HeaderSignature, "forged")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged post = %d, want 401", resp.StatusCode)
	}
	var n int
	var payload string
	if err := pool.QueryRow(ctx, `SELECT count(*), min(payload::text) FROM `+wsql.DefaultPostgreSQLSchema{}.MessagesTable(peerTopic)).Scan(&n, &payload); err != nil {
		t.Fatal(err)
	}
	if n != 2 || payload != string(body) {
		t.Fatalf("peer table: %d rows, payload %q; want 2 rows of the body", n, payload)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("serveWatermillPeer returned %v after its context ended", err)
	}
}

func TestTailBound(t *testing.T) {
	tests := []struct {
		pgbench, want time.Duration
	}{
		{pgbench: 0, want: 50 * time.Millisecond},
		{pgbench: 21900 * time.Microsecond, want: 50 * time.Millisecond},
		{pgbench: 25 * time.Millisecond, want: 50 * time.Millisecond},
		{pgbench: 31700 * time.Microsecond, want: 63400 * time.Microsecond},
	}
	for _, tt := range tests {
		if got := tailBound(tt.pgbench); got != tt.want {
			t.Errorf("tailBound(%s) = %s, want %s", tt.pgbench, got, tt.want)
		}
	}
}

func TestParseBatcherStats(t *testing.T) {
	const text = `# HELP turnout_ingest_batch_commit_seconds Duration of each group-commit transaction.
turnout_ingest_batch_commit_seconds_bucket{le="0.05"} 9
turnout_ingest_batch_commit_seconds_sum 0.5
turnout_ingest_batch_commit_seconds_count 10
turnout_ingest_batch_queue_seconds_bucket{le="0.025"} 30
turnout_ingest_batch_queue_seconds_bucket{le="0.05"} 38
turnout_ingest_batch_queue_seconds_sum 0.8
turnout_ingest_batch_queue_seconds_count 40
turnout_ingest_batch_size_sum 40
turnout_ingest_batch_size_count 10
turnout_ingest_request_duration_seconds_bucket{code="200",route="/gotowebinar/callback",le="0.05"} 37
turnout_ingest_request_duration_seconds_bucket{code="200",route="/gotowebinar/callback",le="0.1"} 39
turnout_ingest_request_duration_seconds_count{code="200",route="/gotowebinar/callback"} 40
turnout_ingest_request_duration_seconds_count{code="503",route="/gotowebinar/callback"} 7
`
	got, err := parseBatcherStats(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := batcherStats{commitSum: 0.5, commitCount: 10, queueSum: 0.8, queueCount: 40, queueOver50ms: 2, commitOver50ms: 1,
		sizeSum: 40, answered: 40, answeredOver50ms: 3}
	if got != want {
		t.Fatalf("parseBatcherStats = %+v, want %+v", got, want)
	}
	// Two phases with the same changes sum to twice the changes.
	if sum := (batcherStats{}).plus(batcherStats{}, got).plus(batcherStats{}, got); sum.answered != 80 || sum.commitOver50ms != 2 || sum.sizeSum != 80 {
		t.Errorf("plus twice = %+v, want every field doubled", sum)
	}
	s := describeBatcher(batcherStats{}, got, time.Second)
	for _, part := range []string{"10 batches of 4.0", "mean wait for a worker 20ms", "mean transaction 50ms", "0.50 s per s", "1 transactions over 50ms", "2 deliveries waited over 50ms", "3 of 40 answered 200 over 50ms"} {
		if !strings.Contains(s, part) {
			t.Errorf("describeBatcher = %q, lacks %q", s, part)
		}
	}
	if _, err := parseBatcherStats(strings.NewReader("turnout_ingest_batch_size_sum 4\n")); err == nil {
		t.Error("metrics without the commit and queue series parsed")
	}
}

func TestSampleCPUCountsOnlyTheBenchmarksServer(t *testing.T) {
	_, dbURL := pgtest.Pool(t)
	pm, err := postmasterPID(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pm))
	if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
		t.Fatalf("postmaster %d: comm %q, %v", pm, comm, err)
	}
	// CPU times only grow, so this server's, sampled first, can exceed every postgres
	// process's, sampled after, only if the filter counted something it should not.
	own, err := sampleCPU(0, pm)
	if err != nil {
		t.Fatal(err)
	}
	all, err := sampleCPU(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if own.postgres > all.postgres {
		t.Fatalf("this server's PostgreSQL CPU %d ticks > every postgres process's %d", own.postgres, all.postgres)
	}
	if own.postgres == 0 {
		t.Fatal("no CPU counted for the server the test uses")
	}
}
