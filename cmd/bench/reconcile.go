package main

import (
	"context"
	"flag"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/time/rate"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/g2wrest"
	"github.com/turnout-analytics/turnout/internal/g2wsim/reporting"
	"github.com/turnout-analytics/turnout/internal/reconcile"
	"github.com/turnout-analytics/turnout/internal/scenario"
	"github.com/turnout-analytics/turnout/migrations"
)

// reconcileClock is after every session of a sized scenario; the backfill window reaches a
// year back from it.
var reconcileClock = time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)

// benchReconcile backfills a sized scenario from the emulator's REST reporting API, answering
// 429 above -rate requests/s like GoTo, with reconcile at the same rate. Beside it, in the same
// run: the calls/s a bare client gets from the same emulator at that rate (the ceiling the
// rate limit allows), and the events/s the log's append path takes when no API paces it.
func benchReconcile(ctx context.Context, admin string, args []string) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	webinars := fs.Int("webinars", 1000, "webinars in the scenario")
	registrants := fs.Int("registrants", 300, "mean registrants per webinar")
	limit := fs.Int("rate", 10, "the API's requests/s (429 above), and reconcile's pace")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sc := scenario.GenerateWith(scenario.Options{Seed: 1, Webinars: *webinars, RegistrantsPerWebinar: *registrants, JoinRate: 0.5})
	acct, err := reporting.NewAccount(sc, nil)
	if err != nil {
		return err
	}
	sc.Events = nil // the account holds what the API serves; the bodies are not needed any more
	now := func() time.Time { return reconcileClock }
	srv := httptest.NewServer(reporting.New(reporting.Config{RequestsPerSecond: *limit, Now: now}, acct))
	defer srv.Close()
	organizer := acct.Organizers()[0]

	// Baseline 1: a bare client, paced like reconcile, calling the cheapest list for 10 s.
	floorAPI, err := g2wrest.New(g2wrest.Config{BaseURL: srv.URL, Limiter: rate.NewLimiter(rate.Limit(*limit), 1)})
	if err != nil {
		return err
	}
	floorStart := time.Now()
	for time.Since(floorStart) < 10*time.Second {
		if _, err := floorAPI.WebinarSessions(ctx, organizer, "9200000000000000000"); err != nil {
			return fmt.Errorf("baseline calls: %w", err)
		}
	}
	floorRate := float64(floorAPI.Stats().Calls.Load()) / time.Since(floorStart).Seconds()
	time.Sleep(time.Second) // let the emulator's bucket refill

	dbURL, err := freshDatabase(ctx, admin, "turnout_bench_reconcile")
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
	api, err := g2wrest.New(g2wrest.Config{BaseURL: srv.URL, Limiter: rate.NewLimiter(rate.Limit(*limit), 1)})
	if err != nil {
		return err
	}
	rec, err := reconcile.New(reconcile.Config{Pool: pool, Organizers: []reconcile.Organizer{{Key: organizer, API: api}}, Now: now})
	if err != nil {
		return err
	}
	fmt.Printf("reconcile once: %d webinars × ~%d registrants from the emulator at %d requests/s (expect about %s)\n",
		*webinars, *registrants, *limit, (time.Duration(*webinars) * 45 * time.Second / 10 / time.Duration(*limit)).Round(time.Second))
	start := time.Now()
	res, err := rec.Once(ctx, 365*24*time.Hour)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	callRate := float64(res.Calls) / elapsed.Seconds()
	appendRate := float64(res.Appended) / elapsed.Seconds()

	// Calls per webinar against the budget: 1 + its sessions + its registrant pages.
	var calls, budget, over int
	rows, err := pool.Query(ctx, `
SELECT d.calls,
       1 + count(*) FILTER (WHERE e.event_name = 'turnout.session.snapshot')
         + ceil(count(*) FILTER (WHERE e.event_name = 'turnout.registrant.snapshot') / $1::numeric)::int
FROM reconcile_done d
JOIN `+eventlog.Table+` e ON e.payload->>'webinarKey' = d.webinar_key
GROUP BY d.webinar_key, d.calls`, g2wrest.DefaultPageSize)
	if err != nil {
		return fmt.Errorf("read calls per webinar: %w", err)
	}
	var c, b int
	if _, err := pgx.ForEachRow(rows, []any{&c, &b}, func() error {
		calls, budget = calls+c, budget+b
		if c > b {
			over++
		}
		return nil
	}); err != nil {
		return fmt.Errorf("read calls per webinar: %w", err)
	}

	// Baseline 2: the same events appended again into a fresh log, a webinar's worth per
	// transaction, with no API in the way.
	floorAppend, err := appendFloor(ctx, admin, pool, res.Appended/max(res.Webinars, 1))
	if err != nil {
		return err
	}

	fmt.Printf("  webinars reconciled            %d (%d calls listing them)\n", res.Webinars, res.Calls-calls)
	fmt.Printf("  events appended                %d in %s\n", res.Appended, elapsed.Round(time.Millisecond))
	fmt.Printf("  API calls                      %d, %d answered 429, %d retried\n", res.Calls, api.Stats().Throttled.Load(), api.Stats().Retries.Load())
	fmt.Printf("  calls per webinar              %.2f; budget 1 + sessions + registrant pages = %.2f; webinars over budget: %d  %s\n",
		float64(calls)/float64(max(res.Webinars, 1)), float64(budget)/float64(max(res.Webinars, 1)), over, verdict(over == 0))
	fmt.Printf("  sustained calls/s              %.2f  (bare client at the same limit: %.2f; target ≥ %.1f)  %s\n",
		callRate, floorRate, 0.95*float64(*limit), verdict(callRate >= 0.95*float64(*limit)))
	fmt.Printf("  events appended/s              %.0f  (the append path alone: %.0f/s, so the API is the brake)\n", appendRate, floorAppend)
	return nil
}

// appendFloor appends the log of src again into a fresh database, perWebinar events per
// transaction through eventlog.AppendTx, and returns events/s.
func appendFloor(ctx context.Context, admin string, src *pgxpool.Pool, perWebinar int) (float64, error) {
	dbURL, err := freshDatabase(ctx, admin, "turnout_bench_reconcile_floor")
	if err != nil {
		return 0, err
	}
	if err := migrations.Up(dbURL); err != nil {
		return 0, err
	}
	dst, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return 0, fmt.Errorf("open pool: %w", err)
	}
	defer dst.Close()
	rows, err := src.Query(ctx, `SELECT payload::text, event_name, event_key FROM `+eventlog.Table+` ORDER BY "offset"`)
	if err != nil {
		return 0, fmt.Errorf("read log: %w", err)
	}
	var records []eventlog.OwnEvent
	var payload, name, key string
	if _, err := pgx.ForEachRow(rows, []any{&payload, &name, &key}, func() error {
		records = append(records, eventlog.OwnEvent{Payload: []byte(payload), EventName: name, EventKey: key,
			Source: reconcile.Source, ReceivedAt: reconcileClock})
		return nil
	}); err != nil {
		return 0, fmt.Errorf("read log: %w", err)
	}
	perWebinar = max(perWebinar, 1)
	start := time.Now()
	for lo := 0; lo < len(records); lo += perWebinar {
		batch := records[lo:min(lo+perWebinar, len(records))]
		if err := pgx.BeginFunc(ctx, dst, func(tx pgx.Tx) error {
			_, err := eventlog.AppendTx(ctx, tx, batch)
			return err
		}); err != nil {
			return 0, fmt.Errorf("append floor: %w", err)
		}
	}
	return float64(len(records)) / time.Since(start).Seconds(), nil
}
