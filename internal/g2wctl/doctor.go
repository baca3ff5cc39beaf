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
	// HTTPClient sends the GET that checks each callback. It should have a timeout.
	HTTPClient *http.Client
	// Out receives the checklist, one "[ok]" or "[FAIL]" line per check.
	Out io.Writer
}

// Doctor checks that deliveries can flow: every webhook ACTIVE, each with a user subscription
// whose activation state (or, when the server gives none, its own state) is ACTIVE, and each
// callback answering GET with 200 (GoTo's own check). It prints a checklist and reports
// whether everything passed; err is only for a failure to ask GoTo at all.
func Doctor(ctx context.Context, c *g2wapi.Client, cfg DoctorConfig) (ok bool, err error) {
	webhooks, err := c.ListWebhooks(ctx)
	if err != nil {
		return false, err
	}
	subs, err := c.ListUserSubscriptions(ctx)
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
	var callbacks []string
	n := 0
	for _, w := range webhooks {
		if cfg.Callback != "" && w.CallbackURL != cfg.Callback {
			continue
		}
		n++
		check(w.State == g2wapi.StateActive, "webhook %s %s: %s", w.EventName, w.Key, w.State)
		found := false
		for _, s := range subs {
			if s.WebhookKey != w.Key {
				continue
			}
			found = true
			state := s.ActivationState
			if state == "" {
				state = s.State
			}
			check(state == g2wapi.StateActive, "subscription %s of webhook %s %s: %s", s.Key, w.EventName, w.Key, state)
		}
		if !found {
			check(false, "subscription of webhook %s %s: none", w.EventName, w.Key)
		}
		if !slices.Contains(callbacks, w.CallbackURL) {
			callbacks = append(callbacks, w.CallbackURL)
		}
	}
	if n == 0 {
		if cfg.Callback != "" {
			check(false, "webhooks for %s: none", cfg.Callback)
		} else {
			check(false, "webhooks: none")
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
