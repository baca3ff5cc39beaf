package g2wsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/turnout-analytics/turnout/internal/g2wapi"
	"github.com/turnout-analytics/turnout/internal/scenario"
)

// BasePath is where the management API is served, as on api.getgo.com.
const BasePath = "/G2W/rest/v2"

// Defaults of Config.
const (
	DefaultTokenLifetime   = 60 * time.Minute // live GoTo's
	DefaultVisibilityDelay = time.Second
	DefaultAccountKey      = "7100000000000000001"
)

// Config configures a Sim. ClientID and ClientSecret are required; the rest have defaults.
type Config struct {
	// ClientID and ClientSecret are the one OAuth client the token endpoint accepts.
	ClientID, ClientSecret string
	// TokenLifetime is how long an access token is valid. Default DefaultTokenLifetime.
	TokenLifetime time.Duration
	// RequestsPerSecond, when positive, makes the management API answer 429 to requests
	// beyond that many in one wall-clock second, as live GoTo does above 10. Default 0: off.
	RequestsPerSecond int
	// Organizers are the account's users, each logging in for a token of their own.
	// Default DefaultOrganizers(1).
	Organizers []Organizer
	// AccountKey is the company account of every organizer. Default DefaultAccountKey.
	AccountKey string
	// VisibilityDelay is how long a new webhook or user subscription stays invisible to every
	// call (GET 404, left out of lists, PUT 404) and to deliveries: live creation is
	// eventually consistent. Default DefaultVisibilityDelay; negative: visible at once.
	VisibilityDelay time.Duration
	// FailureRate and ThrottleRate are the fractions, 0 to 1, of management requests answered
	// with an injected 503 or 429 before they are processed, so clients' retries are
	// exercised. FaultSeed makes the draws repeatable. Default 0: none.
	FailureRate, ThrottleRate float64
	FaultSeed                 uint64
	// InsecureCallbacks accepts http:// callback URLs on any host. Without it, as on live
	// GoTo, a callback must be https, except on a loopback host (localhost, 127.0.0.0/8, ::1),
	// allowed for local use. Docker Compose's service names need it.
	InsecureCallbacks bool
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
	if cfg.FailureRate < 0 || cfg.FailureRate > 1 || cfg.ThrottleRate < 0 || cfg.ThrottleRate > 1 || cfg.FailureRate+cfg.ThrottleRate > 1 {
		return nil, errors.New("create sim: failure and throttle rates must be from 0 to 1, and together at most 1")
	}
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = DefaultTokenLifetime
	}
	if len(cfg.Organizers) == 0 {
		cfg.Organizers = DefaultOrganizers(1)
	}
	seen := map[string]bool{}
	for _, o := range cfg.Organizers {
		if o.Key == "" || o.Email == "" || seen[o.Key] || seen[o.Email] {
			return nil, fmt.Errorf("create sim: organizer %+v needs a key and an email, each unique", o)
		}
		seen[o.Key], seen[o.Email] = true, true
	}
	if cfg.AccountKey == "" {
		cfg.AccountKey = DefaultAccountKey
	}
	switch {
	case cfg.VisibilityDelay == 0:
		cfg.VisibilityDelay = DefaultVisibilityDelay
	case cfg.VisibilityDelay < 0:
		cfg.VisibilityDelay = 0
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

// Organizers returns the account's organizers, the first being the default one (login
// without a hint, client_credentials tokens).
func (s *Sim) Organizers() []Organizer {
	return append([]Organizer(nil), s.cfg.Organizers...)
}

// Scenario returns the scenario opts describes, shared out among the organizers
// (ShareScenario): what POST /_sim/deliver delivers.
func (s *Sim) Scenario(opts scenario.Options) []OrganizerScenario {
	return ShareScenario(scenario.GenerateWith(opts), s.cfg.Organizers)
}

// Targets returns where an event named eventName of the organizer organizerKey is delivered
// now: one Target per visible ACTIVE user subscription of that organizer to a visible ACTIVE
// webhook for the event, signed with the key valid now. None when no key is valid yet.
func (s *Sim) Targets(eventName, organizerKey string) []Target {
	return s.store.targets(eventName, organizerKey, s.cfg.Now())
}

// Handler serves the management API under BasePath and the OAuth endpoints under /oauth.
func (s *Sim) Handler() http.Handler {
	a := &api{store: s.store, checker: &callbackChecker{client: s.cfg.CallbackClient, insecure: s.cfg.InsecureCallbacks},
		now: s.cfg.Now, delay: s.cfg.VisibilityDelay}
	o := &oauth{clientID: s.cfg.ClientID, clientSecret: s.cfg.ClientSecret, lifetime: s.cfg.TokenLifetime,
		organizers: s.cfg.Organizers, accountKey: s.cfg.AccountKey, tokens: s.tokens, now: s.cfg.Now}
	faults := &faults{failure: s.cfg.FailureRate, throttle: s.cfg.ThrottleRate, r: rand.New(rand.NewPCG(s.cfg.FaultSeed, 0xfa17))}

	mgmt := chi.NewRouter()
	mgmt.Use(s.logRequests, newRateLimit(s.cfg.RequestsPerSecond, s.cfg.Now).middleware, faults.middleware, s.Authenticate)
	// The spec's paths, through the generated router; the answers are live GoTo's (api.go).
	g2wapi.HandlerWithOptions(a, g2wapi.ChiServerOptions{
		BaseRouter: mgmt,
		ErrorHandlerFunc: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		},
	})
	// Live GoTo's operations the spec lacks.
	mgmt.Get("/webhooks", a.listWebhooks)
	mgmt.Delete("/webhooks", a.deleteWebhooks)
	mgmt.Put("/userSubscriptions", a.updateSubscriptions)
	mgmt.Delete("/userSubscriptions", a.deleteSubscriptions)
	mgmt.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NotFound", "no such resource")
	})
	mgmt.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" is not allowed here")
	})

	root := chi.NewRouter()
	root.Mount(BasePath, mgmt)
	if s.cfg.Reporting != nil {
		root.With(s.logRequests, s.Authenticate).Mount(BasePath+"/organizers", s.cfg.Reporting)
	}
	root.Get("/oauth/authorize", o.authorize)
	root.Post("/oauth/token", o.token)
	return root
}

// userKey is the context key of the organizer whose token made a request.
type userKey struct{}

// OrganizerKeyFrom returns the key of the organizer whose token made the request, as
// Authenticate put it in the request's context; "" outside Authenticate.
func OrganizerKeyFrom(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}

// Authenticate requires a valid bearer token from the token endpoint, answering a missing,
// bad or expired one as live GoTo does: 403 {"int_err_code": "InvalidToken", "msg": …}. The
// token's organizer is in the request's context (OrganizerKeyFrom), for other APIs of the
// same account mounted beside the management API.
func (s *Sim) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		user, valid := "", false
		if ok {
			user, valid = s.tokens.user(strings.TrimSpace(token), s.cfg.Now())
		}
		if !valid {
			writeJSON(w, http.StatusForbidden, map[string]string{"int_err_code": "InvalidToken", "msg": "Invalid token passed"})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
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
// simplest model of GoTo's "429 above 10 requests/s". Like live GoTo it sends no
// Retry-After: clients back off on their own.
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
			writeError(w, http.StatusTooManyRequests, "TooManyRequests", "more than the allowed requests per second")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// faults answers a random fraction of requests with 503 or 429 before they reach the API, so
// they change nothing: what a client must retry (or, for a POST, report) without harm.
type faults struct {
	failure, throttle float64
	mu                sync.Mutex
	r                 *rand.Rand
}

func (f *faults) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.failure == 0 && f.throttle == 0 {
			next.ServeHTTP(w, r)
			return
		}
		f.mu.Lock()
		x := f.r.Float64()
		f.mu.Unlock()
		switch {
		case x < f.failure:
			writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "injected failure (G2WSIM_FAILURE_RATE)")
		case x < f.failure+f.throttle:
			writeError(w, http.StatusTooManyRequests, "TooManyRequests", "injected throttling (G2WSIM_THROTTLE_RATE)")
		default:
			next.ServeHTTP(w, r)
		}
	})
}
