package g2wsim

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// authorizeCode follows /oauth/authorize to its redirect and returns the code.
func authorizeCode(t *testing.T, conf *oauth2.Config, state string) string {
	t.Helper()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(conf.AuthCodeURL(state))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Query().Get("state"); got != state {
		t.Fatalf("authorize redirect state = %q, want %q", got, state)
	}
	return loc.Query().Get("code")
}

func TestOAuth(t *testing.T) {
	t.Parallel()
	clk := newClock()
	_, srv := startSim(t, Config{Now: clk.Now, TokenLifetime: 10 * time.Minute}, nil)
	conf := &oauth2.Config{
		ClientID: testClientID, ClientSecret: testClientSecret, RedirectURL: "http://127.0.0.1:9/callback",
		Endpoint: oauth2.Endpoint{AuthURL: srv.URL + "/oauth/authorize", TokenURL: srv.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:   []string{"collab:"},
	}
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, srv.Client())
	api := srv.URL + BasePath + "/userSubscriptions?product=g2w"

	// status returns the management API's answer to a GET with tok.
	status := func(tok *oauth2.Token) int {
		t.Helper()
		resp, err := conf.Client(ctx, tok).Get(api)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}

	t.Run("authorization code then refresh", func(t *testing.T) {
		code := authorizeCode(t, conf, "xyz")
		tok, err := conf.Exchange(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		if tok.RefreshToken == "" || tok.Expiry.IsZero() {
			t.Fatalf("token %+v: want a refresh token and an expiry", tok)
		}
		if got := status(tok); got != http.StatusOK {
			t.Errorf("API with a fresh token: %d", got)
		}
		if _, err := conf.Exchange(ctx, code); err == nil {
			t.Error("a code was exchanged twice")
		}
		// The sim's clock passes the lifetime: the token is refused, and a refresh (which
		// omits refresh_token) gives a new access token while the client keeps the old
		// refresh token.
		clk.Advance(11 * time.Minute)
		if got := status(tok); got != http.StatusForbidden {
			t.Errorf("API with an expired token: %d, want 403 (InvalidToken)", got)
		}
		stale := *tok
		stale.Expiry = time.Now().Add(-time.Minute) // make oauth2 refresh
		fresh, err := conf.TokenSource(ctx, &stale).Token()
		if err != nil {
			t.Fatal(err)
		}
		if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken != tok.RefreshToken {
			t.Errorf("refreshed token %+v: want a new access token and the old refresh token", fresh)
		}
		if got := status(fresh); got != http.StatusOK {
			t.Errorf("API with a refreshed token: %d", got)
		}
	})

	tests := []struct {
		name   string
		secret string
		ok     bool
	}{
		{"client credentials", testClientSecret, true},
		{"wrong client secret", "nope", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := clientcredentials.Config{ClientID: testClientID, ClientSecret: tt.secret, TokenURL: conf.Endpoint.TokenURL, AuthStyle: oauth2.AuthStyleInHeader}
			tok, err := cc.Token(ctx)
			if (err == nil) != tt.ok {
				t.Fatalf("Token() error = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && status(tok) != http.StatusOK {
				t.Error("client credentials token refused by the API")
			}
		})
	}
}
