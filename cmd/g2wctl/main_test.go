package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/turnout-analytics/turnout/internal/g2wapi"
	"github.com/turnout-analytics/turnout/internal/g2wctl"
	"github.com/turnout-analytics/turnout/internal/g2wsim"
)

const (
	testClientID     = "turnout-test"
	testClientSecret = "s3cret-never-printed"
)

// fixture is an in-process g2wsim, a callback endpoint and a token file.
type fixture struct {
	sim       *httptest.Server
	callback  *httptest.Server
	cbStatus  atomic.Int32 // what the callback answers to GET
	tokenFile string
	env       map[string]string
}

// newFixture starts an emulator with the default visibility delay (1s, so setup's waits run).
func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, g2wsim.Config{})
}

func newFixtureWith(t *testing.T, cfg g2wsim.Config) *fixture {
	t.Helper()
	cfg.ClientID, cfg.ClientSecret = testClientID, testClientSecret
	sim, err := g2wsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{sim: httptest.NewServer(sim.Handler())}
	t.Cleanup(f.sim.Close)
	f.cbStatus.Store(http.StatusOK)
	f.callback = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(f.cbStatus.Load()))
	}))
	t.Cleanup(f.callback.Close)
	f.tokenFile = filepath.Join(t.TempDir(), "turnout", "g2w-token.json")
	f.env = map[string]string{
		"G2W_CLIENT_ID":     testClientID,
		"G2W_CLIENT_SECRET": testClientSecret,
		"G2W_API_URL":       f.sim.URL + g2wsim.BasePath,
		"G2W_AUTH_URL":      f.sim.URL + "/oauth",
		"G2W_TOKEN_FILE":    f.tokenFile,
	}
	return f
}

func (f *fixture) callbackURL() string { return f.callback.URL + "/gotowebinar" }

// syncBuffer is a bytes.Buffer safe for a writer and a reader in different goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// run runs g2wctl with the fixture's environment (plus extra, "" unsets) and args.
func (f *fixture) run(t *testing.T, extra map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut syncBuffer
	err = run(t.Context(), args, f.getenv(extra), &out, &errOut)
	if strings.Contains(out.String()+errOut.String(), testClientSecret) || (err != nil && strings.Contains(err.Error(), testClientSecret)) {
		t.Errorf("g2wctl %v printed the client secret", args)
	}
	return out.String(), errOut.String(), err
}

func (f *fixture) getenv(extra map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := extra[k]; ok {
			return v
		}
		return f.env[k]
	}
}

var cc = map[string]string{"G2W_CLIENT_CREDENTIALS": "true"}

// api returns a client of the sim authenticated with client credentials, to check its state.
func (f *fixture) api(t *testing.T) *g2wapi.Client {
	t.Helper()
	return f.apiAs(t, "")
}

// apiAs returns a client of the sim for the organizer hint names ("" the first).
func (f *fixture) apiAs(t *testing.T, hint string) *g2wapi.Client {
	t.Helper()
	conf := clientcredentials.Config{ClientID: testClientID, ClientSecret: testClientSecret,
		TokenURL: f.sim.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}
	if hint != "" {
		conf.EndpointParams = url.Values{"login_hint": {hint}}
	}
	c, err := g2wapi.New(g2wapi.Config{BaseURL: f.sim.URL + g2wsim.BasePath, HTTPClient: conf.Client(t.Context()),
		Limiter: g2wapi.NewLimiter(1000)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// state lists the sim's webhooks and subscriptions.
func (f *fixture) state(t *testing.T) ([]g2wapi.Webhook, []g2wapi.UserSubscription) {
	t.Helper()
	c := f.api(t)
	ws, err := c.ListWebhooks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	subs, err := c.ListUserSubscriptions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return ws, subs
}

func (f *fixture) loadFile(t *testing.T) g2wctl.File {
	t.Helper()
	info, err := os.Stat(f.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("token file mode %v, want 0600", mode)
	}
	file, err := (&g2wctl.Store{Path: f.tokenFile}).Load()
	if err != nil {
		t.Fatal(err)
	}
	return file
}

var secretLine = regexp.MustCompile(`(?m)^G2W_SECRET_KEYS=(\S+)$`)

func TestSetupAndDoctor(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	out, _, err := f.run(t, cc, "setup", "--callback", f.callbackURL())
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	m := secretLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("setup printed no G2W_SECRET_KEYS line: %q", out)
	}
	secret := m[1]
	ws, subs := f.state(t)
	if len(ws) != 4 || len(subs) != 4 {
		t.Fatalf("after setup: %d webhooks, %d subscriptions; want 4 and 4", len(ws), len(subs))
	}
	events := map[string]bool{}
	for _, w := range ws {
		events[w.EventName] = true
		if w.State != g2wapi.StateActive || w.CallbackURL != f.callbackURL() {
			t.Errorf("webhook %+v: want ACTIVE calling %s", w, f.callbackURL())
		}
	}
	for _, e := range g2wctl.Events {
		if !events[e] {
			t.Errorf("no webhook for %s", e)
		}
	}
	for _, s := range subs {
		if s.State != g2wapi.StateActive || s.ActivationState != g2wapi.StateActive {
			t.Errorf("subscription %+v: want ACTIVE", s)
		}
	}
	if file := f.loadFile(t); len(file.SecretKeys) != 1 || file.SecretKeys[0].Value != secret {
		t.Errorf("token file does not keep the secret key printed")
	}

	// A second run creates nothing and prints the same secret.
	out, errOut, err := f.run(t, cc, "setup", "--callback", f.callbackURL())
	if err != nil {
		t.Fatalf("second setup: %v", err)
	}
	if m := secretLine.FindStringSubmatch(out); m == nil || m[1] != secret {
		t.Errorf("second setup printed %q, want the same secret", out)
	}
	if !strings.Contains(errOut, "0 created") || strings.Contains(errOut, ": created") {
		t.Errorf("second setup created something:\n%s", errOut)
	}
	ws2, subs2 := f.state(t)
	if len(ws2) != 4 || len(subs2) != 4 {
		t.Errorf("after second setup: %d webhooks, %d subscriptions; want 4 and 4", len(ws2), len(subs2))
	}

	out, _, err = f.run(t, cc, "doctor", "--callback", f.callbackURL())
	// 4 webhooks, 4 subscriptions of the one organizer, the callback.
	if err != nil || strings.Contains(out, "[FAIL]") || strings.Count(out, "[ok]") != 9 {
		t.Fatalf("doctor on a complete setup: %v\n%s", err, out)
	}

	// Deactivating one webhook is what doctor must notice, naming it.
	victim := ws[0]
	if out, _, err := f.run(t, cc, "webhooks", "deactivate", victim.Key); err != nil {
		t.Fatalf("webhooks deactivate: %v (%s)", err, out)
	}
	out, _, err = f.run(t, cc, "doctor")
	if !errors.Is(err, errDoctor) {
		t.Errorf("doctor after deactivation: err %v, want errDoctor", err)
	}
	if !strings.Contains(out, "[FAIL] webhook "+victim.EventName+" "+victim.Key+": INACTIVE") {
		t.Errorf("doctor does not name the inactive webhook:\n%s", out)
	}

	// setup repairs it; a callback that stops answering 200 fails doctor too.
	if _, _, err := f.run(t, cc, "setup", "--callback", f.callbackURL()); err != nil {
		t.Fatalf("repairing setup: %v", err)
	}
	f.cbStatus.Store(http.StatusServiceUnavailable)
	out, _, err = f.run(t, cc, "doctor")
	if !errors.Is(err, errDoctor) || !strings.Contains(out, "[FAIL] callback "+f.callbackURL()+": GET answered 503") {
		t.Errorf("doctor with a failing callback: %v\n%s", err, out)
	}
	if strings.Contains(out, "[FAIL] webhook") {
		t.Errorf("setup did not reactivate the webhook:\n%s", out)
	}
}

func TestResourceCommands(t *testing.T) {
	t.Parallel()
	f := newFixtureWith(t, g2wsim.Config{VisibilityDelay: -1})
	out, _, err := f.run(t, cc, "webhooks", "create", "--callback", f.callbackURL(), "--events", "registrant.added")
	if err != nil {
		t.Fatalf("webhooks create: %v", err)
	}
	ws, _ := f.state(t)
	if len(ws) != 1 || ws[0].State != g2wapi.StateInactive || !strings.Contains(out, ws[0].Key) {
		t.Fatalf("webhooks create: %+v, printed %q", ws, out)
	}
	key := ws[0].Key
	steps := []struct {
		args []string
		want string // in stdout
	}{
		{[]string{"webhooks", "activate", key}, "1 webhooks ACTIVE"},
		{[]string{"webhooks", "get", key}, "ACTIVE"},
		{[]string{"webhooks", "list"}, key},
		{[]string{"subscriptions", "create", "--callback", f.callbackURL(), key}, key},
		{[]string{"subscriptions", "list"}, key},
		{[]string{"secret", "create"}, "G2W_SECRET_KEYS="},
	}
	for _, s := range steps {
		out, _, err := f.run(t, cc, s.args...)
		if err != nil || !strings.Contains(out, s.want) {
			t.Errorf("g2wctl %v: %v; stdout %q, want %q in it", s.args, err, out, s.want)
		}
	}
	_, subs := f.state(t)
	if len(subs) != 1 {
		t.Fatalf("%d subscriptions, want 1", len(subs))
	}
	sub := subs[0].Key
	for _, s := range []struct {
		args []string
		want string
	}{
		{[]string{"subscriptions", "update", sub, "--state", "inactive"}, "1 subscriptions updated"},
		{[]string{"subscriptions", "get", sub}, "INACTIVE"},
		{[]string{"subscriptions", "delete", sub}, "1 subscriptions deleted"},
	} {
		out, _, err := f.run(t, cc, s.args...)
		if err != nil || !strings.Contains(out, s.want) {
			t.Errorf("g2wctl %v: %v; stdout %q, want %q in it", s.args, err, out, s.want)
		}
	}
	if _, subs := f.state(t); len(subs) != 0 {
		t.Errorf("after delete: %d subscriptions", len(subs))
	}
}

func TestLoginAndRefresh(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	// The test plays the browser: it reads the URL login prints and follows the authorize
	// redirect back to login's listener.
	urls := make(chan string, 1)
	stderr := &urlWriter{urls: urls}
	done := make(chan error, 1)
	var stdout syncBuffer
	go func() {
		done <- run(t.Context(), []string{"login", "--timeout", "30s"}, f.getenv(nil), &stdout, stderr)
	}()
	var authURL string
	select {
	case authURL = <-urls:
	case err := <-done:
		t.Fatalf("login ended before printing a URL: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("login printed no URL")
	}
	resp, err := http.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("browser landed on %d", resp.StatusCode)
	}
	if err := <-done; err != nil {
		t.Fatalf("login: %v", err)
	}
	first := f.loadFile(t).Profiles[g2wctl.DefaultProfile].Token
	if first == nil || first.AccessToken == "" || first.RefreshToken == "" {
		t.Fatalf("login stored %+v; want access and refresh tokens", first)
	}

	// The stored token works as is, and is not rewritten.
	if _, _, err := f.run(t, nil, "webhooks", "list"); err != nil {
		t.Fatalf("webhooks list with the stored token: %v", err)
	}
	if got := f.loadFile(t).Profiles[g2wctl.DefaultProfile].Token; got.AccessToken != first.AccessToken {
		t.Error("a valid token was replaced")
	}

	// Expired twice: each time the refresh (whose answer has no refresh_token) gives a new
	// access token, keeps the refresh token, and is persisted.
	prev := first
	for i := range 2 {
		expire(t, f.tokenFile)
		if _, _, err := f.run(t, nil, "webhooks", "list"); err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		got := f.loadFile(t).Profiles[g2wctl.DefaultProfile].Token
		if got.AccessToken == prev.AccessToken || got.RefreshToken != first.RefreshToken || !got.Expiry.After(time.Now()) {
			t.Errorf("refresh %d stored access changed=%v refresh kept=%v expiry %v",
				i, got.AccessToken != prev.AccessToken, got.RefreshToken == first.RefreshToken, got.Expiry)
		}
		prev = got
	}
}

// expire backdates the stored token's expiry, so the next run must refresh it.
func expire(t *testing.T, path string) {
	t.Helper()
	store := &g2wctl.Store{Path: path}
	if err := store.Update(func(f *g2wctl.File) {
		f.Profiles[g2wctl.DefaultProfile].Token.Expiry = time.Now().Add(-time.Minute)
	}); err != nil {
		t.Fatal(err)
	}
}

// urlWriter sends the first http URL written to it.
type urlWriter struct {
	syncBuffer
	urls chan string
	sent atomic.Bool
}

var urlPattern = regexp.MustCompile(`https?://\S+`)

func (w *urlWriter) Write(p []byte) (int, error) {
	n, err := w.syncBuffer.Write(p)
	if u := urlPattern.FindString(w.String()); u != "" && w.sent.CompareAndSwap(false, true) {
		w.urls <- u
	}
	return n, err
}

func TestLoginStateMismatchKeepsWaiting(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	conf := g2wctl.OAuthConfig(testClientID, testClientSecret, f.sim.URL+"/oauth")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := g2wctl.Login(ctx, conf, g2wctl.LoginConfig{Timeout: time.Second, OnURL: func(u string) {
		// A forged redirect with the wrong state is refused, and login keeps waiting.
		authURL, err := url.Parse(u)
		if err != nil {
			t.Error(err)
			return
		}
		resp, err := http.Get(authURL.Query().Get("redirect_uri") + "?code=forged&state=wrong")
		if err != nil {
			t.Error(err)
			return
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("forged redirect answered %d, want 400", resp.StatusCode)
		}
	}})
	if err == nil || !strings.Contains(err.Error(), "no redirect within 1s") {
		t.Errorf("login with only a forged redirect: %v, want a timeout", err)
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // the whole error, or a prefix ending in "…"
	}{
		{"API 404", cc, []string{"webhooks", "get", "123"}, "GoTo API: 404 Not Found: …"},
		{"bad client secret", map[string]string{"G2W_CLIENT_CREDENTIALS": "true", "G2W_CLIENT_SECRET": "wrong"},
			[]string{"webhooks", "list"}, "GoTo OAuth: 401 Unauthorized: HTTP Basic client authentication failed"},
		{"no login yet", nil, []string{"webhooks", "list"}, g2wctl.ErrNoToken.Error()},
		{"unknown command", nil, []string{"frobnicate"}, `unknown command "frobnicate"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := f.run(t, tt.env, tt.args...)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans lines: %q", msg)
			}
			if prefix, ok := strings.CutSuffix(tt.want, "…"); ok {
				if !strings.HasPrefix(msg, prefix) || len(msg) == len(prefix) {
					t.Errorf("error %q, want %q followed by a message", msg, prefix)
				}
			} else if msg != tt.want {
				t.Errorf("error %q, want %q", msg, tt.want)
			}
		})
	}
}

func TestConfigErrorsNameVariables(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, _, err := f.run(t, map[string]string{"G2W_CLIENT_ID": "", "G2W_CLIENT_SECRET": "", "G2W_TOKEN_FILE": "",
		"XDG_CONFIG_HOME": "", "HOME": "", "G2W_CLIENT_CREDENTIALS": "maybe"}, "doctor")
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"G2W_CLIENT_ID", "G2W_CLIENT_SECRET", "G2W_TOKEN_FILE", "G2W_CLIENT_CREDENTIALS"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

// login runs `g2wctl login --profile profile --login-hint hint`, playing the browser: it
// follows the URL login prints to the emulator's authorize endpoint and back.
func (f *fixture) login(t *testing.T, profile, hint string) string {
	t.Helper()
	urls := make(chan string, 1)
	stderr := &urlWriter{urls: urls}
	done := make(chan error, 1)
	var stdout syncBuffer
	go func() {
		done <- run(t.Context(), []string{"login", "--profile", profile, "--login-hint", hint, "--timeout", "30s"}, f.getenv(nil), &stdout, stderr)
	}()
	select {
	case u := <-urls:
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	case err := <-done:
		t.Fatalf("login ended before printing a URL: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("login printed no URL")
	}
	if err := <-done; err != nil {
		t.Fatalf("login %s: %v", profile, err)
	}
	return stdout.String()
}

func TestHelpExitsZero(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, args := range [][]string{{"-h"}, {"secret", "-h"}, {"secret", "--help"}, {"webhooks", "-h"}, {"subscriptions", "-h"},
		{"setup", "-h"}, {"secret", "rotate", "-h"}, {"login", "-h"}} {
		if _, _, err := f.run(t, nil, args...); err != nil {
			t.Errorf("g2wctl %v: %v, want exit 0", args, err)
		}
	}
	if _, _, err := f.run(t, nil, "secret"); err == nil {
		t.Error("g2wctl secret without a subcommand: no error")
	}
}

// TestEveryOrganizer logs in two organizers as two profiles, sets up both, checks doctor
// reports each per event; a third organizer logged in later fails doctor until setup runs
// again.
func TestEveryOrganizer(t *testing.T) {
	t.Parallel()
	orgs := g2wsim.DefaultOrganizers(3)
	f := newFixtureWith(t, g2wsim.Config{Organizers: orgs, VisibilityDelay: 100 * time.Millisecond})
	if out := f.login(t, "alice", orgs[0].Email); !strings.Contains(out, orgs[0].Key) {
		t.Errorf("login printed %q, want the organizer key %s", out, orgs[0].Key)
	}
	f.login(t, "bob", orgs[1].Email)
	out, _, err := f.run(t, nil, "profiles")
	if err != nil || !strings.Contains(out, "alice") || !strings.Contains(out, orgs[1].Key) {
		t.Errorf("profiles: %v\n%s", err, out)
	}
	if _, errOut, err := f.run(t, nil, "setup", "--callback", f.callbackURL()); err != nil {
		t.Fatalf("setup: %v\n%s", err, errOut)
	}
	for _, o := range orgs[:2] {
		subs, err := f.apiAs(t, o.Email).ListUserSubscriptions(t.Context())
		if err != nil || len(subs) != len(g2wctl.Events) {
			t.Errorf("organizer %s: %d subscriptions, %v; want %d", o.Key, len(subs), err, len(g2wctl.Events))
		}
	}
	out, _, err = f.run(t, nil, "doctor", "--callback", f.callbackURL())
	if err != nil || strings.Count(out, "[ok]") != 4+2*4+1 {
		t.Errorf("doctor for two organizers: %v\n%s", err, out)
	}
	for _, want := range []string{"[ok]   organizer alice (" + orgs[0].Key + ") registrant.joined: ACTIVE", "[ok]   organizer bob (" + orgs[1].Key + ") webinar.changed: ACTIVE"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor lacks %q:\n%s", want, out)
		}
	}

	f.login(t, "carol", orgs[2].Email)
	out, _, err = f.run(t, nil, "doctor")
	if !errors.Is(err, errDoctor) || strings.Count(out, "[FAIL] organizer carol") != len(g2wctl.Events) {
		t.Errorf("doctor with carol not subscribed: %v\n%s", err, out)
	}
	if _, _, err := f.run(t, nil, "setup", "--callback", f.callbackURL(), "--profiles", "carol"); err != nil {
		t.Fatalf("setup for carol: %v", err)
	}
	if out, _, err := f.run(t, nil, "doctor"); err != nil {
		t.Errorf("doctor after carol's setup: %v\n%s", err, out)
	}
}

// TestSecretKeysAreNeverReplacedSilently covers the key rules: setup creates one only on a
// first setup; with G2W_SECRET_KEYS or on another machine it creates none; secret create
// refuses to replace a recorded key; secret rotate prints old and new.
func TestSecretKeysAreNeverReplacedSilently(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	out, _, err := f.run(t, cc, "setup", "--callback", f.callbackURL())
	m := secretLine.FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("first setup: %v, printed %q", err, out)
	}
	first := m[1]

	// Another machine (no token file): without the keys it refuses, with them it creates none.
	elsewhere := map[string]string{"G2W_CLIENT_CREDENTIALS": "true", "G2W_TOKEN_FILE": filepath.Join(t.TempDir(), "other.json")}
	if _, _, err := f.run(t, elsewhere, "setup", "--callback", f.callbackURL()); !errors.Is(err, g2wctl.ErrSecretUnknown) {
		t.Errorf("setup elsewhere without G2W_SECRET_KEYS: %v, want ErrSecretUnknown", err)
	}
	elsewhere["G2W_SECRET_KEYS"] = first
	out, errOut, err := f.run(t, elsewhere, "setup", "--callback", f.callbackURL())
	if err != nil || secretLine.MatchString(out) || !strings.Contains(errOut, "G2W_SECRET_KEYS is set, none created") {
		t.Errorf("setup elsewhere with G2W_SECRET_KEYS: %v, printed %q\n%s", err, out, errOut)
	}

	if _, _, err := f.run(t, cc, "secret", "create"); !errors.Is(err, errKeyRecorded) {
		t.Errorf("secret create over a recorded key: %v, want errKeyRecorded", err)
	}
	if _, _, err := f.run(t, cc, "secret", "rotate", "--valid-from", "2001-01-01T00:00:00Z"); err == nil || !strings.Contains(err.Error(), "not in the future") {
		t.Errorf("secret rotate into the past: %v", err)
	}
	out, _, err = f.run(t, cc, "secret", "rotate", "--valid-from", "1h")
	m = secretLine.FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("secret rotate: %v, printed %q", err, out)
	}
	keys := strings.Split(m[1], ",")
	if len(keys) != 2 || keys[0] != first || keys[1] == first {
		t.Errorf("secret rotate printed %q, want the old key then a new one", m[1])
	}
	if file := f.loadFile(t); len(file.SecretKeys) != 2 || !file.SecretKeys[1].ValidFrom.After(time.Now().Add(59*time.Minute)) {
		t.Errorf("recorded keys %+v: want the new one, valid in an hour", file.SecretKeys)
	}
	// setup now prints both, which ingest needs until the old one is retired.
	out, _, err = f.run(t, cc, "setup", "--callback", f.callbackURL())
	if m := secretLine.FindStringSubmatch(out); err != nil || m == nil || m[1] != keys[0]+","+keys[1] {
		t.Errorf("setup after the rotation: %v, printed %q", err, out)
	}
}

// TestCommandsUnderFaults runs every command against an emulator that throttles (429) a
// third of the requests: GoTo refused them unprocessed, so g2wctl retries, creates included,
// and every command succeeds. (Injected 503s, retried only where safe, are in
// internal/g2wctl's TestSetupEveryOrganizerUnderFaults.)
func TestCommandsUnderFaults(t *testing.T) {
	t.Parallel()
	f := newFixtureWith(t, g2wsim.Config{ThrottleRate: 0.3, FaultSeed: 5, VisibilityDelay: 100 * time.Millisecond})
	steps := [][]string{
		{"setup", "--callback", f.callbackURL()},
		{"doctor", "--callback", f.callbackURL()},
		{"webhooks", "list"},
		{"subscriptions", "list"},
	}
	for _, args := range steps {
		if out, errOut, err := f.run(t, cc, args...); err != nil {
			t.Fatalf("g2wctl %v under throttling: %v\n%s%s", args, err, out, errOut)
		}
	}
	ws, subs := f.state(t)
	if len(ws) != len(g2wctl.Events) || len(subs) != len(g2wctl.Events) {
		t.Fatalf("after setup: %d webhooks, %d subscriptions", len(ws), len(subs))
	}
	for _, args := range [][]string{
		{"webhooks", "deactivate", ws[0].Key},
		{"webhooks", "activate", ws[0].Key},
		{"webhooks", "get", ws[0].Key},
		{"subscriptions", "update", subs[0].Key, "--state", "INACTIVE"},
		{"subscriptions", "update", subs[0].Key, "--state", "ACTIVE"},
		{"subscriptions", "get", subs[0].Key},
		{"secret", "rotate", "--valid-from", "1h"},
	} {
		if out, errOut, err := f.run(t, cc, args...); err != nil {
			t.Errorf("g2wctl %v under throttling: %v\n%s%s", args, err, out, errOut)
		}
	}
	if out, _, err := f.run(t, cc, "doctor"); err != nil {
		t.Errorf("doctor after the changes: %v\n%s", err, out)
	}
}
