// Package reconcile fills the holes webhooks leave, and learns what webhooks never carry
// (attendance durations), from GoToWebinar's REST reporting API (../g2wrest).
//
// What it reads is appended to the event log as Turnout's own snapshot events (NameWebinar,
// NameSession, NameRegistrant, NameAttendance), raw as fetched, with source "rest" in the
// metadata and an eventKey that hashes what was fetched, through the same dedup as ingest's
// (eventlog.AppendTx): a second run over unchanged data appends nothing, and the projector
// builds analytics from these events like from any other, rebuild included.
//
// Work is split by webinar. A webinar's events and its row in reconcile_done commit in one
// transaction, so a run that dies is resumed by the next run of the same kind and window
// without redoing the webinars it finished, and without appending anything twice.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/g2wrest"
)

// Run kinds, as stored in reconcile_runs.kind.
const (
	KindOnce   = "once"   // reconcile once -since D
	KindSweep  = "sweep"  // the service's periodic sweep of the last N days
	KindRecent = "recent" // the service's poll for sessions that ended since the last poll
)

// DefaultRecentLookback is how far back the first poll for ended sessions looks, when no
// earlier poll has finished.
const DefaultRecentLookback = 24 * time.Hour

// fetchAhead is how many fetched webinars may wait for their append: fetching (paced by the
// rate limit) and appending overlap, so the database never slows the calls down.
const fetchAhead = 4

// Organizer is one GoTo organizer whose webinars are reconciled, and the API client that
// carries their token.
type Organizer struct {
	Key string
	API *g2wrest.Client
}

// Config configures a Reconciler.
type Config struct {
	Pool       *pgxpool.Pool
	Organizers []Organizer
	// Logger receives a line per run and per failure. Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// RecentLookback: see DefaultRecentLookback.
	RecentLookback time.Duration
}

// Reconciler runs reconciliations. It is safe for concurrent use, but runs of the same kind
// should not overlap (they would share a resumed run).
type Reconciler struct {
	cfg      Config
	appended atomic.Int64
	webinars atomic.Int64
	failures atomic.Int64
	// lastSweep is when the newest once or sweep run finished, in Unix nanoseconds; 0 unknown.
	lastSweep atomic.Int64
}

// New returns a Reconciler configured by cfg.
func New(cfg Config) (*Reconciler, error) {
	var errs []error
	if cfg.Pool == nil {
		errs = append(errs, errors.New("no database pool"))
	}
	if len(cfg.Organizers) == 0 {
		errs = append(errs, errors.New("no organizers"))
	}
	for _, o := range cfg.Organizers {
		if o.Key == "" || o.API == nil {
			errs = append(errs, fmt.Errorf("organizer %q: key and API client are required", o.Key))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configure reconcile: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RecentLookback <= 0 {
		cfg.RecentLookback = DefaultRecentLookback
	}
	return &Reconciler{cfg: cfg}, nil
}

// Appended is how many events this Reconciler has appended to the log.
func (r *Reconciler) Appended() int64 { return r.appended.Load() }

// Webinars is how many webinars this Reconciler has finished.
func (r *Reconciler) Webinars() int64 { return r.webinars.Load() }

// Result is what one run did.
type Result struct {
	Run      int64
	From, To time.Time
	Resumed  bool // the run was an unfinished one, resumed
	Webinars int  // webinars reconciled by this call
	Skipped  int  // webinars the run had finished before (resumed runs)
	Appended int  // events appended
	Calls    int  // API calls made, retries included
}

// target is one webinar to reconcile.
type target struct {
	org     Organizer
	webinar string
	raw     []byte // the webinar as listed; nil when found through its sessions
}

// Once backfills every webinar of every organizer whose times fall in the last since (or,
// when an earlier `once` run of the same length did not finish, in that run's window,
// skipping the webinars it finished).
func (r *Reconciler) Once(ctx context.Context, since time.Duration) (Result, error) {
	return r.window(ctx, KindOnce, since)
}

// Sweep is Once for the service's periodic sweep of the last days.
func (r *Reconciler) Sweep(ctx context.Context, days int) (Result, error) {
	return r.window(ctx, KindSweep, time.Duration(days)*24*time.Hour)
}

func (r *Reconciler) window(ctx context.Context, kind string, length time.Duration) (Result, error) {
	if length <= 0 {
		return Result{}, fmt.Errorf("reconcile %s: the window must be positive, not %v", kind, length)
	}
	res, err := r.startRun(ctx, kind, length)
	if err != nil {
		return res, err
	}
	var targets []target
	for _, org := range r.cfg.Organizers {
		before := org.API.Stats().Calls.Load()
		items, err := org.API.Webinars(ctx, org.Key, res.From, res.To)
		res.Calls += int(org.API.Stats().Calls.Load() - before)
		if err != nil {
			return res, fmt.Errorf("reconcile %s: %w", kind, err)
		}
		for _, it := range items {
			targets = append(targets, target{org: org, webinar: string(it.Value.WebinarKey), raw: it.Raw})
		}
	}
	return r.finish(ctx, kind, res, targets)
}

// Recent reconciles the webinars of every session that ended since the last finished
// Recent run (or DefaultRecentLookback), found through the organizer sessions call.
func (r *Reconciler) Recent(ctx context.Context) (Result, error) {
	res, err := r.startRun(ctx, KindRecent, 0)
	if err != nil {
		return res, err
	}
	var targets []target
	for _, org := range r.cfg.Organizers {
		before := org.API.Stats().Calls.Load()
		sessions, err := org.API.OrganizerSessions(ctx, org.Key, res.From, res.To)
		res.Calls += int(org.API.Stats().Calls.Load() - before)
		if err != nil {
			return res, fmt.Errorf("reconcile %s: %w", KindRecent, err)
		}
		seen := map[string]bool{}
		for _, s := range sessions {
			if w := string(s.Value.WebinarKey); !seen[w] {
				seen[w] = true
				targets = append(targets, target{org: org, webinar: w})
			}
		}
	}
	return r.finish(ctx, KindRecent, res, targets)
}

// startRun resumes the newest unfinished run of kind (of the same window length, for
// windows) or starts a new one.
func (r *Reconciler) startRun(ctx context.Context, kind string, length time.Duration) (Result, error) {
	var res Result
	var secs *int64
	if length > 0 {
		s := int64(length / time.Second)
		secs = &s
	}
	err := r.cfg.Pool.QueryRow(ctx, findUnfinishedSQL, kind, secs).Scan(&res.Run, &res.From, &res.To)
	switch {
	case err == nil:
		res.Resumed = true
		return res, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return res, fmt.Errorf("find unfinished %s run: %w", kind, err)
	}
	res.To = r.cfg.Now().UTC().Truncate(time.Second)
	res.From = res.To.Add(-length)
	if kind == KindRecent {
		// Sessions that ended since the end of the last finished poll's window.
		res.From = res.To.Add(-r.cfg.RecentLookback)
		var finished, lastTo time.Time
		err := r.cfg.Pool.QueryRow(ctx, lastFinishedSQL, []string{KindRecent}).Scan(&finished, &lastTo)
		switch {
		case err == nil:
			res.From = lastTo
		case !errors.Is(err, pgx.ErrNoRows):
			return res, fmt.Errorf("find last %s run: %w", kind, err)
		}
	}
	if err := r.cfg.Pool.QueryRow(ctx, startRunSQL, kind, res.From, res.To).Scan(&res.Run); err != nil {
		return res, fmt.Errorf("start %s run: %w", kind, err)
	}
	return res, nil
}

// finish reconciles the targets the run has not finished yet, then marks the run finished.
func (r *Reconciler) finish(ctx context.Context, kind string, res Result, targets []target) (Result, error) {
	rows, err := r.cfg.Pool.Query(ctx, doneSQL, res.Run)
	if err != nil {
		return res, fmt.Errorf("read progress of run %d: %w", res.Run, err)
	}
	done := map[[2]string]bool{}
	var org, webinar string
	_, err = pgx.ForEachRow(rows, []any{&org, &webinar}, func() error {
		done[[2]string{org, webinar}] = true
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("read progress of run %d: %w", res.Run, err)
	}
	todo := targets[:0:0]
	for _, t := range targets {
		if done[[2]string{t.org.Key, t.webinar}] {
			res.Skipped++
			continue
		}
		todo = append(todo, t)
	}
	// The same order every time, so a resumed run goes on where the dead one stopped.
	slices.SortStableFunc(todo, func(a, b target) int {
		if a.org.Key != b.org.Key {
			return compareText(a.org.Key, b.org.Key)
		}
		return compareText(a.webinar, b.webinar)
	})
	if err := r.process(ctx, &res, todo); err != nil {
		return res, fmt.Errorf("reconcile %s run %d: %w", kind, res.Run, err)
	}
	if _, err := r.cfg.Pool.Exec(ctx, finishRunSQL, res.Run); err != nil {
		return res, fmt.Errorf("finish %s run %d: %w", kind, res.Run, err)
	}
	if kind != KindRecent {
		r.lastSweep.Store(r.cfg.Now().UnixNano())
	}
	r.cfg.Logger.Info("reconcile run finished", "kind", kind, "run", res.Run, "from", res.From, "to", res.To,
		"resumed", res.Resumed, "webinars", res.Webinars, "skipped", res.Skipped, "appended", res.Appended, "calls", res.Calls)
	return res, nil
}

func compareText(a, b string) int {
	switch {
	case len(a) != len(b):
		return len(a) - len(b)
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// fetched is one webinar's snapshots, ready to append.
type fetched struct {
	t       target
	records []eventlog.OwnEvent
	calls   int
}

// process fetches the targets one after the other (the rate limit is the brake) while an
// appender commits the previous ones.
//
// When fetching fails, the webinars already fetched are still committed (with the caller's
// context, not the group's, which the failure cancels): they are complete, and committing
// them saves the next run their calls.
func (r *Reconciler) process(ctx context.Context, res *Result, todo []target) error {
	g, gctx := errgroup.WithContext(ctx)
	ch := make(chan fetched, fetchAhead)
	g.Go(func() error {
		defer close(ch)
		for _, t := range todo {
			f, err := r.fetch(gctx, t)
			if err != nil {
				return err
			}
			select {
			case ch <- f:
			case <-gctx.Done():
				return context.Cause(gctx)
			}
		}
		return nil
	})
	g.Go(func() error {
		for f := range ch {
			n, err := r.commit(ctx, res.Run, f)
			if err != nil {
				return err
			}
			res.Webinars++
			res.Appended += n
			res.Calls += f.calls
			r.appended.Add(int64(n))
			r.webinars.Add(1)
		}
		return nil
	})
	return g.Wait()
}

// fetch reads one webinar: its sessions, its registrants and each session's attendees.
// Cost: 1 + registrant pages + sessions calls (sessions lists rarely need a second page).
func (r *Reconciler) fetch(ctx context.Context, t target) (fetched, error) {
	api, org, w := t.org.API, t.org.Key, t.webinar
	before := api.Stats().Calls.Load()
	f := fetched{t: t}
	now := r.cfg.Now()
	add := func(name string, s scope, raw []byte) error {
		rec, err := snapshot(name, s, raw, now)
		if err != nil {
			return err
		}
		f.records = append(f.records, rec)
		return nil
	}
	if t.raw != nil {
		if err := add(NameWebinar, scope{organizer: org, webinar: w}, t.raw); err != nil {
			return f, err
		}
	}
	sessions, err := api.WebinarSessions(ctx, org, w)
	if err != nil {
		return f, err
	}
	for _, s := range sessions {
		if err := add(NameSession, scope{organizer: org, webinar: w, session: string(s.Value.SessionKey)}, s.Raw); err != nil {
			return f, err
		}
	}
	regs, err := api.Registrants(ctx, org, w)
	if err != nil {
		return f, err
	}
	for _, reg := range regs {
		if err := add(NameRegistrant, scope{organizer: org, webinar: w, registrant: string(reg.Value.RegistrantKey)}, reg.Raw); err != nil {
			return f, err
		}
	}
	for _, s := range sessions {
		sk := string(s.Value.SessionKey)
		atts, err := api.SessionAttendees(ctx, org, w, sk)
		if err != nil {
			return f, err
		}
		for _, a := range atts {
			if err := add(NameAttendance, scope{organizer: org, webinar: w, session: sk, registrant: string(a.Value.RegistrantKey)}, a.Raw); err != nil {
				return f, err
			}
		}
	}
	f.calls = int(api.Stats().Calls.Load() - before)
	return f, nil
}

// commit appends a webinar's snapshots and marks it done in one transaction.
func (r *Reconciler) commit(ctx context.Context, run int64, f fetched) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, r.cfg.Pool, func(tx pgx.Tx) error {
		var err error
		if n, err = eventlog.AppendTx(ctx, tx, f.records); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, markDoneSQL, run, f.t.org.Key, f.t.webinar, f.calls, n); err != nil {
			return fmt.Errorf("mark webinar done: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("append webinar %s: %w", f.t.webinar, err)
	}
	return n, nil
}

// LastSweep is when the newest `once` or sweep run finished; zero when none has.
func (r *Reconciler) LastSweep(ctx context.Context) (time.Time, error) {
	var finished, to time.Time
	err := r.cfg.Pool.QueryRow(ctx, lastFinishedSQL, []string{KindOnce, KindSweep}).Scan(&finished, &to)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("find last sweep: %w", err)
	}
	r.lastSweep.Store(finished.UnixNano())
	return finished, nil
}

// SweepLag is how long ago the newest `once` or sweep run finished, as last seen by this
// Reconciler (by a run of its own or by LastSweep); ok is false when it has seen none.
func (r *Reconciler) SweepLag() (lag time.Duration, ok bool) {
	ns := r.lastSweep.Load()
	if ns == 0 {
		return 0, false
	}
	return r.cfg.Now().Sub(time.Unix(0, ns)), true
}
