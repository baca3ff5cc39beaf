package projections

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"time"
)

// genBase is the generator's clock origin; every generated time is an offset from it.
var genBase = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

var (
	recurrenceTypes = []string{"single_session", "series", "sequence"}
	experienceTypes = []string{"CLASSIC", "BROADCAST", "SIMULIVE"}
	sources         = []string{"email", "linkedin", "website", ""}
	firstNames      = []string{"Zoë", "José", "Łukasz", "渡辺", "Ана", "Ngozi", "O'Brien"}
	lastNames       = []string{"Müller", "Sørensen", "García-López", "李", "Ивановa", "Smith"}
)

// generator builds realistic payloads. Keys are 19-digit numbers sent at random as JSON
// integers or strings, as live GoTo and the spec disagree.
//
// It is not internal/scenario, on purpose: the property tests here need the inputs a
// realistic account does not produce and scenario's exact Expected figures could not
// describe: keys as JSON strings, events without a timestamp, re-registrations with changed
// attributes, webinars known only from registrant events, joins without any registration;
// and Events with offsets and receive times derived from the generation order. The
// end-to-end tests (cmd/projector, internal/dashboards, internal/faults) build on scenario.
type generator struct {
	r      *rand.Rand
	seq    int // event counter: event timestamps and receive times follow it
	events []Event
}

func newGenerator(seed int64) *generator { return &generator{r: rand.New(rand.NewSource(seed))} }

func (g *generator) key(n int64) any {
	k := 1000000000000000000 + n*7919
	if g.r.Intn(2) == 0 {
		return json.Number(fmt.Sprint(k))
	}
	return fmt.Sprint(k)
}

// add appends an event whose receive time and (unless noTS) timestamp derive from the
// generation sequence, so they are properties of the event, not of its log position.
func (g *generator) add(p map[string]any, noTS bool) {
	g.seq++
	ts := genBase.Add(time.Duration(g.seq) * time.Minute)
	if !noTS {
		p["timestamp"] = ts.Format("2006-01-02T15:04:05.000Z")
	}
	p["eventVersion"] = "1.0.0"
	p["product"] = "g2w"
	p["eventKey"] = fmt.Sprintf("00000000-0000-4000-8000-%012d", g.seq)
	g.push(p, ts)
}

// push appends the event of payload p generated at ts.
func (g *generator) push(p map[string]any, ts time.Time) {
	b, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	g.events = append(g.events, Event{Offset: int64(len(g.events) + 1), ReceivedAt: ts.Add(time.Second), Payload: b})
}

// webinarSnapshot appends reconcile's turnout.webinar.snapshot of w (internal/reconcile):
// header keys as decimal text, the REST item under "snapshot" with REST's names (subject is
// the title) and keys as integers or strings, its own time zone and description so that
// which layer won shows in the tables.
func (g *generator) webinarSnapshot(w genWebinar, subject string) {
	g.seq++
	ts := genBase.Add(time.Duration(g.seq) * time.Minute)
	item := map[string]any{
		"webinarKey": g.key(w.n), "subject": subject, "description": "REST: " + subject,
		"organizerKey": g.key(w.n + 500000), "times": w.times, "timeZone": "America/New_York",
		"experienceType": w.experience,
	}
	if w.recurrence == "series" {
		item["recurrenceKey"] = g.key(w.n / 3)
	}
	g.push(map[string]any{
		"eventName": nameWebinarSnapshot, "eventKey": fmt.Sprintf("80000000-0000-8000-8000-%012d", g.seq),
		"eventVersion": "1.0.0", "source": "rest",
		"organizerKey": fmt.Sprint(1000000000000000000 + (w.n+500000)*7919),
		"webinarKey":   fmt.Sprint(1000000000000000000 + w.n*7919),
		"fetchedAt":    ts.Format(time.RFC3339), "snapshot": item,
	}, ts)
}

type genWebinar struct {
	n          int64
	title      string
	experience string
	recurrence string
	times      []map[string]any
}

func (g *generator) webinarEvent(w genWebinar, name, status, title string) {
	p := map[string]any{
		"eventName": name, "webinarKey": g.key(w.n), "webinarTitle": title,
		"description": "Über " + title, "experienceType": w.experience, "recurrenceType": w.recurrence,
		"organizerKey": g.key(w.n + 500000), "accountKey": g.key(9), "timeZone": "Europe/Berlin",
		"times": w.times, "status": status,
	}
	if name == nameCreated {
		p["recurrenceKey"] = g.key(w.n / 3)
		p["webinarCreationDate"] = genBase.Add(-time.Duration(w.n) * time.Hour).Format(time.RFC3339)
	}
	g.add(p, false)
}

func (g *generator) registrantEvent(w genWebinar, name string, rn int64, first, last string, noTS bool, extra map[string]any) {
	p := map[string]any{
		"eventName": name, "webinarKey": g.key(w.n), "registrantKey": g.key(rn),
		"webinarTitle": w.title, "experienceType": w.experience, "recurrenceType": w.recurrence,
		"webinarCreatorKey": g.key(w.n + 500000),
		"email":             fmt.Sprintf("r%d@example.com", rn), "firstName": first, "lastName": last,
	}
	for k, v := range extra {
		p[k] = v
	}
	g.add(p, noTS)
}

// stream generates a log, in log order, of about webinars*(perWebinar*2+2) events: webinars of
// every recurrence type (some known only from registrant events), registrants with unicode
// names, sources and responses, re-registrations, joins including rejoins, joins delivered
// before the registration and joins without any registration, changed and deleted webinars,
// and reconcile's webinar snapshots (every other webinar, some fetched twice, some of them
// stubs otherwise: known from REST and registrant events only).
func (g *generator) stream(webinars, perWebinar int) []Event {
	for wi := range webinars {
		w := genWebinar{
			n: int64(wi + 1), title: fmt.Sprintf("Webinar №%d — «Grundlagen»", wi+1),
			experience: experienceTypes[wi%3], recurrence: recurrenceTypes[(wi/3)%3],
		}
		sessions := 1
		if w.recurrence == "sequence" {
			sessions = 3
		}
		for s := range sessions {
			start := genBase.Add(time.Duration(wi*24+s*168) * time.Hour)
			w.times = append(w.times, map[string]any{
				"startTime": start.Format(time.RFC3339), "endTime": start.Add(time.Hour).Format(time.RFC3339),
			})
		}
		stubOnly := wi%5 == 4
		if !stubOnly {
			g.webinarEvent(w, nameCreated, "NEW", w.title)
		}
		for ri := range perWebinar {
			rn := int64(wi*100000 + ri + 1)
			first, last := firstNames[g.r.Intn(len(firstNames))], lastNames[g.r.Intn(len(lastNames))]
			added := func(noTS bool) {
				g.registrantEvent(w, nameAdded, rn, first, last, noTS, map[string]any{
					"organization": "Acme " + last, "jobTitle": "Ingénieur", "phone": "+49 30 1234",
					"industry": "Software", "comments": "—", "status": "APPROVED",
					"registrationDate":   genBase.Add(time.Duration(g.seq) * time.Minute).Format(time.RFC3339),
					"registrationSource": sources[g.r.Intn(len(sources))],
					"joinUrl":            fmt.Sprintf("https://global.gotowebinar.com/join/%d/%d", w.n, rn),
					"responses":          []map[string]string{{"question": "Wie haben Sie von uns erfahren?", "answer": "Empfehlung ✓"}},
				})
			}
			joins := 0
			switch x := g.r.Intn(10); {
			case x < 5:
				joins = 1
			case x < 7:
				joins = 2 + g.r.Intn(2) // rejoins
			}
			joinOnly := g.r.Intn(12) == 0
			joinFirst := !joinOnly && joins > 0 && g.r.Intn(5) == 0
			join := func() {
				s := g.r.Intn(sessions)
				start := genBase.Add(time.Duration(wi*24+s*168) * time.Hour)
				jt := start.Add(time.Duration(g.r.Intn(90)-10) * time.Minute)
				g.registrantEvent(w, nameJoined, rn, first, last, g.r.Intn(4) == 0, map[string]any{
					"sessionKey": g.key(w.n*10 + int64(s)), "joinTime": jt.UnixMilli(),
				})
			}
			if joinFirst {
				join()
				joins--
			}
			if !joinOnly {
				added(g.r.Intn(20) == 0 && joins == 0)
				if g.r.Intn(5) == 0 {
					first = first + " Jr."
					added(false) // re-registration with changed attributes and a later timestamp
				}
			}
			for range joins {
				join()
			}
		}
		if !stubOnly && g.r.Intn(2) == 0 {
			g.webinarEvent(w, nameChanged, "UPDATED", w.title+" (neu)")
			if g.r.Intn(3) == 0 {
				g.webinarEvent(w, nameChanged, "DELETED", w.title+" (neu)")
			}
		}
		// Decided by wi, not by g.r, so the rest of the stream is what it was before.
		if wi%2 == 0 {
			g.webinarSnapshot(w, w.title+" (REST)")
			if wi%4 == 0 {
				g.webinarSnapshot(w, w.title+" (REST, später)")
			}
		}
	}
	return g.events
}

// shuffled returns the events in a random order with offsets reassigned in that order,
// except that webinar.changed events and webinar snapshots keep their relative order (the
// rules where log order is all there is).
func shuffled(events []Event, seed int64) []Event {
	r := rand.New(rand.NewSource(seed))
	out := make([]Event, len(events))
	copy(out, events)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	logOrdered := func(e Event) bool {
		n := eventName(e.Payload)
		return n == nameChanged || n == nameWebinarSnapshot
	}
	var changed []Event
	for _, e := range events {
		if logOrdered(e) {
			changed = append(changed, e)
		}
	}
	for i := range out {
		if logOrdered(out[i]) {
			out[i], changed = changed[0], changed[1:]
		}
		out[i].Offset = int64(i + 1)
	}
	return out
}
