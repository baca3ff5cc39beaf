package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/projections"
	"github.com/turnout-analytics/turnout/internal/projector"
	"github.com/turnout-analytics/turnout/migrations"
)

// benchLive measures the live projector against its targets, in one run on one database:
//
//  1. catch-up: a backlog of -backlog events (the replay generator's stream) applied by the
//     live projector from an empty analytics, beside `projector rebuild` of the same log;
//  2. sustained: -senders closed-loop senders into bin/ingest for -sustain, the projector's
//     lag sampled every second: it must not grow;
//  3. freshness: deliveries at a fixed rate (1,000/s and 100/s), each registering someone for a
//     webinar of its own, timed from its 2xx until its registrant is counted in
//     analytics.webinar_conversion.
func benchLive(ctx context.Context, admin string, args []string) error {
	fs := flag.NewFlagSet("live", flag.ContinueOnError)
	backlog := fs.Int64("backlog", 500_000, "events in the catch-up backlog (0: skip the catch-up)")
	sustain := fs.Duration("sustain", 60*time.Second, "how long the closed-loop load runs (0: skip it)")
	senders := fs.Int("senders", 32, "closed-loop senders")
	duration := fs.Duration("duration", 20*time.Second, "how long each fixed-rate freshness run sends")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dbURL, err := freshDatabase(ctx, admin, "turnout_bench_live")
	if err != nil {
		return err
	}
	if err := migrations.Up(dbURL); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
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
	start := func(name string, ready string) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, filepath.Join("bin", name))
		cmd.Env = env
		f, err := os.CreateTemp("", "bench-live-"+name+"-*.log")
		if err != nil {
			return nil, fmt.Errorf("create log file: %w", err)
		}
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start bin/%s (run make build): %w", name, err)
		}
		procs = append(procs, cmd)
		if err := waitReady(ctx, ready, 120*time.Second); err != nil {
			return nil, fmt.Errorf("%s did not become ready (log %s): %w", name, f.Name(), err)
		}
		return cmd, nil
	}
	stop := func(cmd *exec.Cmd) {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		procs = slices.DeleteFunc(procs, func(c *exec.Cmd) bool { return c == cmd })
	}

	// 1. Catch-up through the live path, then a rebuild of the same log.
	var liveRate, rebuildRate float64
	if *backlog > 0 {
		if liveRate, rebuildRate, err = measureCatchUp(ctx, conn, *backlog, env, start, stop, projectorAddr); err != nil {
			return err
		}
	}

	// 2 and 3 run with ingest and the live projector.
	if _, err := start("ingest", "http://"+opsAddr+"/readyz"); err != nil {
		return err
	}
	if _, err := start("projector", "http://"+projectorAddr+"/healthz"); err != nil {
		return err
	}
	// Ready is not built: with no backlog phase, the projector builds analytics first.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		v, ok, err := projections.StoredVersion(ctx, conn, projections.Schema)
		if err != nil {
			return err
		}
		if ok && v == projections.Version {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the projector did not build analytics within 2 minutes")
		}
	}
	base := "http://" + ingestAddr
	var seq atomic.Int64
	seq.Store(*backlog) // registrant keys and event keys after the backlog's
	var sustained sustainedLag
	if *sustain > 0 {
		if sustained, err = measureSustained(ctx, conn, base, &seq, *senders, *sustain); err != nil {
			return err
		}
		if err := waitCaughtUp(ctx, conn, 5*time.Minute); err != nil {
			return err
		}
	}
	fresh := map[float64]freshness{}
	for _, rate := range []float64{1000, 100} {
		f, err := measureFreshness(ctx, conn, base, &seq, rate, *duration)
		if err != nil {
			return err
		}
		fresh[rate] = f
	}

	fmt.Println()
	if *backlog > 0 {
		ratio := liveRate / rebuildRate
		fmt.Printf("target live catch-up >= 0.5x rebuild:          %.2fx (%.0f vs %.0f events/s)  %s\n",
			ratio, liveRate, rebuildRate, verdict(ratio >= 0.5))
	}
	if *sustain > 0 {
		fmt.Printf("target sustained lag bounded (does not grow):  %s  %s\n", sustained, verdict(sustained.bounded()))
	}
	for _, rate := range []float64{1000, 100} {
		limit := 500 * time.Millisecond
		if rate == 100 {
			limit = 100 * time.Millisecond
		}
		f := fresh[rate]
		fmt.Printf("target p99 2xx→visible <= %3d ms at %4.0f/s:    %s  %s\n", limit.Milliseconds(), rate, f.p99,
			verdict(f.p99 <= limit && f.ok()))
	}
	return nil
}

// measureCatchUp generates the backlog, times the live projector applying it from an empty
// analytics, then times `projector rebuild` of the same log; it returns both rates.
func measureCatchUp(ctx context.Context, conn *pgx.Conn, backlog int64, env []string,
	start func(string, string) (*exec.Cmd, error), stop func(*exec.Cmd), projectorAddr string) (liveRate, rebuildRate float64, err error) {
	began := time.Now()
	const chunk = 100_000
	for lo := int64(1); lo <= backlog; lo += chunk {
		if _, err := conn.Exec(ctx, generateSQL, lo, min(lo+chunk-1, backlog)); err != nil {
			return 0, 0, fmt.Errorf("generate events: %w", err)
		}
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE "+eventlog.Table); err != nil {
		return 0, 0, fmt.Errorf("vacuum log: %w", err)
	}
	fmt.Printf("generated a backlog of %d events in %s\n", backlog, time.Since(began).Round(time.Millisecond))
	// An empty analytics at the current version: the projector starts live, at the
	// beginning of the log, instead of building analytics with a rebuild.
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return projections.Create(ctx, tx, projections.Schema) }); err != nil {
		return 0, 0, fmt.Errorf("create empty analytics: %w", err)
	}
	began = time.Now()
	proj, err := start("projector", "http://"+projectorAddr+"/healthz")
	if err != nil {
		return 0, 0, err
	}
	if err := waitCaughtUp(ctx, conn, 30*time.Minute); err != nil {
		return 0, 0, err
	}
	catchUp := time.Since(began)
	stop(proj)
	liveRate = float64(backlog) / catchUp.Seconds()
	fmt.Printf("live catch-up: %d events from an empty analytics in %s: %.0f events/s (process start included)\n",
		backlog, catchUp.Round(time.Millisecond), liveRate)

	rebuild := exec.CommandContext(ctx, filepath.Join("bin", "projector"), "rebuild", "-migrate=false")
	rebuild.Env = env
	began = time.Now()
	if out, err := rebuild.CombinedOutput(); err != nil {
		return 0, 0, fmt.Errorf("projector rebuild: %w\n%s", err, out)
	}
	rebuildDur := time.Since(began)
	rebuildRate = float64(backlog) / rebuildDur.Seconds()
	fmt.Printf("baseline projector rebuild: the same %d events in %s: %.0f events/s (process start included)\n",
		backlog, rebuildDur.Round(time.Millisecond), rebuildRate)

	return liveRate, rebuildRate, nil
}

// waitCaughtUp waits until the live projector's position is past every committed row.
func waitCaughtUp(ctx context.Context, conn *pgx.Conn, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		pos, err := eventlog.ReadPosition(ctx, conn, projector.ConsumerGroup)
		if err != nil {
			return err
		}
		// One row after the position or none: cheap, unlike counting the backlog.
		_, left, err := eventlog.BatchEnd(ctx, conn, pos, 1)
		if err != nil {
			return err
		}
		if left == 0 && pos.Offset > 0 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the live projector did not catch up within %s", within)
}

// sendFunc returns a sender of unique signed deliveries, each for a webinar of its own, and
// records the time of each 2xx by webinar key in acked (when not nil).
func sendFunc(base string, seq *atomic.Int64, acked func(key string, at time.Time)) func(context.Context) (int, error) {
	const webinarBase = 9200000000000000000
	return func(ctx context.Context) (int, error) {
		n := seq.Add(1)
		key := strconv.FormatInt(webinarBase+n, 10)
		body := strings.Replace(fmt.Sprintf(deliveryBody, n, n, n), "9100000000000000001", key, 2)
		code, err := postSigned(ctx, base, []byte(body))
		if err == nil && code/100 == 2 && acked != nil {
			acked(key, time.Now())
		}
		return code, err
	}
}

// sustainedLag is the projector's lag (events) sampled every second under closed-loop load.
type sustainedLag struct {
	rate    float64 // deliveries/s ingest accepted
	samples []int64
}

// window is the mean lag over samples [from, to).
func (s sustainedLag) window(from, to int) float64 {
	from, to = min(from, len(s.samples)), min(to, len(s.samples))
	if to <= from {
		return 0
	}
	var sum int64
	for _, v := range s.samples[from:to] {
		sum += v
	}
	return float64(sum) / float64(to-from)
}

// bounded: the lag over the last quarter is no larger than over the second quarter, give
// or take half a second of ingest; a projector that falls behind grows it by its deficit
// every second.
func (s sustainedLag) bounded() bool {
	n := len(s.samples)
	return n >= 8 && s.window(3*n/4, n) <= s.window(n/4, n/2)+0.5*s.rate
}

func (s sustainedLag) String() string {
	n := len(s.samples)
	return fmt.Sprintf("ingest %.0f/s; lag mean %.0f events in the 2nd quarter, %.0f in the last, max %d",
		s.rate, s.window(n/4, n/2), s.window(3*n/4, n), slices.Max(append([]int64{0}, s.samples...)))
}

// measureSustained runs the closed-loop load while sampling the projector's lag.
func measureSustained(ctx context.Context, conn *pgx.Conn, base string, seq *atomic.Int64, senders int, d time.Duration) (sustainedLag, error) {
	var s sustainedLag
	stopSampling := make(chan struct{})
	sampled := make(chan error, 1)
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				sampled <- nil
				return
			case <-tick.C:
			}
			pos, err := eventlog.ReadPosition(ctx, conn, projector.ConsumerGroup)
			if err == nil {
				var lag eventlog.Lag
				if lag, err = eventlog.LagAfter(ctx, conn, pos); err == nil {
					s.samples = append(s.samples, lag.Events)
				}
			}
			if err != nil {
				sampled <- err
				return
			}
		}
	}()
	ok, _, err := closedLoop(ctx, sendFunc(base, seq, nil), senders, d)
	close(stopSampling)
	if serr := <-sampled; serr != nil {
		return s, fmt.Errorf("sample lag: %w", serr)
	}
	if err != nil {
		return s, err
	}
	s.rate = float64(ok) / d.Seconds()
	fmt.Printf("sustained: %d closed-loop senders for %s: %s\n", senders, d, s)
	fmt.Printf("sustained: lag samples (events, 1 s apart): %v\n", s.samples)
	return s, nil
}

// freshness is one fixed-rate run's 2xx → visible latencies.
type freshness struct {
	visible         []time.Duration
	missing, errors int
	p99             time.Duration
}

func (f freshness) ok() bool { return f.missing == 0 && f.errors == 0 }

// measureFreshness sends at rate for d and times each delivery from its 2xx until its
// webinar shows a registrant in analytics.webinar_conversion.
func measureFreshness(ctx context.Context, conn *pgx.Conn, base string, seq *atomic.Int64, rate float64, d time.Duration) (freshness, error) {
	var mu sync.Mutex
	acked := map[string]time.Time{} // webinar key → time of the 2xx
	var visible []time.Duration
	send := sendFunc(base, seq, func(key string, at time.Time) {
		mu.Lock()
		acked[key] = at
		mu.Unlock()
	})

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

	_, errs, err := openLoop(ctx, send, rate, d)
	if err != nil {
		close(stopWatch)
		<-watchDone
		return freshness{}, err
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
		return freshness{}, err
	}
	mu.Lock()
	defer mu.Unlock()
	f := freshness{visible: visible, missing: len(acked), errors: errs, p99: pct(visible, 99)}
	fmt.Printf("freshness: %.0f deliveries/s for %s: %d acknowledged, %d errors, %d never became visible\n",
		rate, d, len(visible)+len(acked), errs, len(acked))
	fmt.Printf("freshness: 2xx → visible in analytics.webinar_conversion: p50 %s, p99 %s, max %s (10 ms polling)\n",
		pct(visible, 50), f.p99, pct(visible, 100))
	return f, nil
}
