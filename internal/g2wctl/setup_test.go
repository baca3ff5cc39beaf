package g2wctl

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/turnout-analytics/turnout/internal/g2wapi"
	"github.com/turnout-analytics/turnout/internal/g2wsim"
)

// lagging makes GET /webhooks/{key} answer 404 the first misses times per key, as live GoTo's
// eventually consistent creation may, counts activations that came before the webhook was
// visible, and counts secret keys created.
type lagging struct {
	next    http.Handler
	misses  int
	mu      sync.Mutex
	gets    map[string]int
	early   int // PUT /webhooks before a GET of the key succeeded
	secrets int // POST /webhooks/secretkey
}

func (l *lagging) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const prefix = g2wsim.BasePath + "/webhooks/"
	key, isGet := strings.CutPrefix(r.URL.Path, prefix)
	l.mu.Lock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == prefix+"secretkey":
		l.secrets++
	case r.Method == http.MethodGet && isGet && key != "":
		l.gets[key]++
		if l.gets[key] <= l.misses {
			l.mu.Unlock()
			http.Error(w, `{"description":"not yet"}`, http.StatusNotFound)
			return
		}
	case r.Method == http.MethodPut && r.URL.Path == g2wsim.BasePath+"/webhooks":
		for _, n := range l.gets {
			if n <= l.misses {
				l.early++
			}
		}
	}
	l.mu.Unlock()
	l.next.ServeHTTP(w, r)
}

// testSim is an emulator behind a lagging wrapper, and a callback that answers GET with 200.
type testSim struct {
	sim      *g2wsim.Sim
	srv      *httptest.Server
	lag      *lagging
	callback string
}

func startSim(t *testing.T, misses int, cfg g2wsim.Config) *testSim {
	t.Helper()
	cfg.ClientID, cfg.ClientSecret = "id", "secret"
	if cfg.VisibilityDelay == 0 {
		cfg.VisibilityDelay = -1
	}
	sim, err := g2wsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := &lagging{next: sim.Handler(), misses: misses, gets: map[string]int{}}
	srv := httptest.NewServer(l)
	t.Cleanup(srv.Close)
	cb := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(cb.Close)
	return &testSim{sim: sim, srv: srv, lag: l, callback: cb.URL + "/hook"}
}

// hinted is client_credentials for the emulator's organizer named by a login_hint.
type hinted struct {
	cc  clientcredentials.Config
	mu  sync.Mutex
	tok string
}

func (h *hinted) Token(ctx context.Context) (string, error) {
	h.mu.Lock()
	tok := h.tok
	h.mu.Unlock()
	if tok != "" {
		return tok, nil
	}
	return h.Refresh(ctx)
}

func (h *hinted) Refresh(ctx context.Context) (string, error) {
	tok, err := h.cc.Token(ctx)
	if err != nil {
		return "", err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tok = tok.AccessToken
	return h.tok, nil
}

// organizer returns an Organizer of the emulator for o, with a client of its own.
func (s *testSim) organizer(t *testing.T, o g2wsim.Organizer) Organizer {
	t.Helper()
	creds := &hinted{cc: clientcredentials.Config{ClientID: "id", ClientSecret: "secret", TokenURL: s.srv.URL + "/oauth/token",
		AuthStyle: oauth2.AuthStyleInHeader, EndpointParams: url.Values{"login_hint": {o.Email}}}}
	c, err := g2wapi.New(g2wapi.Config{BaseURL: s.srv.URL + g2wsim.BasePath, Credentials: creds,
		Limiter: g2wapi.NewLimiter(1000), Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return Organizer{Profile: o.Email, Key: o.Key, Client: c}
}

// organizers returns an Organizer for each of the emulator's organizers.
func (s *testSim) organizers(t *testing.T) []Organizer {
	t.Helper()
	var out []Organizer
	for _, o := range s.sim.Organizers() {
		out = append(out, s.organizer(t, o))
	}
	return out
}

func (s *testSim) doctor(t *testing.T, orgs []Organizer) (bool, string) {
	t.Helper()
	var out bytes.Buffer
	ok, err := Doctor(t.Context(), DoctorConfig{Callback: s.callback, Organizers: orgs, HTTPClient: http.DefaultClient, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	return ok, out.String()
}

func TestSetupWaitsForNewWebhooks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		misses  int
		wantErr bool
	}{
		{"visible at once", 0, false},
		{"visible after two polls", 2, false},
		{"never visible within the bound", 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startSim(t, tt.misses, g2wsim.Config{})
			var out bytes.Buffer
			res, err := Setup(t.Context(), SetupConfig{Callback: s.callback, Events: []string{"registrant.joined"}, Organizers: s.organizers(t),
				PollInterval: 5 * time.Millisecond, PollAttempts: 4, Out: &out})
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "not done after 4 attempts") {
					t.Errorf("Setup: %v, want a bounded wait error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Setup: %v\n%s", err, out.String())
			}
			if s.lag.early != 0 {
				t.Errorf("%d activations before the webhook was visible", s.lag.early)
			}
			if res.Created != 3 || len(res.Webhooks) != 1 || len(res.Subscriptions) != 1 {
				t.Errorf("result %+v: want a key, a webhook and a subscription created", res)
			}
		})
	}
}

// TestSetupSecretKeys checks that setup creates a key only on a first setup, and never when
// one is recorded or G2W_SECRET_KEYS is given.
func TestSetupSecretKeys(t *testing.T) {
	t.Parallel()
	recorded := []g2wapi.SecretKey{{ID: "1", Value: "recorded"}}
	tests := []struct {
		name        string
		keys        []g2wapi.SecretKey
		given       bool
		hooksBefore bool // the application already has webhooks
		wantErr     error
		wantCreated int // secret keys
		wantKeys    int // in the result
	}{
		{name: "first setup creates one", wantCreated: 1, wantKeys: 1},
		{name: "recorded: reused", keys: recorded, hooksBefore: true, wantKeys: 1},
		{name: "given: none created, none printed", given: true, hooksBefore: true},
		{name: "given on a first setup: none created", given: true},
		{name: "unknown on a set-up application: refused", hooksBefore: true, wantErr: ErrSecretUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startSim(t, 0, g2wsim.Config{})
			orgs := s.organizers(t)
			if tt.hooksBefore {
				if _, err := orgs[0].Client.CreateWebhooks(t.Context(), s.callback, "webinar.created"); err != nil {
					t.Fatal(err)
				}
			}
			var saved []g2wapi.SecretKey
			res, err := Setup(t.Context(), SetupConfig{Callback: s.callback, Organizers: orgs, SecretKeys: tt.keys, SecretKeysGiven: tt.given,
				SaveSecret: func(k g2wapi.SecretKey) error { saved = append(saved, k); return nil }})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Setup: %v, want %v", err, tt.wantErr)
			}
			if s.lag.secrets != tt.wantCreated || len(saved) != tt.wantCreated || len(res.SecretKeys) != tt.wantKeys {
				t.Errorf("%d keys created (%d saved), %d in the result; want %d created, %d in the result",
					s.lag.secrets, len(saved), len(res.SecretKeys), tt.wantCreated, tt.wantKeys)
			}
			if err == nil && len(tt.keys) > 0 && res.SecretKeys[0] != tt.keys[0] {
				t.Errorf("result keys %+v, want the recorded ones", res.SecretKeys)
			}
		})
	}
}

func TestDoctorSeesInactiveSubscription(t *testing.T) {
	t.Parallel()
	s := startSim(t, 0, g2wsim.Config{})
	orgs := s.organizers(t)
	res, err := Setup(t.Context(), SetupConfig{Callback: s.callback, Organizers: orgs})
	if err != nil {
		t.Fatal(err)
	}
	if ok, out := s.doctor(t, orgs); !ok {
		t.Fatalf("doctor after setup:\n%s", out)
	}
	sub := res.Subscriptions[orgs[0].Profile][1]
	if err := orgs[0].Client.UpdateUserSubscriptions(t.Context(), g2wapi.UserSubscriptionChange{Key: sub.Key, WebhookKey: sub.WebhookKey, State: g2wapi.StateInactive}); err != nil {
		t.Fatal(err)
	}
	ok, out := s.doctor(t, orgs)
	if ok || !strings.Contains(out, "[FAIL] organizer "+orgs[0].String()+" registrant.joined: INACTIVE (subscription "+sub.Key+")") {
		t.Errorf("doctor with an inactive subscription: ok=%v\n%s", ok, out)
	}
	// Setup reactivates it, creating nothing.
	again, err := Setup(t.Context(), SetupConfig{Callback: s.callback, Organizers: orgs, SecretKeys: res.SecretKeys})
	if err != nil || again.Created != 0 {
		t.Fatalf("second setup: created %d, %v", again.Created, err)
	}
	if ok, out := s.doctor(t, orgs); !ok {
		t.Errorf("doctor after repair:\n%s", out)
	}
}

// TestSetupEveryOrganizerUnderFaults runs setup for two organizers against an emulator that
// injects 503s and 429s and shows new records only after a delay: run again after each
// failure, it converges, creating nothing twice; doctor then passes for both organizers, and
// fails, naming them, for an organizer who was left out.
func TestSetupEveryOrganizerUnderFaults(t *testing.T) {
	t.Parallel()
	s := startSim(t, 0, g2wsim.Config{Organizers: g2wsim.DefaultOrganizers(3), VisibilityDelay: 150 * time.Millisecond,
		FailureRate: 0.15, ThrottleRate: 0.15, FaultSeed: 11})
	all := s.organizers(t)
	orgs, left := all[:2], all[2]
	cfg := SetupConfig{Callback: s.callback, Organizers: orgs, PollInterval: 50 * time.Millisecond}
	var res SetupResult
	var err error
	runs := 0
	for runs = 1; runs <= 10; runs++ {
		var out bytes.Buffer
		cfg.Out = &out
		if res, err = Setup(t.Context(), cfg); err == nil {
			break
		}
		t.Logf("setup run %d: %v", runs, err)
		if len(res.SecretKeys) > 0 {
			cfg.SecretKeys = res.SecretKeys // as g2wctl records it
		}
	}
	if err != nil {
		t.Fatalf("setup did not converge in 10 runs: %v", err)
	}
	hooks, err := orgs[0].Client.ListWebhooks(t.Context())
	if err != nil || len(hooks) != len(Events) {
		t.Errorf("after setup: %d webhooks, %v; want %d (no duplicate)", len(hooks), err, len(Events))
	}
	for _, o := range orgs {
		subs, err := o.Client.ListUserSubscriptions(t.Context())
		if err != nil || len(subs) != len(Events) || len(res.Subscriptions[o.Profile]) != len(Events) {
			t.Errorf("organizer %s: %d subscriptions, %v; want %d", o, len(subs), err, len(Events))
		}
	}
	if ok, out := s.doctor(t, orgs); !ok {
		t.Errorf("doctor after setup:\n%s", out)
	}
	cfg.SecretKeys = res.SecretKeys
	again, err := Setup(t.Context(), cfg)
	for i := 0; err != nil && i < 5; i++ { // an injected fault on a create; nothing is created twice anyway
		again, err = Setup(t.Context(), cfg)
	}
	if err != nil || again.Created != 0 {
		t.Errorf("a run over a complete setup: %v, created %d", err, again.Created)
	}
	ok, out := s.doctor(t, all)
	if ok || strings.Count(out, "[FAIL] organizer "+left.String()) != len(Events) {
		t.Errorf("doctor with an organizer left out: ok=%v\n%s", ok, out)
	}
}

// TestRefusedTokenIsRefreshed checks that a stored token GoTo refuses (403 InvalidToken)
// before its recorded expiry is refreshed once, and the new one saved.
func TestRefusedTokenIsRefreshed(t *testing.T) {
	t.Parallel()
	s := startSim(t, 0, g2wsim.Config{Organizers: g2wsim.DefaultOrganizers(2)})
	conf := OAuthConfig("id", "secret", s.srv.URL+"/oauth")
	conf.RedirectURL = "http://127.0.0.1:9/callback"
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(conf.AuthCodeURL("st", oauth2.SetAuthURLParam("login_hint", "organizer2@example.com")))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := conf.Exchange(t.Context(), loc.Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	store := &Store{Path: t.TempDir() + "/g2w.json"}
	if err := SaveLogin(store, "second", tok); err != nil {
		t.Fatal(err)
	}
	if f, _ := store.Load(); f.Profiles["second"].OrganizerKey != "8100000000000000002" || f.Profiles["second"].Email != "organizer2@example.com" {
		t.Errorf("profile %+v: want the second organizer", f.Profiles["second"])
	}
	// GoTo forgets the access token (revoked, or the emulator's clock says expired) while
	// our copy still looks valid.
	if err := store.Update(func(f *File) { f.Profiles["second"].Token.AccessToken = "revoked" }); err != nil {
		t.Fatal(err)
	}
	creds, err := StoredCredentials(conf, http.DefaultClient, store, "second")
	if err != nil {
		t.Fatal(err)
	}
	c, err := g2wapi.New(g2wapi.Config{BaseURL: s.srv.URL + g2wsim.BasePath, Credentials: creds, Limiter: g2wapi.NewLimiter(1000)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListUserSubscriptions(t.Context()); err != nil {
		t.Fatalf("with a refused token: %v", err)
	}
	f, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Profiles["second"].Token; got.AccessToken == "revoked" || got.RefreshToken != tok.RefreshToken {
		t.Errorf("stored token after the refresh: access %q, refresh kept %v", got.AccessToken, got.RefreshToken == tok.RefreshToken)
	}
	if _, err := StoredCredentials(conf, http.DefaultClient, store, "nobody"); err == nil {
		t.Error("credentials for a profile never logged in")
	}
}
