package g2wsim

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/turnout-analytics/turnout/internal/g2wapi"
)

// BasePath is where the management API is served, as on api.getgo.com.
const BasePath = "/G2W/rest/v2"

// Config configures a Sim. ClientID and ClientSecret are required; the rest have defaults.
type Config struct {
	// ClientID and ClientSecret are the one OAuth client the token endpoint accepts.
	ClientID, ClientSecret string
	// TokenLifetime is how long an access token is valid. Default 60 minutes, as live.
	TokenLifetime time.Duration
	// RequestsPerSecond, when positive, makes the management API answer 429 (Retry-After: 1)
	// to requests beyond that many in one second, as live GoTo does above 10. Default 0: off.
	RequestsPerSecond int
	// UserKey is the GoTo user (organizer) the tokens belong to. Default the scenario's
	// organizer, 8100000000000000001.
	UserKey string
	// AccountKey is the account of UserKey. Default 7100000000000000001.
	AccountKey string
	// CallbackClient sends the GET that checks a callback URL. Default: a client with a
	// 5-second timeout.
	CallbackClient *http.Client
	// Logger receives one line per management request. Default: discard.
	Logger *slog.Logger
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
	// Reporting, when set, serves the REST reporting API (/organizers/… under BasePath,
	// authenticated like the management API): see package reporting.
	Reporting http.Handler
}

// Sim is the emulated GoToWebinar account: its management API, OAuth server and state.
// It is safe for concurrent use.
type Sim struct {
	cfg    Config
	store  *store
	tokens *tokens
}

// New returns an empty Sim configured by cfg.
func New(cfg Config) (*Sim, error) {
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("create sim: client id and client secret are required")
	}
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = 60 * time.Minute
	}
	if cfg.UserKey == "" {
		cfg.UserKey = "8100000000000000001"
	}
	if cfg.AccountKey == "" {
		cfg.AccountKey = "7100000000000000001"
	}
	if cfg.CallbackClient == nil {
		cfg.CallbackClient = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Sim{cfg: cfg, store: newStore(), tokens: newTokens()}, nil
}

// Targets returns where an event named eventName is delivered now: one Target per ACTIVE user
// subscription of an ACTIVE webhook for the event, signed with the newest valid secret key.
// None when no key is valid yet.
func (s *Sim) Targets(eventName string) []Target {
	return s.store.targets(eventName, s.cfg.Now())
}

// Handler serves the management API under BasePath and the OAuth endpoints under /oauth.
func (s *Sim) Handler() http.Handler {
	a := &api{store: s.store, checker: &callbackChecker{client: s.cfg.CallbackClient}, userKey: s.cfg.UserKey, now: s.cfg.Now}
	o := &oauth{clientID: s.cfg.ClientID, clientSecret: s.cfg.ClientSecret, lifetime: s.cfg.TokenLifetime,
		userKey: s.cfg.UserKey, accountKey: s.cfg.AccountKey, tokens: s.tokens, now: s.cfg.Now}

	mgmt := chi.NewRouter()
	mgmt.Use(s.logRequests, newRateLimit(s.cfg.RequestsPerSecond, s.cfg.Now).middleware, s.authenticate)
	// The spec's operations, through the generated router: exactly its paths and methods.
	g2wapi.HandlerWithOptions(a, g2wapi.ChiServerOptions{
		BaseRouter: mgmt,
		ErrorHandlerFunc: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		},
	})
	// Live GoTo's operations the spec lacks.
	mgmt.Get("/webhooks", a.listWebhooks)
	mgmt.Delete("/webhooks", a.deleteWebhooks)
	mgmt.Put("/userSubscriptions", a.updateSubscriptionsLive)
	mgmt.Delete("/userSubscriptions", a.deleteSubscriptionsLive)
	mgmt.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NotFound", "no such resource")
	})
	mgmt.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" is not allowed here")
	})

	root := chi.NewRouter()
	root.Mount(BasePath, mgmt)
	if s.cfg.Reporting != nil {
		root.With(s.logRequests, s.authenticate).Mount(BasePath+"/organizers", s.cfg.Reporting)
	}
	root.Get("/oauth/authorize", o.authorize)
	root.Post("/oauth/token", o.token)
	return root
}

// authenticate requires a valid bearer token from the token endpoint.
func (s *Sim) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !s.tokens.valid(strings.TrimSpace(token), s.cfg.Now()) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="g2w"`)
			writeError(w, http.StatusUnauthorized, "InvalidToken", "a valid bearer access token is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// logRequests logs method, path and status; never bodies (they hold secret keys).
func (s *Sim) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.cfg.Logger.Debug("management request", "method", r.Method, "path", r.URL.Path, "status", rec.status)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// rateLimit counts requests per wall-clock second and refuses those beyond the limit, the
// simplest model of GoTo's "429 above 10 requests/s" that makes clients back off.
type rateLimit struct {
	limit  int
	now    func() time.Time
	mu     sync.Mutex
	second int64
	count  int
}

func newRateLimit(limit int, now func() time.Time) *rateLimit {
	return &rateLimit{limit: limit, now: now}
}

func (l *rateLimit) allow() bool {
	if l.limit <= 0 {
		return true
	}
	sec := l.now().Unix()
	l.mu.Lock()
	defer l.mu.Unlock()
	if sec != l.second {
		l.second, l.count = sec, 0
	}
	l.count++
	return l.count <= l.limit
}

func (l *rateLimit) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.allow() {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, "TooManyRequests", "more than the allowed requests per second")
			return
		}
		next.ServeHTTP(w, r)
	})
}
