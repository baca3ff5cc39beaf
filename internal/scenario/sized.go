package scenario

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Options size and shape a scenario made by GenerateWith.
type Options struct {
	// Seed makes the stream repeatable: the same Options give the same bytes.
	Seed uint64
	// Webinars is how many webinars the stream has. 0 (or less) means Generate(Seed)'s
	// small fixed scenario, and the other fields are ignored.
	Webinars int
	// RegistrantsPerWebinar is the mean number of registrants of a webinar; each webinar
	// has it ±25%. 0 (or less) means 20.
	RegistrantsPerWebinar int
	// JoinRate is the chance, 0 to 1, that an APPROVED registrant of a webinar that is not
	// deleted joins it live (WAITING registrants never join). 0 means nobody attends.
	JoinRate float64
	// FirstWebinar is the ordinal of the stream's first webinar (0 for the first). Streams
	// of disjoint ordinals have disjoint webinar, session, recurrence and registrant keys
	// (while a webinar has fewer than RegistrantStride registrants), so a test can add a
	// second stream to a log that holds a first; each webinar's shape follows its ordinal.
	FirstWebinar int
}

// RegistrantStride is how many registrant keys each webinar ordinal reserves: the first
// registrant key of a stream is its base plus FirstWebinar × RegistrantStride.
const RegistrantStride = 100_000

// Sized-scenario key bases. Each key is its base plus a webinar's or registrant's ordinal,
// so keys stay 19 digits and unique for any realistic size, and never meet Generate's.
const (
	sizedWebinarBase    uint64 = 9200000000000000000
	sizedRecurrenceBase uint64 = 4200000000000000000
	sizedSessionBase    uint64 = 6200000000000000000 // + webinar ordinal × 10 + session
	sizedRegistrantBase uint64 = 5200000000000000000
)

var topics = []string{"Turnout 101", "Attribution deep dive", "Dashboards that convert", "Webhook hygiene",
	"Ask the analysts", "Funnels in practice", "Données et décisions", "Datenqualität im Alltag"}

// GenerateWith returns a scenario of opts.Webinars webinars. They cycle through the
// recurrence types (a single session; a two-part series whose parts share a recurrenceKey;
// a three-day sequence); every sixth is rescheduled by an hour and every ninth deleted
// (webinar.changed with status DELETED; nobody attends it). Registrants carry the same
// realistic fields as Generate's, some join before their registration is delivered, some
// rejoin, sequence attendees may come back another day, and every tenth webinar has a
// walk-in whose registrant.added never arrives. Expected is exact for the stream.
//
// Duplicates and out-of-order delivery are the deliverer's business (g2wsim's
// DeliveryConfig), as they are GoTo's, not the account's.
func GenerateWith(opts Options) Scenario {
	if opts.Webinars <= 0 {
		return Generate(opts.Seed)
	}
	perWebinar := opts.RegistrantsPerWebinar
	if perWebinar <= 0 {
		perWebinar = 20
	}
	joinRate := min(max(opts.JoinRate, 0), 1)
	g := newGenerator(rand.NewPCG(opts.Seed, 0x51ced), sizedRegistrantBase)
	first := max(opts.FirstWebinar, 0)
	g.regKey += uint64(first) * RegistrantStride

	webinars := make([]webinar, opts.Webinars)
	start := Base.Add(7 * 24 * time.Hour)
	for n := range webinars {
		i := first + n // the webinar's ordinal: its keys and its shape follow it
		// Spread the schedule over four weeks of afternoons, so a dashboard's daily view has
		// something every day whatever the size.
		at := start.Add(time.Duration(i%28)*24*time.Hour + time.Duration(i/28%6)*time.Hour)
		w := webinar{key: sizedWebinarBase + uint64(i), experience: experiences[i%len(experiences)],
			sessionBase: sizedSessionBase + uint64(i)*10, joinRate: joinRate}
		topic := topics[i%len(topics)]
		switch i % 4 {
		case 0:
			w.recurrence, w.title, w.times = "single_session", fmt.Sprintf("%s #%d", topic, i+1), []time.Time{at}
		case 1, 2:
			part := i%4 - 1
			w.recurrence, w.recurrenceKey = "series", sizedRecurrenceBase+uint64(i-part)
			w.title = fmt.Sprintf("%s #%d (part %d)", topics[(i-part)%len(topics)], i-part+1, part+1)
			w.times = []time.Time{at.Add(time.Duration(part) * 7 * 24 * time.Hour)}
		case 3:
			w.recurrence, w.title = "sequence", fmt.Sprintf("%s #%d: a three-day sequence", topic, i+1)
			w.times = []time.Time{at, at.Add(24 * time.Hour), at.Add(48 * time.Hour)}
		}
		webinars[n] = w
		g.created(w)
	}
	for n := range webinars {
		if i := first + n; i%6 == 2 {
			for j := range webinars[n].times { // every session moves an hour later
				webinars[n].times[j] = webinars[n].times[j].Add(time.Hour)
			}
			g.changed(webinars[n], "UPDATED")
		}
		if i := first + n; i%9 == 8 {
			webinars[n].joinRate = 0
			g.changed(webinars[n], "DELETED")
		}
	}
	spread := perWebinar / 4
	for n, w := range webinars {
		for range perWebinar - spread + g.r.IntN(2*spread+1) {
			g.registrant(w)
		}
		if (first+n)%10 == 0 && w.joinRate > 0 {
			g.regKey++
			fn, ln := firstNames[g.r.IntN(len(firstNames))], lastNames[g.r.IntN(len(lastNames))]
			g.joined(w, g.regKey, 0, fn, ln, "", w.times[0].Add(time.Duration(g.r.IntN(15))*time.Minute))
		}
	}
	return g.finish()
}
