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

// Organizer is one logged-in GoTo user (a profile) and a client calling with their token.
type Organizer struct {
	// Profile names the organizer in the token file and in what setup and doctor print.
	Profile string
	// Key is the organizerKey, when the token endpoint said; for display.
	Key    string
	Client *g2wapi.Client
}

func (o Organizer) String() string {
	if o.Key == "" {
		return o.Profile
	}
	return o.Profile + " (" + o.Key + ")"
}

// ErrSecretUnknown is returned by Setup when it needs a secret key, knows none and must not
// create one.
var ErrSecretUnknown = errors.New("no webhook secret key is known here, and this application already has webhooks, so it has a key that ingest may be using: " +
	"set G2W_SECRET_KEYS to ingest's keys and run setup again, or create one deliberately: `g2wctl secret rotate --valid-from T` (no delivery lost) or `g2wctl secret create` (valid at once)")

// SetupConfig configures Setup.
type SetupConfig struct {
	// Callback is the URL GoTo delivers to (ingest's webhook endpoint). Required.
	Callback string
	// Events to subscribe to. Default Events.
	Events []string
	// Organizers are subscribed, each with their own token (GoTo delivers an organizer's
	// events only through subscriptions they made). The first also manages the webhooks,
	// which belong to the developer application. At least one.
	Organizers []Organizer
	// SecretKeys are the keys recorded for this API (oldest first); SecretKeysGiven says
	// G2W_SECRET_KEYS is set, so ingest already has keys. Setup creates a key only when
	// neither holds and the application has no webhook yet (a first setup): a key made
	// otherwise would be valid at once, and ingest, knowing only the old one, would refuse
	// every delivery.
	SecretKeys      []g2wapi.SecretKey
	SecretKeysGiven bool
	// SaveSecret is called with a newly created secret key before anything else happens, so
	// the value (which GoTo shows only once) is kept even if a later step fails.
	SaveSecret func(g2wapi.SecretKey) error
	// PollInterval and PollAttempts bound the wait for new webhooks and subscriptions to
	// become visible (live GoTo's creation is eventually consistent). Defaults 500ms and 30.
	PollInterval time.Duration
	PollAttempts int
	// Out receives one progress line per step.
	Out io.Writer
}

// Defaults of SetupConfig.
const (
	DefaultPollInterval = 500 * time.Millisecond
	DefaultPollAttempts = 30
)

// SetupResult is what Setup ended with.
type SetupResult struct {
	// SecretKeys are the keys ingest needs (G2W_SECRET_KEYS), oldest first; none when
	// SecretKeysGiven.
	SecretKeys []g2wapi.SecretKey
	Webhooks   []g2wapi.Webhook
	// Subscriptions holds each organizer's subscriptions, by profile.
	Subscriptions map[string][]g2wapi.UserSubscription
	// Created counts the resources Setup created (a secret key, webhooks, subscriptions);
	// zero on a re-run over a complete setup.
	Created int
}

// Setup wires the developer application to cfg.Callback, idempotently: a secret key on a first
// setup only (see SetupConfig.SecretKeys), one webhook per event with this callback (existing
// ones reused), each activated once visible, and for every organizer one ACTIVE user
// subscription per webhook (existing ones reused and activated), waiting until GoTo lists
// them. GoTo delivers only when a webhook and its subscription are both ACTIVE. Any step can
// fail (GoTo's 5xx on a create is not retried, as it may have created something); running
// Setup again converges without duplicates.
func Setup(ctx context.Context, cfg SetupConfig) (SetupResult, error) {
	if cfg.Callback == "" {
		return SetupResult{}, errors.New("set up webhooks: a callback URL is required")
	}
	if len(cfg.Organizers) == 0 {
		return SetupResult{}, errors.New("set up webhooks: no organizer is logged in")
	}
	if len(cfg.Events) == 0 {
		cfg.Events = Events
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.PollAttempts <= 0 {
		cfg.PollAttempts = DefaultPollAttempts
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	res := SetupResult{Subscriptions: map[string][]g2wapi.UserSubscription{}}
	c := cfg.Organizers[0].Client

	existing, err := c.ListWebhooks(ctx)
	if err != nil {
		return res, err
	}
	switch {
	case len(cfg.SecretKeys) > 0:
		res.SecretKeys = cfg.SecretKeys
		fmt.Fprintln(cfg.Out, "secret key: recorded, reused")
	case cfg.SecretKeysGiven:
		fmt.Fprintln(cfg.Out, "secret key: G2W_SECRET_KEYS is set, none created")
	case len(existing) > 0:
		return res, ErrSecretUnknown
	default:
		key, err := c.CreateSecretKey(ctx, time.Time{})
		if err != nil {
			return res, err
		}
		if cfg.SaveSecret != nil {
			if err := cfg.SaveSecret(key); err != nil {
				return res, err
			}
		}
		res.SecretKeys = []g2wapi.SecretKey{key}
		res.Created++
		fmt.Fprintln(cfg.Out, "secret key: created (a first setup: the application had no webhook)")
	}

	webhooks, created, err := ensureWebhooks(ctx, c, cfg, existing)
	res.Created += created
	if err != nil {
		return res, err
	}
	res.Webhooks = webhooks

	for _, o := range cfg.Organizers {
		subs, created, err := ensureSubscriptions(ctx, o, cfg, webhooks)
		res.Created += created
		if err != nil {
			return res, fmt.Errorf("organizer %s: %w", o, err)
		}
		res.Subscriptions[o.Profile] = subs
	}
	return res, nil
}

// ensureWebhooks returns one ACTIVE webhook per event for the callback, creating and
// activating what is missing.
func ensureWebhooks(ctx context.Context, c *g2wapi.Client, cfg SetupConfig, existing []g2wapi.Webhook) ([]g2wapi.Webhook, int, error) {
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

// poll calls try every interval, up to attempts times, until it reports done.
func poll(ctx context.Context, interval time.Duration, attempts int, try func() (bool, error)) error {
	for i := range attempts {
		if i > 0 {
			t := time.NewTimer(interval)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		done, err := try()
		if err != nil || done {
			return err
		}
	}
	return fmt.Errorf("not done after %d attempts %s apart", attempts, interval)
}

// waitVisible polls GetWebhook until the webhook exists. Live GoTo may answer 404 for a
// webhook just created; integrations wait about two seconds, polling is both faster and safer.
func waitVisible(ctx context.Context, c *g2wapi.Client, key string, interval time.Duration, attempts int) error {
	err := poll(ctx, interval, attempts, func() (bool, error) {
		_, err := c.GetWebhook(ctx, key)
		var apiErr *g2wapi.APIError
		if errors.As(err, &apiErr) && apiErr.Status == 404 {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("wait for webhook %s to be visible: %w", key, err)
	}
	return nil
}

// ensureSubscriptions returns one ACTIVE user subscription of o per webhook, creating or
// activating what is needed, once GoTo lists them all (so a re-run, or doctor, sees them).
func ensureSubscriptions(ctx context.Context, o Organizer, cfg SetupConfig, webhooks []g2wapi.Webhook) ([]g2wapi.UserSubscription, int, error) {
	c := o.Client
	existing, err := c.ListUserSubscriptions(ctx)
	if err != nil {
		return nil, 0, err
	}
	byWebhook := byWebhookKey(existing)
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
			changes = append(changes, g2wapi.UserSubscriptionChange{Key: s.Key, WebhookKey: w.Key, State: g2wapi.StateActive, CallbackURL: cfg.Callback})
		default:
			fmt.Fprintf(cfg.Out, "organizer %s: subscription %s: exists (%s)\n", o, w.EventName, s.Key)
		}
	}
	created := 0
	if len(missing) > 0 {
		subs, err := c.CreateUserSubscriptions(ctx, cfg.Callback, missing...)
		if err != nil {
			return nil, 0, err
		}
		for _, s := range subs {
			created++
			fmt.Fprintf(cfg.Out, "organizer %s: subscription to webhook %s: created (%s)\n", o, s.WebhookKey, s.Key)
		}
	}
	if len(changes) > 0 {
		if err := c.UpdateUserSubscriptions(ctx, changes...); err != nil {
			return nil, created, err
		}
		for _, ch := range changes {
			fmt.Fprintf(cfg.Out, "organizer %s: subscription %s: activated\n", o, ch.Key)
		}
	}
	if created == 0 && len(changes) == 0 {
		return collect(webhooks, byWebhook), 0, nil
	}
	// New subscriptions appear in GoTo's list only after a while: wait until the list shows
	// every webhook subscribed and ACTIVE, so what Setup reports is what GoTo holds.
	var subs []g2wapi.UserSubscription
	err = poll(ctx, cfg.PollInterval, cfg.PollAttempts, func() (bool, error) {
		listed, err := c.ListUserSubscriptions(ctx)
		if err != nil {
			return false, err
		}
		byWebhook := byWebhookKey(listed)
		for _, w := range webhooks {
			if s, ok := byWebhook[w.Key]; !ok || s.State != g2wapi.StateActive {
				return false, nil
			}
		}
		subs = collect(webhooks, byWebhook)
		return true, nil
	})
	if err != nil {
		return nil, created, fmt.Errorf("wait for user subscriptions to be listed: %w", err)
	}
	return subs, created, nil
}

// byWebhookKey indexes subscriptions by webhook, preferring an ACTIVE one when an earlier run
// left duplicates.
func byWebhookKey(subs []g2wapi.UserSubscription) map[string]g2wapi.UserSubscription {
	out := map[string]g2wapi.UserSubscription{}
	for _, s := range subs {
		if prev, ok := out[s.WebhookKey]; !ok || prev.State != g2wapi.StateActive {
			out[s.WebhookKey] = s
		}
	}
	return out
}

func collect(webhooks []g2wapi.Webhook, byWebhook map[string]g2wapi.UserSubscription) []g2wapi.UserSubscription {
	out := make([]g2wapi.UserSubscription, 0, len(webhooks))
	for _, w := range webhooks {
		out = append(out, byWebhook[w.Key])
	}
	return out
}
