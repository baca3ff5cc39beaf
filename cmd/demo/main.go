// Command demo runs Turnout end to end on an embedded default: it starts bin/ingest and
// bin/projector against DATABASE_URL (make demo provides a throwaway PostgreSQL), delivers a
// bundled, deterministic set of signed GoToWebinar events (internal/scenario) — shuffled, with redeliveries, one
// forged and one not-yet-understood delivery — waits until the analytics schema has caught
// up, checks it against the figures expected from the events, and prints the conversion
// tables. It then keeps everything running until Ctrl-C, or exits at once with DEMO_ONCE=1.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/webhook"

	"github.com/turnout-analytics/turnout/internal/scenario"
)

const demoSecret = "turnout-demo-secret"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	dbURL := getenv("DATABASE_URL")
	if dbURL == "" {
		return errors.New("DATABASE_URL is not set (run `make demo`, which starts a throwaway PostgreSQL)")
	}
	logDir, err := os.MkdirTemp("", "turnout-demo-")
	if err != nil {
		return fmt.Errorf("create log directory: %w", err)
	}
	ingestAddr, err := freeAddr()
	if err != nil {
		return err
	}
	projectorAddr, err := freeAddr()
	if err != nil {
		return err
	}
	env := append(os.Environ(), "DATABASE_URL="+dbURL, "G2W_SECRET_KEYS="+demoSecret,
		"INGEST_ADDR="+ingestAddr, "PROJECTOR_ADDR="+projectorAddr)

	ingest, err := start(ctx, "ingest", env, logDir)
	if err != nil {
		return err
	}
	defer ingest.stop()
	base := "http://" + ingestAddr
	if err := waitOK(ctx, base+"/readyz", 60*time.Second); err != nil {
		return fmt.Errorf("ingest did not become ready (see %s): %w", ingest.log, err)
	}
	projector, err := start(ctx, "projector", env, logDir)
	if err != nil {
		return err
	}
	defer projector.stop()
	if err := waitOK(ctx, "http://"+projectorAddr+"/healthz", 60*time.Second); err != nil {
		return fmt.Errorf("projector did not become ready (see %s): %w", projector.log, err)
	}

	sc := scenario.Generate(2026)
	events := sc.Events
	exp := expected(sc)
	counts, err := deliver(ctx, base, events)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Delivered %d GoToWebinar events (shuffled, with redeliveries) to %s/gotowebinar/callback:\n", len(events), base)
	for _, k := range []string{"stored", "duplicate", "refused (forged signature)", "quarantined (eventVersion 2.0.0)"} {
		fmt.Fprintf(stdout, "  %-36s %d\n", k, counts[k])
	}

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := waitCaughtUp(ctx, conn, sc.Expected, 60*time.Second); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nThe projector has caught up: %d registrants and %d attendees over %d webinars, each webinar as the events say.\n",
		exp.registrants, exp.attendees, exp.webinars)

	for _, q := range []struct{ title, sql string }{
		{"analytics.webinar_conversion", `SELECT webinar_key, webinar_title, coalesce(status, '') AS status, registrants, attendees,
			coalesce(round(conversion_rate * 100, 1)::text || ' %', '') AS conversion FROM analytics.webinar_conversion ORDER BY webinar_key`},
		{"analytics.conversion_by_source", `SELECT webinar_key, registration_source, registrants, attendees,
			coalesce(round(conversion_rate * 100, 1)::text || ' %', '') AS conversion FROM analytics.conversion_by_source ORDER BY webinar_key, registration_source`},
	} {
		if err := printQuery(ctx, stdout, conn, q.title, q.sql); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, `
Connect:
  psql '%s'
  ingest:     %s/gotowebinar/callback (secret %q), metrics at %s/metrics
  projector:  metrics at http://%s/metrics
  logs:       %s
`, dbURL, base, demoSecret, base, projectorAddr, logDir)
	if getenv("DEMO_ONCE") == "1" {
		return nil
	}
	fmt.Fprintln(stdout, "\nEverything keeps running; press Ctrl-C to stop (the throwaway database goes with it).")
	<-ctx.Done()
	return nil
}

type process struct {
	cmd *exec.Cmd
	log string
}

func start(ctx context.Context, name string, env []string, logDir string) (*process, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create %s log: %w", name, err)
	}
	cmd := exec.Command(filepath.Join("bin", name))
	cmd.Env, cmd.Stdout, cmd.Stderr = env, f, f
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start bin/%s (run make build): %w", name, err)
	}
	return &process{cmd: cmd, log: logPath}, nil
}

func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
	}
}

// deliver sends every event, signed, in a shuffled order with 8 concurrent senders, plus a
// redelivery of every fifth event, one forged delivery and one of an unknown event version.
func deliver(ctx context.Context, base string, events [][]byte) (map[string]int, error) {
	r := rand.New(rand.NewPCG(7, 7))
	queue := make([][]byte, 0, len(events)+len(events)/5)
	queue = append(queue, events...)
	for i := 0; i < len(events); i += 5 {
		queue = append(queue, events[i])
	}
	r.Shuffle(len(queue), func(i, j int) { queue[i], queue[j] = queue[j], queue[i] })

	counts := map[string]int{}
	var mu sync.Mutex
	var firstErr error
	work := make(chan []byte)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range work {
				status, code, err := post(ctx, base, body, demoSecret)
				mu.Lock()
				if err != nil || code != http.StatusOK {
					if firstErr == nil {
						firstErr = fmt.Errorf("delivery answered %d: %v", code, err)
					}
				} else {
					counts[status]++
				}
				mu.Unlock()
			}
		}()
	}
	for _, b := range queue {
		work <- b
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if _, code, err := post(ctx, base, events[0], "not-the-secret"); err != nil || code != http.StatusUnauthorized {
		return nil, fmt.Errorf("forged delivery answered %d, want 401: %v", code, err)
	}
	counts["refused (forged signature)"]++
	future := bytes.Replace(events[1], []byte(`"eventVersion":"1.0.0"`), []byte(`"eventVersion":"2.0.0"`), 1)
	if _, code, err := post(ctx, base, future, demoSecret); err != nil || code/100 != 4 {
		return nil, fmt.Errorf("eventVersion 2.0.0 answered %d, want 4xx: %v", code, err)
	}
	counts["quarantined (eventVersion 2.0.0)"]++
	return counts, nil
}

func post(ctx context.Context, base string, body []byte, secret string) (string, int, error) {
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/gotowebinar/callback", bytes.NewReader(body))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderTimestamp, ts)
	req.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte(secret), ts, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out.Status, resp.StatusCode, nil
}

type figures struct{ webinars, registrants, attendees int }

// expected sums the scenario's per-webinar figures into what analytics.webinar_conversion
// must show in total.
func expected(sc scenario.Scenario) figures {
	f := figures{webinars: len(sc.Expected)}
	for _, w := range sc.Expected {
		f.registrants += w.Registrants
		f.attendees += w.Attendees
	}
	return f
}

// waitCaughtUp waits until analytics.webinar_conversion shows, for every webinar, exactly
// the registrants and attendees the scenario implies.
func waitCaughtUp(ctx context.Context, conn *pgx.Conn, want map[string]scenario.Figures, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		got, err := conversion(ctx, conn)
		if err == nil && maps.Equal(got, want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("analytics did not catch up: have %v, want %v (last error: %v)", got, want, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func conversion(ctx context.Context, conn *pgx.Conn) (map[string]scenario.Figures, error) {
	rows, err := conn.Query(ctx, `SELECT webinar_key, registrants, attendees FROM analytics.webinar_conversion`)
	if err != nil {
		return nil, err
	}
	got := map[string]scenario.Figures{}
	var key string
	var f scenario.Figures
	_, err = pgx.ForEachRow(rows, []any{&key, &f.Registrants, &f.Attendees}, func() error {
		got[key] = f
		return nil
	})
	return got, err
}

func printQuery(ctx context.Context, w io.Writer, conn *pgx.Conn, title, sql string) error {
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return fmt.Errorf("query %s: %w", title, err)
	}
	defer rows.Close()
	fmt.Fprintf(w, "\n%s\n", title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var head []string
	for _, f := range rows.FieldDescriptions() {
		head = append(head, f.Name)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return fmt.Errorf("read %s: %w", title, err)
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			cells[i] = fmt.Sprint(v)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", title, err)
	}
	return tw.Flush()
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitOK(ctx context.Context, u string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("timed out")
}
