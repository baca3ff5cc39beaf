package g2wctl

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/turnout-analytics/turnout/internal/g2wapi"
)

// ErrNoToken is returned when a command needs a stored token and there is none.
var ErrNoToken = errors.New("no stored token: run `g2wctl login` first (or use --client-credentials)")

// OAuthConfig returns the OAuth2 client configuration for GoTo's authorization server at
// authBase (…/oauth): authorize at /authorize, token at /token, with HTTP Basic client
// authentication as GoTo requires (AuthStyleInHeader; auto-detection would first try the
// credentials in the body).
func OAuthConfig(clientID, clientSecret, authBase string) *oauth2.Config {
	base := strings.TrimRight(authBase, "/")
	return &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: clientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   base + "/authorize",
			TokenURL:  base + "/token",
			AuthStyle: oauth2.AuthStyleInHeader,
		},
	}
}

// Credentials are g2wapi.Credentials from an OAuth2 token: the stored token of a profile
// (refreshed with its refresh token, each new token saved back) or a client_credentials
// token. Safe for concurrent use.
type Credentials struct {
	mu    sync.Mutex
	tok   *oauth2.Token
	http  *http.Client                                                        // for token requests
	fetch func(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) // a new token
	save  func(*oauth2.Token) error                                           // nil: not persisted
}

var _ g2wapi.Credentials = (*Credentials)(nil)

// Token returns the access token, first refreshing it when it has expired (60 minutes on
// GoTo).
func (c *Credentials) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok.Valid() {
		return c.tok.AccessToken, nil
	}
	return c.renewLocked(ctx)
}

// Refresh gets a new access token although the current one has not expired by its clock:
// GoTo refused it.
func (c *Credentials) Refresh(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.renewLocked(ctx)
}

func (c *Credentials) renewLocked(ctx context.Context) (string, error) {
	tok, err := c.fetch(context.WithValue(ctx, oauth2.HTTPClient, c.http), c.tok)
	if err != nil {
		return "", err
	}
	if c.save != nil {
		if err := c.save(tok); err != nil {
			return "", fmt.Errorf("save refreshed token: %w", err)
		}
	}
	c.tok = tok
	return tok.AccessToken, nil
}

// ClientCredentials returns credentials using the client_credentials grant: no user, no
// stored token. It is for automation and the local emulator; tokens are not persisted.
// httpClient sends the token requests.
func ClientCredentials(conf *oauth2.Config, httpClient *http.Client) *Credentials {
	cc := clientcredentials.Config{ClientID: conf.ClientID, ClientSecret: conf.ClientSecret,
		TokenURL: conf.Endpoint.TokenURL, AuthStyle: conf.Endpoint.AuthStyle}
	return &Credentials{http: httpClient, fetch: func(ctx context.Context, _ *oauth2.Token) (*oauth2.Token, error) {
		return cc.Token(ctx)
	}}
}

// StoredCredentials returns the credentials of profile in store. The access token is
// refreshed with the refresh token when it expires or GoTo refuses it; x/oauth2 keeps the old
// refresh token when a refresh answer has none, as GoTo's usually has not. Every new token is
// written back to store, so the next run starts from it. ErrNoToken when the profile has no
// token. httpClient sends the token requests.
func StoredCredentials(conf *oauth2.Config, httpClient *http.Client, store *Store, profile string) (*Credentials, error) {
	f, err := store.Load()
	if err != nil {
		return nil, err
	}
	p, ok := f.Profiles[profile]
	if !ok || p.Token == nil {
		if profile == DefaultProfile {
			return nil, ErrNoToken
		}
		return nil, fmt.Errorf("no stored token for profile %q: run `g2wctl login --profile %s` first", profile, profile)
	}
	return &Credentials{tok: p.Token, http: httpClient,
		fetch: func(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
			// An empty access token makes the source refresh, whatever the expiry says.
			return conf.TokenSource(ctx, &oauth2.Token{RefreshToken: old.RefreshToken}).Token()
		},
		save: func(tok *oauth2.Token) error {
			return store.Update(func(f *File) {
				if q, ok := f.Profiles[profile]; ok {
					q.Token = tok
				}
			})
		}}, nil
}

// SaveLogin stores tok as profile's token, with the organizer the token endpoint named.
func SaveLogin(store *Store, profile string, tok *oauth2.Token) error {
	p := &Profile{Token: tok}
	// Only a string is kept: x/oauth2 decodes a JSON number through float64, which would
	// round a 19-digit key. The key is for display; nothing depends on it.
	if v, ok := tok.Extra("organizer_key").(string); ok {
		p.OrganizerKey = v
	}
	if v, ok := tok.Extra("email").(string); ok {
		p.Email = v
	}
	return store.Update(func(f *File) {
		if f.Profiles == nil {
			f.Profiles = map[string]*Profile{}
		}
		f.Profiles[profile] = p
	})
}

// LoginConfig configures Login.
type LoginConfig struct {
	// LoginHint, when set, is passed as login_hint: the account (email) GoTo's login page
	// should propose; the local emulator logs that organizer in.
	LoginHint string
	// RedirectURL is the loopback URL GoTo redirects back to, as registered with the OAuth
	// client. Empty: http://127.0.0.1:<random port>/callback.
	RedirectURL string
	// Timeout bounds the wait for the browser to come back. Default 5 minutes.
	Timeout time.Duration
	// OnURL is called with the URL the user must open, once the listener is ready.
	OnURL func(authURL string)
}

// Login runs the authorization-code flow: it listens on the loopback redirect address, hands
// the authorize URL to cfg.OnURL, waits for the redirect carrying the code (checking state),
// and exchanges the code for a token.
func Login(ctx context.Context, conf *oauth2.Config, cfg LoginConfig) (*oauth2.Token, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	redirect, err := url.Parse(cmp.Or(cfg.RedirectURL, "http://127.0.0.1:0/callback"))
	if err != nil || redirect.Scheme != "http" || redirect.Host == "" {
		return nil, fmt.Errorf("check redirect URL: %q is not an http://host:port/path URL", cfg.RedirectURL)
	}
	if redirect.Path == "" {
		redirect.Path = "/"
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", redirect.Host)
	if err != nil {
		return nil, fmt.Errorf("listen for redirect: %w", err)
	}
	redirect.Host = ln.Addr().String() // the port chosen when it was 0
	c := *conf
	c.RedirectURL = redirect.String()
	state := randomState()

	type result struct {
		code string
		err  error
	}
	results := make(chan result, 1)
	mux := http.NewServeMux()
	mux.HandleFunc(redirect.Path, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var res result
		switch {
		case q.Get("state") != state:
			// Not our request (or a forged one); keep waiting for the real redirect.
			http.Error(w, "state mismatch", http.StatusBadRequest)
			return
		case q.Get("error") != "":
			res.err = fmt.Errorf("authorize: %s %s", q.Get("error"), q.Get("error_description"))
		case q.Get("code") == "":
			res.err = errors.New("authorize: redirect has no code")
		default:
			res.code = q.Get("code")
		}
		if res.err != nil {
			http.Error(w, "Login failed; see the terminal.", http.StatusBadRequest)
		} else {
			fmt.Fprintln(w, "Logged in to GoTo. You can close this window.")
		}
		select {
		case results <- res:
		default:
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()

	var opts []oauth2.AuthCodeOption
	if cfg.LoginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", cfg.LoginHint))
	}
	if cfg.OnURL != nil {
		cfg.OnURL(c.AuthCodeURL(state, opts...))
	}
	timer := time.NewTimer(cfg.Timeout)
	defer timer.Stop()
	var res result
	select {
	case res = <-results:
	case <-timer.C:
		return nil, fmt.Errorf("wait for login: no redirect within %s", cfg.Timeout)
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for login: %w", ctx.Err())
	}
	if res.err != nil {
		return nil, res.err
	}
	tok, err := c.Exchange(ctx, res.code)
	if err != nil {
		return nil, fmt.Errorf("exchange code: %w", err)
	}
	return tok, nil
}

func randomState() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}
