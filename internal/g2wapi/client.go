package g2wapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/time/rate"
)

// DefaultBaseURL is live GoToWebinar's v2 REST API, the server the spec names.
const DefaultBaseURL = "https://api.getgo.com/G2W/rest/v2"

// State is the state of a webhook or a user subscription.
type State string

// The two states; GoTo delivers an event only when its webhook and the user subscription are
// both ACTIVE.
const (
	StateActive   State = "ACTIVE"
	StateInactive State = "INACTIVE"
)

// Product and EventVersion are what every webhook this client creates is for.
const (
	Product      = "g2w"
	EventVersion = "1.0.0"
)

// SecretKey is the developer application's webhook signing key.
type SecretKey struct {
	// ID is GoTo's id for the key; empty when the server does not send one (the spec's shape).
	ID string
	// Value is the key itself: the HMAC key for X-Webhook-Signature (G2W_SECRET_KEYS). Secret.
	Value string
	// ValidFrom is when GoTo starts signing with the key; zero when not sent.
	ValidFrom time.Time
}

// Webhook is one event subscription of the developer application.
type Webhook struct {
	Key          string
	EventName    string
	EventVersion string
	Product      string
	CallbackURL  string
	State        State
	// CreatedAt is zero when the server does not send it.
	CreatedAt time.Time
}

// UserSubscription ties a webhook to the GoTo user (organizer) whose events it delivers.
type UserSubscription struct {
	Key         string
	WebhookKey  string
	UserKey     string
	CallbackURL string
	State       State
	// ActivationState is live GoTo's derived state: ACTIVE only when the webhook and the
	// subscription are both ACTIVE. Empty when the server does not send it (the spec's shape).
	ActivationState State
}

// UserSubscriptionChange is one entry of UpdateUserSubscriptions: the subscription, named by
// its key and its webhook's key (GoTo requires both), and what changes; empty fields are left
// as they are.
type UserSubscriptionChange struct {
	Key         string
	WebhookKey  string
	State       State
	CallbackURL string
}

// Defaults of Config.
const (
	// DefaultRequestsPerSecond is GoTo's published limit; above it the API answers 429.
	DefaultRequestsPerSecond = 10
	DefaultMaxAttempts       = 5
	DefaultBackoff           = 500 * time.Millisecond
	DefaultMaxWait           = 30 * time.Second
)

// Config configures a Client. The zero value talks to live GoTo with http.DefaultClient,
// unauthenticated; callers pass Credentials.
type Config struct {
	// BaseURL is the API root. Default DefaultBaseURL.
	BaseURL string
	// HTTPClient sends the requests. Default http.DefaultClient. It should have a timeout.
	HTTPClient *http.Client
	// Credentials supply the bearer token, refreshed once when GoTo refuses it (401, or 403
	// InvalidToken). Nil: requests carry no Authorization header.
	Credentials Credentials
	// Limiter spaces the requests on the client side. Clients sharing one developer
	// application should share one. Default: DefaultRequestsPerSecond, no burst.
	Limiter *rate.Limiter
	// MaxAttempts bounds the sends of one request that is retried (429; 5xx and network
	// errors for idempotent methods). Default DefaultMaxAttempts.
	MaxAttempts int
	// Backoff is the nominal first wait before a retry without Retry-After; it doubles on each
	// retry up to MaxWait, each wait drawn within ±50% of it. Default DefaultBackoff.
	Backoff time.Duration
	// MaxWait is the longest single wait; a Retry-After asking for longer ends the retries and
	// returns the answer. Default DefaultMaxWait.
	MaxWait time.Duration
}

// NewLimiter returns a limiter of perSecond requests a second without burst, so no
// one-second window sees more than perSecond requests (a burst would let 2×perSecond through
// a window straddling it).
func NewLimiter(perSecond float64) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(perSecond), 1)
}

// Client calls GoTo's Webhooks Management API in the request shapes of GoTo's published API,
// accepting both the spec's and live GoTo's response shapes. Errors from the API are returned
// as *APIError. A Client is safe for concurrent use.
type Client struct {
	wire *WireClient
	doer HttpRequestDoer
}

// New returns a Client configured by cfg, with defaults filled in.
func New(cfg Config) (*Client, error) {
	cfg.BaseURL = cmp.Or(cfg.BaseURL, DefaultBaseURL)
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Limiter == nil {
		cfg.Limiter = NewLimiter(DefaultRequestsPerSecond)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	doer := &transport{client: cfg.HTTPClient, creds: cfg.Credentials, limiter: cfg.Limiter,
		maxAttempts: cfg.MaxAttempts, backoff: cfg.Backoff, maxWait: cfg.MaxWait}
	wire, err := NewClient(cfg.BaseURL, WithHTTPClient(doer))
	if err != nil {
		return nil, fmt.Errorf("create client: %w", err)
	}
	return &Client{wire: wire, doer: doer}, nil
}

// CreateSecretKey creates a new signing key for the developer application. GoTo signs with it
// from validFrom on (POST /webhooks/secretkey {"validFrom": …}, how a rotation is scheduled);
// a zero validFrom sends no body, and the key is valid at once. There is no call that lists
// or reads keys back: the value is only in this answer.
func (c *Client) CreateSecretKey(ctx context.Context, validFrom time.Time) (SecretKey, error) {
	var payload []byte
	if !validFrom.IsZero() {
		var err error
		if payload, err = json.Marshal(map[string]string{"validFrom": validFrom.UTC().Format(time.RFC3339)}); err != nil {
			return SecretKey{}, fmt.Errorf("encode secret key: %w", err)
		}
	}
	body, err := c.send(ctx, http.MethodPost, "webhooks/secretkey", payload)
	if err != nil {
		return SecretKey{}, err
	}
	var w wireSecretKey
	if err := json.Unmarshal(body, &w); err != nil {
		return SecretKey{}, fmt.Errorf("decode secret key: %w", err)
	}
	key := SecretKey{ID: string(w.ID), Value: firstNonEmpty(w.Value, w.SecretKey), ValidFrom: time.Time(w.ValidFrom)}
	if key.Value == "" {
		return SecretKey{}, errors.New("decode secret key: response has no key value")
	}
	return key, nil
}

// CreateWebhooks creates one webhook per event name, all calling callbackURL. Live GoTo takes
// them in one array (the spec: one object per request) and creates them INACTIVE; it checks the
// callback with a GET that must answer 200.
func (c *Client) CreateWebhooks(ctx context.Context, callbackURL string, eventNames ...string) ([]Webhook, error) {
	if len(eventNames) == 0 {
		return nil, errors.New("create webhooks: no event names")
	}
	items := make([]WebhookCreate, len(eventNames))
	for i, name := range eventNames {
		items[i] = WebhookCreate{CallbackUrl: callbackURL, EventName: WebhookCreateEventName(name), EventVersion: EventVersion, Product: Product}
	}
	payload, err := json.Marshal(items)
	if err != nil {
		return nil, fmt.Errorf("encode webhooks: %w", err)
	}
	body, err := receive(c.wire.CreateWebhookWithBody(ctx, "application/json", bytes.NewReader(payload)))
	if err != nil {
		return nil, err
	}
	return decodeWebhooks(body, true)
}

// GetWebhook returns the webhook with the given key.
func (c *Client) GetWebhook(ctx context.Context, key string) (Webhook, error) {
	body, err := receive(c.wire.GetWebhook(ctx, key))
	if err != nil {
		return Webhook{}, err
	}
	var w wireWebhook
	if err := json.Unmarshal(body, &w); err != nil {
		return Webhook{}, fmt.Errorf("decode webhook: %w", err)
	}
	return w.webhook(), nil
}

// ListWebhooks returns the developer application's GoToWebinar webhooks. The spec has no list
// operation; live GoTo answers GET /webhooks?product=g2w.
func (c *Client) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	body, err := c.send(ctx, http.MethodGet, "webhooks?product="+Product, nil)
	if err != nil {
		return nil, err
	}
	return decodeWebhooks(body, false)
}

// SetWebhookState sets the state of the webhooks with the given keys (activation or
// deactivation). Live GoTo names the field `state` (the spec: `webhookState`).
func (c *Client) SetWebhookState(ctx context.Context, state State, keys ...string) error {
	if err := checkState(state); err != nil {
		return fmt.Errorf("set webhook state: %w", err)
	}
	if len(keys) == 0 {
		return errors.New("set webhook state: no webhook keys")
	}
	type item struct {
		WebhookKey string `json:"webhookKey"`
		State      State  `json:"state"`
	}
	items := make([]item, len(keys))
	for i, k := range keys {
		items[i] = item{WebhookKey: k, State: state}
	}
	payload, err := json.Marshal(items)
	if err != nil {
		return fmt.Errorf("encode webhook states: %w", err)
	}
	_, err = receive(c.wire.UpdateWebhooksWithBody(ctx, "application/json", bytes.NewReader(payload)))
	return err
}

// DeleteWebhooks deletes the webhooks with the given keys. The spec has no delete; live GoTo
// takes an array of keys and answers 202.
func (c *Client) DeleteWebhooks(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return errors.New("delete webhooks: no webhook keys")
	}
	_, err := c.sendJSON(ctx, http.MethodDelete, "webhooks", keys)
	return err
}

// CreateUserSubscriptions subscribes the user whose token makes the call to each webhook,
// ACTIVE, delivering to callbackURL ("": the webhook's own). GoTo takes them in one array
// (the spec: one object) and delivers a user's events only through that user's subscriptions.
func (c *Client) CreateUserSubscriptions(ctx context.Context, callbackURL string, webhookKeys ...string) ([]UserSubscription, error) {
	if len(webhookKeys) == 0 {
		return nil, errors.New("create user subscriptions: no webhook keys")
	}
	type item struct {
		WebhookKey            string `json:"webhookKey"`
		CallbackURL           string `json:"callbackUrl,omitempty"`
		UserSubscriptionState State  `json:"userSubscriptionState"`
	}
	items := make([]item, len(webhookKeys))
	for i, k := range webhookKeys {
		items[i] = item{WebhookKey: k, CallbackURL: callbackURL, UserSubscriptionState: StateActive}
	}
	payload, err := json.Marshal(items)
	if err != nil {
		return nil, fmt.Errorf("encode user subscriptions: %w", err)
	}
	body, err := receive(c.wire.CreateUserSubscriptionWithBody(ctx, "application/json", bytes.NewReader(payload)))
	if err != nil {
		return nil, err
	}
	return decodeUserSubscriptions(body, true)
}

// ListUserSubscriptions returns the user subscriptions of the user whose token makes the
// call. GoTo requires product=g2w here as on GET /webhooks (the spec has no parameter).
func (c *Client) ListUserSubscriptions(ctx context.Context) ([]UserSubscription, error) {
	body, err := c.send(ctx, http.MethodGet, "userSubscriptions?product="+Product, nil)
	if err != nil {
		return nil, err
	}
	return decodeUserSubscriptions(body, false)
}

// GetUserSubscription returns the user subscription with the given key.
func (c *Client) GetUserSubscription(ctx context.Context, key string) (UserSubscription, error) {
	body, err := receive(c.wire.GetUserSubscription(ctx, key))
	if err != nil {
		return UserSubscription{}, err
	}
	var w wireUserSubscription
	if err := json.Unmarshal(body, &w); err != nil {
		return UserSubscription{}, fmt.Errorf("decode user subscription: %w", err)
	}
	return w.userSubscription(), nil
}

// UpdateUserSubscriptions changes the state and/or callback of user subscriptions: one array
// of {webhookKey, userSubscriptionKey, userSubscriptionState?, callbackUrl?} on
// PUT /userSubscriptions, answered 204 (the spec: one PUT per key, without webhookKey, which
// GoTo refuses).
func (c *Client) UpdateUserSubscriptions(ctx context.Context, changes ...UserSubscriptionChange) error {
	if len(changes) == 0 {
		return errors.New("update user subscriptions: no changes")
	}
	type item struct {
		WebhookKey            string `json:"webhookKey"`
		UserSubscriptionKey   string `json:"userSubscriptionKey"`
		UserSubscriptionState State  `json:"userSubscriptionState,omitempty"`
		CallbackURL           string `json:"callbackUrl,omitempty"`
	}
	items := make([]item, len(changes))
	for i, ch := range changes {
		if ch.Key == "" || ch.WebhookKey == "" {
			return fmt.Errorf("update user subscriptions: entry %d lacks its key or its webhook key", i+1)
		}
		if ch.State != "" {
			if err := checkState(ch.State); err != nil {
				return fmt.Errorf("update user subscriptions: %w", err)
			}
		}
		items[i] = item{WebhookKey: ch.WebhookKey, UserSubscriptionKey: ch.Key, UserSubscriptionState: ch.State, CallbackURL: ch.CallbackURL}
	}
	_, err := c.sendJSON(ctx, http.MethodPut, "userSubscriptions", items)
	return err
}

// DeleteUserSubscriptions deletes the user subscriptions with the given keys. Live GoTo takes an
// array of keys on DELETE /userSubscriptions and answers 202 (the spec: one DELETE per key, 204).
func (c *Client) DeleteUserSubscriptions(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return errors.New("delete user subscriptions: no keys")
	}
	_, err := c.sendJSON(ctx, http.MethodDelete, "userSubscriptions", keys)
	return err
}

// sendJSON sends v as the JSON body of a request for an operation the spec lacks.
func (c *Client) sendJSON(ctx context.Context, method, path string, v any) ([]byte, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return c.send(ctx, method, path, payload)
}

// send builds and sends a request for an operation the spec lacks, through the same base URL,
// retries and authentication as the generated client's.
func (c *Client) send(ctx context.Context, method, path string, payload []byte) ([]byte, error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	// c.wire.Server always ends in "/" (NewClient ensures it).
	req, err := http.NewRequestWithContext(ctx, method, c.wire.Server+path, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return receive(c.doer.Do(req))
}

// maxBody bounds what is read of a response; management answers are a few kilobytes.
const maxBody = 4 << 20

// receive reads a response: the body of a 2xx, an *APIError otherwise.
func receive(resp *http.Response, err error) ([]byte, error) {
	if err != nil {
		return nil, fmt.Errorf("call GoTo API: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, newAPIError(resp.StatusCode, body)
	}
	return body, nil
}

func decodeWebhooks(body []byte, single bool) ([]Webhook, error) {
	items, err := decodeList[wireWebhook](body, embeddedWebhooks, single)
	if err != nil {
		return nil, fmt.Errorf("decode webhooks: %w", err)
	}
	out := make([]Webhook, len(items))
	for i, w := range items {
		out[i] = w.webhook()
	}
	return out, nil
}

func decodeUserSubscriptions(body []byte, single bool) ([]UserSubscription, error) {
	items, err := decodeList[wireUserSubscription](body, embeddedUserSubscriptions, single)
	if err != nil {
		return nil, fmt.Errorf("decode user subscriptions: %w", err)
	}
	out := make([]UserSubscription, len(items))
	for i, w := range items {
		out[i] = w.userSubscription()
	}
	return out, nil
}

func checkState(s State) error {
	if s != StateActive && s != StateInactive {
		return fmt.Errorf("state %q is neither ACTIVE nor INACTIVE", s)
	}
	return nil
}
