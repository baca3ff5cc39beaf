package g2wsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/turnout-analytics/turnout/internal/g2wapi"
)

// This file serves the management API. The spec's operations go through g2wapi's generated chi
// ServerInterface, so the paths are exactly the spec's; the operations only live GoTo has
// (GET/DELETE /webhooks, PUT/DELETE /userSubscriptions) are routed beside them in server.go.
//
// Answer shapes: a request in the spec's shape gets the spec's answer. A request in live GoTo's
// shape that the spec has no counterpart for gets live GoTo's answer:
//   - POST /webhooks and POST /userSubscriptions with an array body answer
//     {"_embedded": {"webhooks"|"userSubscriptions": [...]}} (the spec: one object each way);
//   - GET /webhooks?product=g2w answers {"_embedded": {"webhooks": [...]}} (not in the spec);
//   - DELETE /webhooks and DELETE /userSubscriptions with an array of keys answer 202;
//     PUT /userSubscriptions with an array answers 204 (not in the spec).
// Objects always carry the spec's field names; two live-only fields are added where the spec
// allows extra properties: activationState on subscriptions, and value/validFrom/id beside
// secretKey on secret keys. Errors (400, 401, 404, 429, not described by the spec) are
// {"errorCode", "description"}.

var _ g2wapi.ServerInterface = (*api)(nil)

// api implements the management API over a store.
type api struct {
	store   *store
	checker *callbackChecker
	userKey string
	now     func() time.Time
}

// Event names and product a webhook may be created for (the spec's enums).
var eventNames = map[string]bool{
	"registrant.added": true, "registrant.joined": true, "webinar.created": true, "webinar.changed": true,
}

const productG2W = "g2w"

// maxRequest bounds a management request body.
const maxRequest = 1 << 20

// webhookJSON is a webhook in the spec's Webhook schema.
type webhookJSON struct {
	WebhookKey   string `json:"webhookKey"`
	Product      string `json:"product"`
	EventName    string `json:"eventName"`
	EventVersion string `json:"eventVersion"`
	CallbackURL  string `json:"callbackUrl"`
	WebhookState State  `json:"webhookState"`
	CreateTime   string `json:"createTime"`
}

func toWebhookJSON(w webhookRec) webhookJSON {
	return webhookJSON{WebhookKey: w.key, Product: w.product, EventName: w.eventName, EventVersion: w.eventVersion,
		CallbackURL: w.callbackURL, WebhookState: w.state, CreateTime: w.created.Format(time.RFC3339Nano)}
}

// subscriptionJSON is a subscription in the spec's UserSubscription schema plus live GoTo's
// derived activationState, which g2wctl doctor reads.
type subscriptionJSON struct {
	SubscriptionKey       string `json:"subscriptionKey"`
	UserKey               string `json:"userKey"`
	WebhookKey            string `json:"webhookKey"`
	CallbackURL           string `json:"callbackUrl,omitempty"`
	UserSubscriptionState State  `json:"userSubscriptionState"`
	ActivationState       State  `json:"activationState"`
}

func toSubscriptionJSON(v subscriptionView) subscriptionJSON {
	return subscriptionJSON{SubscriptionKey: v.key, UserKey: v.userKey, WebhookKey: v.webhookKey,
		CallbackURL: v.callbackURL, UserSubscriptionState: v.state, ActivationState: v.activation}
}

// CreateWebhookSecretKey creates a signing key. The body is optional; {"validFrom": "..."}
// schedules the key for later (GoTo's rotation).
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
			writeError(w, http.StatusBadRequest, "InvalidRequest", "body is not a JSON object with an optional validFrom")
			return
		}
	}
	validFrom := a.now().UTC()
	if req.ValidFrom != nil {
		validFrom = req.ValidFrom.UTC()
	}
	k := a.store.addSecret(uuid.NewString(), validFrom)
	writeJSON(w, http.StatusCreated, map[string]any{
		"secretKey": k.value, // the spec's field
		"value":     k.value, // live GoTo's
		"validFrom": k.validFrom.Format(time.RFC3339Nano),
		"id":        k.id,
	})
}

// webhookCreateJSON is one webhook to create, as the spec's WebhookCreate.
type webhookCreateJSON struct {
	Product      string `json:"product"`
	EventName    string `json:"eventName"`
	EventVersion string `json:"eventVersion"`
	CallbackURL  string `json:"callbackUrl"`
}

// CreateWebhook creates one webhook (spec: an object → 201 Webhook) or several (live: an
// array → 201 {"_embedded": {"webhooks": [...]}}), all INACTIVE, after checking each callback.
func (a *api) CreateWebhook(w http.ResponseWriter, r *http.Request) {
	items, array, ok := decodeOneOrMany[webhookCreateJSON](w, r)
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
		}
		recs[i] = webhookRec{product: it.Product, eventName: it.EventName, eventVersion: it.EventVersion, callbackURL: it.CallbackURL}
	}
	if !a.checkCallbacks(w, r, callbacksOf(recs, func(x webhookRec) string { return x.callbackURL })) {
		return
	}
	created := a.store.addWebhooks(recs, a.now())
	out := make([]webhookJSON, len(created))
	for i, c := range created {
		out[i] = toWebhookJSON(c)
	}
	if array {
		writeJSON(w, http.StatusCreated, embedded("webhooks", out))
		return
	}
	writeJSON(w, http.StatusCreated, out[0])
}

// GetWebhook answers one webhook.
func (a *api) GetWebhook(w http.ResponseWriter, _ *http.Request, key g2wapi.WebhookKey) {
	rec, err := a.store.webhook(key)
	if err != nil {
		writeError(w, http.StatusNotFound, "NotFound", "no webhook "+key)
		return
	}
	writeJSON(w, http.StatusOK, toWebhookJSON(rec))
}

// listWebhooks is live GoTo's GET /webhooks?product=g2w (not in the spec); one Go integration
// sends productType instead, which is accepted too.
func (a *api) listWebhooks(w http.ResponseWriter, r *http.Request) {
	product := r.URL.Query().Get("product")
	if product == "" {
		product = r.URL.Query().Get("productType")
	}
	recs := a.store.listWebhooks(product)
	out := make([]webhookJSON, len(recs))
	for i, rec := range recs {
		out[i] = toWebhookJSON(rec)
	}
	writeJSON(w, http.StatusOK, embedded("webhooks", out))
}

// UpdateWebhooks sets states (and callbacks) of webhooks: an array of {webhookKey,
// webhookState} (the spec) or {webhookKey, state, callbackUrl?} (live GoTo). 204.
func (a *api) UpdateWebhooks(w http.ResponseWriter, r *http.Request) {
	type item struct {
		WebhookKey   string `json:"webhookKey"`
		WebhookState State  `json:"webhookState"`
		State        State  `json:"state"`
		CallbackURL  string `json:"callbackUrl"`
	}
	items, ok := decodeArray[item](w, r)
	if !ok {
		return
	}
	changes := make([]change, len(items))
	for i, it := range items {
		state := it.State
		if state == "" {
			state = it.WebhookState
		}
		if it.WebhookKey == "" || !state.valid() && (state != "" || it.CallbackURL == "") {
			writeError(w, http.StatusBadRequest, "InvalidRequest", "each entry needs a webhookKey and a state of ACTIVE or INACTIVE")
			return
		}
		changes[i] = change{key: it.WebhookKey, state: state, callbackURL: it.CallbackURL}
	}
	if !a.checkCallbacks(w, r, callbacksOf(changes, func(c change) string { return c.callbackURL })) {
		return
	}
	if err := a.store.updateWebhooks(changes); err != nil {
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
	if err := a.store.deleteWebhooks(flexKeys(keys)); err != nil {
		writeError(w, http.StatusNotFound, "NotFound", "unknown webhookKey")
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// subscriptionCreateJSON is one subscription to create, as the spec's UserSubscriptionCreate.
type subscriptionCreateJSON struct {
	WebhookKey            string `json:"webhookKey"`
	CallbackURL           string `json:"callbackUrl"`
	UserSubscriptionState State  `json:"userSubscriptionState"`
}

// CreateUserSubscription subscribes the token's user to webhooks: one object (the spec → 201
// UserSubscription) or an array (live → 201 {"_embedded": {"userSubscriptions": [...]}}).
// The state defaults to ACTIVE, as the spec says.
func (a *api) CreateUserSubscription(w http.ResponseWriter, r *http.Request) {
	items, array, ok := decodeOneOrMany[subscriptionCreateJSON](w, r)
	if !ok {
		return
	}
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
		recs[i] = subscriptionRec{webhookKey: it.WebhookKey, userKey: a.userKey, callbackURL: it.CallbackURL, state: state}
	}
	if !a.checkCallbacks(w, r, callbacksOf(recs, func(s subscriptionRec) string { return s.callbackURL })) {
		return
	}
	created, err := a.store.addSubscriptions(recs)
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidWebhookKey", "unknown webhookKey")
		return
	}
	out := make([]subscriptionJSON, len(created))
	for i, c := range created {
		// Read back for the derived activationState.
		v, err := a.store.subscription(c.key)
		if err != nil { // deleted concurrently
			v = subscriptionView{subscriptionRec: c, activation: StateInactive}
		}
		out[i] = toSubscriptionJSON(v)
	}
	if array {
		writeJSON(w, http.StatusCreated, embedded("userSubscriptions", out))
		return
	}
	writeJSON(w, http.StatusCreated, out[0])
}

// ListUserSubscriptions answers the spec's bare array.
func (a *api) ListUserSubscriptions(w http.ResponseWriter, _ *http.Request) {
	views := a.store.listSubscriptions()
	out := make([]subscriptionJSON, len(views))
	for i, v := range views {
		out[i] = toSubscriptionJSON(v)
	}
	writeJSON(w, http.StatusOK, out)
}

// GetUserSubscription answers one subscription.
func (a *api) GetUserSubscription(w http.ResponseWriter, _ *http.Request, key g2wapi.SubscriptionKey) {
	v, err := a.store.subscription(key)
	if err != nil {
		writeError(w, http.StatusNotFound, "NotFound", "no user subscription "+key)
		return
	}
	writeJSON(w, http.StatusOK, toSubscriptionJSON(v))
}

// UpdateUserSubscription is the spec's PUT /userSubscriptions/{key}. 204.
func (a *api) UpdateUserSubscription(w http.ResponseWriter, r *http.Request, key g2wapi.SubscriptionKey) {
	var it struct {
		CallbackURL           string `json:"callbackUrl"`
		UserSubscriptionState State  `json:"userSubscriptionState"`
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	if err := json.Unmarshal(body, &it); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequest", "body is not a UserSubscriptionUpdate object")
		return
	}
	a.updateSubscriptions(w, r, []change{{key: key, state: it.UserSubscriptionState, callbackURL: it.CallbackURL}})
}

// updateSubscriptionsLive is live GoTo's PUT /userSubscriptions with an array (not in the spec).
func (a *api) updateSubscriptionsLive(w http.ResponseWriter, r *http.Request) {
	type item struct {
		UserSubscriptionKey   flexKey `json:"userSubscriptionKey"`
		SubscriptionKey       flexKey `json:"subscriptionKey"`
		UserSubscriptionState State   `json:"userSubscriptionState"`
		CallbackURL           string  `json:"callbackUrl"`
	}
	items, ok := decodeArray[item](w, r)
	if !ok {
		return
	}
	changes := make([]change, len(items))
	for i, it := range items {
		key := string(it.UserSubscriptionKey)
		if key == "" {
			key = string(it.SubscriptionKey)
		}
		changes[i] = change{key: key, state: it.UserSubscriptionState, callbackURL: it.CallbackURL}
	}
	a.updateSubscriptions(w, r, changes)
}

func (a *api) updateSubscriptions(w http.ResponseWriter, r *http.Request, changes []change) {
	for _, c := range changes {
		if c.key == "" || c.state != "" && !c.state.valid() || c.state == "" && c.callbackURL == "" {
			writeError(w, http.StatusBadRequest, "InvalidRequest", "each entry needs a key and a userSubscriptionState of ACTIVE or INACTIVE or a callbackUrl")
			return
		}
	}
	if !a.checkCallbacks(w, r, callbacksOf(changes, func(c change) string { return c.callbackURL })) {
		return
	}
	if err := a.store.updateSubscriptions(changes); err != nil {
		writeError(w, http.StatusNotFound, "NotFound", "unknown user subscription key")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// DeleteUserSubscription is the spec's DELETE /userSubscriptions/{key}. 204.
func (a *api) DeleteUserSubscription(w http.ResponseWriter, _ *http.Request, key g2wapi.SubscriptionKey) {
	if err := a.store.deleteSubscriptions([]string{key}); err != nil {
		writeError(w, http.StatusNotFound, "NotFound", "no user subscription "+key)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteSubscriptionsLive is live GoTo's DELETE /userSubscriptions with an array of keys. 202.
func (a *api) deleteSubscriptionsLive(w http.ResponseWriter, r *http.Request) {
	keys, ok := decodeArray[flexKey](w, r)
	if !ok {
		return
	}
	if err := a.store.deleteSubscriptions(flexKeys(keys)); err != nil {
		writeError(w, http.StatusNotFound, "NotFound", "unknown user subscription key")
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// checkCallbacks checks every distinct non-empty callback URL as GoTo does, answering 400 and
// false on the first that fails.
func (a *api) checkCallbacks(w http.ResponseWriter, r *http.Request, urls []string) bool {
	seen := map[string]bool{}
	for _, u := range urls {
		if u == "" || seen[u] {
			continue
		}
		seen[u] = true
		if err := a.checker.check(r.Context(), u); err != nil {
			writeError(w, http.StatusBadRequest, "InvalidCallbackUrl", err.Error())
			return false
		}
	}
	return true
}

func callbacksOf[T any](items []T, f func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = f(it)
	}
	return out
}

// callbackChecker checks a callback URL with a GET that must answer 200, as GoTo does when a
// webhook or subscription is created or updated.
type callbackChecker struct {
	client *http.Client
}

func (c *callbackChecker) check(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("callbackUrl %q is not an absolute http(s) URL", raw)
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

// readBody reads a bounded request body, answering 400 itself on failure.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequest))
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequest", "request body unreadable or over 1 MiB")
		return nil, false
	}
	return body, true
}

// decodeOneOrMany decodes a body that is one object (the spec) or an array (live GoTo),
// reporting which; an empty array is refused.
func decodeOneOrMany[T any](w http.ResponseWriter, r *http.Request) (items []T, array, ok bool) {
	body, ok := readBody(w, r)
	if !ok {
		return nil, false, false
	}
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		if err := json.Unmarshal(body, &items); err != nil || len(items) == 0 {
			writeError(w, http.StatusBadRequest, "InvalidRequest", "body is not a non-empty JSON array of objects")
			return nil, true, false
		}
		return items, true, true
	}
	var one T
	if err := json.Unmarshal(body, &one); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequest", "body is neither a JSON object nor an array of them")
		return nil, false, false
	}
	return []T{one}, false, true
}

// decodeArray decodes a non-empty JSON array body.
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
