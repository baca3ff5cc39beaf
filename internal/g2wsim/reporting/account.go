// Package reporting is the emulator's GoToWebinar REST reporting API: an http.Handler that
// answers the calls of ../../g2wrest (webinars, past sessions, registrants, session
// attendees) for the scenario the emulator delivers, with GoTo's quirks (page/size paging,
// page/limit for registrants and a bare array without them, keys as strings in some answers
// and integers in others, 429 above 10 requests/s).
//
// The account is rebuilt from the scenario's webhook bodies, so REST and webhooks tell the
// same story: every registrant (walk-ins too), every join. What webhooks never carry is made
// up here, deterministically from the keys: each session's actual start and end, and each
// attendee's join/leave intervals (a rejoin closes the previous interval). AttendanceSeconds
// is that ground truth, for tests and demos to compare reconciliation's figures against.
package reporting

import (
	"cmp"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"github.com/turnout-analytics/turnout/internal/scenario"
)

// webinar is one webinar of the account, as its webhooks last described it.
type webinar struct {
	key, organizer, recurrenceKey string
	subject, description          string
	timeZone, experience          string
	times                         []time.Time // scheduled starts; an hour each
	deleted                       bool
	sessions                      []*session
	registrants                   []*registrant // by key
}

// session is one held session of a webinar.
type session struct {
	key, webinar string
	start, end   time.Time // actual
	attendees    []*attendee
}

// registrant is one registration, from registrant.added or (a walk-in) its first join.
type registrant struct {
	key                        string
	firstName, lastName, email string
	registered                 time.Time
	status, joinURL, source    string
	responses                  []response
}

type response struct {
	Question string `json:"question"`
	Answer   string `json:"answer"`
}

// attendee is one registrant's attendance of a session.
type attendee struct {
	reg       *registrant
	intervals [][2]time.Time // join, leave
	seconds   int
}

// Account is the emulated organizers' reporting data. It is immutable once built.
type Account struct {
	webinars []*webinar // by first scheduled start, then key
	byKey    map[string]*webinar
}

// AttendanceKey names one registrant's attendance of one session.
type AttendanceKey struct{ Webinar, Session, Registrant string }

// event is the part of a scenario webhook body the account reads.
type event struct {
	EventName          string                          `json:"eventName"`
	WebinarKey         json.Number                     `json:"webinarKey"`
	OrganizerKey       json.Number                     `json:"organizerKey"`
	RecurrenceKey      json.Number                     `json:"recurrenceKey"`
	RegistrantKey      json.Number                     `json:"registrantKey"`
	SessionKey         json.Number                     `json:"sessionKey"`
	WebinarTitle       string                          `json:"webinarTitle"`
	Description        string                          `json:"description"`
	ExperienceType     string                          `json:"experienceType"`
	TimeZone           string                          `json:"timeZone"`
	Status             string                          `json:"status"`
	Times              []struct{ StartTime time.Time } `json:"times"`
	FirstName          string                          `json:"firstName"`
	LastName           string                          `json:"lastName"`
	Email              string                          `json:"email"`
	RegistrationDate   time.Time                       `json:"registrationDate"`
	RegistrationSource string                          `json:"registrationSource"`
	JoinURL            string                          `json:"joinUrl"`
	Responses          []response                      `json:"responses"`
	JoinTime           int64                           `json:"joinTime"`
}

type join struct {
	registrant, session string
	at                  time.Time
	ev                  event
}

// NewAccount builds the account the scenario's events describe. organizers are the organizer
// keys of the account: the webinars are shared among them round robin in webinar key order,
// as g2wsim shares a scenario's deliveries. Empty organizers keeps the scenario's own.
func NewAccount(sc scenario.Scenario, organizers []string) (*Account, error) {
	a := &Account{byKey: map[string]*webinar{}}
	regs := map[string]map[string]*registrant{} // webinar → registrant key → registrant
	var joins = map[string][]join{}             // webinar → joins
	ensure := func(key string) *webinar {
		w := a.byKey[key]
		if w == nil {
			w = &webinar{key: key}
			a.byKey[key] = w
			a.webinars = append(a.webinars, w)
			regs[key] = map[string]*registrant{}
		}
		return w
	}
	for i, body := range sc.Events {
		var ev event
		if err := json.Unmarshal(body, &ev); err != nil {
			return nil, fmt.Errorf("read scenario event %d: %w", i, err)
		}
		w := ensure(ev.WebinarKey.String())
		switch ev.EventName {
		case "webinar.created", "webinar.changed":
			w.organizer, w.subject = ev.OrganizerKey.String(), ev.WebinarTitle
			w.recurrenceKey = ev.RecurrenceKey.String()
			w.experience, w.timeZone = ev.ExperienceType, ev.TimeZone
			w.description = cmp.Or(ev.Description, w.description)
			if ev.Status == "DELETED" {
				w.deleted = true
			}
			if len(ev.Times) > 0 {
				w.times = w.times[:0]
				for _, t := range ev.Times {
					w.times = append(w.times, t.StartTime)
				}
			}
		case "registrant.added":
			regs[w.key][ev.RegistrantKey.String()] = &registrant{key: ev.RegistrantKey.String(),
				firstName: ev.FirstName, lastName: ev.LastName, email: ev.Email, registered: ev.RegistrationDate,
				status: ev.Status, joinURL: ev.JoinURL, source: ev.RegistrationSource, responses: ev.Responses}
		case "registrant.joined":
			joins[w.key] = append(joins[w.key], join{registrant: ev.RegistrantKey.String(), session: ev.SessionKey.String(),
				at: time.UnixMilli(ev.JoinTime).UTC(), ev: ev})
		}
	}
	// Shared out as g2wsim.ShareScenario shares the deliveries: round robin in webinar key
	// order, so REST lists each webinar under the organizer whose webhooks carried it.
	slices.SortFunc(a.webinars, func(x, y *webinar) int { return compareKeys(x.key, y.key) })
	for i, w := range a.webinars {
		if len(organizers) > 0 {
			w.organizer = organizers[i%len(organizers)]
		}
	}
	slices.SortFunc(a.webinars, func(x, y *webinar) int {
		return cmp.Or(firstStart(x).Compare(firstStart(y)), compareKeys(x.key, y.key))
	})
	for _, w := range a.webinars {
		// A walk-in: joined, but never registered through a form GoTo told us about. GoTo
		// still lists them as a registrant.
		for _, j := range joins[w.key] {
			if regs[w.key][j.registrant] == nil {
				regs[w.key][j.registrant] = &registrant{key: j.registrant, firstName: j.ev.FirstName,
					lastName: j.ev.LastName, email: j.ev.Email, registered: j.at, status: "APPROVED"}
			}
		}
		for _, r := range regs[w.key] {
			w.registrants = append(w.registrants, r)
		}
		slices.SortFunc(w.registrants, func(x, y *registrant) int { return compareKeys(x.key, y.key) })
		if !w.deleted {
			w.sessions = holdSessions(w, joins[w.key], regs[w.key])
		}
	}
	return a, nil
}

func firstStart(w *webinar) time.Time {
	if len(w.times) == 0 {
		return time.Time{}
	}
	return w.times[0]
}

// holdSessions makes the sessions of w: one per scheduled time, keyed as the scenario's joins
// key them, with an actual start and end a few minutes off the schedule and each attendee's
// intervals.
func holdSessions(w *webinar, joins []join, regs map[string]*registrant) []*session {
	if len(w.times) == 0 {
		return nil
	}
	// The scenario keys session s of a webinar as base + s; find base from any join.
	base := uint64(6_900_000_000_000_000_000) + mustKey(w.key)%1_000_000_000*10
	for _, j := range joins {
		if k, err := strconv.ParseUint(j.session, 10, 64); err == nil {
			base = k - uint64(nearest(w.times, j.at))
			break
		}
	}
	sessions := make([]*session, len(w.times))
	for i, t := range w.times {
		key := strconv.FormatUint(base+uint64(i), 10)
		s := &session{key: key, webinar: w.key,
			start: t.Add(time.Duration(spread(key, "start", 0, 120)) * time.Second),
			end:   t.Add(time.Hour + time.Duration(spread(key, "end", -300, 600))*time.Second)}
		sessions[i] = s
	}
	bySession := map[string]map[string][]time.Time{} // session → registrant → joins
	for _, j := range joins {
		if bySession[j.session] == nil {
			bySession[j.session] = map[string][]time.Time{}
		}
		bySession[j.session][j.registrant] = append(bySession[j.session][j.registrant], j.at)
	}
	for _, s := range sessions {
		for _, ats := range bySession[s.key] {
			for _, at := range ats {
				if at.Before(s.start) {
					s.start = at // early birds: the organizer started the session for them
				}
				if last := at.Add(time.Minute); last.After(s.end) {
					s.end = last
				}
			}
		}
		for rk, ats := range bySession[s.key] {
			slices.SortFunc(ats, time.Time.Compare)
			at := &attendee{reg: regs[rk]}
			for k, join := range ats {
				var leave time.Time
				if k+1 < len(ats) {
					// A rejoin: the connection dropped a minute or three before.
					leave = ats[k+1].Add(-time.Duration(spread(rk+s.key, strconv.Itoa(k), 60, 180)) * time.Second)
					leave = later(leave, join.Add(30*time.Second))
				} else {
					// The last interval lasts 40% to 100% of what was left of the session.
					left := s.end.Sub(join)
					leave = join.Add(left * time.Duration(spread(rk+s.key, "stay", 40, 100)) / 100).Truncate(time.Second)
					leave = later(leave, join.Add(time.Minute))
				}
				at.intervals = append(at.intervals, [2]time.Time{join, leave})
				at.seconds += int(leave.Sub(join) / time.Second)
			}
			s.attendees = append(s.attendees, at)
		}
		slices.SortFunc(s.attendees, func(x, y *attendee) int { return compareKeys(x.reg.key, y.reg.key) })
	}
	return sessions
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// nearest returns the index of the scheduled start closest to at.
func nearest(times []time.Time, at time.Time) int {
	best := 0
	for i, t := range times {
		if at.Sub(t).Abs() < at.Sub(times[best]).Abs() {
			best = i
		}
	}
	return best
}

// spread is a deterministic number in [lo, hi] drawn from key and salt.
func spread(key, salt string, lo, hi int) int {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key + "/" + salt))
	return lo + int(h.Sum64()%uint64(hi-lo+1))
}

func mustKey(s string) uint64 {
	k, _ := strconv.ParseUint(s, 10, 64)
	return k
}

// compareKeys orders decimal keys numerically (all of a kind have 19 digits, but not
// necessarily every key of a test).
func compareKeys(a, b string) int {
	return cmp.Or(cmp.Compare(len(a), len(b)), cmp.Compare(a, b))
}

// AttendanceSeconds returns the ground truth: for every attendance of a session that has
// ended by now, the seconds attended (the sum of its intervals).
func (a *Account) AttendanceSeconds(now time.Time) map[AttendanceKey]int {
	out := map[AttendanceKey]int{}
	for _, w := range a.webinars {
		for _, s := range w.sessions {
			if !s.end.Before(now) {
				continue
			}
			for _, at := range s.attendees {
				out[AttendanceKey{w.key, s.key, at.reg.key}] = at.seconds
			}
		}
	}
	return out
}

// Organizers returns the organizer keys that own a webinar, sorted.
func (a *Account) Organizers() []string {
	var out []string
	for _, w := range a.webinars {
		if !slices.Contains(out, w.organizer) {
			out = append(out, w.organizer)
		}
	}
	slices.Sort(out)
	return out
}
