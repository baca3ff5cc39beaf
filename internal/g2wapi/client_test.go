package g2wapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"
)

// basePath is where the fake servers mount the API, as live GoTo does.
const basePath = "/G2W/rest/v2"

const callback = "https://turnout.example.com/webhooks/gotowebinar"

// recorded is one request a fake server received.
type recorded struct {
	Method, Path string
	Body         []byte
	Auth         string // the Authorization header
	At           time.Time
}

// fakeServer answers each request with the next of answers (the last one repeats) and records
// what it received.
type fakeServer struct {
	mu       sync.Mutex
	answers  []answer
	requests []recorded
}

type answer struct {
	status     int // hangUp: close the connection without answering
	body       string
	retryAfter string
}

// hangUp as an answer's status makes the fake server drop the connection: a network error.
const hangUp = -1

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, recorded{Method: r.Method, Path: r.URL.RequestURI(), Body: body,
		Auth: r.Header.Get("Authorization"), At: time.Now()})
	a := f.answers[min(len(f.requests), len(f.answers))-1]
	f.mu.Unlock()
	if a.status == hangUp {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return
	}
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	if a.body != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func (f *fakeServer) received() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

// newTestClient starts a fake server giving answers and returns a Client for it with
// millisecond backoffs.
func newTestClient(t *testing.T, answers ...answer) (*Client, *fakeServer) {
	t.Helper()
	return newTestClientWith(t, nil, answers...)
}

// newTestClientWith is newTestClient with credentials.
func newTestClientWith(t *testing.T, creds Credentials, answers ...answer) (*Client, *fakeServer) {
	t.Helper()
	fake := &fakeServer{answers: answers}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL + basePath, HTTPClient: srv.Client(), MaxAttempts: 3, Backoff: time.Millisecond, MaxWait: 50 * time.Millisecond,
		Limiter: NewLimiter(1000), Credentials: creds})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, fake
}

var created = time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC)

// TestMethods calls each method against a spec-shaped and a live-shaped answer, checks both
// decode to the wanted result, and that the request sent is the one live GoTo expects.
func TestMethods(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		call       func(context.Context, *Client) (any, error)
		wantMethod string
		wantPath   string // below basePath, with the query
		wantBody   string // JSON; "" for none
		spec, live answer
		want       any
		wantLive   any // when live GoTo sends more than the spec, else want
	}{
		{
			name:       "CreateSecretKey",
			call:       func(ctx context.Context, c *Client) (any, error) { return c.CreateSecretKey(ctx, time.Time{}) },
			wantMethod: "POST", wantPath: "/webhooks/secretkey",
			spec:     answer{status: 201, body: `{"secretKey":"f1679e36-17fe-48fa-93da-44195fd9e293"}`},
			live:     answer{status: 201, body: `{"value":"f1679e36-17fe-48fa-93da-44195fd9e293","validFrom":"2024-05-01T12:30:00Z","id":63}`},
			want:     SecretKey{Value: "f1679e36-17fe-48fa-93da-44195fd9e293"},
			wantLive: SecretKey{ID: "63", Value: "f1679e36-17fe-48fa-93da-44195fd9e293", ValidFrom: created},
		},
		{
			name: "CreateSecretKey validFrom",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateSecretKey(ctx, created.In(time.FixedZone("CET", 3600)))
			},
			wantMethod: "POST", wantPath: "/webhooks/secretkey",
			wantBody: `{"validFrom":"2024-05-01T12:30:00Z"}`,
			spec:     answer{status: 201, body: `{"secretKey":"k2"}`},
			// GoTo's published API answers creates with 200.
			live:     answer{status: 200, body: `{"value":"k2","validFrom":"2024-05-01T12:30:00.000+0000","id":"64"}`},
			want:     SecretKey{Value: "k2"},
			wantLive: SecretKey{ID: "64", Value: "k2", ValidFrom: created},
		},
		{
			name: "CreateWebhooks",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateWebhooks(ctx, callback, "registrant.joined")
			},
			wantMethod: "POST", wantPath: "/webhooks",
			wantBody: `[{"callbackUrl":"` + callback + `","eventName":"registrant.joined","eventVersion":"1.0.0","product":"g2w"}]`,
			spec:     answer{status: 201, body: `{"webhookKey":"w1","product":"g2w","eventName":"registrant.joined","eventVersion":"1.0.0","callbackUrl":"` + callback + `","webhookState":"INACTIVE","createTime":"2024-05-01T12:30:00Z"}`},
			live:     answer{status: 200, body: `{"_embedded":{"webhooks":[{"webhookKey":"w1","product":"g2w","eventName":"registrant.joined","eventVersion":"1.0.0","callbackUrl":"` + callback + `","state":"INACTIVE","createTime":"2024-05-01T12:30:00.000+0000"}]}}`},
			want:     []Webhook{{Key: "w1", EventName: "registrant.joined", EventVersion: "1.0.0", Product: "g2w", CallbackURL: callback, State: StateInactive, CreatedAt: created}},
		},
		{
			name:       "GetWebhook",
			call:       func(ctx context.Context, c *Client) (any, error) { return c.GetWebhook(ctx, "w1") },
			wantMethod: "GET", wantPath: "/webhooks/w1",
			spec: answer{status: 200, body: `{"webhookKey":"w1","eventName":"webinar.created","callbackUrl":"` + callback + `","webhookState":"ACTIVE"}`},
			live: answer{status: 200, body: `{"webhookKey":"w1","eventName":"webinar.created","callbackUrl":"` + callback + `","state":"ACTIVE"}`},
			want: Webhook{Key: "w1", EventName: "webinar.created", CallbackURL: callback, State: StateActive},
		},
		{
			name:       "ListWebhooks",
			call:       func(ctx context.Context, c *Client) (any, error) { return c.ListWebhooks(ctx) },
			wantMethod: "GET", wantPath: "/webhooks?product=g2w",
			// The spec has no list operation; a bare array is its list shape elsewhere.
			spec: answer{status: 200, body: `[{"webhookKey":"w1","eventName":"webinar.changed","webhookState":"ACTIVE"},{"webhookKey":"1234567890123456789","eventName":"registrant.added","webhookState":"INACTIVE"}]`},
			live: answer{status: 200, body: `{"_embedded":{"webhooks":[{"webhookKey":"w1","eventName":"webinar.changed","state":"ACTIVE"},{"webhookKey":1234567890123456789,"eventName":"registrant.added","state":"INACTIVE"}]},"_links":{}}`},
			want: []Webhook{{Key: "w1", EventName: "webinar.changed", State: StateActive}, {Key: "1234567890123456789", EventName: "registrant.added", State: StateInactive}},
		},
		{
			name:       "ListWebhooks empty",
			call:       func(ctx context.Context, c *Client) (any, error) { return c.ListWebhooks(ctx) },
			wantMethod: "GET", wantPath: "/webhooks?product=g2w",
			spec: answer{status: 200, body: `[]`},
			// HAL lists with no items may leave out _embedded.
			live: answer{status: 200, body: `{"_links":{"self":{"href":"/webhooks"}}}`},
			want: []Webhook{},
		},
		{
			name: "SetWebhookState",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.SetWebhookState(ctx, StateActive, "w1", "w2")
			},
			wantMethod: "PUT", wantPath: "/webhooks",
			wantBody: `[{"webhookKey":"w1","state":"ACTIVE"},{"webhookKey":"w2","state":"ACTIVE"}]`,
			spec:     answer{status: 204},
			live:     answer{status: 204},
		},
		{
			name:       "DeleteWebhooks",
			call:       func(ctx context.Context, c *Client) (any, error) { return nil, c.DeleteWebhooks(ctx, "w1", "w2") },
			wantMethod: "DELETE", wantPath: "/webhooks",
			wantBody: `["w1","w2"]`,
			spec:     answer{status: 204},
			live:     answer{status: 202},
		},
		{
			name: "CreateUserSubscriptions",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateUserSubscriptions(ctx, callback, "w1")
			},
			wantMethod: "POST", wantPath: "/userSubscriptions",
			wantBody: `[{"webhookKey":"w1","callbackUrl":"` + callback + `","userSubscriptionState":"ACTIVE"}]`,
			spec:     answer{status: 201, body: `{"subscriptionKey":"s1","userKey":"u1","webhookKey":"w1","callbackUrl":"` + callback + `","userSubscriptionState":"ACTIVE"}`},
			live:     answer{status: 200, body: `{"_embedded":{"userSubscriptions":[{"userSubscriptionKey":3300000000000000001,"userKey":"u1","webhookKey":"w1","callbackUrl":"` + callback + `","userSubscriptionState":"ACTIVE","activationState":"INACTIVE"}]}}`},
			want:     []UserSubscription{{Key: "s1", UserKey: "u1", WebhookKey: "w1", CallbackURL: callback, State: StateActive}},
			wantLive: []UserSubscription{{Key: "3300000000000000001", UserKey: "u1", WebhookKey: "w1", CallbackURL: callback, State: StateActive, ActivationState: StateInactive}},
		},
		{
			name:       "ListUserSubscriptions",
			call:       func(ctx context.Context, c *Client) (any, error) { return c.ListUserSubscriptions(ctx) },
			wantMethod: "GET", wantPath: "/userSubscriptions?product=g2w",
			spec: answer{status: 200, body: `[{"subscriptionKey":"s1","userKey":"1234567890123456789","webhookKey":"w1","userSubscriptionState":"INACTIVE"}]`},
			live: answer{status: 200, body: `{"_embedded":{"userSubscriptions":[{"userSubscriptionKey":"s1","userKey":1234567890123456789,"webhookKey":"w1","userSubscriptionState":"INACTIVE"}]}}`},
			want: []UserSubscription{{Key: "s1", UserKey: "1234567890123456789", WebhookKey: "w1", State: StateInactive}},
		},
		{
			name:       "GetUserSubscription",
			call:       func(ctx context.Context, c *Client) (any, error) { return c.GetUserSubscription(ctx, "s1") },
			wantMethod: "GET", wantPath: "/userSubscriptions/s1",
			spec:     answer{status: 200, body: `{"subscriptionKey":"s1","webhookKey":"w1","userSubscriptionState":"ACTIVE"}`},
			live:     answer{status: 200, body: `{"userSubscriptionKey":"s1","webhookKey":"w1","userSubscriptionState":"ACTIVE","activationState":"ACTIVE"}`},
			want:     UserSubscription{Key: "s1", WebhookKey: "w1", State: StateActive},
			wantLive: UserSubscription{Key: "s1", WebhookKey: "w1", State: StateActive, ActivationState: StateActive},
		},
		{
			name: "UpdateUserSubscriptions",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.UpdateUserSubscriptions(ctx, UserSubscriptionChange{Key: "s1", WebhookKey: "w1", State: StateInactive}, UserSubscriptionChange{Key: "s2", WebhookKey: "w2", CallbackURL: callback})
			},
			wantMethod: "PUT", wantPath: "/userSubscriptions",
			wantBody: `[{"webhookKey":"w1","userSubscriptionKey":"s1","userSubscriptionState":"INACTIVE"},{"webhookKey":"w2","userSubscriptionKey":"s2","callbackUrl":"` + callback + `"}]`,
			spec:     answer{status: 204},
			live:     answer{status: 204},
		},
		{
			name: "DeleteUserSubscriptions",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.DeleteUserSubscriptions(ctx, "s1", "s2")
			},
			wantMethod: "DELETE", wantPath: "/userSubscriptions",
			wantBody: `["s1","s2"]`,
			spec:     answer{status: 204},
			live:     answer{status: 202},
		},
	}
	for _, tt := range tests {
		for _, shape := range []string{"spec", "live"} {
			t.Run(tt.name+"/"+shape, func(t *testing.T) {
				t.Parallel()
				a, want := tt.spec, tt.want
				if shape == "live" {
					a = tt.live
					if tt.wantLive != nil {
						want = tt.wantLive
					}
				}
				c, fake := newTestClient(t, a)
				got, err := tt.call(t.Context(), c)
				if err != nil {
					t.Fatalf("call: %v", err)
				}
				if want != nil && !equalResult(got, want) {
					t.Errorf("result\n got %+v\nwant %+v", got, want)
				}
				reqs := fake.received()
				if len(reqs) != 1 {
					t.Fatalf("server got %d requests, want 1", len(reqs))
				}
				r := reqs[0]
				if r.Method != tt.wantMethod || r.Path != basePath+tt.wantPath {
					t.Errorf("request %s %s, want %s %s", r.Method, r.Path, tt.wantMethod, basePath+tt.wantPath)
				}
				assertJSON(t, r.Body, tt.wantBody)
			})
		}
	}
}

// equalResult compares results, treating a nil and an empty slice alike.
func equalResult(got, want any) bool {
	if reflect.DeepEqual(got, want) {
		return true
	}
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	return g.Kind() == reflect.Slice && w.Kind() == reflect.Slice && g.Len() == 0 && w.Len() == 0
}

// assertJSON checks that body is the JSON document want ("" meaning no body).
func assertJSON(t *testing.T, body []byte, want string) {
	t.Helper()
	if want == "" {
		if len(body) != 0 {
			t.Errorf("request body %s, want none", body)
		}
		return
	}
	var g, w any
	if err := json.Unmarshal(body, &g); err != nil {
		t.Fatalf("request body %q is not JSON: %v", body, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %q is not JSON: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("request body\n got %s\nwant %s", body, want)
	}
}

func TestRetryOn429(t *testing.T) {
	t.Parallel()
	tooMany := answer{status: 429, body: `{"description":"Too many requests"}`}
	ok := answer{status: 201, body: `{"_embedded":{"webhooks":[{"webhookKey":"w1","eventName":"registrant.added","state":"INACTIVE"}]}}`}
	tests := []struct {
		name         string
		answers      []answer
		wantAttempts int
		wantStatus   int // 0: success
	}{
		{name: "429 then 201", answers: []answer{tooMany, ok}, wantAttempts: 2},
		{name: "Retry-After seconds then 201", answers: []answer{{status: 429, retryAfter: "0"}, tooMany, ok}, wantAttempts: 3},
		{name: "gives up after MaxAttempts", answers: []answer{tooMany}, wantAttempts: 3, wantStatus: 429},
		{name: "Retry-After beyond MaxWait", answers: []answer{{status: 429, retryAfter: "3600"}, ok}, wantAttempts: 1, wantStatus: 429},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, fake := newTestClient(t, tt.answers...)
			hooks, err := c.CreateWebhooks(t.Context(), callback, "registrant.added")
			reqs := fake.received()
			if len(reqs) != tt.wantAttempts {
				t.Errorf("server got %d requests, want %d", len(reqs), tt.wantAttempts)
			}
			// Every retry resends the whole body.
			for i, r := range reqs {
				assertJSON(t, r.Body, `[{"callbackUrl":"`+callback+`","eventName":"registrant.added","eventVersion":"1.0.0","product":"g2w"}]`)
				if t.Failed() {
					t.Fatalf("request %d", i+1)
				}
			}
			if tt.wantStatus == 0 {
				if err != nil || len(hooks) != 1 || hooks[0].Key != "w1" {
					t.Fatalf("got %+v, %v; want webhook w1", hooks, err)
				}
				return
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tt.wantStatus {
				t.Fatalf("error %v, want *APIError with status %d", err, tt.wantStatus)
			}
		})
	}
}

func TestRetryStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel() // the client is now waiting out the backoff below
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, HTTPClient: srv.Client(), Backoff: time.Hour, MaxWait: time.Hour, Limiter: NewLimiter(1000)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListWebhooks(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

func TestAPIError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		answer  answer
		want    APIError
		wantMsg string
	}{
		{
			name:    "description",
			answer:  answer{status: 403, body: `{"errorCode":"AuthFailure","description":"Access token expired","incident":"x"}`},
			want:    APIError{Status: 403, Message: "Access token expired"},
			wantMsg: "GoTo API: 403 Forbidden: Access token expired",
		},
		{
			name:    "message",
			answer:  answer{status: 404, body: `{"message":"Webhook not found"}`},
			want:    APIError{Status: 404, Message: "Webhook not found"},
			wantMsg: "GoTo API: 404 Not Found: Webhook not found",
		},
		{
			name:    "oauth error",
			answer:  answer{status: 401, body: `{"error":"invalid_token","error_description":"The access token expired"}`},
			want:    APIError{Status: 401, Message: "The access token expired"},
			wantMsg: "GoTo API: 401 Unauthorized: The access token expired",
		},
		{
			name:    "text body on one line",
			answer:  answer{status: 502, body: "<html>\n  Bad   gateway\n</html>"},
			want:    APIError{Status: 502, Message: "<html> Bad gateway </html>"},
			wantMsg: "GoTo API: 502 Bad Gateway: <html> Bad gateway </html>",
		},
		{
			name:    "no body",
			answer:  answer{status: 500},
			want:    APIError{Status: 500},
			wantMsg: "GoTo API: 500 Internal Server Error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newTestClient(t, tt.answer)
			_, err := c.GetWebhook(t.Context(), "w1")
			// Returned as is, not wrapped: the caller prints one line.
			apiErr, ok := err.(*APIError)
			if !ok {
				t.Fatalf("error %T %v, want *APIError", err, err)
			}
			if *apiErr != tt.want {
				t.Errorf("got %+v, want %+v", *apiErr, tt.want)
			}
			if apiErr.Error() != tt.wantMsg {
				t.Errorf("Error() %q, want %q", apiErr.Error(), tt.wantMsg)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		value  string
		want   time.Duration
		wantOK bool
	}{
		{value: "", wantOK: false},
		{value: "2", want: 2 * time.Second, wantOK: true},
		{value: "Wed, 01 May 2024 12:00:05 GMT", want: 5 * time.Second, wantOK: true},
		{value: "Wed, 01 May 2024 11:00:00 GMT", want: 0, wantOK: true},
		{value: "-1", wantOK: false},
		{value: "soon", wantOK: false},
	}
	for _, tt := range tests {
		got, ok := retryAfter(tt.value, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.value, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestArgumentsChecked(t *testing.T) {
	t.Parallel()
	c, fake := newTestClient(t, answer{status: 204})
	ctx := t.Context()
	calls := map[string]error{
		"CreateWebhooks without events":   func() error { _, err := c.CreateWebhooks(ctx, callback); return err }(),
		"SetWebhookState bad state":       c.SetWebhookState(ctx, "ON", "w1"),
		"SetWebhookState without keys":    c.SetWebhookState(ctx, StateActive),
		"UpdateUserSubscriptions bad":     c.UpdateUserSubscriptions(ctx, UserSubscriptionChange{Key: "s1", WebhookKey: "w1", State: "on"}),
		"UpdateUserSubscriptions no hook": c.UpdateUserSubscriptions(ctx, UserSubscriptionChange{Key: "s1", State: StateActive}),
		"UpdateUserSubscriptions no key":  c.UpdateUserSubscriptions(ctx, UserSubscriptionChange{WebhookKey: "w1", State: StateActive}),
		"DeleteUserSubscriptions no keys": c.DeleteUserSubscriptions(ctx),
	}
	for name, err := range calls {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if n := len(fake.received()); n != 0 {
		t.Errorf("server got %d requests, want none", n)
	}
}

func TestSpecEmbedded(t *testing.T) {
	t.Parallel()
	if !bytes.HasPrefix(Spec, []byte("openapi: 3.")) || !bytes.Contains(Spec, []byte("operationId: createWebhook\n")) {
		t.Fatalf("Spec is not the management API's OpenAPI document: %.40q", Spec)
	}
}

// TestRetries checks which failures are retried: 429 always; 5xx and network errors only for
// idempotent methods, since a POST that failed so may have created something.
func TestRetries(t *testing.T) {
	t.Parallel()
	listed := answer{status: 200, body: `{"_embedded":{"webhooks":[]}}`}
	createdHook := answer{status: 200, body: `{"_embedded":{"webhooks":[{"webhookKey":"w1","eventName":"registrant.added","state":"INACTIVE"}]}}`}
	list := func(ctx context.Context, c *Client) error { _, err := c.ListWebhooks(ctx); return err }
	put := func(ctx context.Context, c *Client) error { return c.SetWebhookState(ctx, StateActive, "w1") }
	del := func(ctx context.Context, c *Client) error { return c.DeleteWebhooks(ctx, "w1") }
	create := func(ctx context.Context, c *Client) error {
		_, err := c.CreateWebhooks(ctx, callback, "registrant.added")
		return err
	}
	tests := []struct {
		name         string
		call         func(context.Context, *Client) error
		answers      []answer
		wantAttempts int
		wantStatus   int  // 0: success
		wantNetErr   bool // a transport error, not an *APIError
	}{
		{name: "GET 503 503 200", call: list, answers: []answer{{status: 503}, {status: 503}, listed}, wantAttempts: 3},
		{name: "GET 500 until MaxAttempts", call: list, answers: []answer{{status: 500}}, wantAttempts: 3, wantStatus: 500},
		{name: "GET network error then 200", call: list, answers: []answer{{status: hangUp}, listed}, wantAttempts: 2},
		{name: "GET 503 with Retry-After", call: list, answers: []answer{{status: 503, retryAfter: "0"}, listed}, wantAttempts: 2},
		{name: "PUT 502 then 204", call: put, answers: []answer{{status: 502}, {status: 204}}, wantAttempts: 2},
		{name: "DELETE network error then 202", call: del, answers: []answer{{status: hangUp}, {status: 202}}, wantAttempts: 2},
		{name: "POST 429 then 200", call: create, answers: []answer{{status: 429}, createdHook}, wantAttempts: 2},
		{name: "POST 503 not retried", call: create, answers: []answer{{status: 503}, createdHook}, wantAttempts: 1, wantStatus: 503},
		{name: "POST network error not retried", call: create, answers: []answer{{status: hangUp}, createdHook}, wantAttempts: 1, wantNetErr: true},
		{name: "GET 404 not retried", call: list, answers: []answer{{status: 404}, listed}, wantAttempts: 1, wantStatus: 404},
		{name: "GET 400 not retried", call: list, answers: []answer{{status: 400}, listed}, wantAttempts: 1, wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, fake := newTestClient(t, tt.answers...)
			err := tt.call(t.Context(), c)
			if n := len(fake.received()); n != tt.wantAttempts {
				t.Errorf("server got %d requests, want %d", n, tt.wantAttempts)
			}
			var apiErr *APIError
			switch {
			case tt.wantNetErr:
				if err == nil || errors.As(err, &apiErr) {
					t.Errorf("error %v, want a network error", err)
				}
			case tt.wantStatus == 0:
				if err != nil {
					t.Errorf("error %v, want success", err)
				}
			default:
				if !errors.As(err, &apiErr) || apiErr.Status != tt.wantStatus {
					t.Errorf("error %v, want *APIError with status %d", err, tt.wantStatus)
				}
			}
		})
	}
}

// fakeCredentials hands out "t0", then "t1", … on each Refresh.
type fakeCredentials struct {
	mu        sync.Mutex
	refreshes int
}

func (f *fakeCredentials) Token(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return "t" + strconv.Itoa(f.refreshes), nil
}

func (f *fakeCredentials) Refresh(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshes++
	return "t" + strconv.Itoa(f.refreshes), nil
}

// TestTokenRefresh checks that a refused token (401, or 403 InvalidToken as GoTo answers an
// expired one) is refreshed once and the request sent again with the new one, for every
// method, and that other 403s are not taken for an expired token.
func TestTokenRefresh(t *testing.T) {
	t.Parallel()
	invalid := answer{status: 403, body: `{"int_err_code":"InvalidToken","msg":"Invalid token passed"}`}
	ok := answer{status: 200, body: `{"_embedded":{"webhooks":[{"webhookKey":"w1","eventName":"registrant.added","state":"INACTIVE"}]}}`}
	tests := []struct {
		name          string
		post          bool
		answers       []answer
		wantAuth      []string
		wantRefreshes int
		wantStatus    int
	}{
		{name: "403 InvalidToken then 200", answers: []answer{invalid, ok}, wantAuth: []string{"Bearer t0", "Bearer t1"}, wantRefreshes: 1},
		{name: "POST 403 InvalidToken then 200", post: true, answers: []answer{invalid, ok}, wantAuth: []string{"Bearer t0", "Bearer t1"}, wantRefreshes: 1},
		{name: "401 then 200", answers: []answer{{status: 401}, ok}, wantAuth: []string{"Bearer t0", "Bearer t1"}, wantRefreshes: 1},
		{name: "refused twice: refreshed once", answers: []answer{invalid}, wantAuth: []string{"Bearer t0", "Bearer t1"}, wantRefreshes: 1, wantStatus: 403},
		{name: "403 other than InvalidToken", answers: []answer{{status: 403, body: `{"int_err_code":"Forbidden","msg":"not your webhook"}`}, ok},
			wantAuth: []string{"Bearer t0"}, wantStatus: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			creds := &fakeCredentials{}
			c, fake := newTestClientWith(t, creds, tt.answers...)
			var err error
			if tt.post {
				_, err = c.CreateWebhooks(t.Context(), callback, "registrant.added")
			} else {
				_, err = c.ListWebhooks(t.Context())
			}
			var auth []string
			for _, r := range fake.received() {
				auth = append(auth, r.Auth)
				if tt.post {
					assertJSON(t, r.Body, `[{"callbackUrl":"`+callback+`","eventName":"registrant.added","eventVersion":"1.0.0","product":"g2w"}]`)
				}
			}
			if !reflect.DeepEqual(auth, tt.wantAuth) {
				t.Errorf("Authorization headers %q, want %q", auth, tt.wantAuth)
			}
			if creds.refreshes != tt.wantRefreshes {
				t.Errorf("%d refreshes, want %d", creds.refreshes, tt.wantRefreshes)
			}
			var apiErr *APIError
			if tt.wantStatus == 0 && err != nil || tt.wantStatus != 0 && (!errors.As(err, &apiErr) || apiErr.Status != tt.wantStatus) {
				t.Errorf("error %v, want status %d (0: none)", err, tt.wantStatus)
			}
		})
	}
}

// TestRateLimited checks that the default client never sends more than GoTo's 10 requests in
// a second: the 11 requests below take at least a second.
func TestRateLimited(t *testing.T) {
	t.Parallel()
	fake := &fakeServer{answers: []answer{{status: 200, body: `[]`}}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	for range DefaultRequestsPerSecond + 1 {
		if _, err := c.ListWebhooks(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	reqs := fake.received()
	if span := reqs[len(reqs)-1].At.Sub(reqs[0].At); span < 950*time.Millisecond {
		t.Errorf("%d requests within %v, want at least 1s between the first and the last", len(reqs), span)
	}
}

// TestBackoffCappedAtMaxWait: a jittered backoff can exceed MaxWait; it is cut to MaxWait
// and the retry happens (it is not taken for a server asking to wait too long).
func TestBackoffCappedAtMaxWait(t *testing.T) {
	t.Parallel()
	fake := &fakeServer{answers: []answer{{status: hangUp}, {status: 503}, {status: hangUp}, {status: 200, body: `[]`}}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, HTTPClient: srv.Client(), Backoff: 20 * time.Millisecond, MaxWait: 20 * time.Millisecond,
		MaxAttempts: 4, Limiter: NewLimiter(1000)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListWebhooks(t.Context()); err != nil {
		t.Fatalf("ListWebhooks: %v", err)
	}
	if n := len(fake.received()); n != 4 {
		t.Errorf("server got %d requests, want 4", n)
	}
}
