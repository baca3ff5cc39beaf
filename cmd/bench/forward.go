package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/forwarder"
	"github.com/turnout-analytics/turnout/internal/natstest"
	"github.com/turnout-analytics/turnout/migrations"
)

// benchForward measures bin/forwarder against a nats-server (single node, JetStream, R1,
// started here on loopback from the nats-server binary):
//
//  1. sustained: ingest at its closed-loop peak for -sustain while the forwarder runs;
//     the forwarder's events/s beside ingest's deliveries/s, and its lag sampled over time;
//  2. catch-up: a backlog of -backlog events generated into the log with the forwarder
//     stopped, then the forwarder started: events/s until its lag is 0, beside raw
//     JetStream async publishes (nats.go PublishAsync, as `nats bench --js` does) of as
//     many messages of the backlog's mean payload size into a stream of their own.
func benchForward(ctx context.Context, admin string, args []string) error {
	fs := flag.NewFlagSet("forward", flag.ContinueOnError)
	senders := fs.Int("senders", 32, "concurrent senders into ingest")
	sustain := fs.Duration("sustain", 60*time.Second, "length of the sustained phase")
	backlog := fs.Int64("backlog", 500_000, "events in the catch-up backlog")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dbURL, err := freshDatabase(ctx, admin, "turnout_bench_forward")
	if err != nil {
		return err
	}
	if err := migrations.Up(dbURL); err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("open pool: %w", err)
	}
	defer pool.Close()

	natsDir, err := os.MkdirTemp("", "bench-forward-nats-")
	if err != nil {
		return fmt.Errorf("create nats directory: %w", err)
	}
	defer os.RemoveAll(natsDir)
	ns, err := natstest.Start(ctx, natsDir, 1)
	if err != nil {
		return err
	}
	defer ns.Stop()
	fmt.Printf("nats-server: one node, JetStream file storage in %s, stream TURNOUT R1\n", os.TempDir())

	// Ingest, as bench ingest runs it.
	ingestAddr, err := freeAddr()
	if err != nil {
		return err
	}
	ingestCmd, ingestLog, err := startBin(ctx, "ingest", nil, "DATABASE_URL="+dbURL, "G2W_SECRET_KEYS="+benchSecret, "INGEST_ADDR="+ingestAddr)
	if err != nil {
		return err
	}
	defer stopBin(ingestCmd)
	base := "http://" + ingestAddr
	if err := waitReady(ctx, base+"/readyz", 30*time.Second); err != nil {
		return fmt.Errorf("ingest did not become ready (log: %s): %w", ingestLog, err)
	}

	fwdAddr, err := freeAddr()
	if err != nil {
		return err
	}
	fwdEnv := []string{"DATABASE_URL=" + dbURL, "NATS_URL=" + ns.URLs(), "FORWARDER_ADDR=" + fwdAddr}
	fwd, fwdLog, err := startBin(ctx, "forwarder", []string{"-migrate=false"}, fwdEnv...)
	if err != nil {
		return err
	}
	if err := waitReady(ctx, "http://"+fwdAddr+"/healthz", 30*time.Second); err != nil {
		stopBin(fwd)
		return fmt.Errorf("forwarder did not become ready (log: %s): %w", fwdLog, err)
	}

	// 1. Sustained: ingest's peak, the forwarder beside it.
	var seq atomic.Int64
	send := func(ctx context.Context) (int, error) {
		n := seq.Add(1)
		return postSigned(ctx, base, fmt.Appendf(nil, deliveryBody, n, n, n))
	}
	fwd0, err := scrapeCounter("http://"+fwdAddr+"/metrics", "turnout_forwarder_forwarded_total")
	if err != nil {
		stopBin(fwd)
		return err
	}
	type sample struct {
		at  time.Duration
		lag eventlog.Lag
	}
	var samples []sample
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(sampled)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-sampleCtx.Done():
				return
			case <-t.C:
			}
			if lag, err := forwarderLag(sampleCtx, pool); err == nil {
				samples = append(samples, sample{time.Since(start).Round(time.Second), lag})
			}
		}
	}()
	ok, _, err := closedLoop(ctx, send, *senders, *sustain)
	elapsed := time.Since(start)
	fwd1, scrapeErr := scrapeCounter("http://"+fwdAddr+"/metrics", "turnout_forwarder_forwarded_total")
	stopSampling()
	<-sampled
	if err != nil || scrapeErr != nil {
		stopBin(fwd)
		return errors.Join(err, scrapeErr)
	}
	ingestRate := float64(ok) / elapsed.Seconds()
	fwdRate := (fwd1 - fwd0) / elapsed.Seconds()
	fmt.Printf("\nsustained, %s closed loop at %d senders:\n", elapsed.Round(time.Second), *senders)
	fmt.Printf("  ingest (its peak here): %d deliveries, %.0f deliveries/s\n", ok, ingestRate)
	fmt.Printf("  forwarder beside it:    %.0f events published and acknowledged, %.0f events/s = %.2fx ingest\n", fwd1-fwd0, fwdRate, fwdRate/ingestRate)
	fmt.Print("  forwarder lag (events / seconds) every 5 s:")
	for _, s := range samples {
		fmt.Printf(" %s: %d/%.1fs;", s.at, s.lag.Events, s.lag.Seconds)
	}
	fmt.Println()
	// Not growing: the worst lag of the last third is no worse than that of the first
	// third plus one batch (the lag is sampled between batches, so it moves by batches).
	third := max(1, len(samples)/3)
	var early, late int64
	for i, s := range samples {
		if i < third {
			early = max(early, s.lag.Events)
		}
		if i >= len(samples)-third {
			late = max(late, s.lag.Events)
		}
	}
	bounded := late <= early+int64(forwarder.DefaultBatchSize)
	stopBin(ingestCmd)
	if err := waitLagZero(ctx, pool, 5*time.Minute); err != nil {
		stopBin(fwd)
		return err
	}
	stopBin(fwd)

	// 2. Catch-up over a backlog generated with the forwarder stopped.
	genStart := time.Now()
	const chunk = 100_000
	for lo := int64(1); lo <= *backlog; lo += chunk {
		hi := min(lo+chunk-1, *backlog)
		if _, err := pool.Exec(ctx, generateSQL, lo, hi); err != nil {
			return fmt.Errorf("generate backlog: %w", err)
		}
	}
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE "+eventlog.Table); err != nil {
		return fmt.Errorf("vacuum log: %w", err)
	}
	lag, err := forwarderLag(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Printf("\ncatch-up: generated %d events into the log in %s; forwarder lag now %d events\n", *backlog, time.Since(genStart).Round(time.Second), lag.Events)
	meanSize, err := meanPayload(ctx, pool)
	if err != nil {
		return err
	}
	fwd, fwdLog, err = startBin(ctx, "forwarder", []string{"-migrate=false"}, fwdEnv...)
	if err != nil {
		return err
	}
	catchStart := time.Now()
	if err := waitLagZero(ctx, pool, 30*time.Minute); err != nil {
		stopBin(fwd)
		return fmt.Errorf("%w (log: %s)", err, fwdLog)
	}
	catchDur := time.Since(catchStart)
	stopBin(fwd)
	catchRate := float64(lag.Events) / catchDur.Seconds()
	fmt.Printf("  forwarder (start to lag 0, its start-up included): %d events in %s: %.0f events/s\n", lag.Events, catchDur.Round(time.Millisecond), catchRate)

	rawRate, err := rawAsyncPublish(ctx, ns.URLs(), int(lag.Events), meanSize)
	if err != nil {
		return err
	}
	fmt.Printf("  baseline raw JetStream async publish (nats.go PublishAsync, %d-byte payloads, no headers, R1 file stream): %.0f msgs/s\n", meanSize, rawRate)

	ratio := catchRate / rawRate
	// The forwarder cannot forward more than ingest wrote, so in the sustained window it
	// keeps up (1.0x) when what it left behind is less than one batch (the lag moves by
	// batches); its capacity is the catch-up rate.
	keptUp := fwd1-fwd0 >= float64(ok)-float64(forwarder.DefaultBatchSize)
	fmt.Println()
	fmt.Printf("target sustained forwarder >= 1.0x ingest peak:  %.2fx (within one batch of what ingest wrote: %s; capacity %.1fx ingest's peak)  %s\n",
		fwdRate/ingestRate, strconv.FormatBool(keptUp), catchRate/ingestRate, verdict(keptUp))
	fmt.Printf("target lag not growing over %s:               early max %d, late max %d events  %s\n", sustain.Round(time.Second), early, late, verdict(bounded))
	fmt.Printf("target catch-up >= 0.5x raw async publish:        %.2fx  %s\n", ratio, verdict(ratio >= 0.5))
	return nil
}

// startBin starts bin/<name> with its output in a temporary log file.
func startBin(ctx context.Context, name string, args []string, env ...string) (*exec.Cmd, string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join("bin", name), args...)
	cmd.Env = append(os.Environ(), env...)
	logFile, err := os.CreateTemp("", "bench-"+name+"-*.log")
	if err != nil {
		return nil, "", fmt.Errorf("create log file: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start bin/%s (run make build): %w", name, err)
	}
	return cmd, logFile.Name(), nil
}

func stopBin(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
}

// forwarderLag is the committed log past the forwarder's position.
func forwarderLag(ctx context.Context, pool *pgxpool.Pool) (eventlog.Lag, error) {
	pos, err := eventlog.ReadPosition(ctx, pool, forwarder.ConsumerGroup)
	if err != nil {
		return eventlog.Lag{}, err
	}
	return eventlog.LagAfter(ctx, pool, pos)
}

func waitLagZero(ctx context.Context, pool *pgxpool.Pool, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if lag, err := forwarderLag(ctx, pool); err == nil && lag.Events == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("the forwarder did not catch up within %s", within)
}

// meanPayload is the mean size of the log's payloads, in bytes (from a sample).
func meanPayload(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	recs, err := eventlog.ReadCommitted(ctx, pool, eventlog.Position{}, 10_000)
	if err != nil {
		return 0, err
	}
	if len(recs) == 0 {
		return 0, errors.New("empty log")
	}
	total := 0
	for _, r := range recs {
		total += len(r.Payload)
	}
	return total / len(recs), nil
}

// rawAsyncPublish publishes n messages of size bytes to a stream of their own as fast as
// nats.go's async publish allows (at most its default 4,000 unacknowledged), and returns
// messages/s until the last ack.
func rawAsyncPublish(ctx context.Context, url string, n, size int) (float64, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, fmt.Errorf("open jetstream: %w", err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH_RAW", Subjects: []string{"bench.raw"}, Storage: jetstream.FileStorage, Replicas: 1}); err != nil {
		return 0, fmt.Errorf("create raw stream: %w", err)
	}
	defer func() { _ = js.DeleteStream(context.WithoutCancel(ctx), "BENCH_RAW") }()
	payload := []byte(strings.Repeat("x", size))
	start := time.Now()
	for range n {
		for {
			_, err := js.PublishAsync("bench.raw", payload)
			if err == nil {
				break
			}
			// 4,000 unacknowledged for over 200 ms: wait for acks, as nats bench does.
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				return 0, fmt.Errorf("publish: %w", err)
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(10 * time.Minute):
		return 0, errors.New("raw publishes not acknowledged within 10 minutes")
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// scrapeCounter reads one sample's value from a Prometheus text endpoint.
func scrapeCounter(url, sample string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("scrape %s: no %s", url, sample)
}
