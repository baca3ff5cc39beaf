package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"time"
)

// sampleEvents builds the demo's deterministic GoToWebinar activity: three webinars (a single
// session, a two-session series tied by recurrenceKey, and a sequence), one of them
// rescheduled and one cancelled, registrants with unicode names, registration sources and
// question responses, joins (some before their registration arrives, some rejoins), and the
// live service's bare numeric keys. The demo delivers it shuffled, with redeliveries.
func sampleEvents() [][]byte {
	r := rand.New(rand.NewPCG(2026, 11))
	var out [][]byte
	n := 0
	add := func(m map[string]any) {
		n++
		m["eventVersion"] = "1.0.0"
		m["product"] = "g2w"
		m["eventKey"] = fmt.Sprintf("d3m0%04d-7c1e-4a5b-9f00-%012d", n, n)
		b, err := json.Marshal(m)
		if err != nil {
			panic(err) // static data: cannot fail
		}
		out = append(out, b)
	}
	type webinar struct {
		key, recurrenceKey uint64
		title, recurrence  string
		start              time.Time
	}
	base := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	webinars := []webinar{
		{key: 9100000000000000101, title: "Turnout 101: from webhooks to dashboards", recurrence: "single_session", start: base},
		{key: 9100000000000000201, recurrenceKey: 4100000000000000200, title: "Analytics office hours (part 1)", recurrence: "series", start: base.Add(24 * time.Hour)},
		{key: 9100000000000000202, recurrenceKey: 4100000000000000200, title: "Analytics office hours (part 2)", recurrence: "series", start: base.Add(8 * 24 * time.Hour)},
		{key: 9100000000000000301, title: "Data week: a three-day sequence", recurrence: "sequence", start: base.Add(14 * 24 * time.Hour)},
	}
	for _, w := range webinars {
		times := []map[string]string{{"startTime": w.start.Format(time.RFC3339), "endTime": w.start.Add(time.Hour).Format(time.RFC3339)}}
		if w.recurrence == "sequence" {
			for d := 1; d < 3; d++ {
				s := w.start.Add(time.Duration(d) * 24 * time.Hour)
				times = append(times, map[string]string{"startTime": s.Format(time.RFC3339), "endTime": s.Add(time.Hour).Format(time.RFC3339)})
			}
		}
		ev := map[string]any{"eventName": "webinar.created", "webinarKey": w.key, "webinarTitle": w.title,
			"organizerKey": uint64(8100000000000000001), "accountKey": uint64(7100000000000000001),
			"description": "A Turnout demo webinar.", "experienceType": "CLASSIC", "recurrenceType": w.recurrence,
			"webinarCreationDate": base.Add(-30 * 24 * time.Hour).Format(time.RFC3339), "status": "NEW",
			"timeZone": "Europe/Berlin", "times": times}
		if w.recurrenceKey != 0 {
			ev["recurrenceKey"] = w.recurrenceKey
		}
		add(ev)
	}
	// The series' second part is rescheduled by an hour; the sequence is cancelled.
	moved := webinars[2].start.Add(time.Hour)
	add(map[string]any{"eventName": "webinar.changed", "webinarKey": webinars[2].key, "webinarTitle": webinars[2].title,
		"experienceType": "CLASSIC", "recurrenceType": "series", "status": "UPDATED", "timeZone": "Europe/Berlin",
		"times": []map[string]string{{"startTime": moved.Format(time.RFC3339), "endTime": moved.Add(time.Hour).Format(time.RFC3339)}}})
	add(map[string]any{"eventName": "webinar.changed", "webinarKey": webinars[3].key, "webinarTitle": webinars[3].title,
		"experienceType": "CLASSIC", "recurrenceType": "sequence", "status": "DELETED", "timeZone": "Europe/Berlin"})

	first := []string{"Zoë", "Jürgen", "Aiko", "Łukasz", "Siobhán", "Oluwaseun", "Mateo", "Ngọc", "Ingrid", "Dmitri", "Amélie", "Kwame", "Priya", "Søren", "Yuki"}
	last := []string{"Müller", "Nakamura", "Kowalski", "Ó Briain", "Adeyemi", "García", "Nguyễn", "Johansson", "Иванов", "Dubois", "Mensah", "Sharma", "Østergaard", "Tanaka"}
	sources := []string{"Email", "LinkedIn", "Website", "Partner newsletter"}
	joinRate := []float64{0.7, 0.55, 0.45, 0.0}
	regKey := uint64(5100000000000000000)
	for wi, w := range webinars {
		for i := range 8 + r.IntN(6) {
			regKey++
			fn, ln := first[r.IntN(len(first))], last[r.IntN(len(last))]
			email := fmt.Sprintf("demo.registrant.%d@example.com", regKey%100000)
			regAt := w.start.Add(-time.Duration(1+r.IntN(20*24)) * time.Hour)
			added := map[string]any{"eventName": "registrant.added", "webinarKey": w.key, "registrantKey": regKey,
				"webinarTitle": w.title, "experienceType": "CLASSIC", "recurrenceType": w.recurrence,
				"webinarCreatorKey": uint64(8100000000000000001),
				"firstName": fn, "lastName": ln, "email": email, "organization": "Example GmbH", "jobTitle": "Analyst",
				"industry": "Software", "registrationDate": regAt.Format(time.RFC3339), "status": "APPROVED",
				"registrationSource": sources[(i+wi)%len(sources)],
				"joinUrl":            fmt.Sprintf("https://global.gotowebinar.com/join/%d/%d", w.key, regKey),
				"responses":          []map[string]string{{"question": "What do you hope to learn?", "answer": "How to measure conversion"}},
				"timestamp":          regAt.Format("2006-01-02T15:04:05.000Z")}
			if r.Float64() < joinRate[wi] {
				joinAt := w.start.Add(time.Duration(r.IntN(15)-3) * time.Minute)
				joined := map[string]any{"eventName": "registrant.joined", "webinarKey": w.key, "registrantKey": regKey,
					"sessionKey": w.key + 1000, "webinarTitle": w.title, "firstName": fn, "lastName": ln, "email": email,
					"joinTime": joinAt.UnixMilli(), "timestamp": joinAt.Format("2006-01-02T15:04:05.000Z")}
				add(joined)
				if r.Float64() < 0.2 { // a rejoin after a dropped connection
					joined = maps.Clone(joined)
					joinAt = joinAt.Add(12 * time.Minute)
					joined["joinTime"], joined["timestamp"] = joinAt.UnixMilli(), joinAt.Format("2006-01-02T15:04:05.000Z")
					add(joined)
				}
			}
			add(added)
		}
	}
	return out
}
