package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/g2wsim/reporting"
	"github.com/turnout-analytics/turnout/internal/projector"
	"github.com/turnout-analytics/turnout/internal/scenario"
)

// demoSeed is the seed of the scenario g2wsim delivers and serves over REST; the demo
// regenerates the same scenario to know the emulator's ground truth.
const demoSeed = 2026

// dropRate is the fraction of webhook deliveries g2wsim never makes (G2WSIM_DROP): the holes a
// deploy or an outage leaves, which only `reconcile` can fill.
const dropRate = "0.2"

// reconcileOnce runs `reconcile once` over every g2wctl profile of the demo against g2wsim's
// REST reporting API, and returns the line it printed. Its logs go to reconcile.log.
func reconcileOnce(ctx context.Context, env []string, logDir string) (string, error) {
	f, err := os.OpenFile(filepath.Join(logDir, "reconcile.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("open reconcile log: %w", err)
	}
	defer f.Close()
	var profiles []string
	for _, o := range organizers {
		profiles = append(profiles, o.profile)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "reconcile"), "once", "-since", reconcileWindow(time.Now()),
		"-profiles", strings.Join(profiles, ","))
	var out strings.Builder
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, f
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("reconcile once (see %s): %w", f.Name(), err)
	}
	return strings.TrimSpace(out.String()), nil
}

// reconcileWindow is a -since that reaches back before the scenario's first webinar from now
// (the scenario happens in November 2026, whenever the demo runs), and at least 720h.
func reconcileWindow(now time.Time) string {
	hours := int(now.Sub(scenario.Base).Hours()) + 48
	return fmt.Sprintf("%dh", max(hours, 720))
}

// waitProjected waits until the live projector has applied every event of the log that this
// connection sees. Not BatchEnd's committed horizon: another transaction still open (the
// projector's own, ingest's) holds that back, and rows past it would be missed.
func waitProjected(ctx context.Context, conn *pgx.Conn, within time.Duration) error {
	deadline := time.Now().Add(within)
	end := eventlog.Position{Epoch: math.MaxInt32, TxID: math.MaxInt64, Offset: math.MaxInt64}
	for {
		pos, err := eventlog.ReadPosition(ctx, conn, projector.ConsumerGroup)
		if err != nil {
			return fmt.Errorf("read the projector's position: %w", err)
		}
		// The demo's log is small: reading what is left is cheap.
		left, err := eventlog.ReadRange(ctx, conn, pos, end)
		if err != nil {
			return fmt.Errorf("look past the projector's position: %w", err)
		}
		if len(left) == 0 && pos.Offset > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the projector did not catch up with the log within %s", within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// deletedWebinars returns the keys of the scenario's webinars cancelled with webinar.changed
// status DELETED. GoTo's REST API lists no deleted webinar, so reconciliation cannot reach
// them: their figures stay as the webhooks left them.
func deletedWebinars(sc scenario.Scenario) (map[string]bool, error) {
	out := map[string]bool{}
	for _, body := range sc.Events {
		var ev struct {
			EventName  string      `json:"eventName"`
			WebinarKey json.Number `json:"webinarKey"` // a string or a bare 19-digit integer
			Status     string      `json:"status"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			return nil, fmt.Errorf("read scenario event: %w", err)
		}
		if ev.EventName == "webinar.changed" && ev.Status == "DELETED" {
			out[ev.WebinarKey.String()] = true
		}
	}
	return out, nil
}

// printHoles writes, for every webinar whose figures differ from want, what analytics shows
// and what the scenario says, and returns how many differ.
func printHoles(w io.Writer, got, want map[string]scenario.Figures) (int, error) {
	keys := slices.Sorted(maps.Keys(want))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  webinar_key\tregistrants\tattendees\t(the full scenario's)")
	wrong := 0
	for _, k := range keys {
		if got[k] == want[k] {
			continue
		}
		wrong++
		fmt.Fprintf(tw, "  %s\t%d\t%d\t(%d, %d)\n", k, got[k].Registrants, got[k].Attendees, want[k].Registrants, want[k].Attendees)
	}
	return wrong, tw.Flush()
}

// checkReconciled checks every figure of analytics.webinar_conversion against the full
// scenario's: equal for every webinar GoTo's REST API lists; for a deleted one (which it
// does not list) unchanged by reconciliation.
func checkReconciled(got, before, want map[string]scenario.Figures, deleted map[string]bool) error {
	var errs []string
	for k, f := range want {
		switch {
		case deleted[k] && got[k] != before[k]:
			errs = append(errs, fmt.Sprintf("deleted webinar %s changed from %+v to %+v, though GoTo lists no deleted webinar", k, before[k], got[k]))
		case !deleted[k] && got[k] != f:
			errs = append(errs, fmt.Sprintf("webinar %s: %+v, the full scenario's %+v", k, got[k], f))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			errs = append(errs, fmt.Sprintf("webinar %s is not in the scenario", k))
		}
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		return fmt.Errorf("after reconcile, analytics.webinar_conversion is still wrong:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}

// checkAttendance compares the attendance seconds of analytics with the emulator's ground
// truth (reporting.Account.AttendanceSeconds of the same scenario and organizers): per
// attendance in engagement, per session in session_attendance and per webinar in
// webinar_conversion. It returns the number of attendances compared.
func checkAttendance(ctx context.Context, conn *pgx.Conn, truth map[reporting.AttendanceKey]int) (int, error) {
	got := map[reporting.AttendanceKey]int{}
	rows, err := conn.Query(ctx, `SELECT webinar_key, session_key, registrant_key, seconds_attended FROM analytics.engagement`)
	if err != nil {
		return 0, fmt.Errorf("query analytics.engagement: %w", err)
	}
	var k reporting.AttendanceKey
	var secs int
	if _, err := pgx.ForEachRow(rows, []any{&k.Webinar, &k.Session, &k.Registrant, &secs}, func() error {
		got[k] = secs
		return nil
	}); err != nil {
		return 0, fmt.Errorf("read analytics.engagement: %w", err)
	}
	if !maps.Equal(got, truth) {
		diff := 0
		for k, s := range truth {
			if g, ok := got[k]; !ok || g != s {
				diff++
			}
		}
		return 0, fmt.Errorf("analytics.engagement has %d attendances, the emulator %d; %d missing or with other seconds", len(got), len(truth), diff)
	}

	// Sessions keyed "webinar/session", as the query below keys them.
	perSession, perWebinar := map[string]int64{}, map[string]int64{}
	for k, s := range truth {
		perSession[k.Webinar+"/"+k.Session] += int64(s)
		perWebinar[k.Webinar] += int64(s)
	}
	for _, q := range []struct {
		name, sql string
		want      map[string]int64
	}{
		{"session_attendance", `SELECT webinar_key || '/' || session_key, total_attendance_seconds FROM analytics.session_attendance WHERE total_attendance_seconds IS NOT NULL`, perSession},
		{"webinar_conversion", `SELECT webinar_key, total_attendance_seconds FROM analytics.webinar_conversion WHERE total_attendance_seconds IS NOT NULL`, perWebinar},
	} {
		have, err := sums(ctx, conn, q.sql)
		if err != nil {
			return 0, fmt.Errorf("read analytics.%s: %w", q.name, err)
		}
		if !maps.Equal(have, q.want) {
			return 0, fmt.Errorf("analytics.%s.total_attendance_seconds %v, the emulator's ground truth %v", q.name, have, q.want)
		}
	}
	return len(truth), nil
}

// sums reads the (key, sum) rows of a query into a map.
func sums(ctx context.Context, conn *pgx.Conn, sql string) (map[string]int64, error) {
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	var key string
	var sum int64
	_, err = pgx.ForEachRow(rows, []any{&key, &sum}, func() error {
		out[key] = sum
		return nil
	})
	return out, err
}

// logCount returns the number of committed events in the log.
func logCount(ctx context.Context, conn *pgx.Conn) (int64, error) {
	lag, err := eventlog.LagAfter(ctx, conn, eventlog.Position{})
	if err != nil {
		return 0, fmt.Errorf("count the log's events: %w", err)
	}
	return lag.Events, nil
}

// reconcileDemo is the demo's proof of reconciliation. With some deliveries dropped, it shows
// analytics wrong; runs `reconcile once`; checks every figure equals the full scenario's
// (want) and every attendance's seconds the emulator's ground truth; then checks a second
// `reconcile once` appends nothing.
func reconcileDemo(ctx context.Context, stdout io.Writer, conn *pgx.Conn, env []string, logDir string, want map[string]scenario.Figures) error {
	sc := scenario.Generate(demoSeed)
	deleted, err := deletedWebinars(sc)
	if err != nil {
		return err
	}
	if err := waitProjected(ctx, conn, 60*time.Second); err != nil {
		return err
	}
	before, err := conversion(ctx, conn)
	if err != nil {
		return fmt.Errorf("read analytics.webinar_conversion: %w", err)
	}
	fmt.Fprintln(stdout, "\nThe projector has caught up with what was delivered, and analytics.webinar_conversion is wrong (below the scenario's) for these webinars:")
	wrong, err := printHoles(stdout, before, want)
	if err != nil {
		return err
	}
	if wrong == 0 {
		return errors.New("every figure is right with deliveries dropped: the reconciliation below would prove nothing")
	}

	out, err := reconcileOnce(ctx, env, logDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n`reconcile once` read GoToWebinar's REST reporting API for both organizers (g2wctl profiles):\n  %s\n", out)
	if err := waitProjected(ctx, conn, 60*time.Second); err != nil {
		return err
	}
	after, err := conversion(ctx, conn)
	if err != nil {
		return fmt.Errorf("read analytics.webinar_conversion: %w", err)
	}
	if err := checkReconciled(after, before, want, deleted); err != nil {
		return err
	}
	live := maps.Clone(want)
	maps.DeleteFunc(live, func(k string, _ scenario.Figures) bool { return deleted[k] })
	exp := expected(live)
	fmt.Fprintf(stdout, "Every figure now equals the full scenario's: %d registrants and %d attendees over %d webinars, each webinar as the scenario says.\n",
		exp.registrants, exp.attendees, exp.webinars)
	for _, k := range slices.Sorted(maps.Keys(deleted)) {
		fmt.Fprintf(stdout, "  (webinar %s is DELETED: GoTo's REST API lists no deleted webinar, so what its webhooks missed stays missing: %d of %d registrants)\n",
			k, after[k].Registrants, want[k].Registrants)
	}

	var keys []string
	for _, o := range organizers {
		keys = append(keys, o.key)
	}
	acct, err := reporting.NewAccount(sc, keys) // what g2wsim serves: the same scenario, shared the same way
	if err != nil {
		return fmt.Errorf("build the emulator's account: %w", err)
	}
	truth := acct.AttendanceSeconds(time.Now())
	if len(truth) == 0 {
		return errors.New("the emulator's ground truth has no attendance: the attendance check would prove nothing")
	}
	n, err := checkAttendance(ctx, conn, truth)
	if err != nil {
		return err
	}
	total := 0
	for _, s := range truth {
		total += s
	}
	fmt.Fprintf(stdout, "Attendance time equals the emulator's ground truth: %d attendances, %.1f hours in all, in analytics.engagement, session_attendance and webinar_conversion.\n",
		n, float64(total)/3600)

	events, err := logCount(ctx, conn)
	if err != nil {
		return err
	}
	out, err = reconcileOnce(ctx, env, logDir)
	if err != nil {
		return err
	}
	again, err := logCount(ctx, conn)
	if err != nil {
		return err
	}
	if again != events || !strings.Contains(out, " 0 events appended") {
		return fmt.Errorf("a second reconcile once changed the log from %d to %d events: %s", events, again, out)
	}
	fmt.Fprintf(stdout, "A second `reconcile once` appended nothing (the log keeps its %d events):\n  %s\n", events, out)
	return nil
}
