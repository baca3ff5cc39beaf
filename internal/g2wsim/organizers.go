package g2wsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/turnout-analytics/turnout/internal/scenario"
)

// Organizer is one GoTo user of the emulated company account: a webinar organizer with a
// token of their own. GoTo delivers an organizer's events only through user subscriptions
// made with that organizer's token.
type Organizer struct {
	// Key is the organizerKey (the user's key): 19 digits, as live.
	Key string `json:"organizerKey"`
	// Email is how the organizer logs in; /oauth/authorize takes it (or Key) as login_hint.
	Email string `json:"email"`
}

// firstOrganizerKey is the organizer internal/scenario's webinars belong to, so a Sim with
// one organizer delivers the scenario's bytes unchanged.
const firstOrganizerKey uint64 = 8100000000000000001

// DefaultOrganizers returns n organizers (at least one): organizer k (from 1) has the key
// 8100000000000000000+k and the email organizer<k>@example.com. The first is the scenario's
// own organizer.
func DefaultOrganizers(n int) []Organizer {
	out := make([]Organizer, max(n, 1))
	for i := range out {
		out[i] = Organizer{Key: strconv.FormatUint(firstOrganizerKey+uint64(i), 10), Email: fmt.Sprintf("organizer%d@example.com", i+1)}
	}
	return out
}

// OrganizerScenario is the part of a scenario that belongs to one organizer: their webinars'
// events, with organizerKey and webinarCreatorKey naming them, and those webinars' figures.
type OrganizerScenario struct {
	Organizer Organizer
	Scenario  scenario.Scenario
}

// ShareScenario shares sc's webinars out among orgs, round robin in webinar key order, and
// returns each organizer's part (in orgs' order). Events keep their order within a part. An
// event without a webinarKey goes to the first organizer.
func ShareScenario(sc scenario.Scenario, orgs []Organizer) []OrganizerScenario {
	if len(orgs) == 0 {
		orgs = DefaultOrganizers(1)
	}
	keys := sc.WebinarKeys()
	slices.Sort(keys)
	owner := make(map[string]int, len(keys))
	for i, k := range keys {
		owner[k] = i % len(orgs)
	}
	parts := make([]OrganizerScenario, len(orgs))
	for i, o := range orgs {
		parts[i] = OrganizerScenario{Organizer: o, Scenario: scenario.Scenario{Expected: map[string]scenario.Figures{}, From: sc.From, To: sc.To}}
	}
	for _, body := range sc.Events {
		var ids eventIDs
		_ = ids.decode(body) // a body without keys stays with the first organizer, unchanged
		i := owner[ids.WebinarKey.String()]
		parts[i].Scenario.Events = append(parts[i].Scenario.Events, ids.reassign(body, orgs[i].Key))
	}
	for wk, f := range sc.Expected {
		parts[owner[wk]].Scenario.Expected[wk] = f
	}
	return parts
}

// eventIDs are the keys of an event that say whose it is.
type eventIDs struct {
	EventName         string      `json:"eventName"`
	WebinarKey        json.Number `json:"webinarKey"`
	OrganizerKey      json.Number `json:"organizerKey"`
	WebinarCreatorKey json.Number `json:"webinarCreatorKey"`
}

func (e *eventIDs) decode(body []byte) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber() // 19-digit keys: never through float64
	return d.Decode(e)
}

// organizer is the organizer an event belongs to: its organizerKey (webinar events) or
// webinarCreatorKey (registrant events).
func (e eventIDs) organizer() string {
	if e.OrganizerKey != "" {
		return e.OrganizerKey.String()
	}
	return e.WebinarCreatorKey.String()
}

// reassign returns body with its organizerKey and webinarCreatorKey set to key. The fields
// are bare integers (scenario's encoding), replaced as bytes so nothing else changes.
func (e eventIDs) reassign(body []byte, key string) []byte {
	for field, old := range map[string]json.Number{"organizerKey": e.OrganizerKey, "webinarCreatorKey": e.WebinarCreatorKey} {
		if old == "" || old.String() == key {
			continue
		}
		body = bytes.Replace(body, []byte(`"`+field+`":`+old.String()), []byte(`"`+field+`":`+key), 1)
	}
	return body
}
