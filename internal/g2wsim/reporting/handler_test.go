package reporting_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/turnout-analytics/turnout/internal/g2wrest"
	"github.com/turnout-analytics/turnout/internal/g2wsim/reporting"
	"github.com/turnout-analytics/turnout/internal/scenario"
)

var after = time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)

const (
	organizer = "8100000000000000001"
	basePath  = "/G2W/rest/v2"
)

// validator checks every answer against the reporting spec and records which operations it
// saw answered with a status the spec describes.
type validator struct {
	t      *testing.T
	router routers.Router
	mu     sync.Mutex
	seen   map[string]bool // "operationId status"
}

func newValidator(t *testing.T) *validator {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(g2wrest.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatal(err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &validator{t: t, router: router, seen: map[string]bool{}}
}

func (v *validator) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		for k, vals := range rec.Header() {
			w.Header()[k] = vals
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		v.validate(r, rec)
	})
}

func (v *validator) validate(r *http.Request, rec *httptest.ResponseRecorder) {
	u := "https://api.getgo.com" + r.URL.Path
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	req, err := http.NewRequest(r.Method, u, nil)
	if err != nil {
		v.t.Errorf("build request: %v", err)
		return
	}
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		v.t.Errorf("%s %s: not in the spec: %v", r.Method, r.URL.Path, err)
		return
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status:  rec.Code,
		Header:  rec.Header(),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	input.SetBodyBytes(rec.Body.Bytes())
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		v.t.Errorf("%s %s → %d: %v", r.Method, r.URL.RequestURI(), rec.Code, err)
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.seen[fmt.Sprintf("%s %d", route.Operation.OperationID, rec.Code)] = true
}

func get(t *testing.T, srv *httptest.Server, path string) (int, []byte) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + basePath + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

// TestAnswersMatchTheSpec drives every operation, in both paging styles and with the
// errors the spec declares, and validates every answer with kin-openapi.
func TestAnswersMatchTheSpec(t *testing.T) {
	t.Parallel()
	sc := scenario.Generate(1)
	acct, err := reporting.NewAccount(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := newValidator(t)
	h := reporting.New(reporting.Config{BasePath: basePath, RequestsPerSecond: -1, Now: func() time.Time { return after }}, acct)
	srv := httptest.NewServer(v.wrap(h))
	t.Cleanup(srv.Close)

	window := "fromTime=2026-10-01T00:00:00Z&toTime=2027-01-01T00:00:00Z"
	w := "/organizers/" + organizer + "/webinars/9100000000000000301"
	var sessions struct {
		Embedded struct {
			Sessions []struct {
				SessionKey json.Number `json:"sessionKey"`
			} `json:"sessionInfoResources"`
		} `json:"_embedded"`
	}
	calls := []struct {
		path string
		want int
	}{
		{"/organizers/" + organizer + "/webinars?" + window + "&page=0&size=2", 200},
		{"/organizers/" + organizer + "/webinars?" + window + "&page=1&size=2", 200},
		{"/organizers/" + organizer + "/webinars?" + window + "&page=9", 200}, // past the end: empty
		{"/organizers/" + organizer + "/webinars", 400},                       // the range is required
		{"/organizers/" + organizer + "/webinars?" + window + "&size=201", 400},
		{"/organizers/" + organizer + "/sessions?" + window, 200},
		{"/organizers/" + organizer + "/sessions?page=0", 400},
		{w + "/sessions", 200},
		{w + "/sessions?page=0&size=1", 200},
		{"/organizers/" + organizer + "/webinars/1/sessions", 404},
		{"/organizers/8100000000000000999/webinars/9100000000000000301/sessions", 404}, // not this organizer's
		{w + "/registrants", 200},                                                      // a bare array
		{w + "/registrants?page=0&limit=3", 200},                                       // a page object
		{w + "/registrants?page=1&limit=3", 200},
		{w + "/registrants?size=3", 200}, // ignored: a bare array
		{"/organizers/" + organizer + "/webinars/1/registrants", 404},
		{"/organizers/" + organizer + "/webinars/9100000000000000401/registrants", 404}, // deleted
		{w + "/registrants/1", 404},
		{w + "/sessions/1/attendees", 404},
	}
	for _, c := range calls {
		status, body := get(t, srv, c.path)
		if status != c.want {
			t.Errorf("GET %s = %d, want %d: %s", c.path, status, c.want, body)
		}
		if c.path == w+"/sessions" {
			if err := json.Unmarshal(body, &sessions); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(sessions.Embedded.Sessions) != 3 {
		t.Fatalf("the sequence has %d sessions, want 3", len(sessions.Embedded.Sessions))
	}
	for _, s := range sessions.Embedded.Sessions {
		if status, body := get(t, srv, w+"/sessions/"+s.SessionKey.String()+"/attendees"); status != 200 {
			t.Errorf("attendees of %s = %d: %s", s.SessionKey, status, body)
		}
	}
	_, body := get(t, srv, w+"/registrants")
	var regs []struct {
		RegistrantKey json.Number `json:"registrantKey"`
	}
	if err := json.Unmarshal(body, &regs); err != nil || len(regs) == 0 {
		t.Fatalf("registrants: %v (%d)", err, len(regs))
	}
	if status, body := get(t, srv, w+"/registrants/"+regs[0].RegistrantKey.String()); status != 200 {
		t.Errorf("registrant = %d: %s", status, body)
	}

	for _, op := range []string{"listWebinars 200", "listWebinars 400", "listOrganizerSessions 200", "listOrganizerSessions 400",
		"listWebinarSessions 200", "listWebinarSessions 404", "listRegistrants 200", "listRegistrants 404",
		"getRegistrant 200", "getRegistrant 404", "listSessionAttendees 200", "listSessionAttendees 404"} {
		if !v.seen[op] {
			t.Errorf("no valid answer seen for %s", op)
		}
	}
}

// TestRateLimitAnswers429 checks a request beyond the limit is refused with the spec's error.
// At 1 request/s (a bucket of one token) the second of three quick requests is refused
// however slow the machine is; the default of 10/s works the same way.
func TestRateLimitAnswers429(t *testing.T) {
	t.Parallel()
	acct, err := reporting.NewAccount(scenario.Generate(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	v := newValidator(t)
	srv := httptest.NewServer(v.wrap(reporting.New(reporting.Config{BasePath: basePath, RequestsPerSecond: 1, Now: func() time.Time { return after }}, acct)))
	t.Cleanup(srv.Close)
	refused := 0
	for range 3 {
		if status, _ := get(t, srv, "/organizers/"+organizer+"/webinars/9100000000000000101/sessions"); status == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("3 requests at 1/s: none refused")
	}
	if !v.seen["listWebinarSessions 429"] {
		t.Error("the 429 answer does not match the spec")
	}
}

// TestGroundTruth: attendance intervals are ordered, inside the session, and sum to
// attendanceTimeInSeconds; every joined registrant of an ended session is an attendee.
func TestGroundTruth(t *testing.T) {
	t.Parallel()
	sc := scenario.GenerateWith(scenario.Options{Seed: 9, Webinars: 8, RegistrantsPerWebinar: 30, JoinRate: 0.6})
	acct, err := reporting.NewAccount(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	truth := acct.AttendanceSeconds(after)
	attendees := map[string]map[string]bool{}
	for k, secs := range truth {
		if secs < 60 {
			t.Errorf("%v attended %d s, want at least a minute", k, secs)
		}
		if attendees[k.Webinar] == nil {
			attendees[k.Webinar] = map[string]bool{}
		}
		attendees[k.Webinar][k.Registrant] = true
	}
	for wk, f := range sc.Expected {
		if got := len(attendees[wk]); got != f.Attendees {
			t.Errorf("webinar %s: %d attendees in the ground truth, want %d", wk, got, f.Attendees)
		}
	}
	srv := httptest.NewServer(reporting.New(reporting.Config{RequestsPerSecond: -1, Now: func() time.Time { return after }}, acct))
	t.Cleanup(srv.Close)
	for k, secs := range truth {
		resp, err := srv.Client().Get(srv.URL + "/organizers/" + organizer + "/webinars/" + k.Webinar + "/sessions/" + k.Session + "/attendees")
		if err != nil {
			t.Fatal(err)
		}
		var atts []g2wrest.Attendee
		err = json.NewDecoder(resp.Body).Decode(&atts)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range atts {
			if string(a.RegistrantKey) != k.Registrant {
				continue
			}
			sum := 0
			var prev time.Time
			for _, iv := range a.Attendance {
				if !iv.LeaveTime.After(*iv.JoinTime) || iv.JoinTime.Before(prev) {
					t.Errorf("%v: interval %v–%v out of order", k, iv.JoinTime, iv.LeaveTime)
				}
				prev = *iv.LeaveTime
				sum += int(iv.LeaveTime.Sub(*iv.JoinTime) / time.Second)
			}
			if sum != secs || a.AttendanceTimeInSeconds != secs {
				t.Errorf("%v: intervals sum to %d, attendanceTimeInSeconds %d, truth %d", k, sum, a.AttendanceTimeInSeconds, secs)
			}
		}
	}
}

// TestOrganizers spreads a one-organizer scenario over the organizers given.
func TestOrganizers(t *testing.T) {
	t.Parallel()
	acct, err := reporting.NewAccount(scenario.GenerateWith(scenario.Options{Seed: 2, Webinars: 6, RegistrantsPerWebinar: 5}), []string{"1", "2"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(acct.Organizers(), ","); got != "1,2" {
		t.Fatalf("organizers = %s, want 1,2", got)
	}
}

// TestOtherOrganizersDataIsRefused: with Caller set, a token of one organizer cannot read
// another's webinars: 403 where the spec declares it, 404 elsewhere.
func TestOtherOrganizersDataIsRefused(t *testing.T) {
	t.Parallel()
	acct, err := reporting.NewAccount(scenario.Generate(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	v := newValidator(t)
	caller := func(context.Context) string { return "8100000000000000002" }
	srv := httptest.NewServer(v.wrap(reporting.New(reporting.Config{BasePath: basePath, RequestsPerSecond: -1, Caller: caller,
		Now: func() time.Time { return after }}, acct)))
	t.Cleanup(srv.Close)
	w := "/organizers/" + organizer + "/webinars/9100000000000000101"
	for path, want := range map[string]int{
		"/organizers/" + organizer + "/webinars?fromTime=2026-10-01T00:00:00Z&toTime=2027-01-01T00:00:00Z": 403,
		"/organizers/" + organizer + "/sessions?fromTime=2026-10-01T00:00:00Z&toTime=2027-01-01T00:00:00Z": 403,
		w + "/sessions":             403,
		w + "/registrants":          403,
		w + "/registrants/1":        404,
		w + "/sessions/1/attendees": 404,
		"/organizers/8100000000000000002/webinars?fromTime=2026-10-01T00:00:00Z&toTime=2027-01-01T00:00:00Z": 200, // their own: none
	} {
		if status, body := get(t, srv, path); status != want {
			t.Errorf("GET %s = %d, want %d: %s", path, status, want, body)
		}
	}
}
