package scenario_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/turnout-analytics/turnout/internal/domain"
	"github.com/turnout-analytics/turnout/internal/scenario"
)

func TestGenerateWithIsDeterministic(t *testing.T) {
	t.Parallel()
	opts := scenario.Options{Seed: 1, Webinars: 12, RegistrantsPerWebinar: 8, JoinRate: 0.6}
	a, b := scenario.GenerateWith(opts), scenario.GenerateWith(opts)
	if !bytes.Equal(bytes.Join(a.Events, []byte{0}), bytes.Join(b.Events, []byte{0})) {
		t.Error("the same options generated different streams")
	}
	opts.Seed = 2
	if c := scenario.GenerateWith(opts); bytes.Equal(bytes.Join(a.Events, []byte{0}), bytes.Join(c.Events, []byte{0})) {
		t.Error("seeds 1 and 2 generated the same stream")
	}
	// Webinars 0 is Generate's small scenario, byte for byte.
	d, e := scenario.GenerateWith(scenario.Options{Seed: 3}), scenario.Generate(3)
	if !bytes.Equal(bytes.Join(d.Events, []byte{0}), bytes.Join(e.Events, []byte{0})) || len(d.Expected) != len(e.Expected) {
		t.Error("GenerateWith with no webinars differs from Generate")
	}
}

// count recounts a stream from scratch: the figures per webinar, from the parsed events.
type count struct {
	figures    map[string]scenario.Figures
	created    map[domain.Key]bool
	series     map[domain.Key]int
	regWebinar map[domain.Key]domain.Key // registrant -> its webinar
	sessionOf  map[domain.Key]domain.Key // session -> its webinar
	deleted    int
	moved      int
	walkIns    int
	joinsFirst int
	rejoins    int
}

func recount(t *testing.T, sc scenario.Scenario) count {
	t.Helper()
	c := count{figures: map[string]scenario.Figures{}, created: map[domain.Key]bool{}, series: map[domain.Key]int{},
		regWebinar: map[domain.Key]domain.Key{}, sessionOf: map[domain.Key]domain.Key{}}
	added := map[[2]domain.Key]bool{}
	joins := map[[2]domain.Key]map[domain.Key]int{}
	eventKeys := map[string]bool{}
	for i, body := range sc.Events {
		if !bareKey.Match(body) {
			t.Fatalf("event %d has no bare 19-digit key: %s", i, body)
		}
		ev, err := domain.Parse(body)
		if err != nil {
			t.Fatalf("event %d does not parse: %v\n%s", i, err, body)
		}
		env := ev.Envelope()
		if eventKeys[env.EventKey] {
			t.Fatalf("eventKey %s repeated", env.EventKey)
		}
		eventKeys[env.EventKey] = true
		if env.Timestamp == nil || env.Timestamp.Before(sc.From) || env.Timestamp.After(sc.To) {
			t.Errorf("event %d: timestamp %v outside [%v, %v]", i, env.Timestamp, sc.From, sc.To)
		}
		switch e := ev.(type) {
		case *domain.WebinarCreated:
			if c.created[e.WebinarKey] {
				t.Fatalf("webinar %s created twice", e.WebinarKey)
			}
			c.created[e.WebinarKey] = true
			if e.RecurrenceKey != "" {
				c.series[e.RecurrenceKey]++
			}
		case *domain.WebinarChanged:
			switch e.Status {
			case "DELETED":
				c.deleted++
			case "UPDATED":
				c.moved++
			}
		case *domain.RegistrantAdded:
			c.register(t, e.WebinarKey, e.RegistrantKey)
			k := [2]domain.Key{e.WebinarKey, e.RegistrantKey}
			added[k] = true
			if joins[k] != nil {
				c.joinsFirst++
			}
		case *domain.RegistrantJoined:
			c.register(t, e.WebinarKey, e.RegistrantKey)
			if w, ok := c.sessionOf[e.SessionKey]; ok && w != e.WebinarKey {
				t.Fatalf("session %s belongs to webinars %s and %s", e.SessionKey, w, e.WebinarKey)
			}
			c.sessionOf[e.SessionKey] = e.WebinarKey
			k := [2]domain.Key{e.WebinarKey, e.RegistrantKey}
			if joins[k] == nil {
				joins[k] = map[domain.Key]int{}
			}
			joins[k][e.SessionKey]++
		}
	}
	for k, bySession := range joins {
		if !added[k] {
			c.walkIns++
		}
		for _, n := range bySession {
			c.rejoins += n - 1
		}
	}
	for k := range added {
		f := c.figures[string(k[0])]
		f.Registrants++
		if joins[k] != nil {
			f.Attendees++
		}
		c.figures[string(k[0])] = f
	}
	for k := range joins {
		if !added[k] {
			f := c.figures[string(k[0])]
			f.Registrants++
			f.Attendees++
			c.figures[string(k[0])] = f
		}
	}
	return c
}

// register records that registrant r belongs to webinar w, and fails if it already
// belongs to another: keys must be unique across webinars.
func (c count) register(t *testing.T, w, r domain.Key) {
	t.Helper()
	if prev, ok := c.regWebinar[r]; ok && prev != w {
		t.Fatalf("registrant %s appears in webinars %s and %s", r, prev, w)
	}
	c.regWebinar[r] = w
}

func TestGenerateWithExpectedIsCounted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		opts scenario.Options
		// wantMess says the stream must show rejoins, early joins and walk-ins.
		wantMess bool
	}{
		{opts: scenario.Options{Seed: 1, Webinars: 1, RegistrantsPerWebinar: 1, JoinRate: 1}},
		{opts: scenario.Options{Seed: 2, Webinars: 36, RegistrantsPerWebinar: 12, JoinRate: 0.7}, wantMess: true},
		{opts: scenario.Options{Seed: 3, Webinars: 20, JoinRate: 0}},
		{opts: scenario.Options{Seed: 4, Webinars: 40, RegistrantsPerWebinar: 30, JoinRate: 1}, wantMess: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.opts), func(t *testing.T) {
			t.Parallel()
			sc := scenario.GenerateWith(tt.opts)
			c := recount(t, sc)
			if len(c.created) != tt.opts.Webinars || len(sc.Expected) != tt.opts.Webinars {
				t.Errorf("%d webinars created, %d expected; want %d", len(c.created), len(sc.Expected), tt.opts.Webinars)
			}
			for _, k := range sc.WebinarKeys() {
				if c.figures[k] != sc.Expected[k] {
					t.Errorf("webinar %s: counted %+v, scenario expects %+v", k, c.figures[k], sc.Expected[k])
				}
				per := tt.opts.RegistrantsPerWebinar
				if per == 0 {
					per = 20
				}
				if n := sc.Expected[k].Registrants; n < per-per/4 || n > per+per/4+1 { // +1: a walk-in
					t.Errorf("webinar %s has %d registrants, want %d±25%%", k, n, per)
				}
				if tt.opts.JoinRate == 0 && sc.Expected[k].Attendees != 0 {
					t.Errorf("webinar %s has attendees at join rate 0", k)
				}
			}
			if tt.opts.Webinars >= 9 {
				shared := 0
				for _, n := range c.series {
					if n == 2 {
						shared++
					}
				}
				if shared == 0 || c.deleted == 0 || c.moved == 0 {
					t.Errorf("want series pairs, deleted and rescheduled webinars; got %d pairs, %d deleted, %d moved", shared, c.deleted, c.moved)
				}
			}
			if tt.wantMess && (c.rejoins == 0 || c.joinsFirst == 0 || c.walkIns == 0) {
				t.Errorf("want rejoins, joins before registration and walk-ins; got %d, %d, %d", c.rejoins, c.joinsFirst, c.walkIns)
			}
		})
	}
}

// TestGenerateWithKeysStayUnique makes many webinars (few registrants each, to stay quick):
// the ordinal-based keys must not collide across webinars, registrants or sessions.
func TestGenerateWithKeysStayUnique(t *testing.T) {
	t.Parallel()
	sc := scenario.GenerateWith(scenario.Options{Seed: 5, Webinars: 10_000, RegistrantsPerWebinar: 1, JoinRate: 0.5})
	c := recount(t, sc) // fails on a shared registrant or session key
	if len(c.created) != 10_000 || len(sc.Expected) != 10_000 {
		t.Errorf("%d webinars created, %d expected; want 10000", len(c.created), len(sc.Expected))
	}
}

// TestGenerateWithMatchesProjections runs a medium scenario through the real projections.
func TestGenerateWithMatchesProjections(t *testing.T) {
	t.Parallel()
	sc := scenario.GenerateWith(scenario.Options{Seed: 11, Webinars: 50, RegistrantsPerWebinar: 40, JoinRate: 0.6})
	recount(t, sc) // every body passes domain.Parse
	assertProjected(t, sc, conversion(t, sc))
}

// Streams of disjoint ordinals share no key, so one log can hold both: the recount of the
// two together fails on a registrant or session key in two webinars, and must find every
// webinar of both with the figures each stream expects.
func TestGenerateWithFirstWebinarKeepsStreamsApart(t *testing.T) {
	t.Parallel()
	a := scenario.GenerateWith(scenario.Options{Seed: 6, Webinars: 7, RegistrantsPerWebinar: 10, JoinRate: 0.7})
	b := scenario.GenerateWith(scenario.Options{Seed: 7, Webinars: 7, RegistrantsPerWebinar: 10, JoinRate: 0.7, FirstWebinar: 7})
	both := scenario.Scenario{Events: append(slices.Clone(a.Events), b.Events...), From: a.From, To: a.To}
	if b.From.Before(both.From) {
		both.From = b.From
	}
	if b.To.After(both.To) {
		both.To = b.To
	}
	c := recount(t, both)
	if len(c.created) != 14 {
		t.Fatalf("%d webinars created by two streams of 7", len(c.created))
	}
	for _, sc := range []scenario.Scenario{a, b} {
		for _, k := range sc.WebinarKeys() {
			if c.figures[k] != sc.Expected[k] {
				t.Errorf("webinar %s: counted %+v, its stream expects %+v", k, c.figures[k], sc.Expected[k])
			}
		}
	}
}
