// Package scenario generates a small, deterministic, realistic stream of GoToWebinar
// webhook bodies, and the figures the analytics schema must show for it.
//
// It is test and demo data: a handful of webinars of every recurrence type (a single
// session, a two-session series tied by recurrenceKey, a three-day sequence), one of them
// rescheduled and one deleted; registrants with unicode names, registration sources (some
// without one), custom-question responses and WAITING registrations; joins with rejoins,
// joins that arrive before their registrant.added, a walk-in whose registration never
// reaches us, and sequence attendees who come back on another day. Keys are live GoTo's
// 19-digit numbers, encoded as bare JSON integers. The same seed gives the same bytes.
//
// GenerateWith makes the same kinds of stream at any size (Options: webinars, registrants
// per webinar, join rate), for load tests and larger demos.
//
// The bodies are in a plausible arrival order, not a sorted one; the projections do not
// care about order, so callers may shuffle them.
package scenario

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// Figures are what analytics.webinar_conversion must report for one webinar.
type Figures struct {
	Registrants int // distinct registrant keys seen in registrant.added or registrant.joined
	Attendees   int // of those, registrants with at least one registrant.joined
}

// Scenario is one generated stream.
type Scenario struct {
	// Events are the webhook bodies, as GoTo would POST them.
	Events [][]byte
	// Expected holds the figures per webinar key (decimal digits, as analytics stores it).
	Expected map[string]Figures
	// From and To bound every time in the stream (registrations, schedules and joins), so
	// a dashboard time range of [From, To] sees all of it.
	From, To time.Time
}

// Base is when the generated activity happens: the first webinar starts Base + 7 days.
var Base = time.Date(2026, 11, 2, 15, 0, 0, 0, time.UTC)

// Fixed keys shared by every webinar of the generated account.
const (
	accountKey   uint64 = 7100000000000000001
	organizerKey uint64 = 8100000000000000001
)

var (
	firstNames = []string{"Zoë", "Jürgen", "Aiko", "Łukasz", "Siobhán", "Oluwaseun", "Mateo", "Ngọc", "Ingrid", "Дмитрий", "Amélie", "Kwame", "Priya", "Søren", "雪"}
	lastNames  = []string{"Müller", "Nakamura", "Kowalski", "Ó Briain", "Adeyemi", "García", "Nguyễn", "Johansson", "Иванов", "Dubois", "Mensah", "Sharma", "Østergaard", "田中"}
	// Sources as GoTo's "share your webinar" links name them; "" means the registration
	// came without one.
	sources     = []string{"Email", "LinkedIn", "Website", "Partner newsletter", ""}
	experiences = []string{"CLASSIC", "BROADCAST", "SIMULIVE"}
)

// webinar is one generated webinar.
type webinar struct {
	key, recurrenceKey uint64
	title, recurrence  string
	experience         string
	times              []time.Time // scheduled starts; every session lasts an hour
	joinRate           float64
	// sessionBase + s is the sessionKey of session s.
	sessionBase uint64
}

// generator accumulates events and figures.
type generator struct {
	r        *rand.Rand
	sc       Scenario
	n        int
	regKey   uint64
	regBase  uint64                     // regKey's start: emails number registrants from it
	joinedBy map[string]map[uint64]bool // webinar key -> registrant -> attended
}

// Generate returns the scenario for seed. Different seeds vary names, counts, sources and
// who attends; the shape (which webinars exist, and what kinds of event occur) is fixed.
func Generate(seed uint64) Scenario {
	g := newGenerator(rand.NewPCG(seed, 0x5ce4a210), 5100000000000000000)
	start := Base.Add(7 * 24 * time.Hour)
	webinars := []webinar{
		{key: 9100000000000000101, title: "Turnout 101: from webhooks to dashboards", recurrence: "single_session",
			times: []time.Time{start}, joinRate: 0.7},
		{key: 9100000000000000201, recurrenceKey: 4100000000000000200, title: "Analytics office hours (part 1)", recurrence: "series",
			times: []time.Time{start.Add(24 * time.Hour)}, joinRate: 0.55},
		{key: 9100000000000000202, recurrenceKey: 4100000000000000200, title: "Analytics office hours (part 2)", recurrence: "series",
			times: []time.Time{start.Add(8 * 24 * time.Hour)}, joinRate: 0.5},
		{key: 9100000000000000301, title: "Data week: a three-day sequence", recurrence: "sequence",
			times: []time.Time{start.Add(14 * 24 * time.Hour), start.Add(15 * 24 * time.Hour), start.Add(16 * 24 * time.Hour)}, joinRate: 0.6},
		{key: 9100000000000000401, title: "Cancelled: pricing Q&A", recurrence: "single_session",
			times: []time.Time{start.Add(20 * 24 * time.Hour)}, joinRate: 0},
	}
	for i := range webinars {
		webinars[i].experience = experiences[i%len(experiences)]
		webinars[i].sessionBase = 6100000000000000000 + webinars[i].key%1_000_000*10
		g.created(webinars[i])
	}
	// The series' second part moves by an hour; the last webinar is cancelled (GoTo sends
	// webinar.changed with status DELETED: there is no delete event).
	webinars[2].times = []time.Time{webinars[2].times[0].Add(time.Hour)}
	g.changed(webinars[2], "UPDATED")
	g.changed(webinars[4], "DELETED")

	for _, w := range webinars {
		for range 6 + g.r.IntN(6) {
			g.registrant(w)
		}
	}
	// A walk-in: joined the single session, but its registrant.added never reached us. It
	// still counts as a registrant (and an attendee).
	g.regKey++
	g.joined(webinars[0], g.regKey, 0, "Ana", "Walk-in", "", webinars[0].times[0].Add(4*time.Minute))
	return g.finish()
}

// newGenerator returns a generator drawing from src whose registrant keys follow regBase.
func newGenerator(src rand.Source, regBase uint64) *generator {
	return &generator{
		r:        rand.New(src),
		sc:       Scenario{Expected: map[string]Figures{}, From: Base, To: Base},
		regKey:   regBase,
		regBase:  regBase,
		joinedBy: map[string]map[uint64]bool{},
	}
}

// finish counts the figures from who registered and who joined, and returns the scenario.
func (g *generator) finish() Scenario {
	for wk, byReg := range g.joinedBy {
		f := Figures{Registrants: len(byReg)}
		for _, attended := range byReg {
			if attended {
				f.Attendees++
			}
		}
		g.sc.Expected[wk] = f
	}
	return g.sc
}

// add encodes one event with the common envelope and records its times.
func (g *generator) add(m map[string]any, at time.Time) {
	g.n++
	m["eventVersion"] = "1.0.0"
	m["product"] = "g2w"
	m["eventKey"] = g.uuid()
	m["timestamp"] = at.UTC().Format("2006-01-02T15:04:05.000Z")
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("scenario: encode event: %v", err)) // maps of plain values: cannot fail
	}
	g.sc.Events = append(g.sc.Events, b)
	g.widen(at)
}

func (g *generator) widen(t time.Time) {
	if t.Before(g.sc.From) {
		g.sc.From = t
	}
	if t.After(g.sc.To) {
		g.sc.To = t
	}
}

// uuid is a random (version 4 shaped) UUID from the seeded source: GoTo's eventKey.
func (g *generator) uuid() string {
	a, b := g.r.Uint64(), g.r.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, a>>16&0xffff, a&0xfff, 0x8000|b>>48&0x3fff, b&0xffffffffffff)
}

func schedule(w webinar) []map[string]string {
	out := make([]map[string]string, 0, len(w.times))
	for _, s := range w.times {
		out = append(out, map[string]string{"startTime": s.Format(time.RFC3339), "endTime": s.Add(time.Hour).Format(time.RFC3339)})
	}
	return out
}

func (g *generator) created(w webinar) {
	at := Base.Add(-time.Duration(g.r.IntN(48)) * time.Hour)
	ev := map[string]any{"eventName": "webinar.created", "webinarKey": w.key, "webinarTitle": w.title,
		"organizerKey": organizerKey, "accountKey": accountKey,
		"description": "A Turnout scenario webinar.", "experienceType": w.experience, "recurrenceType": w.recurrence,
		"webinarCreationDate": at.Format(time.RFC3339), "status": "NEW", "timeZone": "Europe/Berlin", "times": schedule(w)}
	if w.recurrenceKey != 0 {
		ev["recurrenceKey"] = w.recurrenceKey
	}
	g.add(ev, at)
	g.widen(w.times[len(w.times)-1].Add(time.Hour))
	g.joinedBy[strconv.FormatUint(w.key, 10)] = map[uint64]bool{}
}

func (g *generator) changed(w webinar, status string) {
	ev := map[string]any{"eventName": "webinar.changed", "webinarKey": w.key, "webinarTitle": w.title,
		"organizerKey": organizerKey, "accountKey": accountKey,
		"experienceType": w.experience, "recurrenceType": w.recurrence, "status": status, "timeZone": "Europe/Berlin"}
	if status != "DELETED" {
		ev["times"] = schedule(w)
	}
	g.add(ev, Base.Add(time.Duration(1+g.r.IntN(24))*time.Hour))
	g.widen(w.times[len(w.times)-1].Add(time.Hour))
}

// registrant adds one registrant of w, and the joins it makes.
func (g *generator) registrant(w webinar) {
	g.regKey++
	key := g.regKey
	fn, ln := firstNames[g.r.IntN(len(firstNames))], lastNames[g.r.IntN(len(lastNames))]
	email := fmt.Sprintf("scenario.%d@example.com", key-g.regBase) // unique for any number of registrants
	regAt := Base.Add(time.Duration(g.r.IntN(7*24*60)) * time.Minute)
	status := "APPROVED"
	if g.r.Float64() < 0.1 {
		status = "WAITING"
	}
	added := map[string]any{
		"eventName": "registrant.added", "webinarKey": w.key, "registrantKey": key,
		"webinarTitle": w.title, "experienceType": w.experience, "recurrenceType": w.recurrence,
		"webinarCreatorKey": organizerKey, "firstName": fn, "lastName": ln, "email": email,
		"organization": "Example GmbH", "jobTitle": "Analyst", "industry": "Software",
		"registrationDate": regAt.Format(time.RFC3339), "status": status,
		"responses": []map[string]string{{"question": "What do you hope to learn?", "answer": "Wie man Konversion misst"}},
	}
	if src := sources[g.r.IntN(len(sources))]; src != "" {
		added["registrationSource"] = src
	}
	if status == "APPROVED" {
		added["joinUrl"] = fmt.Sprintf("https://global.gotowebinar.com/join/%d/%d", w.key, key)
	}
	wk := strconv.FormatUint(w.key, 10)
	g.joinedBy[wk][key] = false

	// Which sessions this registrant joins: one, or for a sequence sometimes two days.
	var sessions []int
	if status == "APPROVED" && g.r.Float64() < w.joinRate {
		sessions = append(sessions, g.r.IntN(len(w.times)))
		if len(w.times) > 1 && g.r.Float64() < 0.5 {
			sessions = append(sessions, (sessions[0]+1)%len(w.times))
		}
	}
	// Joins are usually delivered after the registration; sometimes the registration
	// arrives late (GoTo promises no order).
	late := len(sessions) > 0 && g.r.Float64() < 0.25
	if !late {
		g.add(added, regAt)
	}
	for _, s := range sessions {
		at := w.times[s].Add(time.Duration(g.r.IntN(18)-3) * time.Minute) // a few early birds
		g.joined(w, key, s, fn, ln, email, at)
		if g.r.Float64() < 0.2 { // a rejoin after a dropped connection
			g.joined(w, key, s, fn, ln, email, at.Add(time.Duration(5+g.r.IntN(20))*time.Minute))
		}
	}
	if late {
		g.add(added, regAt)
	}
}

// joined adds a registrant.joined of registrant key to session s of w.
func (g *generator) joined(w webinar, key uint64, s int, fn, ln, email string, at time.Time) {
	ev := map[string]any{"eventName": "registrant.joined", "webinarKey": w.key, "registrantKey": key,
		"sessionKey": w.sessionBase + uint64(s), "webinarCreatorKey": organizerKey, "webinarTitle": w.title,
		"experienceType": w.experience, "recurrenceType": w.recurrence,
		"firstName": fn, "lastName": ln, "joinTime": at.UnixMilli()}
	if email != "" {
		ev["email"] = email
	}
	g.add(ev, at)
	g.joinedBy[strconv.FormatUint(w.key, 10)][key] = true
}

// WebinarKeys returns the keys of Expected, sorted.
func (s Scenario) WebinarKeys() []string {
	keys := make([]string, 0, len(s.Expected))
	for k := range s.Expected {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
