package forwarder

import "testing"

// TestSubject: real event names map as they are; anything NATS would misread in a subject
// token still lands under turnout.events. rather than failing the publish forever.
func TestSubject(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"registrant.added", "turnout.events.registrant.added"},
		{"webinar.changed", "turnout.events.webinar.changed"},
		{"", "turnout.events._"},
		{"a*b", "turnout.events.a_b"},
		{"a>", "turnout.events.a_"},
		{"with space", "turnout.events.with_space"},
		{"a..b", "turnout.events.a._.b"},
		{".lead.trail.", "turnout.events.lead.trail"},
		{"...", "turnout.events._._"},
		{"a...b", "turnout.events.a._._.b"},
	} {
		if got := Subject(tc.name); got != tc.want {
			t.Errorf("Subject(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
