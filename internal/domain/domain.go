// Package domain holds Turnout's model of the four GoToWebinar webhook
// events (registrant.added, registrant.joined, webinar.created,
// webinar.changed): the acceptance rule (Accept: may an authentic body enter
// the event log, what are its canonical keys, and what are its data-quality
// findings), their Go types, and Parse, which reads a body against the spec's
// full contract into one of them or a *ValidationError.
//
// Ingest uses Accept: it refuses only what cannot be keyed, and records
// everything else the spec would object to as Findings. Parse stays the strict
// reading, for tools and tests that want a fully conformant event.
//
// The contract is GoTo's AsyncAPI document, embedded from spec/ and compiled
// into one JSON Schema per event, so the schema, not hand-written code, decides
// what a valid payload is. Parse adds only what the schema cannot express:
// hostile-input checks (UTF-8, duplicate keys, nesting depth), the live
// service's integer keys, and the event version gate.
//
// The package does no I/O and imports no infrastructure; adapters (ingest,
// projections) depend on it, never the other way round.
package domain

import "time"

// Event names as they appear in the eventName field and the spec's channels.
const (
	EventRegistrantAdded  = "registrant.added"
	EventRegistrantJoined = "registrant.joined"
	EventWebinarCreated   = "webinar.created"
	EventWebinarChanged   = "webinar.changed"
)

// Key is a GoTo entity key (webinarKey, registrantKey, …) in its exact
// decimal form. Live GoTo sends keys as JSON integers of up to 19 digits, the
// spec says strings; Parse accepts both and always yields the digits as
// written, because a float64 round trip (what JavaScript integrations do)
// silently corrupts keys above 2^53. An absent optional key is "".
type Key string

// Envelope is the part every event shares. EventKey is unique per event and
// is what the pipeline de-duplicates on.
type Envelope struct {
	EventName    string
	EventVersion string
	Product      string
	EventKey     string
	// Timestamp is when GoTo emitted the event, in UTC; nil when absent
	// (the spec does not require it).
	Timestamp *time.Time
}

// Event is one parsed webhook event. It is implemented by *RegistrantAdded,
// *RegistrantJoined, *WebinarCreated and *WebinarChanged; switch on the
// concrete type to reach the event's fields.
type Event interface {
	// Envelope returns the fields common to every event.
	Envelope() Envelope
}

// Response is a registrant's answer to one of the webinar's custom
// registration questions.
type Response struct {
	Question string
	Answer   string
}

// TimeRange is one scheduled session of a webinar. A bound that the payload
// omits is the zero time.
type TimeRange struct {
	Start time.Time
	End   time.Time
}

// RegistrantAdded is a registration for a webinar (registrant.added). Times
// are UTC; optional fields absent from the payload are zero.
type RegistrantAdded struct {
	Meta Envelope

	WebinarKey        Key
	RegistrantKey     Key
	WebinarCreatorKey Key

	FirstName    string
	LastName     string
	Email        string
	Phone        string
	Organization string
	JobTitle     string
	Industry     string
	Comments     string

	RegistrationDate *time.Time
	// Status is APPROVED, WAITING, DENIED or CANCELLED in practice; the spec
	// leaves it open, so it is kept as sent.
	Status         string
	WebinarTitle   string
	ExperienceType string
	RecurrenceType string
	// RegistrationSource is the "share your webinar" source: the attribution field.
	RegistrationSource string
	// JoinURL is only present when the registration is approved.
	JoinURL   string
	Responses []Response
}

// RegistrantJoined is a registrant joining a live session (registrant.joined).
type RegistrantJoined struct {
	Meta Envelope

	WebinarKey        Key
	SessionKey        Key
	RegistrantKey     Key
	WebinarCreatorKey Key

	FirstName      string
	LastName       string
	Email          string
	WebinarTitle   string
	ExperienceType string
	RecurrenceType string
	// JoinTime comes from epoch milliseconds, in UTC; nil when absent.
	JoinTime *time.Time
}

// WebinarCreated is a new webinar (webinar.created). In a series each
// session is its own webinar, tied by RecurrenceKey.
type WebinarCreated struct {
	Meta Envelope

	AccountKey    Key
	OrganizerKey  Key
	WebinarKey    Key
	RecurrenceKey Key

	WebinarTitle        string
	Description         string
	ExperienceType      string
	RecurrenceType      string
	WebinarCreationDate *time.Time
	// Status is NEW (the schema allows nothing else).
	Status string
	Times  []TimeRange
	// TimeZone is an IANA zone name, kept as sent.
	TimeZone string
}

// WebinarChanged is an update to a webinar (webinar.changed). GoTo has no
// delete event: a deletion is Status "DELETED".
type WebinarChanged struct {
	Meta Envelope

	AccountKey   Key
	OrganizerKey Key
	WebinarKey   Key
	// RecurrenceKey is not in the spec for this event; it is captured when
	// the live service sends it, since it is normalised like every key.
	RecurrenceKey Key

	WebinarTitle   string
	Description    string
	ExperienceType string
	RecurrenceType string
	// Status is UPDATED or DELETED.
	Status   string
	Times    []TimeRange
	TimeZone string
}

// Envelope implements Event.
func (e *RegistrantAdded) Envelope() Envelope { return e.Meta }

// Envelope implements Event.
func (e *RegistrantJoined) Envelope() Envelope { return e.Meta }

// Envelope implements Event.
func (e *WebinarCreated) Envelope() Envelope { return e.Meta }

// Envelope implements Event.
func (e *WebinarChanged) Envelope() Envelope { return e.Meta }
