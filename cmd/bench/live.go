package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// benchLive measures end-to-end freshness: deliveries sent at a fixed rate into bin/ingest,
// with bin/projector running, timed from each delivery's 2xx until its registrant is counted
// in analytics.webinar_conversion. Every delivery registers someone for a webinar of its own,
// so visibility is observed per delivery.
func benchLive(ctx context.Context, admin string, args []string) error {
	fs := flag.NewFlagSet("live", flag.ContinueOnError)
	rate := fs.Float64("rate", 1000, "deliveries per second")
	duration := fs.Duration("duration", 20*time.Second, "how long to send")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dbURL, err := freshDatabase(ctx, admin, "turnout_bench_live")
	if err != nil {
		return err
	}
	ingestAddr, err := freeAddr()
	if err != nil {
		return err
	}
	projectorAddr, err := freeAddr()
	if err != nil {
		return err
	}
	opsAddr, err := freeAddr()
	if err != nil {
		return err
	}
	env := append(os.Environ(), "DATABASE_URL="+dbURL, "G2W_SECRET_KEYS="+benchSecret,
		"INGEST_ADDR="+ingestAddr, "PROJECTOR_ADDR="+projectorAddr, "INGEST_OPS_ADDR="+opsAddr)
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(os.Interrupt)
			_ = p.Wait()
		}
	}()
	for _, name := range []string{"ingest", "projector"} {
		cmd := exec.CommandContext(ctx, filepath.Join("bin", name))
		cmd.Env = env
		f, err := os.CreateTemp("", "bench-live-"+name+"-*.log")
		if err != nil {
			return fmt.Errorf("create log file: %w", err)
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start bin/%s (run make build): %w", name, err)
		}
		procs = append(procs, cmd)
		ready := "http://" + opsAddr + "/readyz"
		if name == "projector" {
			ready = "http://" + projectorAddr + "/healthz"
		}
		if err := waitReady(ctx, ready, 60*time.Second); err != nil {
			return fmt.Errorf("%s did not become ready (log %s): %w", name, f.Name(), err)
		}
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)

	base := "http://" + ingestAddr
	const webinarBase = 9200000000000000000
	var mu sync.Mutex
	acked := map[string]time.Time{} // webinar key → time of the 2xx
	var visible []time.Duration
	var seq int64
	var seqMu sync.Mutex
	send := func(ctx context.Context) (int, error) {
		seqMu.Lock()
		seq++
		n := seq
		seqMu.Unlock()
		key := strconv.FormatInt(webinarBase+n, 10)
		body := strings.Replace(fmt.Sprintf(deliveryBody, n, n, n), "9100000000000000001", key, 2)
		code, err := postSigned(ctx, base, []byte(body))
		if err == nil && code/100 == 2 {
			mu.Lock()
			acked[key] = time.Now()
			mu.Unlock()
		}
		return code, err
	}

	// The watcher polls the view for acknowledged-but-not-yet-seen webinars every 10 ms.
	stopWatch := make(chan struct{})
	watchDone := make(chan error, 1)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopWatch:
				watchDone <- nil
				return
			case <-tick.C:
			}
			// Ask only for the oldest acknowledged keys: the projector applies in log
			// order, so they are the next to appear, and a bounded query keeps the
			// watcher from competing for the CPU it is measuring. A key that appears
			// before it is asked for is recorded late, which can only overstate latency.
			type ackedKey struct {
				key string
				at  time.Time
			}
			mu.Lock()
			waiting := make([]ackedKey, 0, len(acked))
			for k, at := range acked {
				waiting = append(waiting, ackedKey{k, at})
			}
			mu.Unlock()
			slices.SortFunc(waiting, func(a, b ackedKey) int { return a.at.Compare(b.at) })
			pending := make([]string, 0, 256)
			for _, w := range waiting[:min(len(waiting), 256)] {
				pending = append(pending, w.key)
			}
			if len(pending) == 0 {
				continue
			}
			rows, err := conn.Query(ctx, `SELECT c.webinar_key FROM unnest($1::text[]) AS k(key) JOIN analytics.webinar_conversion c ON c.webinar_key = k.key WHERE c.registrants > 0`, pending)
			if err != nil {
				watchDone <- fmt.Errorf("poll webinar_conversion: %w", err)
				return
			}
			now := time.Now()
			var seen []string
			for rows.Next() {
				var k string
				if err := rows.Scan(&k); err == nil {
					seen = append(seen, k)
				}
			}
			rows.Close()
			mu.Lock()
			for _, k := range seen {
				visible = append(visible, now.Sub(acked[k]))
				delete(acked, k)
			}
			mu.Unlock()
		}
	}()

	_, errs, err := openLoop(ctx, send, *rate, *duration)
	if err != nil {
		return err
	}
	// Let the projector drain, then stop watching.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		left := len(acked)
		mu.Unlock()
		if left == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stopWatch)
	if err := <-watchDone; err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Printf("live: %.0f deliveries/s for %s: %d acknowledged, %d errors, %d never became visible\n",
		*rate, *duration, len(visible)+len(acked), errs, len(acked))
	fmt.Printf("live: 2xx → visible in analytics.webinar_conversion: p50 %s, p99 %s, max %s (10 ms polling)\n",
		pct(visible, 50), pct(visible, 99), pct(visible, 100))
	p99 := pct(visible, 99)
	fmt.Println()
	fmt.Printf("target p99 2xx→visible <= 500 ms:   %s  %s\n", p99, verdict(p99 <= 500*time.Millisecond && len(acked) == 0 && errs == 0))
	return nil
}
