package g2wsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/turnout-analytics/turnout/internal/g2wapi"
)

// This file serves the management API as GoTo's published API has it (GOTO-FACTS.md,
// "Management API"). The spec's paths go through g2wapi's generated chi ServerInterface; the
// operations only live GoTo has (GET/DELETE /webhooks, PUT/DELETE /userSubscriptions) are
// routed beside them in server.go.
//
// Where the seed spec (internal/g2wapi/openapi.yaml) and the published API differ, the
// emulator accepts what live accepts and refuses what live refuses; TestSpecDifferences
// exercises each difference:
//   - POST /webhooks and POST /userSubscriptions take an array (the spec: one object, which
//     is refused with 400) and answer 200 (the spec: 201) with
//     {"_embedded": {"webhooks"|"userSubscriptions": [...]}};
//   - POST /webhooks/secretkey takes an optional {"validFrom"} and answers 200
//     {"value", "validFrom", "id"} (the spec: 201 {"secretKey"});
//   - PUT /webhooks items carry `state` (the spec's `webhookState` alone is refused with 400);
//   - GET /webhooks and GET /userSubscriptions require product=g2w (400 without it); the spec
//     has no list of webhooks, and lists user subscriptions as a bare array;
//   - PUT /userSubscriptions takes an array of {webhookKey, userSubscriptionKey,
//     userSubscriptionState?, callbackUrl?}, both keys required (400 otherwise); the spec's
//     PUT and DELETE /userSubscriptions/{key} answer 405; DELETE /userSubscriptions and
//     DELETE /webhooks take an array of keys and answer 202;
//   - objects carry live names: `state` on webhooks, `userSubscriptionKey` (a JSON integer)
//     and the derived `activationState` on subscriptions; webhook keys are UUID strings;
//   - callback URLs must be https (loopback hosts excepted, for local use) and non-empty, and
//     answer a GET with 200 (the spec: any URI);
//   - a bad, expired or missing token is 403 {"int_err_code": "InvalidToken", "msg"} (the
//     spec declares no error).
//
// Other errors are {"errorCode", "description"}. A user subscription belongs to the organizer
// whose token created it: the others neither see nor change it.

var _ g2wapi.ServerInterface = (*api)(nil)

// api implements the management API over a store.
type api struct {
	store   *store
	checker *callbackChecker
	now     func() time.Time
	delay   time.Duration // before a new webhook or subscription is visible
}

// Event names and product a webhook may be created for (the spec's enums).
var eventNames = map[string]bool{
	"registrant.added": true, "registrant.joined": true, "webinar.created": true, "webinar.changed": true,
}

const productG2W = "g2w"

// maxRequest bounds a management request body.
const maxRequest = 1 << 20

// webhookJSON is a webhook as live GoTo answers it.
type webhookJSON struct {
	WebhookKey   string `json:"webhookKey"`
	Product      string `json:"product"`
	EventName    string `json:"eventName"`
	EventVersion string `json:"eventVersion"`
	CallbackURL  string `json:"callbackUrl"`
	State        State  `json:"state"`
	CreateTime   string `json:"createTime"`
}

func toWebhookJSON(w webhookRec) webhookJSON {
	return webhookJSON{WebhookKey: w.key, Product: w.product, EventName: w.eventName, EventVersion: w.eventVersion,
		CallbackURL: w.callbackURL, State: w.state, CreateTime: w.created.Format(time.RFC3339Nano)}
}

// subscriptionJSON is a user subscription as live GoTo answers it: its key a bare integer.
type subscriptionJSON struct {
	UserSubscriptionKey   json.Number `json:"userSubscriptionKey"`
	UserKey               string      `json:"userKey"`
	WebhookKey            string      `json:"webhookKey"`
	CallbackURL           string      `json:"callbackUrl,omitempty"`
	UserSubscriptionState State       `json:"userSubscriptionState"`
	ActivationState       State       `json:"activationState"`
	CreateTime            string      `json:"createTime"`
}

func toSubscriptionJSON(v subscriptionView) subscriptionJSON {
	return subscriptionJSON{UserSubscriptionKey: json.Number(v.key), UserKey: v.userKey, WebhookKey: v.webhookKey,
		CallbackURL: v.callbackURL, UserSubscriptionState: v.state, ActivationState: v.activation,
		CreateTime: v.created.Format(time.RFC3339Nano)}
}

// CreateWebhookSecretKey creates a signing key. The body is optional; {"validFrom": "..."}
// schedules the key for later (GoTo's rotation): deliveries are signed with it from then on.
func (a *api) CreateWebhookSecretKey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ValidFrom *time.Time `json:"validFrom"`
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, "InvalidRequest", "body is not a JSON object with an optional validFrom (ISO-8601)")
			return
		}
	}
	validFrom := a.now().UTC()
	if req.ValidFrom != nil {
		validFrom = req.ValidFrom.UTC()
	}
	k := a.store.addSecret(uuid.NewString(), validFrom)
	writeJSON(w, http.StatusOK, map[string]any{"value": k.value, "validFrom": k.validFrom.Format(time.RFC3339Nano), "id": k.id})
}

// webhookCreateJSON is one webhook to create.
type webhookCreateJSON struct {
	Product      string  `json:"product"`
	EventName    string  `json:"eventName"`
	EventVersion string  `json:"eventVersion"`
	CallbackURL  *string `json:"callbackUrl"`
}

// CreateWebhook creates webhooks from an array, all INACTIVE, after checking each callback;
// 200 {"_embedded": {"webhooks": [...]}}.
func (a *api) CreateWebhook(w http.ResponseWriter, r *http.Request) {
	items, ok := decodeArray[webhookCreateJSON](w, r)
	if !ok {
		return
	}
	recs := make([]webhookRec, len(items))
	for i, it := range items {
		switch {
		case it.Product != productG2W:
			writeError(w, http.StatusBadRequest, "InvalidProduct", fmt.Sprintf("product %q is not g2w", it.Product))
			return
		case !eventNames[it.EventName]:
			writeError(w, http.StatusBadRequest, "InvalidEventName", fmt.Sprintf("eventName %q is not a GoToWebinar event", it.EventName))
			return
		case it.EventVersion == "":
			writeError(w, http.StatusBadRequest, "InvalidEventVersion", "eventVersion is required")
			return
		case it.CallbackURL == nil:
			writeError(w, http.StatusBadRequest, "InvalidCallbackUrl", "callbackUrl is required")
			return
		}
		recs[i] = webhookRec{key: uuid.NewString(), product: it.Product, eventName: it.EventName, eventVersion: it.EventVersion, callbackURL: *it.CallbackURL}
	}
	if !a.checkCallbacks(w, r, callbacksOf(items, func(x webhookCreateJSON) *string { return x.CallbackURL })) {
		return
	}
	created := a.store.addWebhooks(recs, a.now(), a.delay)
	out := make([]webhookJSON, len(created))
	for i, c := range created {
		out[i] = toWebhookJSON(c)
	}
	writeJSON(w, http.StatusOK, embedded("webhooks", out))
}

// GetWebhook answers one webhook.
func (a *api) GetWebhook(w http.ResponseWriter, _ *http.Request, key g2wapi.WebhookKey) {
	rec, err := a.store.webhook(key, a.now())
	if err != nil {
		writeError(w, http.StatusNotFound, "NotFound", "no webhook "+key)
		return
	}
	writeJSON(w, http.StatusOK, toWebhookJSON(rec))
}

// requireProduct answers 400 and false unless the query has product=g2w, as live GoTo's lists
// ("Product must be provided"). One Go integration sends productType, accepted too.
func requireProduct(w http.ResponseWriter, r *http.Request) bool {
	q := r.URL.Query()
	product := q.Get("product")
	if product == "" {
		product = q.Get("productType")
	}
	switch product {
	case productG2W:
		return true
	case "":
		writeError(w, http.StatusBadRequest, "InvalidRequest", "Product must be provided")
	default:
		writeError(w, http.StatusBadRequest, "InvalidProduct", fmt.Sprintf("product %q is not g2w", product))
	}
	return false
}

// listWebhooks is live GoTo's GET /webhooks?product=g2w (not in the spec).
func (a *api) listWebhooks(w http.ResponseWriter, r *http.Request) {
	if !requireProduct(w, r) {
		return
	}
	recs := a.store.listWebhooks(productG2W, a.now())
	out := make([]webhookJSON, len(recs))
	for i, rec := range recs {
		out[i] = toWebhookJSON(rec)
	}
	writeJSON(w, http.StatusOK, embedded("webhooks", out))
}

// UpdateWebhooks sets states (and callbacks) of webhooks: an array of {webhookKey, state,
// callbackUrl?}. 204. The spec's `webhookState` is not live GoTo's field: an item with only
// that has no state, and is refused.
func (a *api) UpdateWebhooks(w http.ResponseWriter, r *http.Request) {
	type item struct {
		WebhookKey  flexKey `json:"webhookKey"`
		State       State   `json:"state"`
		CallbackURL *string `json:"callbackUrl"`
	}
	items, ok := decodeArray[item](w, r)
	if !ok {
		return
	}
	changes := make([]change, len(items))
	for i, it := range items {
		if it.WebhookKey == "" || !it.State.valid() {
			writeError(w, http.StatusBadRequest, "InvalidRequest", "each entry needs a webhookKey and a state of ACTIVE or INACTIVE")
			return
		}
		changes[i] = change{key: string(it.WebhookKey), state: it.State, callbackURL: deref(it.CallbackURL)}
	}
	if !a.checkCallbacks(w, r, callbacksOf(items, func(it item) *string { return it.CallbackURL })) {
		return
	}
	if err := a.store.updateWebhooks(changes, a.now()); err != nil {
		writeError(w, http.StatusNotFound, "NotFound", "unknown webhookKey")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteWebhooks is live GoTo's DELETE /webhooks with an array of keys (not in the spec). 202.
func (a *api) deleteWebhooks(w http.ResponseWriter, r *http.Request) {
	keys, ok := decodeArray[flexKey](w, r)
	if !ok {
		return
	}
	if err := a.store.deleteWebhooks(flexKeys(keys), a.now()); err != nil {
		writeError(w, http.StatusNotFound, "NotFound", "unknown webhookKey")
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// subscriptionCreateJSON is one subscription to create.
type subscriptionCreateJSON struct {
	WebhookKey            flexKey `json:"webhookKey"`
	CallbackURL           *string `json:"callbackUrl"`
	UserSubscriptionState State   `json:"userSubscriptionState"`
}

// CreateUserSubscription subscribes the token's organizer to webhooks, from an array; the
// state defaults to ACTIVE. 200 {"_embedded": {"userSubscriptions": [...]}}.
func (a *api) CreateUserSubscription(w http.ResponseWriter, r *http.Request) {
	items, ok := decodeArray[subscriptionCreateJSON](w, r)
	if !ok {
		return
	}
	user := OrganizerKeyFrom(r.Context())
	recs := make([]subscriptionRec, len(items))
	for i, it := range items {
		state := it.UserSubscriptionState
		if state == "" {
			state = StateActive
		}
		if it.WebhookKey == "" || !state.valid() {
			writeError(w, http.StatusBadRequest, "InvalidRequest", "each entry needs a webhookKey, and a userSubscriptionState of ACTIVE or INACTIVE if any")
			return
		}
		recs[i] = subscriptionRec{webhookKey: string(it.WebhookKey), userKey: user, callbackURL: deref(it.CallbackURL), state: state}
	}
	if !a.checkCallbacks(w, r, callbacksOf(items, func(it subscriptionCreateJSON) *string { return it.CallbackURL })) {
		return
	}
	created, err := a.store.addSubscriptions(recs, a.now(), a.delay)
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidWebhookKey", "unknown webhookKey")
		return
	}
	out := make([]subscriptionJSON, len(created))
	for i, c := range created {
		out[i] = toSubscriptionJSON(c)
	}
	writeJSON(w, http.StatusOK, embedded("userSubscriptions", out))
}

// ListUserSubscriptions answers the token's organizer's subscriptions; product=g2w required.
func (a *api) ListUserSubscriptions(w http.ResponseWriter, r *http.Request) {
	if !requireProduct(w, r) {
		return
	}
	views := a.store.listSubscriptions(OrganizerKeyFrom(r.Context()), a.now())
	out := make([]subscriptionJSON, len(views))
	for i, v := range views {
		out[i] = toSubscriptionJSON(v)
	}
	writeJSON(w, http.StatusOK, embedded("userSubscriptions", out))
}

// GetUserSubscription answers one of the token's organizer's subscriptions.
func (a *api) GetUserSubscription(w http.ResponseWriter, r *http.Request, key g2wapi.SubscriptionKey) {
	v, err := a.store.subscription(key, OrganizerKeyFrom(r.Context()), a.now())
	if err != nil {
		writeError(w, http.StatusNotFound, "NotFound", "no user subscription "+key)
		return
	}
	writeJSON(w, http.StatusOK, toSubscriptionJSON(v))
}

// UpdateUserSubscription is the spec's PUT /userSubscriptions/{key}, which GoTo's published
// API does not have: 405.
func (a *api) UpdateUserSubscription(w http.ResponseWriter, _ *http.Request, _ g2wapi.SubscriptionKey) {
	writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "update with PUT /userSubscriptions and an array of {webhookKey, userSubscriptionKey, …}")
}

// DeleteUserSubscription is the spec's DELETE /userSubscriptions/{key}, which GoTo's
// published API does not have: 405.
func (a *api) DeleteUserSubscription(w http.ResponseWriter, _ *http.Request, _ g2wapi.SubscriptionKey) {
	writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "delete with DELETE /userSubscriptions and an array of keys")
}

// updateSubscriptions is live GoTo's PUT /userSubscriptions: an array of {webhookKey,
// userSubscriptionKey, userSubscriptionState?, callbackUrl?}, both keys required. 204.
func (a *api) updateSubscriptions(w http.ResponseWriter, r *http.Request) {
	type item struct {
		WebhookKey            flexKey `json:"webhookKey"`
		UserSubscriptionKey   flexKey `json:"userSubscriptionKey"`
		UserSubscriptionState State   `json:"userSubscriptionState"`
		CallbackURL           *string `json:"callbackUrl"`
	}
	items, ok := decodeArray[item](w, r)
	if !ok {
		return
	}
	changes := make([]change, len(items))
	for i, it := range items {
		switch {
		case it.WebhookKey == "" || it.UserSubscriptionKey == "":
			writeError(w, http.StatusBadRequest, "InvalidRequest", "each entry needs a webhookKey and a userSubscriptionKey")
			return
		case it.UserSubscriptionState != "" && !it.UserSubscriptionState.valid():
			writeError(w, http.StatusBadRequest, "InvalidRequest", "userSubscriptionState must be ACTIVE or INACTIVE")
			return
		}
		changes[i] = change{key: string(it.UserSubscriptionKey), webhookKey: string(it.WebhookKey),
			state: it.UserSubscriptionState, callbackURL: deref(it.CallbackURL)}
	}
	if !a.checkCallbacks(w, r, callbacksOf(items, func(it item) *string { return it.CallbackURL })) {
		return
	}
	if err := a.store.updateSubscriptions(changes, OrganizerKeyFrom(r.Context()), a.now()); err != nil {
		writeError(w, http.StatusNotFound, "NotFound", "unknown user subscription, or not of that webhook")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteSubscriptions is live GoTo's DELETE /userSubscriptions with an array of keys. 202.
func (a *api) deleteSubscriptions(w http.ResponseWriter, r *http.Request) {
	keys, ok := decodeArray[flexKey](w, r)
	if !ok {
		return
	}
	if err := a.store.deleteSubscriptions(flexKeys(keys), OrganizerKeyFrom(r.Context()), a.now()); err != nil {
		writeError(w, http.StatusNotFound, "NotFound", "unknown user subscription key")
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// checkCallbacks checks every distinct callback URL given (nil: not given) as GoTo does,
// answering 400 and false on the first that fails.
func (a *api) checkCallbacks(w http.ResponseWriter, r *http.Request, urls []*string) bool {
	seen := map[string]bool{}
	for _, u := range urls {
		if u == nil || seen[*u] {
			continue
		}
		seen[*u] = true
		if err := a.checker.check(r.Context(), *u); err != nil {
			writeError(w, http.StatusBadRequest, "InvalidCallbackUrl", err.Error())
			return false
		}
	}
	return true
}

func callbacksOf[T any](items []T, f func(T) *string) []*string {
	out := make([]*string, len(items))
	for i, it := range items {
		out[i] = f(it)
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// callbackChecker checks a callback URL as GoTo does when a webhook or subscription is
// created or updated: https (or a loopback host, or any http host when insecure), then a GET
// that must answer 200.
type callbackChecker struct {
	client   *http.Client
	insecure bool
}

func (c *callbackChecker) check(ctx context.Context, raw string) error {
	if strings.TrimSpace(raw) == "" {
		return errors.New("callbackUrl is empty")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("callbackUrl %q is not an absolute https URL", raw)
	}
	if u.Scheme == "http" && !c.insecure && !loopback(u.Hostname()) {
		return fmt.Errorf("callbackUrl %q is not https", raw)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return fmt.Errorf("callbackUrl %q: %w", raw, err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("callbackUrl %q did not answer GET: %w", raw, errors.Unwrap(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("callbackUrl %q answered GET with %d, not 200", raw, resp.StatusCode)
	}
	return nil
}

// loopback reports whether host is localhost or a loopback address.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readBody reads a bounded request body, answering 400 itself on failure.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequest))
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequest", "request body unreadable or over 1 MiB")
		return nil, false
	}
	return body, true
}

// decodeArray decodes a non-empty JSON array body; one object (the spec's create shape) is
// refused like any other non-array.
func decodeArray[T any](w http.ResponseWriter, r *http.Request) ([]T, bool) {
	body, ok := readBody(w, r)
	if !ok {
		return nil, false
	}
	var items []T
	if err := json.Unmarshal(body, &items); err != nil || len(items) == 0 {
		writeError(w, http.StatusBadRequest, "InvalidRequest", "body is not a non-empty JSON array")
		return nil, false
	}
	return items, true
}

// flexKey is a key sent as a JSON string or a JSON integer (live keys are 19-digit numbers;
// decoding through float64 would round them).
type flexKey string

// UnmarshalJSON accepts a string or an integer.
func (k *flexKey) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*k = flexKey(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("decode key: %s is neither a string nor a number", b)
	}
	*k = flexKey(n.String())
	return nil
}

func flexKeys(keys []flexKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = string(k)
	}
	return out
}

func embedded(name string, items any) map[string]any {
	return map[string]any{"_embedded": map[string]any{name: items}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

// writeError writes GoTo's error shape; g2wapi reads "description".
func writeError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"errorCode": code, "description": description})
}
