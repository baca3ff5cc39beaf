package g2wsim

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// This file is a minimal OAuth2 authorization server, shaped like GoTo's
// (authentication.logmeininc.com): /oauth/authorize redirects straight back with a code (there
// is no user to ask), /oauth/token takes a form body with HTTP Basic client authentication and
// grants authorization_code, refresh_token and client_credentials. A refresh answer omits
// refresh_token, as live GoTo's usually does, so clients must keep the old one.
//
// Every token belongs to one organizer. There is no login page: /oauth/authorize logs in the
// organizer its login_hint names (key or email; an OpenID Connect parameter), or the first
// organizer without one; a client_credentials token belongs to the organizer named by a
// login_hint form field, or the first.

// codeLifetime bounds how long an authorization code may wait to be exchanged.
const codeLifetime = 5 * time.Minute

type authCode struct {
	redirectURI string
	user        string
	expires     time.Time
}

type accessGrant struct {
	user    string
	expires time.Time
}

// tokens holds issued codes, access tokens and refresh tokens, each with its organizer.
type tokens struct {
	mu      sync.Mutex
	codes   map[string]authCode
	access  map[string]accessGrant
	refresh map[string]string // refresh token -> organizer key
}

func newTokens() *tokens {
	return &tokens{codes: map[string]authCode{}, access: map[string]accessGrant{}, refresh: map[string]string{}}
}

// user returns the organizer of token, an access token not yet expired at now; expired ones
// are forgotten, so a load test does not grow the map without bound.
func (t *tokens) user(token string, now time.Time) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g, ok := t.access[token]
	if !ok {
		return "", false
	}
	if !now.Before(g.expires) {
		delete(t.access, token)
		return "", false
	}
	return g.user, true
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// oauth serves /oauth/authorize and /oauth/token.
type oauth struct {
	clientID, clientSecret string
	lifetime               time.Duration
	organizers             []Organizer
	accountKey             string
	tokens                 *tokens
	now                    func() time.Time
}

// organizer returns the organizer hint names by key or email; the first one when hint is "".
func (o *oauth) organizer(hint string) (Organizer, bool) {
	if hint == "" {
		return o.organizers[0], true
	}
	for _, org := range o.organizers {
		if org.Key == hint || strings.EqualFold(org.Email, hint) {
			return org, true
		}
	}
	return Organizer{}, false
}

// authorize redirects back to redirect_uri with a fresh code and the caller's state.
func (o *oauth) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != o.clientID {
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	}
	if rt := q.Get("response_type"); rt != "code" {
		http.Error(w, "response_type must be code", http.StatusBadRequest)
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || !redirect.IsAbs() {
		http.Error(w, "redirect_uri must be an absolute URL", http.StatusBadRequest)
		return
	}
	org, ok := o.organizer(q.Get("login_hint"))
	if !ok {
		http.Error(w, "login_hint names no organizer of this account", http.StatusBadRequest)
		return
	}
	code := randomToken()
	o.tokens.mu.Lock()
	o.tokens.codes[code] = authCode{redirectURI: redirect.String(), user: org.Key, expires: o.now().Add(codeLifetime)}
	o.tokens.mu.Unlock()
	back := redirect.Query()
	back.Set("code", code)
	if st := q.Get("state"); st != "" {
		back.Set("state", st)
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// tokenResponse is the token endpoint's answer (RFC 6749 §5.1, plus GoTo's account fields).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
	OrganizerKey string `json:"organizer_key"`
	AccountKey   string `json:"account_key"`
	Email        string `json:"email"`
}

// token grants access tokens.
func (o *oauth) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "POST only")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(id), []byte(o.clientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(o.clientSecret)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauth"`)
		oauthError(w, http.StatusUnauthorized, "invalid_client", "HTTP Basic client authentication failed")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "body is not a form")
		return
	}
	now := o.now()
	resp := tokenResponse{TokenType: "Bearer", ExpiresIn: int64(o.lifetime / time.Second), Scope: "collab:", AccountKey: o.accountKey}
	o.tokens.mu.Lock()
	defer o.tokens.mu.Unlock()
	var user string
	switch grant := r.PostForm.Get("grant_type"); grant {
	case "authorization_code":
		code := r.PostForm.Get("code")
		c, ok := o.tokens.codes[code]
		delete(o.tokens.codes, code) // single use, even when the exchange fails
		if !ok || !now.Before(c.expires) || r.PostForm.Get("redirect_uri") != c.redirectURI {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown, used or expired code, or redirect_uri mismatch")
			return
		}
		user = c.user
		resp.RefreshToken = randomToken()
		o.tokens.refresh[resp.RefreshToken] = user
	case "refresh_token":
		var ok bool
		if user, ok = o.tokens.refresh[r.PostForm.Get("refresh_token")]; !ok {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown refresh_token")
			return
		}
	case "client_credentials":
		org, ok := o.organizer(r.PostForm.Get("login_hint"))
		if !ok {
			oauthError(w, http.StatusBadRequest, "invalid_request", "login_hint names no organizer of this account")
			return
		}
		user = org.Key
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type "+strings.TrimSpace(grant)+" is not supported")
		return
	}
	org, _ := o.organizer(user)
	resp.OrganizerKey, resp.Email = org.Key, org.Email
	resp.AccessToken = randomToken()
	o.tokens.access[resp.AccessToken] = accessGrant{user: user, expires: now.Add(o.lifetime)}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

func oauthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}
