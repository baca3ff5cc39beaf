package g2wsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/turnout-analytics/turnout/internal/scenario"
	"github.com/turnout-analytics/turnout/internal/webhook"
)

// Router says where an event goes; *Sim is one.
type Router interface {
	// Targets returns the callbacks an event named eventName of the organizer organizerKey
	// is delivered to now.
	Targets(eventName, organizerKey string) []Target
}

// DeliveryConfig configures a Deliverer. The zero value delivers in order, four at a time,
// as fast as the callbacks answer, with up to five attempts each.
type DeliveryConfig struct {
	// Concurrency is how many POSTs are in flight at once. Default 4.
	Concurrency int
	// Rate, when positive, caps POSTs (retries included) per second. Default 0: no cap.
	Rate float64
	// Duplicates is the fraction of events, 0 to 1, delivered a second time later in the run
	// (the same body, so the same eventKey), as GoTo may redeliver. Default 0.
	Duplicates float64
	// Shuffle delivers the events in a random order (GoTo promises none).
	Shuffle bool
	// Drop is the fraction of events, 0 to 1, never delivered at all (nor redelivered): the
	// holes a deploy or an outage leaves, which only reconciliation can fill. Default 0.
	Drop float64
	// Seed makes Shuffle and Duplicates repeatable.
	Seed uint64
	// MaxAttempts bounds the POSTs of one delivery answered non-2xx or not at all. Default 5.
	MaxAttempts int
	// Backoff is the wait after the first failed attempt; it doubles up to MaxBackoff.
	// Defaults 100ms and 5s.
	Backoff, MaxBackoff time.Duration
	// HTTPClient sends the POSTs. Default: a client with a 10-second timeout.
	HTTPClient *http.Client
	// Logger receives failed deliveries (never bodies). Default: discard.
	Logger *slog.Logger
	// Now is the clock for signature timestamps. Default time.Now.
	Now func() time.Time
}

// Report is what a delivery run did.
type Report struct {
	// Events is the number of scenario events, Planned the deliveries planned from them
	// (duplicates included), Duplicates the extra ones.
	Events     int `json:"events"`
	Planned    int `json:"planned"`
	Duplicates int `json:"duplicates"`
	// Dropped counts the events never delivered (DeliveryConfig.Drop).
	Dropped int `json:"dropped"`
	// Delivered counts POSTs answered 2xx (one per event and target), Failed the deliveries
	// that gave up after MaxAttempts, Retries the extra attempts made.
	Delivered int `json:"delivered"`
	Failed    int `json:"failed"`
	Retries   int `json:"retries"`
	// Unrouted counts planned deliveries no webhook took (none ACTIVE with an ACTIVE
	// subscription of the event's organizer, or no valid secret key).
	Unrouted int `json:"unrouted"`
	// ByEvent counts Delivered per event name, ByOrganizer per organizer key.
	ByEvent     map[string]int `json:"byEvent"`
	ByOrganizer map[string]int `json:"byOrganizer"`
	// Expected is the scenario's conversion figures per webinar key, for comparison with
	// analytics.webinar_conversion; nil when the events came from elsewhere.
	Expected map[string]scenario.Figures `json:"expected,omitempty"`
}

// Deliverer POSTs event bodies to the callbacks a Router names, signed as GoTo signs them.
type Deliverer struct {
	cfg    DeliveryConfig
	router Router
	pace   *pacer
}

// NewDeliverer returns a Deliverer routing through router, configured by cfg.
func NewDeliverer(router Router, cfg DeliveryConfig) *Deliverer {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := &Deliverer{cfg: cfg, router: router}
	if cfg.Rate > 0 {
		d.pace = &pacer{every: time.Duration(float64(time.Second) / cfg.Rate)}
	}
	return d
}

// DeliverScenario delivers sc's events and reports, with sc's expected figures.
func (d *Deliverer) DeliverScenario(ctx context.Context, sc scenario.Scenario) (Report, error) {
	r, err := d.Deliver(ctx, sc.Events)
	r.Expected = sc.Expected
	return r, err
}

// DeliverShared delivers the organizers' parts of a scenario (ShareScenario) as one run, and
// reports with the figures of them all: what a company account with several organizers sends.
func (d *Deliverer) DeliverShared(ctx context.Context, parts []OrganizerScenario) (Report, error) {
	var events [][]byte
	expected := map[string]scenario.Figures{}
	for _, p := range parts {
		events = append(events, p.Scenario.Events...)
		maps.Copy(expected, p.Scenario.Expected)
	}
	r, err := d.Deliver(ctx, events)
	r.Expected = expected
	return r, err
}

// Deliver delivers each body (a GoToWebinar event) to its targets, resolved when its turn
// comes, so a webhook or subscription deactivated mid-run stops receiving. It returns when
// every delivery has succeeded or given up, or with ctx's error when ctx ends first.
func (d *Deliverer) Deliver(ctx context.Context, events [][]byte) (Report, error) {
	plan, dups := d.plan(events)
	var (
		c           counters
		mu          sync.Mutex
		byEvent     = map[string]int{}
		byOrganizer = map[string]int{}
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.cfg.Concurrency)
	for _, body := range plan {
		if gctx.Err() != nil {
			break
		}
		var ids eventIDs
		_ = ids.decode(body) // a body without a name goes nowhere, which Unrouted reports
		name, org := ids.EventName, ids.organizer()
		targets := d.router.Targets(name, org)
		if len(targets) == 0 {
			c.unrouted.Add(1)
			continue
		}
		for _, tgt := range targets {
			g.Go(func() error {
				ok, err := d.post(gctx, tgt, body, &c)
				if err != nil {
					return err
				}
				if ok {
					mu.Lock()
					byEvent[name]++
					byOrganizer[org]++
					mu.Unlock()
				}
				return nil
			})
		}
	}
	err := g.Wait()
	if err == nil {
		err = ctx.Err()
	}
	r := Report{Events: len(events), Planned: len(plan), Duplicates: dups, Dropped: len(events) - (len(plan) - dups),
		Delivered: int(c.delivered.Load()), Failed: int(c.failed.Load()), Retries: int(c.retries.Load()),
		Unrouted: int(c.unrouted.Load()), ByEvent: byEvent, ByOrganizer: byOrganizer}
	if err != nil {
		return r, fmt.Errorf("deliver events: %w", err)
	}
	return r, nil
}

type counters struct {
	delivered, failed, retries, unrouted atomic.Int64
}

// plan returns the bodies in delivery order, with the duplicates, and how many duplicates.
func (d *Deliverer) plan(events [][]byte) ([][]byte, int) {
	r := rand.New(rand.NewPCG(d.cfg.Seed, 0xde11fe))
	if d.cfg.Drop > 0 {
		// A stream of its own, so the same seed drops the same events whatever else is set.
		drop := rand.New(rand.NewPCG(d.cfg.Seed, 0xd209))
		kept := make([][]byte, 0, len(events))
		for _, e := range events {
			if drop.Float64() >= d.cfg.Drop {
				kept = append(kept, e)
			}
		}
		events = kept
	}
	plan := append([][]byte(nil), events...)
	dups := 0
	for _, e := range events {
		if d.cfg.Duplicates > 0 && r.Float64() < d.cfg.Duplicates {
			plan = append(plan, e) // redelivered later, as a retry from GoTo's side would be
			dups++
		}
	}
	if d.cfg.Shuffle {
		r.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	}
	return plan, dups
}

// post delivers body to tgt, retrying failures with exponential backoff. It reports whether a
// 2xx came; the error is only ctx's.
func (d *Deliverer) post(ctx context.Context, tgt Target, body []byte, c *counters) (bool, error) {
	wait := d.cfg.Backoff
	for attempt := 1; ; attempt++ {
		if err := d.pace.wait(ctx); err != nil {
			return false, err
		}
		status, err := d.send(ctx, tgt, body)
		if err == nil && status >= 200 && status <= 299 {
			c.delivered.Add(1)
			return true, nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if attempt >= d.cfg.MaxAttempts {
			c.failed.Add(1)
			d.cfg.Logger.Warn("delivery gave up", "callback", tgt.URL, "event", eventName(body), "attempts", attempt, "status", status, "error", err)
			return false, nil
		}
		c.retries.Add(1)
		if err := sleep(ctx, wait); err != nil {
			return false, err
		}
		wait = min(2*wait, d.cfg.MaxBackoff)
	}
}

// send makes one signed POST. Each attempt is signed afresh, with its own timestamp, so a
// receiver's replay window sees a current one.
func (d *Deliverer) send(ctx context.Context, tgt Target, body []byte) (int, error) {
	ts := strconv.FormatInt(d.cfg.Now().UnixMilli(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tgt.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build delivery: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderTimestamp, ts)
	req.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte(tgt.Secret), ts, body))
	resp, err := d.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post delivery: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// eventName reads a body's eventName; "" when it has none.
func eventName(body []byte) string {
	var e struct {
		EventName string `json:"eventName"`
	}
	_ = json.Unmarshal(body, &e) // a body without a name goes nowhere, which Unrouted reports
	return e.EventName
}

// pacer spaces calls every apart, across goroutines; a nil pacer does not wait.
type pacer struct {
	every time.Duration
	mu    sync.Mutex
	next  time.Time
}

func (p *pacer) wait(ctx context.Context) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	now := time.Now()
	at := p.next
	if at.Before(now) {
		at = now
	}
	p.next = at.Add(p.every)
	p.mu.Unlock()
	return sleep(ctx, time.Until(at))
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
