package g2wctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/turnout-analytics/turnout/internal/g2wapi"
)

// Events are the GoToWebinar events Turnout ingests, what setup subscribes to by default.
var Events = []string{"registrant.added", "registrant.joined", "webinar.created", "webinar.changed"}

// SetupConfig configures Setup.
type SetupConfig struct {
	// Callback is the URL GoTo delivers to (ingest's webhook endpoint). Required.
	Callback string
	// Events to subscribe to. Default Events.
	Events []string
	// Secret is the secret key already known for this API, if any; Setup creates one when nil.
	Secret *g2wapi.SecretKey
	// SaveSecret is called with a newly created secret key before anything else happens, so
	// the value (which GoTo shows only once) is kept even if a later step fails.
	SaveSecret func(g2wapi.SecretKey) error
	// PollInterval and PollAttempts bound the wait for a new webhook to become visible before
	// activating it (live GoTo's creation is eventually consistent). Defaults 1s and 15.
	PollInterval time.Duration
	PollAttempts int
	// Out receives one progress line per step.
	Out io.Writer
}

// SetupResult is what Setup ended with.
type SetupResult struct {
	Secret        g2wapi.SecretKey
	Webhooks      []g2wapi.Webhook
	Subscriptions []g2wapi.UserSubscription
	// Created counts the resources Setup created (a secret key, webhooks, subscriptions);
	// zero on a re-run over a complete setup.
	Created int
}

// Setup wires the developer application to cfg.Callback, idempotently: a secret key unless one
// is known, one webhook per event with this callback (existing ones are reused), each
// activated, and one ACTIVE user subscription per webhook (existing ones reused and activated).
// GoTo delivers only when a webhook and its subscription are both ACTIVE.
func Setup(ctx context.Context, c *g2wapi.Client, cfg SetupConfig) (SetupResult, error) {
	if cfg.Callback == "" {
		return SetupResult{}, errors.New("set up webhooks: a callback URL is required")
	}
	if len(cfg.Events) == 0 {
		cfg.Events = Events
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.PollAttempts <= 0 {
		cfg.PollAttempts = 15
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	var res SetupResult

	if cfg.Secret != nil {
		res.Secret = *cfg.Secret
		fmt.Fprintln(cfg.Out, "secret key: known, reused")
	} else {
		key, err := c.CreateSecretKey(ctx)
		if err != nil {
			return res, err
		}
		if cfg.SaveSecret != nil {
			if err := cfg.SaveSecret(key); err != nil {
				return res, err
			}
		}
		res.Secret = key
		res.Created++
		fmt.Fprintln(cfg.Out, "secret key: created")
	}

	webhooks, created, err := ensureWebhooks(ctx, c, cfg)
	if err != nil {
		return res, err
	}
	res.Created += created
	res.Webhooks = webhooks

	subs, created, err := ensureSubscriptions(ctx, c, cfg, webhooks)
	if err != nil {
		return res, err
	}
	res.Created += created
	res.Subscriptions = subs
	return res, nil
}

// ensureWebhooks returns one ACTIVE webhook per event for the callback, creating and
// activating what is missing.
func ensureWebhooks(ctx context.Context, c *g2wapi.Client, cfg SetupConfig) ([]g2wapi.Webhook, int, error) {
	existing, err := c.ListWebhooks(ctx)
	if err != nil {
		return nil, 0, err
	}
	byEvent := map[string]g2wapi.Webhook{}
	for _, w := range existing {
		if w.CallbackURL != cfg.Callback || !slices.Contains(cfg.Events, w.EventName) {
			continue
		}
		// Prefer an ACTIVE one when an earlier run left duplicates.
		if prev, ok := byEvent[w.EventName]; !ok || prev.State != g2wapi.StateActive {
			byEvent[w.EventName] = w
		}
	}
	var missing []string
	for _, e := range cfg.Events {
		if _, ok := byEvent[e]; ok {
			fmt.Fprintf(cfg.Out, "webhook %s: exists (%s)\n", e, byEvent[e].Key)
		} else {
			missing = append(missing, e)
		}
	}
	created := 0
	if len(missing) > 0 {
		ws, err := c.CreateWebhooks(ctx, cfg.Callback, missing...)
		if err != nil {
			return nil, 0, err
		}
		for _, w := range ws {
			byEvent[w.EventName] = w
			created++
			fmt.Fprintf(cfg.Out, "webhook %s: created (%s)\n", w.EventName, w.Key)
		}
	}
	out := make([]g2wapi.Webhook, 0, len(cfg.Events))
	for _, e := range cfg.Events {
		w, ok := byEvent[e]
		if !ok {
			return nil, created, fmt.Errorf("create webhooks: GoTo returned no webhook for %s", e)
		}
		if w.State != g2wapi.StateActive {
			if err := waitVisible(ctx, c, w.Key, cfg.PollInterval, cfg.PollAttempts); err != nil {
				return nil, created, err
			}
			if err := c.SetWebhookState(ctx, g2wapi.StateActive, w.Key); err != nil {
				return nil, created, err
			}
			w.State = g2wapi.StateActive
			fmt.Fprintf(cfg.Out, "webhook %s: activated\n", e)
		}
		out = append(out, w)
	}
	return out, created, nil
}

// waitVisible polls GetWebhook until the webhook exists. Live GoTo may answer 404 for a
// webhook just created; integrations wait about two seconds, polling is both faster and safer.
func waitVisible(ctx context.Context, c *g2wapi.Client, key string, interval time.Duration, attempts int) error {
	var last error
	for i := range attempts {
		if i > 0 {
			t := time.NewTimer(interval)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("wait for webhook %s: %w", key, ctx.Err())
			case <-t.C:
			}
		}
		_, err := c.GetWebhook(ctx, key)
		if err == nil {
			return nil
		}
		var apiErr *g2wapi.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != 404 {
			return err
		}
		last = err
	}
	return fmt.Errorf("wait for webhook %s: not visible after %d attempts: %w", key, attempts, last)
}

// ensureSubscriptions returns one ACTIVE user subscription per webhook, creating or activating
// what is needed.
func ensureSubscriptions(ctx context.Context, c *g2wapi.Client, cfg SetupConfig, webhooks []g2wapi.Webhook) ([]g2wapi.UserSubscription, int, error) {
	existing, err := c.ListUserSubscriptions(ctx)
	if err != nil {
		return nil, 0, err
	}
	byWebhook := map[string]g2wapi.UserSubscription{}
	for _, s := range existing {
		if prev, ok := byWebhook[s.WebhookKey]; !ok || prev.State != g2wapi.StateActive {
			byWebhook[s.WebhookKey] = s
		}
	}
	var missing []string
	var changes []g2wapi.UserSubscriptionChange
	for _, w := range webhooks {
		s, ok := byWebhook[w.Key]
		switch {
		case !ok:
			missing = append(missing, w.Key)
		case s.State != g2wapi.StateActive || (s.CallbackURL != "" && s.CallbackURL != cfg.Callback):
			// A subscription carries its own callback; one left pointing elsewhere is
			// repointed, since the webhook was chosen for this callback.
			changes = append(changes, g2wapi.UserSubscriptionChange{Key: s.Key, State: g2wapi.StateActive, CallbackURL: cfg.Callback})
		default:
			fmt.Fprintf(cfg.Out, "subscription %s: exists (%s)\n", w.EventName, s.Key)
		}
	}
	created := 0
	if len(missing) > 0 {
		subs, err := c.CreateUserSubscriptions(ctx, cfg.Callback, missing...)
		if err != nil {
			return nil, 0, err
		}
		for _, s := range subs {
			byWebhook[s.WebhookKey] = s
			created++
			fmt.Fprintf(cfg.Out, "subscription for webhook %s: created (%s)\n", s.WebhookKey, s.Key)
		}
	}
	if len(changes) > 0 {
		if err := c.UpdateUserSubscriptions(ctx, changes...); err != nil {
			return nil, created, err
		}
		for _, ch := range changes {
			fmt.Fprintf(cfg.Out, "subscription %s: activated\n", ch.Key)
			if s, ok := subByKey(byWebhook, ch.Key); ok {
				s.CallbackURL = cfg.Callback
				byWebhook[s.WebhookKey] = s
			}
		}
	}
	out := make([]g2wapi.UserSubscription, 0, len(webhooks))
	for _, w := range webhooks {
		s, ok := byWebhook[w.Key]
		if !ok {
			return nil, created, fmt.Errorf("create user subscriptions: GoTo returned none for webhook %s", w.Key)
		}
		s.State = g2wapi.StateActive
		out = append(out, s)
	}
	return out, created, nil
}

func subByKey(byWebhook map[string]g2wapi.UserSubscription, key string) (g2wapi.UserSubscription, bool) {
	for _, s := range byWebhook {
		if s.Key == key {
			return s, true
		}
	}
	return g2wapi.UserSubscription{}, false
}
