package g2wsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
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

// clock is a settable clock for token expiry and rate limiting.
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

// startSim serves a Sim configured by cfg (client id and secret filled in), with handler
// wrapped by wrap if not nil.
func startSim(t *testing.T, cfg Config, wrap func(http.Handler) http.Handler) (*Sim, *httptest.Server) {
	t.Helper()
	cfg.ClientID, cfg.ClientSecret = testClientID, testClientSecret
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

// authClient returns an HTTP client carrying a client_credentials token from srv.
func authClient(t *testing.T, srv *httptest.Server) *http.Client {
	t.Helper()
	cc := clientcredentials.Config{ClientID: testClientID, ClientSecret: testClientSecret,
		TokenURL: srv.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, srv.Client())
	return cc.Client(ctx)
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

// specValidator validates every management API response against the OpenAPI spec and
// remembers which operations it saw answered with a status the spec describes.
type specValidator struct {
	t      *testing.T
	doc    *openapi3.T
	router routers.Router
	mu     sync.Mutex
	errs   []string
	seen   map[string]bool // operationId -> validated a described status
	live   map[string]bool // "METHOD path" not in the spec
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
	return &specValidator{t: t, doc: doc, router: router, seen: map[string]bool{}, live: map[string]bool{}}
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
		v.fail("build request: %v", err)
		return
	}
	route, params, err := v.router.FindRoute(req)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.validateEmbedded(r.Method+" "+path, rec.Body.Bytes())
	// The legacy router also matches /webhooks against /webhooks/{webhookKey} with an empty
	// key, so a route with fewer segments than the path's is no match either.
	if err != nil || strings.Count(route.Path, "/") != strings.Count(path, "/") {
		v.live[r.Method+" "+path] = true
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
	if route.Operation.Responses.Status(rec.Code) != nil {
		v.seen[route.Operation.OperationID] = true
	}
}

// embeddedSchemas maps live GoTo's HAL list names to the spec's schema for their items.
var embeddedSchemas = map[string]string{"webhooks": "Webhook", "userSubscriptions": "UserSubscription"}

// validateEmbedded checks the items of a live-shaped {"_embedded": {name: [...]}} answer
// against the spec's item schema: the wrapper is live GoTo's, the items must still be the
// spec's. (As a whole, such an answer passes for the spec's Webhook or UserSubscription only
// because those schemas allow extra properties.) Callers hold mu.
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

func (v *specValidator) fail(format string, args ...any) {
	v.t.Errorf(format, args...)
}

// TestManagementAPI drives every operation with g2wapi's client (live request shapes) and its
// generated WireClient (the spec's request shapes), and validates every response against the
// spec.
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
	httpClient := authClient(t, srv)
	ctx := t.Context()

	live, err := g2wapi.New(g2wapi.Config{BaseURL: srv.URL + BasePath, HTTPClient: httpClient})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := g2wapi.NewClientWithResponses(srv.URL+BasePath, g2wapi.WithHTTPClient(httpClient))
	if err != nil {
		t.Fatal(err)
	}

	// Live shapes, as g2wctl sends them.
	key, err := live.CreateSecretKey(ctx)
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
		if s.State != g2wapi.StateActive || s.ActivationState != g2wapi.StateActive || s.UserKey == "" {
			t.Errorf("created subscription %+v, want ACTIVE and activated", s)
		}
	}
	if err := live.UpdateUserSubscriptions(ctx, g2wapi.UserSubscriptionChange{Key: subs[0].Key, State: g2wapi.StateInactive}); err != nil {
		t.Fatal(err)
	}
	sub, err := live.GetUserSubscription(ctx, subs[0].Key)
	if err != nil || sub.State != g2wapi.StateInactive || sub.ActivationState != g2wapi.StateInactive {
		t.Errorf("GetUserSubscription after deactivation = %+v, %v", sub, err)
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

	// The spec's shapes, through the generated client.
	sk, err := spec.CreateWebhookSecretKeyWithResponse(ctx)
	if err != nil || sk.StatusCode() != http.StatusCreated || sk.JSON201 == nil || sk.JSON201.SecretKey == nil {
		t.Fatalf("CreateWebhookSecretKey: %v %s", err, body(sk))
	}
	cw, err := spec.CreateWebhookWithResponse(ctx, g2wapi.WebhookCreate{CallbackUrl: good, EventName: "webinar.created", EventVersion: "1.0.0", Product: "g2w"})
	if err != nil || cw.StatusCode() != http.StatusCreated || cw.JSON201 == nil || cw.JSON201.WebhookKey == nil ||
		cw.JSON201.WebhookState == nil || *cw.JSON201.WebhookState != "INACTIVE" {
		t.Fatalf("CreateWebhook: %v %s", err, body(cw))
	}
	wk := *cw.JSON201.WebhookKey
	uw, err := spec.UpdateWebhooksWithResponse(ctx, []g2wapi.WebhookUpdate{{WebhookKey: wk, WebhookState: "ACTIVE"}})
	if err != nil || uw.StatusCode() != http.StatusNoContent {
		t.Fatalf("UpdateWebhooks: %v %s", err, body(uw))
	}
	gw, err := spec.GetWebhookWithResponse(ctx, wk)
	if err != nil || gw.JSON200 == nil || *gw.JSON200.WebhookState != "ACTIVE" {
		t.Fatalf("GetWebhook: %v %s", err, body(gw))
	}
	cs, err := spec.CreateUserSubscriptionWithResponse(ctx, g2wapi.UserSubscriptionCreate{WebhookKey: wk, CallbackUrl: good})
	if err != nil || cs.JSON201 == nil || cs.JSON201.SubscriptionKey == nil || *cs.JSON201.UserSubscriptionState != "ACTIVE" {
		t.Fatalf("CreateUserSubscription: %v %s", err, body(cs))
	}
	sKey := *cs.JSON201.SubscriptionKey
	inactive := g2wapi.UserSubscriptionUpdateUserSubscriptionState("INACTIVE")
	us, err := spec.UpdateUserSubscriptionWithResponse(ctx, sKey, g2wapi.UserSubscriptionUpdate{UserSubscriptionState: &inactive})
	if err != nil || us.StatusCode() != http.StatusNoContent {
		t.Fatalf("UpdateUserSubscription: %v %s", err, body(us))
	}
	gs, err := spec.GetUserSubscriptionWithResponse(ctx, sKey)
	if err != nil || gs.JSON200 == nil || *gs.JSON200.UserSubscriptionState != "INACTIVE" {
		t.Fatalf("GetUserSubscription: %v %s", err, body(gs))
	}
	ls, err := spec.ListUserSubscriptionsWithResponse(ctx)
	if err != nil || ls.JSON200 == nil || len(*ls.JSON200) != 3 {
		t.Fatalf("ListUserSubscriptions: %v %s", err, body(ls))
	}
	ds, err := spec.DeleteUserSubscriptionWithResponse(ctx, sKey)
	if err != nil || ds.StatusCode() != http.StatusNoContent {
		t.Fatalf("DeleteUserSubscription: %v %s", err, body(ds))
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	for _, op := range []string{"createWebhookSecretKey", "createWebhook", "updateWebhooks", "getWebhook",
		"createUserSubscription", "listUserSubscriptions", "getUserSubscription", "updateUserSubscription", "deleteUserSubscription"} {
		if !v.seen[op] {
			t.Errorf("operation %s was never answered with a status the spec describes", op)
		}
	}
	if v.embedded < 3 { // create webhooks, list webhooks, create subscriptions
		t.Errorf("%d live-shaped list answers validated, want at least 3", v.embedded)
	}
	var liveOnly []string
	for k := range v.live {
		liveOnly = append(liveOnly, k)
	}
	slices.Sort(liveOnly)
	want := []string{"DELETE /userSubscriptions", "DELETE /webhooks", "GET /webhooks", "PUT /userSubscriptions"}
	if !slices.Equal(liveOnly, want) {
		t.Errorf("requests outside the spec = %q, want only the live-only operations %q", liveOnly, want)
	}
}

// TestManagementAPIErrors covers the answers the spec does not describe.
func TestManagementAPIErrors(t *testing.T) {
	t.Parallel()
	clk := newClock()
	_, srv := startSim(t, Config{Now: clk.Now, RequestsPerSecond: 4}, nil)
	authed := authClient(t, srv) // one request: the token, not rate limited
	cb := callbackServer(t)

	tests := []struct {
		name   string
		client *http.Client
		method string
		path   string
		body   string
		want   int
	}{
		{"no token", srv.Client(), http.MethodGet, "/userSubscriptions", "", http.StatusUnauthorized},
		{"unknown webhook", authed, http.MethodGet, "/webhooks/1", "", http.StatusNotFound},
		{"bad product", authed, http.MethodPost, "/webhooks", `{"product":"g2m","eventName":"webinar.created","eventVersion":"1.0.0","callbackUrl":"` + cb.URL + `/ok"}`, http.StatusBadRequest},
		{"bad state", authed, http.MethodPut, "/webhooks", `[{"webhookKey":"1","state":"ON"}]`, http.StatusBadRequest},
		{"over the rate", authed, http.MethodGet, "/userSubscriptions", "", http.StatusTooManyRequests},
	}
	for _, tt := range tests { // sequential: the last case relies on the earlier ones' count
		req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+BasePath+tt.path, strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := tt.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != tt.want || !bytes.Contains(b, []byte(`"description"`)) {
			t.Errorf("%s: %d %s, want %d with a description", tt.name, resp.StatusCode, b, tt.want)
		}
	}

	// A token expires after its lifetime (60 minutes by default).
	clk.Advance(61 * time.Minute)
	resp, err := authed.Get(srv.URL + BasePath + "/userSubscriptions")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("with an expired token: %d, want 401", resp.StatusCode)
	}
}

// TestRateLimitBackoff checks that g2wapi's client backs off on 429 and gets through.
func TestRateLimitBackoff(t *testing.T) {
	t.Parallel()
	_, srv := startSim(t, Config{RequestsPerSecond: 2}, nil)
	c, err := g2wapi.New(g2wapi.Config{BaseURL: srv.URL + BasePath, HTTPClient: authClient(t, srv), MaxAttempts: 5})
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

func body(r interface{ GetBody() []byte }) []byte {
	if r == nil {
		return nil
	}
	return r.GetBody()
}
