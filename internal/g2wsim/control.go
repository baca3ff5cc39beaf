package g2wsim

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/turnout-analytics/turnout/internal/scenario"
)

// Bounds of a sized scenario, so one request cannot make the emulator run out of memory
// (a registrant's events are about a kilobyte).
const (
	MaxWebinars     = 100_000
	MaxRegistrants  = 10_000
	MaxScenarioSize = 1_000_000 // webinars × registrants per webinar: about 1 GB of bodies
)

// DeliverHandler is the emulator's control endpoint: each POST generates the scenario
// scenario.GenerateWith(defaults) describes, with the query parameters seed, webinars,
// registrants and join_rate overriding the defaults, shares its webinars out among orgs
// (ShareScenario), delivers it with d, and answers the Report (with the scenario's expected
// figures) as JSON once every delivery has finished. webinars=0 is the small fixed scenario.
// It is what a demo or a load test calls after setting up the webhooks (g2wctl setup).
func DeliverHandler(d *Deliverer, orgs []Organizer, defaults scenario.Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "POST to deliver a scenario")
			return
		}
		opts, code, msg := scenarioOptions(r.URL.Query(), defaults)
		if code != "" {
			writeError(w, http.StatusBadRequest, code, msg)
			return
		}
		report, err := d.DeliverShared(r.Context(), ShareScenario(scenario.GenerateWith(opts), orgs))
		d.cfg.Logger.Info("delivery run", "seed", opts.Seed, "webinars", opts.Webinars,
			"registrants", opts.RegistrantsPerWebinar, "joinRate", opts.JoinRate,
			"events", report.Events, "planned", report.Planned,
			"delivered", report.Delivered, "failed", report.Failed, "retries", report.Retries,
			"unrouted", report.Unrouted, "interrupted", err != nil)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "DeliveryInterrupted", err.Error())
			return
		}
		writeJSON(w, http.StatusOK, report)
	})
}

// scenarioOptions applies the query's overrides to defaults. A bad value yields an error
// code and message for the client; code is "" when all is well.
func scenarioOptions(q url.Values, defaults scenario.Options) (opts scenario.Options, code, msg string) {
	opts = defaults
	if s := q.Get("seed"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return opts, "InvalidSeed", "seed must be an unsigned integer"
		}
		opts.Seed = v
	}
	if s := q.Get("webinars"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 || v > MaxWebinars {
			return opts, "InvalidWebinars", "webinars must be an integer from 0 to " + strconv.Itoa(MaxWebinars)
		}
		opts.Webinars = v
	}
	if s := q.Get("registrants"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > MaxRegistrants {
			return opts, "InvalidRegistrants", "registrants must be an integer from 1 to " + strconv.Itoa(MaxRegistrants)
		}
		opts.RegistrantsPerWebinar = v
	}
	if s := q.Get("join_rate"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 || v > 1 {
			return opts, "InvalidJoinRate", "join_rate must be a number from 0 to 1"
		}
		opts.JoinRate = v
	}
	if opts.Webinars*max(opts.RegistrantsPerWebinar, 1) > MaxScenarioSize {
		return opts, "ScenarioTooLarge", "webinars × registrants must not exceed " + strconv.Itoa(MaxScenarioSize)
	}
	return opts, "", ""
}
