package g2wctl

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/turnout-analytics/turnout/internal/g2wapi"
)

// DoctorConfig configures Doctor.
type DoctorConfig struct {
	// Callback limits the check to webhooks calling this URL; empty checks every GoToWebinar
	// webhook of the application.
	Callback string
	// Events are the events that must be delivered. Default Events.
	Events []string
	// Organizers are checked one by one, each with their own token; the first also lists the
	// webhooks. At least one.
	Organizers []Organizer
	// HTTPClient sends the GET that checks each callback. It should have a timeout.
	HTTPClient *http.Client
	// Out receives the checklist, one "[ok]" or "[FAIL]" line per check.
	Out io.Writer
}

// Doctor checks that deliveries can flow for every organizer and event: a webhook for each
// event, ACTIVE; for each organizer and event a user subscription whose activation state (or,
// when the server gives none, its own state) is ACTIVE; and each callback answering GET with
// 200 (GoTo's own check). It prints a checklist and reports whether everything passed; err is
// only for a failure to ask GoTo at all.
func Doctor(ctx context.Context, cfg DoctorConfig) (ok bool, err error) {
	if len(cfg.Organizers) == 0 {
		return false, fmt.Errorf("doctor: no organizer is logged in")
	}
	if len(cfg.Events) == 0 {
		cfg.Events = Events
	}
	webhooks, err := cfg.Organizers[0].Client.ListWebhooks(ctx)
	if err != nil {
		return false, err
	}
	ok = true
	check := func(pass bool, format string, args ...any) {
		mark := "[ok]  "
		if !pass {
			mark, ok = "[FAIL]", false
		}
		fmt.Fprintf(cfg.Out, mark+" "+format+"\n", args...)
	}

	// The webhooks of each event (for the callback, if given).
	byEvent := map[string][]g2wapi.Webhook{}
	var callbacks []string
	for _, w := range webhooks {
		if cfg.Callback != "" && w.CallbackURL != cfg.Callback || !slices.Contains(cfg.Events, w.EventName) {
			continue
		}
		byEvent[w.EventName] = append(byEvent[w.EventName], w)
		check(w.State == g2wapi.StateActive, "webhook %s %s: %s", w.EventName, w.Key, w.State)
		if !slices.Contains(callbacks, w.CallbackURL) {
			callbacks = append(callbacks, w.CallbackURL)
		}
	}
	for _, e := range cfg.Events {
		if len(byEvent[e]) == 0 {
			if cfg.Callback != "" {
				check(false, "webhook %s for %s: none", e, cfg.Callback)
			} else {
				check(false, "webhook %s: none", e)
			}
		}
	}

	// Each organizer's subscription to each event's webhooks.
	for _, o := range cfg.Organizers {
		subs, err := o.Client.ListUserSubscriptions(ctx)
		if err != nil {
			return false, fmt.Errorf("organizer %s: %w", o, err)
		}
		for _, e := range cfg.Events {
			var found []g2wapi.UserSubscription
			for _, s := range subs {
				if slices.ContainsFunc(byEvent[e], func(w g2wapi.Webhook) bool { return w.Key == s.WebhookKey }) {
					found = append(found, s)
				}
			}
			if len(found) == 0 {
				check(false, "organizer %s %s: no subscription", o, e)
				continue
			}
			for _, s := range found {
				state := s.ActivationState
				if state == "" {
					state = s.State
				}
				check(state == g2wapi.StateActive, "organizer %s %s: %s (subscription %s)", o, e, state, s.Key)
			}
		}
	}

	if cfg.Callback != "" && !slices.Contains(callbacks, cfg.Callback) {
		callbacks = append(callbacks, cfg.Callback)
	}
	for _, cb := range callbacks {
		status, err := getStatus(ctx, cfg.HTTPClient, cb)
		switch {
		case err != nil:
			check(false, "callback %s: %v", cb, err)
		default:
			check(status == http.StatusOK, "callback %s: GET answered %d", cb, status)
		}
	}
	return ok, nil
}

func getStatus(ctx context.Context, client *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET did not answer: %w", err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}
