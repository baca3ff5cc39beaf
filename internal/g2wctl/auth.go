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
)

// ErrNoToken is returned when a command needs the stored token and there is none.
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

// ClientCredentials returns a token source using the client_credentials grant: no user, no
// stored token. It is for automation and the local emulator; tokens are not persisted.
func ClientCredentials(ctx context.Context, conf *oauth2.Config) oauth2.TokenSource {
	cc := clientcredentials.Config{ClientID: conf.ClientID, ClientSecret: conf.ClientSecret,
		TokenURL: conf.Endpoint.TokenURL, AuthStyle: conf.Endpoint.AuthStyle}
	return cc.TokenSource(ctx)
}

// StoredToken returns a token source starting from the token in store. It refreshes the
// access token (60 minutes on GoTo) when it expires; x/oauth2 keeps the old refresh token when
// a refresh answer has none, as GoTo's usually has not. Every new token is written back to
// store, so the next run starts from it. ErrNoToken when store has no token.
func StoredToken(ctx context.Context, conf *oauth2.Config, store *Store) (oauth2.TokenSource, error) {
	f, err := store.Load()
	if err != nil {
		return nil, err
	}
	if f.Token == nil {
		return nil, ErrNoToken
	}
	return &persistingSource{src: conf.TokenSource(ctx, f.Token), store: store, last: f.Token.AccessToken}, nil
}

// persistingSource saves each token that differs from the last one it saw.
type persistingSource struct {
	src   oauth2.TokenSource
	store *Store
	mu    sync.Mutex
	last  string
}

func (p *persistingSource) Token() (*oauth2.Token, error) {
	tok, err := p.src.Token()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if tok.AccessToken == p.last {
		return tok, nil
	}
	if err := p.store.Update(func(f *File) { f.Token = tok }); err != nil {
		return nil, fmt.Errorf("save refreshed token: %w", err)
	}
	p.last = tok.AccessToken
	return tok, nil
}

// LoginConfig configures Login.
type LoginConfig struct {
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

	if cfg.OnURL != nil {
		cfg.OnURL(c.AuthCodeURL(state))
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
