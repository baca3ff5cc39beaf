package domain

// Reasons a payload is refused. Each is a short, stable machine code: it is a
// Prometheus label and the quarantine reason, so the set must stay small and
// never include payload data.
const (
	// ReasonMalformedJSON: not JSON, trailing data, empty, or a top-level
	// value that is not an object.
	ReasonMalformedJSON = "malformed_json"
	// ReasonInvalidUTF8: the body is not valid UTF-8, or a string holds
	// U+0000, which PostgreSQL text and jsonb refuse; either would fail a
	// later insert and could poison a whole batch.
	ReasonInvalidUTF8 = "invalid_utf8"
	// ReasonDuplicateKey: an object repeats a member name. JSON readers
	// disagree on which copy wins, so different consumers could see
	// different data.
	ReasonDuplicateKey = "duplicate_key"
	// ReasonTooDeep: nesting deeper than MaxDepth.
	ReasonTooDeep = "too_deep"
	// ReasonUnknownEvent: eventName is a string but not one of the four
	// events (for example the third-party-reported survey.submitted).
	ReasonUnknownEvent = "unknown_event"
	// ReasonUnsupportedVersion: eventVersion is a string but not 1.x; the
	// pipeline quarantines it as "not understood yet".
	ReasonUnsupportedVersion = "unsupported_version"
	// ReasonSchema: the payload breaks the event's JSON Schema (including a
	// missing or non-string eventName), or a typed field the schema admits
	// cannot be represented (an unparseable date-time, an out-of-range
	// joinTime).
	ReasonSchema = "schema"
	// ReasonInvalidKey: a key sent as a JSON number is not a non-negative
	// integer of at most 19 digits.
	ReasonInvalidKey = "invalid_key"
)

// ValidationError is the only error Parse returns. Reason is one of the
// Reason* constants. Detail is a short human message naming the field (as a
// JSON pointer) and the rule broken; it never contains payload values,
// because those hold personal data and the message ends up in logs.
type ValidationError struct {
	Reason string
	Detail string
}

// Error implements error.
func (e *ValidationError) Error() string {
	return "invalid event: " + e.Reason + ": " + e.Detail
}

func invalid(reason, detail string) *ValidationError {
	return &ValidationError{Reason: reason, Detail: detail}
}
