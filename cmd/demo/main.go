// Command demo runs Turnout end to end on an embedded default: a local GoToWebinar
// (bin/g2wsim) with two organizers, ingest and the projector against DATABASE_URL (make demo
// provides a throwaway PostgreSQL). It wires them the way a company wires Turnout to a real
// account — `g2wctl login` once per organizer (the demo plays the browser), `g2wctl secret
// create` for ingest's key, ingest started with it (so it answers GoTo's callback check),
// `g2wctl setup` for the webhooks and every organizer's user subscriptions, `g2wctl doctor`
// to check each organizer and event — then has the emulator deliver a
// deterministic scenario (internal/scenario: shuffled, with redeliveries) as signed POSTs with
// a fifth of them dropped, and sends one forged and one not-yet-understood delivery itself.
// It shows the figures the dropped deliveries leave wrong, runs `reconcile once` (bin/reconcile,
// with both organizers' g2wctl logins, against the emulator's REST reporting API), checks
// analytics shows exactly the figures of the full scenario and the emulator's attendance
// seconds, and that a second `reconcile once` appends nothing, and prints the conversion and
// attendance tables, each webinar with its organizer (the scenario's webinars are shared
// between the two). It keeps everything running until Ctrl-C, or exits at once with DEMO_ONCE=1.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/g2wsim"
	"github.com/turnout-analytics/turnout/internal/webhook"

	"github.com/turnout-analytics/turnout/internal/scenario"
)

// binDir holds the binaries the demo runs (TURNOUT_BIN, default bin/).
var binDir string

// The OAuth client the demo registers with its local GoToWebinar (g2wsim).
const (
	demoClientID     = "turnout-demo"
	demoClientSecret = "turnout-demo-client-secret"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	binDir = getenv("TURNOUT_BIN") // where make build put the binaries
	if binDir == "" {
		binDir = "bin"
	}
	dbURL := getenv("DATABASE_URL")
	if dbURL == "" {
		return errors.New("DATABASE_URL is not set (run `make demo`, which starts a throwaway PostgreSQL)")
	}
	logDir, err := os.MkdirTemp("", "turnout-demo-")
	if err != nil {
		return fmt.Errorf("create log directory: %w", err)
	}
	var addrs [4]string
	for i := range addrs {
		if addrs[i], err = freeAddr(); err != nil {
			return err
		}
	}
	simAddr, ingestAddr, projectorAddr, opsAddr := addrs[0], addrs[1], addrs[2], addrs[3]
	sim := "http://" + simAddr

	// A local GoToWebinar: its management API, OAuth2 server and delivery engine.
	g2wsim, err := start(ctx, "g2wsim", append(os.Environ(), "G2WSIM_ADDR="+simAddr,
		"G2WSIM_CLIENT_ID="+demoClientID, "G2WSIM_CLIENT_SECRET="+demoClientSecret,
		"G2WSIM_SEED="+strconv.Itoa(demoSeed), "G2WSIM_SHUFFLE=true", "G2WSIM_DUPLICATES=0.2", "G2WSIM_DROP="+dropRate,
		"G2WSIM_ORGANIZERS="+strconv.Itoa(len(organizers))), logDir)
	if err != nil {
		return err
	}
	defer g2wsim.stop()
	if err := waitOK(ctx, sim+"/oauth/authorize?response_type=code&client_id="+demoClientID+"&redirect_uri=http://127.0.0.1/", 30*time.Second, http.StatusFound); err != nil {
		return fmt.Errorf("g2wsim did not come up (see %s): %w", g2wsim.log, err)
	}
	g2wctlEnv := append(os.Environ(), "G2W_CLIENT_ID="+demoClientID, "G2W_CLIENT_SECRET="+demoClientSecret,
		"G2W_API_URL="+sim+"/G2W/rest/v2", "G2W_AUTH_URL="+sim+"/oauth", "G2W_CLIENT_CREDENTIALS=false",
		"G2W_TOKEN_FILE="+filepath.Join(logDir, "g2w-token.json"))
	g2wctl := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, filepath.Join(binDir, "g2wctl"), args...)
		cmd.Env = g2wctlEnv
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			return out.String(), fmt.Errorf("g2wctl %s: %w\n%s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String(), nil
	}

	// Each organizer logs in with their own account: GoTo delivers an organizer's events only
	// through subscriptions made with their own token.
	for _, o := range organizers {
		if err := login(ctx, g2wctlEnv, o.profile, o.email); err != nil {
			return err
		}
	}
	// The secret key first: ingest needs it to verify what GoTo will sign, and must be up,
	// answering GoTo's GET on the callback, before setup creates the webhooks.
	out, err := g2wctl("secret", "create", "--profile", organizers[0].profile)
	if err != nil {
		return err
	}
	secret, ok := strings.CutPrefix(strings.TrimSpace(out), "G2W_SECRET_KEYS=")
	if !ok || secret == "" {
		return fmt.Errorf("g2wctl secret create printed no key: %q", out)
	}
	env := append(os.Environ(), "DATABASE_URL="+dbURL, "G2W_SECRET_KEYS="+secret,
		"INGEST_ADDR="+ingestAddr, "PROJECTOR_ADDR="+projectorAddr, "INGEST_OPS_ADDR="+opsAddr)
	ingest, err := start(ctx, "ingest", env, logDir)
	if err != nil {
		return err
	}
	defer ingest.stop()
	base := "http://" + ingestAddr
	if err := waitOK(ctx, "http://"+opsAddr+"/readyz", 60*time.Second, http.StatusOK); err != nil {
		return fmt.Errorf("ingest did not become ready (see %s): %w", ingest.log, err)
	}
	projector, err := start(ctx, "projector", env, logDir)
	if err != nil {
		return err
	}
	defer projector.stop()
	if err := waitOK(ctx, "http://"+projectorAddr+"/healthz", 60*time.Second, http.StatusOK); err != nil {
		return fmt.Errorf("projector did not become ready (see %s): %w", projector.log, err)
	}

	// Wire the account to the callback, as a user would with the real GoTo; then check it.
	callback := base + "/gotowebinar/callback"
	if _, err := g2wctl("setup", "--callback", callback); err != nil {
		return err
	}
	doctor, err := g2wctl("doctor", "--callback", callback)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "g2wctl login for %d organizers, then setup against the local GoToWebinar at %s; g2wctl doctor:\n%s\n",
		len(organizers), sim, indent(doctor))

	report, err := simulate(ctx, sim)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "g2wsim delivered %d of the scenario's %d events, dropping %d (G2WSIM_DROP=%s: the holes an outage leaves), %d redelivered, in a shuffled order, to %s: %d accepted, %d failed, %d retried\n",
		report.Events-report.Dropped, report.Events, report.Dropped, dropRate, report.Duplicates, callback, report.Delivered, report.Failed, report.Retries)
	if report.Failed > 0 || report.Unrouted > 0 {
		return fmt.Errorf("g2wsim could not deliver everything it did not drop: %+v", report)
	}
	if report.Dropped == 0 {
		return fmt.Errorf("g2wsim dropped no delivery: the reconciliation below would prove nothing: %+v", report)
	}
	if err := misfits(ctx, base, secret); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "A forged delivery was refused (401) and one without an eventKey was quarantined (4xx).")

	// reconcile reads the same token file as g2wctl: both organizers' logins.
	reconcileEnv := append(slices.Clone(g2wctlEnv), "DATABASE_URL="+dbURL)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := reconcileDemo(ctx, stdout, conn, reconcileEnv, logDir, report.Expected); err != nil {
		return err
	}
	if err := checkOrganizers(ctx, conn, organizers); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Every organizer's webinars are there: %d organizers.\n", len(organizers))
	deleted, err := deletedWebinars(scenario.Generate(demoSeed))
	if err != nil {
		return err
	}
	fromREST, unreachable, err := checkWebinarAttributes(ctx, conn, deleted)
	if err != nil {
		return err
	}
	if fromREST == 0 {
		// The drops are seeded (demoSeed): they always take a webinar.created.
		return errors.New("no webinar has its title from reconcile's webinar snapshots alone: the check above proves nothing")
	}
	fmt.Fprintf(stdout, "Every webinar has its title and organizer in analytics; %d of them only from reconcile's webinar snapshots (their webinar.created was dropped).\n", fromREST)
	for _, k := range unreachable {
		fmt.Fprintf(stdout, "  (webinar %s is DELETED and none of its webinar webhooks arrived: GoTo's REST API lists no deleted webinar, so it has no title or organizer)\n", k)
	}

	for _, q := range []struct{ title, sql string }{
		{"analytics.webinar_conversion", `SELECT c.webinar_key, coalesce(w.organizer_key, '(unknown)') AS organizer_key, c.webinar_title, coalesce(c.status, '') AS status, c.registrants, c.attendees,
			coalesce(round(c.conversion_rate * 100, 1)::text || ' %', '') AS conversion,
			coalesce(round(c.avg_attendance_seconds / 60, 1)::text || ' min', '') AS avg_attendance,
			coalesce(c.total_attendance_seconds::text, '') AS total_attendance_seconds
			FROM analytics.webinar_conversion c JOIN analytics.webinars w USING (webinar_key) ORDER BY w.organizer_key, c.webinar_key`},
		{"analytics.conversion_by_source", `SELECT s.webinar_key, coalesce(w.organizer_key, '(unknown)') AS organizer_key, coalesce(s.registration_source, '(none)') AS registration_source, s.registrants, s.attendees,
			coalesce(round(s.conversion_rate * 100, 1)::text || ' %', '') AS conversion
			FROM analytics.conversion_by_source s JOIN analytics.webinars w USING (webinar_key) ORDER BY w.organizer_key, s.webinar_key, registration_source`},
		{"analytics.session_attendance", `SELECT a.webinar_key, a.session_key, coalesce(to_char(s.start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), '') AS actual_start,
			coalesce(to_char(s.end_time AT TIME ZONE 'UTC', 'HH24:MI'), '') AS actual_end, a.attendees,
			coalesce(round(a.avg_attendance_seconds / 60, 1)::text || ' min', '') AS avg_attendance,
			coalesce(a.total_attendance_seconds::text, '') AS total_attendance_seconds
			FROM analytics.session_attendance a LEFT JOIN analytics.sessions s USING (webinar_key, session_key) ORDER BY a.webinar_key, a.session_key`},
	} {
		if err := printQuery(ctx, stdout, conn, q.title, q.sql); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, `
Connect:
  psql '%s'
  ingest:     %s/gotowebinar/callback, metrics at http://%s/metrics
  projector:  metrics at http://%s/metrics
  g2wsim:     %s (deliver the scenario again: curl -X POST %s/_sim/deliver)
  logs:       %s
`, dbURL, base, opsAddr, projectorAddr, sim, sim, logDir)
	if getenv("DEMO_ONCE") == "1" {
		return nil
	}
	fmt.Fprintln(stdout, "\nEverything keeps running; press Ctrl-C to stop (the throwaway database goes with it).")
	<-ctx.Done()
	return nil
}

// demoOrganizer is one organizer of the emulated account and the g2wctl profile they log in as.
type demoOrganizer struct{ profile, email, key string }

// organizers are g2wsim's first two (g2wsim.DefaultOrganizers), logged in as two profiles.
var organizers = func() []demoOrganizer {
	var out []demoOrganizer
	for i, o := range g2wsim.DefaultOrganizers(2) {
		out = append(out, demoOrganizer{profile: []string{"alice", "bob"}[i], email: o.Email, key: o.Key})
	}
	return out
}()

// login runs `g2wctl login` for one organizer and plays the browser: it follows the URL that
// login prints to the emulator's authorize endpoint, which redirects back to login's listener.
func login(ctx context.Context, env []string, profile, email string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "g2wctl"), "login", "--profile", profile, "--login-hint", email, "--timeout", "30s")
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("g2wctl login: %w", err)
	}
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start g2wctl login: %w", err)
	}
	var said strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		said.WriteString(line + "\n")
		if strings.HasPrefix(line, "http://") || strings.HasPrefix(line, "https://") {
			resp, err := http.Get(line)
			if err != nil {
				return fmt.Errorf("follow the login URL: %w", err)
			}
			_ = resp.Body.Close()
			break
		}
	}
	_, _ = io.Copy(io.Discard, stderr)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("g2wctl login --profile %s: %w\n%s", profile, err, said.String())
	}
	return nil
}

// checkOrganizers checks analytics holds webinars of every organizer, and of no other.
func checkOrganizers(ctx context.Context, conn *pgx.Conn, orgs []demoOrganizer) error {
	rows, err := conn.Query(ctx, `SELECT DISTINCT organizer_key FROM analytics.webinars WHERE organizer_key IS NOT NULL ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("query organizers: %w", err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("read organizers: %w", err)
	}
	var want []string
	for _, o := range orgs {
		want = append(want, o.key)
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("analytics.webinars has organizers %v, want %v", got, want)
	}
	return nil
}

// checkWebinarAttributes checks, after reconcile, that every webinar has its title (in
// analytics.webinars and webinar_conversion) and its organizer: a webinar whose
// webinar.created was dropped has them from reconcile's turnout.webinar.snapshot. The one
// exception is a deleted webinar none of whose webinar webhooks arrived (GoTo's REST API
// lists no deleted webinar); those are returned, with how many webinars have their
// attributes from REST alone (no webinar webhook; created and changed are the webhook layers).
func checkWebinarAttributes(ctx context.Context, conn *pgx.Conn, deleted map[string]bool) (fromREST int, unreachable []string, err error) {
	err = conn.QueryRow(ctx, `SELECT count(*) FROM analytics.webinars
		WHERE created IS NULL AND changed IS NULL AND title IS NOT NULL AND organizer_key IS NOT NULL`).Scan(&fromREST)
	if err != nil {
		return 0, nil, fmt.Errorf("count webinars known from REST: %w", err)
	}
	rows, err := conn.Query(ctx, `SELECT w.webinar_key FROM analytics.webinars w
		JOIN analytics.webinar_conversion c USING (webinar_key)
		WHERE w.title IS NULL OR w.organizer_key IS NULL OR c.webinar_title IS NULL ORDER BY 1`)
	if err != nil {
		return 0, nil, fmt.Errorf("query webinars without title or organizer: %w", err)
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, nil, fmt.Errorf("read webinars without title or organizer: %w", err)
	}
	var lacking []string
	for _, k := range missing {
		if deleted[k] {
			unreachable = append(unreachable, k)
		} else {
			lacking = append(lacking, k)
		}
	}
	if len(lacking) > 0 {
		return 0, nil, fmt.Errorf("after reconcile, webinars %v still lack their title or organizer in analytics", lacking)
	}
	return fromREST, unreachable, nil
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
	cmd := exec.Command(filepath.Join(binDir, name))
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

// simulate has g2wsim deliver its scenario to every active webhook and returns its report.
func simulate(ctx context.Context, sim string) (g2wsim.Report, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sim+"/_sim/deliver", nil)
	if err != nil {
		return g2wsim.Report{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return g2wsim.Report{}, fmt.Errorf("ask g2wsim to deliver: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return g2wsim.Report{}, fmt.Errorf("g2wsim deliver: %s: %s", resp.Status, b)
	}
	var r g2wsim.Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return g2wsim.Report{}, fmt.Errorf("read g2wsim report: %w", err)
	}
	return r, nil
}

// misfits sends what GoTo never would: a forged delivery (must be refused with 401) and an
// authentic one of an event version Turnout does not understand yet (quarantined, 4xx).
func misfits(ctx context.Context, base, secret string) error {
	body := scenario.Generate(demoSeed).Events[0]
	if _, code, err := post(ctx, base, body, "not-the-secret"); err != nil || code != http.StatusUnauthorized {
		return fmt.Errorf("forged delivery answered %d, want 401: %v", code, err)
	}
	// Without an eventKey an authentic delivery cannot be de-duplicated, so it is the one
	// kind of JSON event ingest refuses (and quarantines).
	unkeyed := bytes.Replace(body, []byte(`"eventKey":"`), []byte(`"noEventKey":"`), 1)
	if _, code, err := post(ctx, base, unkeyed, secret); err != nil || code/100 != 4 {
		return fmt.Errorf("a delivery without eventKey answered %d, want 4xx: %v", code, err)
	}
	return nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
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

// expected sums per-webinar figures into totals for the summary line.
func expected(perWebinar map[string]scenario.Figures) figures {
	f := figures{webinars: len(perWebinar)}
	for _, w := range perWebinar {
		f.registrants += w.Registrants
		f.attendees += w.Attendees
	}
	return f
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

func waitOK(ctx context.Context, u string, within time.Duration, want int) error {
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if resp, err := noRedirect.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
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
