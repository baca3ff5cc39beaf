package reporting

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/time/rate"
)

// Defaults of Config.
const (
	// DefaultRequestsPerSecond is live GoTo's limit: 429 above 10 requests/s.
	DefaultRequestsPerSecond = 10
	// defaultSize is the page size when a page/size list is asked without size, as live.
	defaultSize = 20
	// maxSize is the largest size (or limit) the API accepts.
	maxSize = 200
)

// Config configures a Handler.
type Config struct {
	// BasePath is stripped from request paths before routing (g2wsim mounts the handler
	// under /G2W/rest/v2). Default "": the handler serves /organizers/… itself.
	BasePath string
	// RequestsPerSecond: requests beyond it are answered 429 (a token bucket of as many
	// tokens, refilled at that rate). Default DefaultRequestsPerSecond; negative: no limit.
	RequestsPerSecond int
	// IgnorePaging makes every paged list answer its first page whatever page was asked:
	// the behaviour of live GoTo when a client sends a paging parameter it does not know,
	// for testing clients' guards.
	IgnorePaging bool
	// Now is the clock: only sessions that ended before it are listed. Default time.Now.
	Now func() time.Time
	// Caller, when set, names the organizer whose token made the request (g2wsim's
	// OrganizerKeyFrom): a request for another organizer's data is refused, as live GoTo
	// does. "" (or no Caller) checks nothing.
	Caller func(ctx context.Context) string
}

// Handler serves the REST reporting API for the Account it holds. It is safe for
// concurrent use; Load swaps the account atomically.
type Handler struct {
	cfg     Config
	account atomic.Pointer[Account]
	limiter *rate.Limiter
	router  chi.Router
}

// New returns a Handler serving acct (which may be nil until Load).
func New(cfg Config, acct *Account) *Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RequestsPerSecond == 0 {
		cfg.RequestsPerSecond = DefaultRequestsPerSecond
	}
	h := &Handler{cfg: cfg}
	if cfg.RequestsPerSecond > 0 {
		h.limiter = rate.NewLimiter(rate.Limit(cfg.RequestsPerSecond), cfg.RequestsPerSecond)
	}
	h.account.Store(acct)
	r := chi.NewRouter()
	r.Get("/organizers/{organizerKey}/webinars", h.webinars)
	r.Get("/organizers/{organizerKey}/sessions", h.organizerSessions)
	r.Get("/organizers/{organizerKey}/webinars/{webinarKey}/sessions", h.webinarSessions)
	r.Get("/organizers/{organizerKey}/webinars/{webinarKey}/registrants", h.registrants)
	r.Get("/organizers/{organizerKey}/webinars/{webinarKey}/registrants/{registrantKey}", h.registrant)
	r.Get("/organizers/{organizerKey}/webinars/{webinarKey}/sessions/{sessionKey}/attendees", h.attendees)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "NotFound", "no such resource")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" is not allowed here")
	})
	h.router = r
	return h
}

// Load makes the handler serve acct from now on.
func (h *Handler) Load(acct *Account) { h.account.Store(acct) }

// ServeHTTP routes the request with a router of its own: whatever router mounted the
// handler, its route context is left behind.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.limiter != nil && !h.limiter.Allow() {
		// Live GoTo sends no rate-limit headers with its 429.
		writeError(w, http.StatusTooManyRequests, "TooManyRequests", "more than the allowed requests per second")
		return
	}
	path, ok := strings.CutPrefix(r.URL.Path, h.cfg.BasePath)
	if !ok {
		writeError(w, http.StatusNotFound, "NotFound", "no such resource")
		return
	}
	r2 := r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, chi.NewRouteContext()))
	u := *r.URL
	u.Path, u.RawPath = path, ""
	r2.URL = &u
	h.router.ServeHTTP(w, r2)
}

// allowed reports whether the caller may read the path's organizer's data; when not, it
// has answered: 403 where the spec declares it (forbidden is true), else 404.
func (h *Handler) allowed(w http.ResponseWriter, r *http.Request, forbidden bool) bool {
	if h.cfg.Caller == nil {
		return true
	}
	caller := h.cfg.Caller(r.Context())
	if caller == "" || caller == chi.URLParam(r, "organizerKey") {
		return true
	}
	if forbidden {
		writeError(w, http.StatusForbidden, "AccessDenied", "the token's user is not this organizer")
	} else {
		writeError(w, http.StatusNotFound, "NotFound", "no such webinar for this organizer")
	}
	return false
}

// find returns the webinar of the path, owned by the path's organizer. forbidden: see allowed.
func (h *Handler) find(w http.ResponseWriter, r *http.Request, forbidden bool) (*webinar, bool) {
	if !h.allowed(w, r, forbidden) {
		return nil, false
	}
	acct := h.account.Load()
	if acct != nil {
		if wb := acct.byKey[chi.URLParam(r, "webinarKey")]; wb != nil && !wb.deleted && wb.organizer == chi.URLParam(r, "organizerKey") {
			return wb, true
		}
	}
	writeError(w, http.StatusNotFound, "NotFound", "no such webinar for this organizer")
	return nil, false
}

// paging reads page and size; a bad value is answered 400 and ok is false. With
// IgnorePaging, page is always 0.
func (h *Handler) paging(w http.ResponseWriter, r *http.Request) (page, size int, ok bool) {
	q := r.URL.Query()
	page, size = 0, defaultSize
	if s := q.Get("page"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			writeError(w, http.StatusBadRequest, "InvalidRequest", "page must be an integer from 0")
			return 0, 0, false
		}
		page = v
	}
	if s := q.Get("size"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > maxSize {
			writeError(w, http.StatusBadRequest, "InvalidRequest", "size must be an integer from 1 to 200")
			return 0, 0, false
		}
		size = v
	}
	if h.cfg.IgnorePaging {
		page = 0
	}
	return page, size, true
}

// timeRange reads the required fromTime and toTime.
func timeRange(w http.ResponseWriter, r *http.Request) (from, to time.Time, ok bool) {
	q := r.URL.Query()
	from, err1 := time.Parse(time.RFC3339, q.Get("fromTime"))
	to, err2 := time.Parse(time.RFC3339, q.Get("toTime"))
	if err1 != nil || err2 != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequest", "fromTime and toTime are required, as ISO-8601 date-times")
		return from, to, false
	}
	return from, to, true
}

// pageOf answers items[page*size:…] in live GoTo's HAL shape.
func pageOf[T any](w http.ResponseWriter, name string, items []T, page, size int) {
	lo := min(page*size, len(items))
	hi := min(lo+size, len(items))
	body := map[string]any{
		"page": map[string]int{"size": size, "totalElements": len(items),
			"totalPages": (len(items) + size - 1) / size, "number": page},
	}
	if hi > lo {
		body["_embedded"] = map[string]any{name: items[lo:hi]}
	}
	writeJSON(w, http.StatusOK, body)
}

func (h *Handler) webinars(w http.ResponseWriter, r *http.Request) {
	if !h.allowed(w, r, true) {
		return
	}
	from, to, ok := timeRange(w, r)
	if !ok {
		return
	}
	page, size, ok := h.paging(w, r)
	if !ok {
		return
	}
	org := chi.URLParam(r, "organizerKey")
	var out []map[string]any
	if acct := h.account.Load(); acct != nil {
		for _, wb := range acct.webinars {
			if wb.organizer != org || wb.deleted || !inRange(wb, from, to) {
				continue
			}
			out = append(out, webinarJSON(wb))
		}
	}
	pageOf(w, "webinars", out, page, size)
}

func inRange(wb *webinar, from, to time.Time) bool {
	for _, t := range wb.times {
		if !t.Before(from) && t.Before(to) {
			return true
		}
	}
	return false
}

// webinarJSON is a webinar as the webinars list answers it: keys as strings here.
func webinarJSON(wb *webinar) map[string]any {
	times := make([]map[string]string, len(wb.times))
	for i, t := range wb.times {
		times[i] = map[string]string{"startTime": iso(t), "endTime": iso(t.Add(time.Hour))}
	}
	m := map[string]any{"webinarKey": wb.key, "subject": wb.subject, "description": wb.description,
		"organizerKey": wb.organizer, "times": times, "timeZone": wb.timeZone, "experienceType": wb.experience}
	if wb.recurrenceKey != "" {
		m["recurrenceKey"] = wb.recurrenceKey
	}
	return m
}

// sessionJSON is a session as the session lists answer it: keys as bare integers here, and
// the experience type in lower case.
func sessionJSON(wb *webinar, s *session) map[string]any {
	return map[string]any{"sessionKey": json.Number(s.key), "webinarKey": json.Number(wb.key),
		"startTime": iso(s.start), "endTime": iso(s.end), "registrantsAttended": len(s.attendees),
		"experienceType": strings.ToLower(wb.experience)}
}

func (h *Handler) organizerSessions(w http.ResponseWriter, r *http.Request) {
	if !h.allowed(w, r, true) {
		return
	}
	from, to, ok := timeRange(w, r)
	if !ok {
		return
	}
	page, size, ok := h.paging(w, r)
	if !ok {
		return
	}
	org, now := chi.URLParam(r, "organizerKey"), h.cfg.Now()
	var out []map[string]any
	if acct := h.account.Load(); acct != nil {
		for _, wb := range acct.webinars {
			if wb.organizer != org {
				continue
			}
			for _, s := range wb.sessions {
				if s.end.Before(now) && !s.end.Before(from) && s.end.Before(to) {
					out = append(out, sessionJSON(wb, s))
				}
			}
		}
	}
	pageOf(w, "sessionInfoResources", out, page, size)
}

func (h *Handler) webinarSessions(w http.ResponseWriter, r *http.Request) {
	wb, ok := h.find(w, r, true)
	if !ok {
		return
	}
	page, size, ok := h.paging(w, r)
	if !ok {
		return
	}
	now := h.cfg.Now()
	var out []map[string]any
	for _, s := range wb.sessions {
		if s.end.Before(now) {
			out = append(out, sessionJSON(wb, s))
		}
	}
	pageOf(w, "sessionInfoResources", out, page, size)
}

// registrantJSON is a registrant as the registrants list answers it: registrantKey a bare
// integer, joinUrl null unless approved.
func registrantJSON(rg *registrant) map[string]any {
	m := map[string]any{"registrantKey": json.Number(rg.key), "firstName": rg.firstName, "lastName": rg.lastName,
		"email": rg.email, "registrationDate": iso(rg.registered), "status": rg.status, "joinUrl": nil,
		"timeZone": "Europe/Berlin"}
	if rg.joinURL != "" {
		m["joinUrl"] = rg.joinURL
	}
	return m
}

// registrants answers a bare array of every registrant without paging parameters; with
// both page and limit, live GoTo's page object (size is not a parameter of this call).
func (h *Handler) registrants(w http.ResponseWriter, r *http.Request) {
	wb, ok := h.find(w, r, true)
	if !ok {
		return
	}
	all := make([]map[string]any, len(wb.registrants))
	for i, rg := range wb.registrants {
		all[i] = registrantJSON(rg)
	}
	q := r.URL.Query()
	if q.Get("page") == "" || q.Get("limit") == "" {
		writeJSON(w, http.StatusOK, all)
		return
	}
	page, err1 := strconv.Atoi(q.Get("page"))
	limit, err2 := strconv.Atoi(q.Get("limit"))
	if err1 != nil || err2 != nil || page < 0 || limit < 1 || limit > maxSize {
		writeError(w, http.StatusBadRequest, "InvalidRequest", "page must be from 0 and limit from 1 to 200")
		return
	}
	if h.cfg.IgnorePaging {
		page = 0
	}
	lo := min(page*limit, len(all))
	hi := min(lo+limit, len(all))
	writeJSON(w, http.StatusOK, map[string]any{"data": all[lo:hi], "total": len(all), "page": page,
		"limit": limit, "pageSize": hi - lo})
}

func (h *Handler) registrant(w http.ResponseWriter, r *http.Request) {
	wb, ok := h.find(w, r, false)
	if !ok {
		return
	}
	key := chi.URLParam(r, "registrantKey")
	for _, rg := range wb.registrants {
		if rg.key == key {
			m := registrantJSON(rg)
			m["type"] = "REGULAR"
			m["responses"] = rg.responses
			if m["responses"] == nil || len(rg.responses) == 0 {
				m["responses"] = []response{}
			}
			if rg.source != "" {
				m["source"] = rg.source
			}
			writeJSON(w, http.StatusOK, m)
			return
		}
	}
	writeError(w, http.StatusNotFound, "NotFound", "no such registrant")
}

// attendees answers a session's attendees with their intervals (keys as strings here), once
// the session has ended.
func (h *Handler) attendees(w http.ResponseWriter, r *http.Request) {
	wb, ok := h.find(w, r, false)
	if !ok {
		return
	}
	key, now := chi.URLParam(r, "sessionKey"), h.cfg.Now()
	for _, s := range wb.sessions {
		if s.key != key || !s.end.Before(now) {
			continue
		}
		out := make([]map[string]any, len(s.attendees))
		for i, at := range s.attendees {
			intervals := make([]map[string]string, len(at.intervals))
			for k, iv := range at.intervals {
				intervals[k] = map[string]string{"joinTime": iso(iv[0]), "leaveTime": iso(iv[1])}
			}
			out[i] = map[string]any{"registrantKey": at.reg.key, "sessionKey": s.key, "email": at.reg.email,
				"firstName": at.reg.firstName, "lastName": at.reg.lastName,
				"attendanceTimeInSeconds": at.seconds, "attendance": intervals}
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	writeError(w, http.StatusNotFound, "NotFound", "no such ended session")
}

func iso(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"int_err_code": code, "msg": msg})
}
