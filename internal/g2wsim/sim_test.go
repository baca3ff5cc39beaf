package g2wsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/turnout-analytics/turnout/internal/g2wapi"
)

const (
	testClientID     = "sim-client"
	testClientSecret = "sim-secret"
)

// clock is a settable clock for token expiry, visibility and rate limiting.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// startSim serves a Sim configured by cfg (client id and secret filled in; records visible at
// once unless cfg says otherwise), with handler wrapped by wrap if not nil.
func startSim(t *testing.T, cfg Config, wrap func(http.Handler) http.Handler) (*Sim, *httptest.Server) {
	t.Helper()
	cfg.ClientID, cfg.ClientSecret = testClientID, testClientSecret
	if cfg.VisibilityDelay == 0 {
		cfg.VisibilityDelay = -1
	}
	sim, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := sim.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return sim, srv
}

// authClient returns an HTTP client carrying a client_credentials token from srv for the
// organizer hint names ("" the first).
func authClient(t *testing.T, srv *httptest.Server, hint string) *http.Client {
	t.Helper()
	cc := clientcredentials.Config{ClientID: testClientID, ClientSecret: testClientSecret,
		TokenURL: srv.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}
	if hint != "" {
		cc.EndpointParams = url.Values{"login_hint": {hint}}
	}
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, srv.Client())
	return cc.Client(ctx)
}

// apiClient returns a g2wapi client of srv for the organizer hint names, without the
// client-side rate limit (tests make their own).
func apiClient(t *testing.T, srv *httptest.Server, hint string) *g2wapi.Client {
	t.Helper()
	c, err := g2wapi.New(g2wapi.Config{BaseURL: srv.URL + BasePath, HTTPClient: authClient(t, srv, hint),
		Limiter: g2wapi.NewLimiter(1000), Backoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// callbackServer answers GET with 200 on /ok and 500 elsewhere.
func callbackServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ok" {
			http.Error(w, "no", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// specValidator validates the management API's answers against the OpenAPI spec: answers
// with a status the spec describes as a whole, and the items of live-shaped
// {"_embedded": {name: [...]}} lists against the spec's item schema.
type specValidator struct {
	t      *testing.T
	doc    *openapi3.T
	router routers.Router
	mu     sync.Mutex
	errs   []string
	seen   map[string]bool // operationId -> validated a described status
	// embedded counts live-shaped list answers whose items were validated.
	embedded int
}

func newSpecValidator(t *testing.T) *specValidator {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(g2wapi.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatal(err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &specValidator{t: t, doc: doc, router: router, seen: map[string]bool{}}
}

func (v *specValidator) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		for k, vals := range rec.Header() {
			w.Header()[k] = vals
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		if path, ok := strings.CutPrefix(r.URL.Path, BasePath); ok {
			v.validate(r, path, rec)
		}
	})
}

func (v *specValidator) validate(r *http.Request, path string, rec *httptest.ResponseRecorder) {
	// Match against the spec's server URL, which the router requires.
	u := "https://api.getgo.com" + BasePath + path
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	req, err := http.NewRequest(r.Method, u, nil)
	if err != nil {
		v.t.Errorf("build request: %v", err)
		return
	}
	route, params, err := v.router.FindRoute(req)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.validateEmbedded(r.Method+" "+path, rec.Body.Bytes())
	// The legacy router also matches /webhooks against /webhooks/{webhookKey} with an empty
	// key, so a route with fewer segments than the path's is no match either.
	if err != nil || strings.Count(route.Path, "/") != strings.Count(path, "/") || route.Operation.Responses.Status(rec.Code) == nil ||
		shapeDiffers[route.Operation.OperationID] {
		return
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status:  rec.Code,
		Header:  rec.Header(),
		Options: &openapi3filter.Options{},
	}
	input.SetBodyBytes(rec.Body.Bytes())
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		v.errs = append(v.errs, r.Method+" "+path+": "+err.Error())
		return
	}
	v.seen[route.Operation.OperationID] = true
}

// shapeDiffers are the operations whose answer, as a whole, is one of the differences
// TestSpecDifferences lists: their items are validated by validateEmbedded.
var shapeDiffers = map[string]bool{"listUserSubscriptions": true}

// embeddedSchemas maps live GoTo's HAL list names to the spec's schema for their items.
var embeddedSchemas = map[string]string{"webhooks": "Webhook", "userSubscriptions": "UserSubscription"}

// validateEmbedded checks the items of a live-shaped {"_embedded": {name: [...]}} answer
// against the spec's item schema. Callers hold mu.
func (v *specValidator) validateEmbedded(what string, body []byte) {
	var hal struct {
		Embedded map[string][]any `json:"_embedded"`
	}
	if json.Unmarshal(body, &hal) != nil || hal.Embedded == nil {
		return
	}
	for name, items := range hal.Embedded {
		schema := v.doc.Components.Schemas[embeddedSchemas[name]]
		if schema == nil {
			v.errs = append(v.errs, what+": unknown _embedded list "+name)
			continue
		}
		for _, it := range items {
			if err := schema.Value.VisitJSON(it); err != nil {
				v.errs = append(v.errs, what+": _embedded."+name+" item: "+err.Error())
			}
		}
		v.embedded++
	}
}

// TestManagementAPI drives every operation with g2wapi's client (the published API's request
// shapes) and validates every answer against the spec where the spec describes it.
func TestManagementAPI(t *testing.T) {
	t.Parallel()
	v := newSpecValidator(t)
	// Reported even when a step below stops the test.
	t.Cleanup(func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		for _, e := range v.errs {
			t.Errorf("response does not match the spec: %s", e)
		}
	})
	_, srv := startSim(t, Config{}, v.wrap)
	cb := callbackServer(t)
	good, bad := cb.URL+"/ok", cb.URL+"/down"
	live := apiClient(t, srv, "")
	ctx := t.Context()

	key, err := live.CreateSecretKey(ctx, time.Time{})
	if err != nil || key.Value == "" || key.ID == "" || key.ValidFrom.IsZero() {
		t.Fatalf("CreateSecretKey = %+v, %v", key, err)
	}
	names := []string{"registrant.added", "registrant.joined", "webinar.created", "webinar.changed"}
	hooks, err := live.CreateWebhooks(ctx, good, names...)
	if err != nil || len(hooks) != 4 {
		t.Fatalf("CreateWebhooks = %+v, %v", hooks, err)
	}
	keys := make([]string, len(hooks))
	for i, h := range hooks {
		if h.State != g2wapi.StateInactive || h.EventName != names[i] || h.CallbackURL != good {
			t.Errorf("created webhook %+v, want INACTIVE %s to %s", h, names[i], good)
		}
		keys[i] = h.Key
	}
	if _, err := live.CreateWebhooks(ctx, bad, names[0]); !isStatus(err, http.StatusBadRequest) {
		t.Errorf("CreateWebhooks with a failing callback: %v, want 400", err)
	}
	if err := live.SetWebhookState(ctx, g2wapi.StateActive, keys...); err != nil {
		t.Fatal(err)
	}
	got, err := live.GetWebhook(ctx, keys[1])
	if err != nil || got.State != g2wapi.StateActive {
		t.Errorf("GetWebhook after activation = %+v, %v", got, err)
	}
	list, err := live.ListWebhooks(ctx)
	if err != nil || len(list) != 4 {
		t.Errorf("ListWebhooks = %d webhooks, %v; want 4", len(list), err)
	}
	subs, err := live.CreateUserSubscriptions(ctx, good, keys...)
	if err != nil || len(subs) != 4 {
		t.Fatalf("CreateUserSubscriptions = %+v, %v", subs, err)
	}
	for _, s := range subs {
		if s.State != g2wapi.StateActive || s.ActivationState != g2wapi.StateActive || s.UserKey == "" || len(s.Key) != 19 {
			t.Errorf("created subscription %+v, want ACTIVE, activated, with a 19-digit key", s)
		}
	}
	if err := live.UpdateUserSubscriptions(ctx, g2wapi.UserSubscriptionChange{Key: subs[0].Key, WebhookKey: subs[0].WebhookKey, State: g2wapi.StateInactive}); err != nil {
		t.Fatal(err)
	}
	sub, err := live.GetUserSubscription(ctx, subs[0].Key)
	if err != nil || sub.State != g2wapi.StateInactive || sub.ActivationState != g2wapi.StateInactive {
		t.Errorf("GetUserSubscription after deactivation = %+v, %v", sub, err)
	}
	// Both keys must name the same subscription.
	if err := live.UpdateUserSubscriptions(ctx, g2wapi.UserSubscriptionChange{Key: subs[0].Key, WebhookKey: subs[1].WebhookKey, State: g2wapi.StateActive}); !isStatus(err, http.StatusNotFound) {
		t.Errorf("UpdateUserSubscriptions with another webhook's key: %v, want 404", err)
	}
	if err := live.DeleteUserSubscriptions(ctx, subs[0].Key, subs[1].Key); err != nil {
		t.Fatal(err)
	}
	if all, err := live.ListUserSubscriptions(ctx); err != nil || len(all) != 2 {
		t.Errorf("ListUserSubscriptions after deleting 2 of 4 = %d, %v", len(all), err)
	}
	if err := live.DeleteWebhooks(ctx, keys[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := live.GetWebhook(ctx, keys[0]); !isStatus(err, http.StatusNotFound) {
		t.Errorf("GetWebhook of a deleted webhook: %v, want 404", err)
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	for _, op := range []string{"getWebhook", "getUserSubscription"} {
		if !v.seen[op] {
			t.Errorf("operation %s was never answered with a status the spec describes", op)
		}
	}
	if v.embedded < 4 { // create webhooks, list webhooks, create and list subscriptions
		t.Errorf("%d live-shaped list answers validated, want at least 4", v.embedded)
	}
}

// rawCall is one HTTP request to the management API, below BasePath.
type rawCall struct {
	method, path, body string
}

// do sends call with client and returns the status and body.
func (c rawCall) do(t *testing.T, client *http.Client, srv *httptest.Server) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), c.method, srv.URL+BasePath+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// account is a sim with one ACTIVE webhook W and one subscription S to it of the first
// organizer, for raw calls.
type account struct {
	srv           *httptest.Server
	client        *http.Client
	callback      string
	webhook, sub  string
	anotherHookID string // a second webhook, without subscription
}

func newAccount(t *testing.T) *account {
	t.Helper()
	_, srv := startSim(t, Config{}, nil)
	cb := callbackServer(t)
	a := &account{srv: srv, client: authClient(t, srv, ""), callback: cb.URL + "/ok"}
	c := apiClient(t, srv, "")
	hooks, err := c.CreateWebhooks(t.Context(), a.callback, "registrant.added", "registrant.joined")
	if err != nil {
		t.Fatal(err)
	}
	a.webhook, a.anotherHookID = hooks[0].Key, hooks[1].Key
	if err := c.SetWebhookState(t.Context(), g2wapi.StateActive, a.webhook); err != nil {
		t.Fatal(err)
	}
	subs, err := c.CreateUserSubscriptions(t.Context(), "", a.webhook)
	if err != nil {
		t.Fatal(err)
	}
	a.sub = subs[0].Key
	return a
}

// TestSpecDifferences lists each difference between the seed spec and GoTo's published API
// (api.go's comment) and checks the emulator does what live does: the spec's form of the call
// answered as live answers it (usually refused), and the published form accepted.
func TestSpecDifferences(t *testing.T) {
	t.Parallel()
	a := newAccount(t)
	cb := a.callback
	tests := []struct {
		name     string
		spec     rawCall
		specWant int
		live     rawCall
		liveWant int
		// check, when set, inspects the live answer's body.
		check func(t *testing.T, body []byte)
	}{
		{name: "POST /webhooks takes an array and answers 200 _embedded",
			spec:     rawCall{"POST", "/webhooks", `{"product":"g2w","eventName":"webinar.created","eventVersion":"1.0.0","callbackUrl":"` + cb + `"}`},
			specWant: 400,
			live:     rawCall{"POST", "/webhooks", `[{"product":"g2w","eventName":"webinar.created","eventVersion":"1.0.0","callbackUrl":"` + cb + `"}]`},
			liveWant: 200,
			check: func(t *testing.T, body []byte) {
				var r struct {
					Embedded struct {
						Webhooks []map[string]any `json:"webhooks"`
					} `json:"_embedded"`
				}
				if json.Unmarshal(body, &r) != nil || len(r.Embedded.Webhooks) != 1 {
					t.Fatalf("answer %s: want one webhook under _embedded", body)
				}
				w := r.Embedded.Webhooks[0]
				key, _ := w["webhookKey"].(string)
				if len(key) != 36 || strings.Count(key, "-") != 4 || w["state"] != "INACTIVE" || w["webhookState"] != nil {
					t.Errorf("webhook %v: want a UUID string key and state INACTIVE (not webhookState)", w)
				}
			}},
		{name: "POST /userSubscriptions takes an array and answers 200 _embedded with integer keys",
			spec:     rawCall{"POST", "/userSubscriptions", `{"webhookKey":"` + a.anotherHookID + `","callbackUrl":"` + cb + `"}`},
			specWant: 400,
			live:     rawCall{"POST", "/userSubscriptions", `[{"webhookKey":"` + a.anotherHookID + `"}]`},
			liveWant: 200,
			check: func(t *testing.T, body []byte) {
				if !bytes.Contains(body, []byte(`"userSubscriptionKey":33`)) || bytes.Contains(body, []byte(`"subscriptionKey"`)) {
					t.Errorf("answer %s: want userSubscriptionKey as a bare integer, no subscriptionKey", body)
				}
			}},
		{name: "POST /webhooks/secretkey takes an optional validFrom and answers 200 {value, validFrom, id}",
			spec:     rawCall{"POST", "/webhooks/secretkey", ""},
			specWant: 200,
			live:     rawCall{"POST", "/webhooks/secretkey", `{"validFrom":"2030-07-01T22:00:00Z"}`},
			liveWant: 200,
			check: func(t *testing.T, body []byte) {
				var k map[string]any
				if json.Unmarshal(body, &k) != nil || k["value"] == nil || k["id"] == nil || k["secretKey"] != nil ||
					!strings.HasPrefix(k["validFrom"].(string), "2030-07-01T22:00:00") {
					t.Errorf("answer %s: want value, id and the validFrom asked for, no secretKey", body)
				}
			}},
		{name: "PUT /webhooks items carry state, not webhookState",
			spec:     rawCall{"PUT", "/webhooks", `[{"webhookKey":"` + a.webhook + `","webhookState":"ACTIVE"}]`},
			specWant: 400,
			live:     rawCall{"PUT", "/webhooks", `[{"webhookKey":"` + a.webhook + `","state":"ACTIVE"}]`},
			liveWant: 204},
		{name: "GET /webhooks exists and requires product",
			spec:     rawCall{"GET", "/webhooks", ""},
			specWant: 400,
			live:     rawCall{"GET", "/webhooks?product=g2w", ""},
			liveWant: 200},
		{name: "GET /userSubscriptions requires product and answers _embedded",
			spec:     rawCall{"GET", "/userSubscriptions", ""},
			specWant: 400,
			live:     rawCall{"GET", "/userSubscriptions?product=g2w", ""},
			liveWant: 200,
			check: func(t *testing.T, body []byte) {
				if !bytes.HasPrefix(body, []byte(`{"_embedded":{"userSubscriptions":[`)) {
					t.Errorf("answer %s: want an _embedded list, not a bare array", body)
				}
			}},
		{name: "PUT /userSubscriptions/{key} is not there: PUT /userSubscriptions takes an array",
			spec:     rawCall{"PUT", "/userSubscriptions/" + a.sub, `{"userSubscriptionState":"INACTIVE"}`},
			specWant: 405,
			live:     rawCall{"PUT", "/userSubscriptions", `[{"webhookKey":"` + a.webhook + `","userSubscriptionKey":` + a.sub + `,"userSubscriptionState":"ACTIVE"}]`},
			liveWant: 204},
		{name: "DELETE /userSubscriptions/{key} is not there: DELETE /userSubscriptions takes an array",
			spec:     rawCall{"DELETE", "/userSubscriptions/" + a.sub, ""},
			specWant: 405,
			live:     rawCall{"DELETE", "/userSubscriptions", `["` + a.sub + `"]`},
			liveWant: 202},
		{name: "callback URLs must be https",
			spec:     rawCall{"POST", "/webhooks", `[{"product":"g2w","eventName":"webinar.changed","eventVersion":"1.0.0","callbackUrl":"http://turnout.example.com/callback"}]`},
			specWant: 400,
			live:     rawCall{"POST", "/webhooks", `[{"product":"g2w","eventName":"webinar.changed","eventVersion":"1.0.0","callbackUrl":"` + cb + `"}]`},
			liveWant: 200}, // loopback http stays allowed, for local use
		{name: "callback URLs must not be empty",
			spec:     rawCall{"POST", "/webhooks", `[{"product":"g2w","eventName":"webinar.changed","eventVersion":"1.0.0","callbackUrl":""}]`},
			specWant: 400,
			live:     rawCall{"PUT", "/webhooks", `[{"webhookKey":"` + a.webhook + `","state":"ACTIVE","callbackUrl":"` + cb + `"}]`},
			liveWant: 204},
	}
	for _, tt := range tests { // in order: the live calls change the account
		t.Run(tt.name, func(t *testing.T) {
			if got, body := tt.spec.do(t, a.client, a.srv); got != tt.specWant {
				t.Errorf("spec form %s %s: %d %s, want %d", tt.spec.method, tt.spec.path, got, body, tt.specWant)
			}
			got, body := tt.live.do(t, a.client, a.srv)
			if got != tt.liveWant {
				t.Fatalf("published form %s %s: %d %s, want %d", tt.live.method, tt.live.path, got, body, tt.liveWant)
			}
			if tt.check != nil {
				tt.check(t, body)
			}
		})
	}

	// A bad or missing token: 403 InvalidToken (the spec declares no error).
	for _, auth := range []string{"", "Bearer not-a-token"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, a.srv.URL+BasePath+"/webhooks?product=g2w", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := a.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !bytes.Contains(b, []byte(`"int_err_code":"InvalidToken"`)) {
			t.Errorf("Authorization %q: %d %s, want 403 InvalidToken", auth, resp.StatusCode, b)
		}
	}
}

// TestOldCallShapesRefused sends the calls the previous client made, and the spec's generated
// client's, that GoTo's published API refuses: each must be refused here too.
func TestOldCallShapesRefused(t *testing.T) {
	t.Parallel()
	a := newAccount(t)
	for _, c := range []struct {
		name string
		call rawCall
		want int
	}{
		{"list subscriptions without product", rawCall{"GET", "/userSubscriptions", ""}, 400},
		{"update subscriptions without webhookKey", rawCall{"PUT", "/userSubscriptions", `[{"userSubscriptionKey":"` + a.sub + `","userSubscriptionState":"INACTIVE"}]`}, 400},
		{"update subscriptions without userSubscriptionKey", rawCall{"PUT", "/userSubscriptions", `[{"webhookKey":"` + a.webhook + `","userSubscriptionState":"INACTIVE"}]`}, 400},
	} {
		if got, body := c.call.do(t, a.client, a.srv); got != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, got, body, c.want)
		}
	}

	spec, err := g2wapi.NewClientWithResponses(a.srv.URL+BasePath, g2wapi.WithHTTPClient(a.client))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	inactive := g2wapi.UserSubscriptionUpdateUserSubscriptionState("INACTIVE")
	calls := map[string]func() (int, error){
		"createWebhook (one object)": func() (int, error) {
			r, err := spec.CreateWebhookWithResponse(ctx, g2wapi.WebhookCreate{CallbackUrl: a.callback, EventName: "webinar.created", EventVersion: "1.0.0", Product: "g2w"})
			return status(r), err
		},
		"updateWebhooks (webhookState)": func() (int, error) {
			r, err := spec.UpdateWebhooksWithResponse(ctx, []g2wapi.WebhookUpdate{{WebhookKey: a.webhook, WebhookState: "ACTIVE"}})
			return status(r), err
		},
		"createUserSubscription (one object)": func() (int, error) {
			r, err := spec.CreateUserSubscriptionWithResponse(ctx, g2wapi.UserSubscriptionCreate{WebhookKey: a.anotherHookID, CallbackUrl: a.callback})
			return status(r), err
		},
		"listUserSubscriptions (no product)": func() (int, error) {
			r, err := spec.ListUserSubscriptionsWithResponse(ctx)
			return status(r), err
		},
		"updateUserSubscription (one key)": func() (int, error) {
			r, err := spec.UpdateUserSubscriptionWithResponse(ctx, a.sub, g2wapi.UserSubscriptionUpdate{UserSubscriptionState: &inactive})
			return status(r), err
		},
		"deleteUserSubscription (one key)": func() (int, error) {
			r, err := spec.DeleteUserSubscriptionWithResponse(ctx, a.sub)
			return status(r), err
		},
	}
	for name, call := range calls {
		code, err := call()
		if err != nil || code < 400 || code > 499 {
			t.Errorf("spec client's %s: %d, %v; want a 4xx refusal", name, code, err)
		}
	}
}

func status(r interface{ StatusCode() int }) int { return r.StatusCode() }

// TestVisibilityDelay checks that a new webhook or subscription does not exist, for any call
// or delivery, until the delay has passed.
func TestVisibilityDelay(t *testing.T) {
	t.Parallel()
	clk := newClock()
	sim, srv := startSim(t, Config{Now: clk.Now, VisibilityDelay: time.Second}, nil)
	cb := callbackServer(t)
	c := apiClient(t, srv, "")
	ctx := t.Context()
	if _, err := c.CreateSecretKey(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	hooks, err := c.CreateWebhooks(ctx, cb.URL+"/ok", "webinar.created")
	if err != nil {
		t.Fatal(err)
	}
	key := hooks[0].Key
	if _, err := c.GetWebhook(ctx, key); !isStatus(err, http.StatusNotFound) {
		t.Errorf("GetWebhook at once: %v, want 404", err)
	}
	if ws, err := c.ListWebhooks(ctx); err != nil || len(ws) != 0 {
		t.Errorf("ListWebhooks at once: %d, %v; want none", len(ws), err)
	}
	if err := c.SetWebhookState(ctx, g2wapi.StateActive, key); !isStatus(err, http.StatusNotFound) {
		t.Errorf("activation at once: %v, want 404", err)
	}
	if _, err := c.CreateUserSubscriptions(ctx, "", key); !isStatus(err, http.StatusBadRequest) {
		t.Errorf("subscription to an invisible webhook: %v, want 400", err)
	}
	clk.Advance(time.Second)
	if err := c.SetWebhookState(ctx, g2wapi.StateActive, key); err != nil {
		t.Fatalf("activation after the delay: %v", err)
	}
	subs, err := c.CreateUserSubscriptions(ctx, "", key)
	if err != nil {
		t.Fatal(err)
	}
	if all, err := c.ListUserSubscriptions(ctx); err != nil || len(all) != 0 {
		t.Errorf("ListUserSubscriptions at once: %d, %v; want none", len(all), err)
	}
	if _, err := c.GetUserSubscription(ctx, subs[0].Key); !isStatus(err, http.StatusNotFound) {
		t.Errorf("GetUserSubscription at once: %v, want 404", err)
	}
	if got := sim.Targets("webinar.created", DefaultOrganizers(1)[0].Key); len(got) != 0 {
		t.Errorf("targets through an invisible subscription: %v", got)
	}
	clk.Advance(time.Second)
	if all, err := c.ListUserSubscriptions(ctx); err != nil || len(all) != 1 {
		t.Errorf("ListUserSubscriptions after the delay: %d, %v; want 1", len(all), err)
	}
	if got := sim.Targets("webinar.created", DefaultOrganizers(1)[0].Key); len(got) != 1 {
		t.Errorf("targets after the delay: %v, want one", got)
	}
}

// TestManagementAPIErrors covers the rate limit and token expiry.
func TestManagementAPIErrors(t *testing.T) {
	t.Parallel()
	clk := newClock()
	_, srv := startSim(t, Config{Now: clk.Now, RequestsPerSecond: 2}, nil)
	authed := authClient(t, srv, "") // one request: the token, not rate limited
	for i, want := range []int{200, 200, 429} {
		if got, body := (rawCall{"GET", "/webhooks?product=g2w", ""}).do(t, authed, srv); got != want {
			t.Errorf("request %d in one second: %d %s, want %d", i+1, got, body, want)
		}
	}
	// A token expires after its lifetime (60 minutes by default).
	clk.Advance(61 * time.Minute)
	if got, body := (rawCall{"GET", "/webhooks?product=g2w", ""}).do(t, authed, srv); got != http.StatusForbidden || !bytes.Contains(body, []byte("InvalidToken")) {
		t.Errorf("with an expired token: %d %s, want 403 InvalidToken", got, body)
	}
}

// TestInjectedFaults checks that injected 503s and 429s reach the client, which retries its
// idempotent calls through them.
func TestInjectedFaults(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[int]int{}
	count := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
			next.ServeHTTP(rec, r)
			mu.Lock()
			seen[rec.status]++
			mu.Unlock()
		})
	}
	_, srv := startSim(t, Config{FailureRate: 0.15, ThrottleRate: 0.15, FaultSeed: 7}, count)
	c := apiClient(t, srv, "")
	for range 20 {
		if _, err := c.ListWebhooks(t.Context()); err != nil {
			t.Fatalf("ListWebhooks through injected faults: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if seen[http.StatusServiceUnavailable] == 0 || seen[http.StatusTooManyRequests] == 0 {
		t.Errorf("answers %v: want injected 503s and 429s", seen)
	}
}

// TestRateLimitBackoff checks that g2wapi's client backs off on 429 and gets through.
func TestRateLimitBackoff(t *testing.T) {
	t.Parallel()
	_, srv := startSim(t, Config{RequestsPerSecond: 2}, nil)
	c, err := g2wapi.New(g2wapi.Config{BaseURL: srv.URL + BasePath, HTTPClient: authClient(t, srv, ""),
		Limiter: g2wapi.NewLimiter(1000), Backoff: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := c.ListUserSubscriptions(t.Context()); err != nil {
			t.Fatalf("ListUserSubscriptions under the rate limit: %v", err)
		}
	}
}

func isStatus(err error, status int) bool {
	var apiErr *g2wapi.APIError
	return errors.As(err, &apiErr) && apiErr.Status == status
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
