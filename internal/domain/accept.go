package domain

import (
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// MaxEventKeyBytes bounds an eventKey (GoTo's are 36-character UUIDs). The key is the
// primary key of the dedup table, and a B-tree entry over about 2.7 kB makes the INSERT
// fail; since deliveries share a batch transaction, one delivery with a huge key would
// otherwise fail every delivery committed with it, and itself forever on each retry.
const MaxEventKeyBytes = 256

// Refusal reasons of Accept beyond the hostile-input ones (ReasonMalformedJSON,
// ReasonInvalidUTF8, ReasonDuplicateKey, ReasonTooDeep) it shares with Parse.
const (
	// ReasonMissingEventKey: eventKey is absent, not a string, or empty. Without it a
	// delivery cannot be de-duplicated, so it cannot enter the log.
	ReasonMissingEventKey = "missing_event_key"
	// ReasonEventKeyTooLong: eventKey is longer than MaxEventKeyBytes.
	ReasonEventKeyTooLong = "event_key_too_long"
	// ReasonMissingEventName: eventName is absent or not a string.
	ReasonMissingEventName = "missing_event_name"
	// ReasonMissingKey: a known event lacks a key its projections need (webinarKey;
	// registrantKey for registrant events; sessionKey for registrant.joined), or it is null.
	ReasonMissingKey = "missing_key"
)

// Accept also refuses with ReasonInvalidKey (shared with Parse) a key the projections
// need that is not an exact decimal integer of at most 19 digits.

// Data-quality problems, the values of Finding.Problem. They never refuse a delivery:
// the event is stored raw and the problem is recorded beside it.
const (
	// ProblemFormat: a string that breaks its declared format (email, uri, date-time),
	// or a joinTime that is not a plain integer.
	ProblemFormat = "format"
	// ProblemEmpty: an empty string in a field with a declared format or a key field.
	ProblemEmpty = "empty"
	// ProblemNull: null where the spec declares a value.
	ProblemNull = "null"
	// ProblemType: another JSON type than the spec declares (an array answer, a number
	// title), or an optional key that is not an exact decimal integer.
	ProblemType = "type"
	// ProblemMissing: a member the spec requires (other than the keys) is absent.
	ProblemMissing = "missing"
	// ProblemValue: a value outside the spec's enumeration (product, status).
	ProblemValue = "value"
	// ProblemUnparseable: a date-time that passes the format but cannot be read as a time
	// (a leap second, lower-case separators), or one outside the years 1-9999 (year 0 is
	// valid RFC 3339 and refused by PostgreSQL); a joinTime outside 1970-9999.
	ProblemUnparseable = "unparseable"
	// ProblemUnknownField: a top-level member the spec does not list for the event.
	ProblemUnknownField = "unknown_field"
	// ProblemUnknownEvent: eventName is none of the four events the spec defines (for
	// example survey.submitted); the event is stored and projected by nothing yet.
	ProblemUnknownEvent = "unknown_event"
	// ProblemVersion: eventVersion is absent or other than 1.0.0. A major version other
	// than 1 is not checked further, since its shape may differ.
	ProblemVersion = "version"
)

// Finding is one data-quality problem of an accepted payload: where (a JSON pointer into
// the payload) and what. It never holds payload values.
type Finding struct {
	Field   string `json:"field"`
	Problem string `json:"problem"`
}

// Keys are the canonical decimal texts of the key members of an accepted event: digits
// without leading zeros, whether the payload sent a bare JSON integer or a string. A key
// that is absent, or not an exact decimal integer, is "".
type Keys struct {
	WebinarKey        Key
	RegistrantKey     Key
	SessionKey        Key
	OrganizerKey      Key
	AccountKey        Key
	WebinarCreatorKey Key
	RecurrenceKey     Key
}

// Accepted is what Accept learned about a payload it accepts into the log.
type Accepted struct {
	EventName    string
	EventKey     string
	EventVersion string // "" when absent or not a string
	Keys         Keys
	// Findings are the payload's data-quality problems, sorted by field then problem;
	// nil when there are none.
	Findings []Finding
}

// Known reports whether EventName is one of the four events of the spec.
func (a Accepted) Known() bool { _, ok := builders[a.EventName]; return ok }

// requiredKeys are the keys the projections need, per known event.
var requiredKeys = map[string][]string{
	EventRegistrantAdded:  {"webinarKey", "registrantKey"},
	EventRegistrantJoined: {"webinarKey", "registrantKey", "sessionKey"},
	EventWebinarCreated:   {"webinarKey"},
	EventWebinarChanged:   {"webinarKey"},
}

// Accept is ingest's acceptance rule: it decides whether an authentic payload can enter
// the event log, and describes its data quality. It keeps everything that can be keyed:
// a JSON object with a non-empty string eventKey and a string eventName and, for the
// four known events, the keys the projections need as exact decimal integers (a bare
// JSON integer or a string of digits, up to 19 digits). Everything else (format
// failures, nulls, unexpected types in other fields, unknown fields, unknown events,
// other versions) is accepted and reported as Findings.
//
// Only these are refused, with a *ValidationError: not UTF-8 or not JSON PostgreSQL can
// store and read back (ReasonInvalidUTF8, ReasonMalformedJSON, ReasonDuplicateKey,
// ReasonTooDeep), not an object, ReasonMissingEventKey, ReasonEventKeyTooLong,
// ReasonMissingEventName, ReasonMissingKey and ReasonInvalidKey.
//
// Whatever Parse (the spec's full contract) accepts, Accept accepts, with the same keys.
func Accept(raw []byte) (Accepted, error) {
	a, verr := accept(raw)
	if verr != nil {
		return Accepted{}, verr
	}
	return a, nil
}

func accept(raw []byte) (Accepted, *ValidationError) { return acceptWith(raw, true) }

// acceptWith is Accept; fast false skips the fast path (fastcheck.go), for the test that
// both paths agree.
func acceptWith(raw []byte, fast bool) (Accepted, *ValidationError) {
	if !utf8.Valid(raw) {
		return Accepted{}, invalid(ReasonInvalidUTF8, "body is not valid UTF-8")
	}
	doc, verr := decodeDocument(raw)
	if verr != nil {
		return Accepted{}, verr
	}
	var a Accepted
	key, _ := doc["eventKey"].(string)
	switch {
	case key == "":
		return Accepted{}, invalid(ReasonMissingEventKey, "/eventKey: must be a non-empty string")
	case len(key) > MaxEventKeyBytes:
		return Accepted{}, invalid(ReasonEventKeyTooLong, "/eventKey: longer than "+strconv.Itoa(MaxEventKeyBytes)+" bytes")
	}
	name, ok := doc["eventName"].(string)
	if !ok {
		return Accepted{}, invalid(ReasonMissingEventName, "/eventName: must be a string")
	}
	a.EventName, a.EventKey = name, key
	a.EventVersion, _ = doc["eventVersion"].(string)

	var f findings
	for _, k := range requiredKeys[name] {
		v, present := doc[k]
		if !present || v == nil {
			return Accepted{}, invalid(ReasonMissingKey, "/"+k+": required for "+name)
		}
		c, ok := canonicalKey(v)
		if !ok {
			return Accepted{}, invalid(ReasonInvalidKey, "/"+k+": must be a decimal integer of at most 19 digits")
		}
		doc[k] = string(c) // the schema declares keys as strings
	}
	// Optional keys: canonical when they are exact integers; anything else is a finding,
	// and is taken out of the document so the schema does not report it twice.
	for _, k := range keyFields {
		v, present := doc[k]
		if !present || v == nil {
			continue // null is reported by the schema, absence is fine
		}
		if s, ok := v.(string); ok && s == "" {
			f.add("/"+k, ProblemEmpty)
			delete(doc, k)
			continue
		}
		c, ok := canonicalKey(v)
		if !ok {
			f.add("/"+k, ProblemType)
			delete(doc, k)
			continue
		}
		doc[k] = string(c)
	}
	a.Keys = Keys{
		WebinarKey: keyOf(doc, "webinarKey"), RegistrantKey: keyOf(doc, "registrantKey"),
		SessionKey: keyOf(doc, "sessionKey"), OrganizerKey: keyOf(doc, "organizerKey"),
		AccountKey: keyOf(doc, "accountKey"), WebinarCreatorKey: keyOf(doc, "webinarCreatorKey"),
		RecurrenceKey: keyOf(doc, "recurrenceKey"),
	}

	if !a.Known() {
		f.add("/eventName", ProblemUnknownEvent)
		a.Findings = f.sorted()
		return a, nil
	}
	if a.EventVersion != "1.0.0" {
		f.add("/eventVersion", ProblemVersion)
		if !isVersion1(a.EventVersion) {
			// Another major version may have another shape: what it breaks of 1.0.0's
			// schema says nothing.
			a.Findings = f.sorted()
			return a, nil
		}
	}
	props := specProperties()[name]
	for m := range doc {
		if _, ok := props[m]; !ok && !envelopeMember(m) {
			f.add(pointer([]string{m}), ProblemUnknownField)
		}
	}
	if !fast || !fastRules()[name].conforms(map[string]any(doc)) {
		if err := schemas()[name].Validate(map[string]any(doc)); err != nil {
			var ve *jsonschema.ValidationError
			if errors.As(err, &ve) {
				f.schema(doc, ve)
			}
		}
	}
	f.times(doc)
	a.Findings = f.sorted()
	return a, nil
}

// envelopeMember reports whether m is one of the members every event carries (GOTO-FACTS:
// timestamp is sent on every event, though the spec declares it for registrant events only).
func envelopeMember(m string) bool {
	switch m {
	case "eventName", "eventVersion", "product", "eventKey", "timestamp":
		return true
	}
	return false
}

// canonicalKey returns the decimal text of a key sent as a bare JSON integer or a
// string of digits, without leading zeros, or false.
func canonicalKey(v any) (Key, bool) {
	var s string
	switch v := v.(type) {
	case json.Number:
		s = string(v)
	case string:
		s = v
	default:
		return "", false
	}
	if s == "" || len(s) > maxKeyDigits {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", false
		}
	}
	if t := strings.TrimLeft(s, "0"); t != "" {
		s = t
	} else {
		s = "0"
	}
	return Key(s), true
}

func keyOf(doc map[string]any, name string) Key { s, _ := doc[name].(string); return Key(s) }

// findings collects Findings without duplicates.
type findings []Finding

func (f *findings) add(field, problem string) {
	for _, x := range *f {
		if x.Field == field && x.Problem == problem {
			return
		}
	}
	*f = append(*f, Finding{Field: field, Problem: problem})
}

func (f findings) has(field string) bool {
	for _, x := range f {
		if x.Field == field {
			return true
		}
	}
	return false
}

func (f findings) sorted() []Finding {
	if len(f) == 0 {
		return nil
	}
	sort.Slice(f, func(i, j int) bool {
		if f[i].Field != f[j].Field {
			return f[i].Field < f[j].Field
		}
		return f[i].Problem < f[j].Problem
	})
	return f
}

// schema turns the validator's leaf errors into findings, looking at the instance
// value only to tell null and empty strings apart from other failures.
func (f *findings) schema(doc map[string]any, ve *jsonschema.ValidationError) {
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			f.schema(doc, c)
		}
		return
	}
	loc := ve.InstanceLocation
	switch k := ve.ErrorKind.(type) {
	case *kind.Required:
		for _, p := range k.Missing {
			f.add(pointer(append(append([]string(nil), loc...), p)), ProblemMissing)
		}
	case *kind.Type:
		if v, _ := lookup(doc, loc); v == nil {
			f.add(pointer(loc), ProblemNull)
		} else {
			f.add(pointer(loc), ProblemType)
		}
	case *kind.Format:
		if v, _ := lookup(doc, loc); v == "" {
			f.add(pointer(loc), ProblemEmpty)
		} else {
			f.add(pointer(loc), ProblemFormat)
		}
	case *kind.Enum, *kind.Const:
		f.add(pointer(loc), ProblemValue)
	default:
		f.add(pointer(loc), ProblemType)
	}
}

// lookup follows an instance location through the decoded document.
func lookup(v any, loc []string) (any, bool) {
	for _, seg := range loc {
		switch c := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = c[seg]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// dateTimeFields are the top-level date-time members of the known events.
var dateTimeFields = [...]string{"timestamp", "registrationDate", "webinarCreationDate"}

// times reports the date-times and joinTime that the schema's format admits but that
// cannot be stored as a PostgreSQL timestamptz the way Parse reads them.
func (f *findings) times(doc map[string]any) {
	check := func(v any, ptr string) {
		s, ok := v.(string)
		if !ok || s == "" {
			return // not a string or empty: the schema reported it
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			// The format check said so already when it failed too; one finding per field.
			if !f.has(ptr) {
				f.add(ptr, ProblemUnparseable)
			}
			return
		}
		if y := t.UTC().Year(); y < 1 || y > 9999 {
			f.add(ptr, ProblemUnparseable)
		}
	}
	for _, name := range dateTimeFields {
		if v, ok := doc[name]; ok {
			check(v, "/"+name)
		}
	}
	if items, ok := doc["times"].([]any); ok {
		for i, it := range items {
			r, _ := it.(map[string]any)
			for _, b := range [...]string{"startTime", "endTime"} {
				if v, ok := r[b]; ok {
					check(v, "/times/"+strconv.Itoa(i)+"/"+b)
				}
			}
		}
	}
	if n, ok := doc["joinTime"].(json.Number); ok && !f.has("/joinTime") {
		ms, err := strconv.ParseInt(string(n), 10, 64)
		switch {
		case err != nil && strings.ContainsAny(string(n), ".eE"):
			f.add("/joinTime", ProblemFormat)
		case err != nil || ms < 0 || ms > maxEpochMillis:
			f.add("/joinTime", ProblemUnparseable)
		}
	}
}

// specProperties lists, per known event, the top-level members its schema declares.
// Like schemas, it reads the embedded spec once; a failure is a build defect.
var specProperties = sync.OnceValue(func() map[string]map[string]struct{} {
	m, err := compileProperties(specYAML)
	if err != nil {
		panic("domain: embedded AsyncAPI spec: " + err.Error())
	}
	return m
})

// MetricLabel is the finding's field with a bounded set of values, for a metric label:
// array indexes become "*", and a top-level member the spec does not declare for any
// event becomes "/(other)", so an unexpected payload cannot mint label values. (Nested
// findings only arise at paths the spec declares: responses and times items.)
func (f Finding) MetricLabel() string {
	segs := strings.Split(strings.TrimPrefix(f.Field, "/"), "/")
	if !declaredAnywhere(segs[0]) || len(segs) > 3 {
		return "/(other)"
	}
	for i, s := range segs {
		if s != "" && strings.Trim(s, "0123456789") == "" {
			segs[i] = "*"
		}
	}
	return "/" + strings.Join(segs, "/")
}

func declaredAnywhere(member string) bool {
	for _, props := range specProperties() {
		if _, ok := props[member]; ok {
			return true
		}
	}
	return false
}

// EventLabel is the event name for a metric label: one of the four known events, or
// "other".
func (a Accepted) EventLabel() string {
	if a.Known() {
		return a.EventName
	}
	return "other"
}
