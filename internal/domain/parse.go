package domain

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting Parse accepts; the top-level object is
// depth 1. Real payloads reach 3 (responses[] of objects); the bound keeps
// hostile documents from costing stack and schema-walk time.
const MaxDepth = 32

// maxKeyDigits is the longest decimal key GoTo sends (an unsigned 64-bit
// range would need 20; nobody has seen one, so 20 digits is treated as junk).
const maxKeyDigits = 19

// keyFields are the members that live GoTo sends as JSON integers although
// the spec says string. They are all top-level.
var keyFields = [...]string{
	"webinarKey", "registrantKey", "sessionKey", "organizerKey",
	"accountKey", "webinarCreatorKey", "recurrenceKey",
}

// Parse validates a raw webhook body and returns the typed event. Every
// failure is a *ValidationError. The checks run cheapest first:
//
//  1. UTF-8, then one decoding pass that rejects malformed JSON, a
//     non-object top level, duplicate member names, nesting beyond
//     MaxDepth and U+0000 in strings;
//  2. eventName (missing or non-string: schema; unknown: unknown_event);
//  3. eventVersion must be 1.x (unsupported_version), checked before the
//     schema because a future version may legitimately have another shape;
//  4. integer keys become their exact decimal string (invalid_key);
//  5. the event's JSON Schema from the embedded spec (schema);
//  6. conversion to the Go type.
func Parse(raw []byte) (Event, error) {
	ev, verr := parse(raw)
	if verr != nil {
		// Return a nil interface, not a typed nil, so err != nil works.
		return nil, verr
	}
	return ev, nil
}

func parse(raw []byte) (Event, *ValidationError) {
	if !utf8.Valid(raw) {
		return nil, invalid(ReasonInvalidUTF8, "body is not valid UTF-8")
	}
	doc, verr := decodeDocument(raw)
	if verr != nil {
		return nil, verr
	}

	nameV, ok := doc["eventName"]
	if !ok {
		return nil, invalid(ReasonSchema, "/eventName: missing required property")
	}
	name, ok := nameV.(string)
	if !ok {
		return nil, invalid(ReasonSchema, "/eventName: must be string")
	}
	build, ok := builders[name]
	if !ok {
		return nil, invalid(ReasonUnknownEvent, "/eventName: not one of "+EventRegistrantAdded+", "+
			EventRegistrantJoined+", "+EventWebinarCreated+", "+EventWebinarChanged)
	}
	if v, ok := doc["eventVersion"].(string); ok && !isVersion1(v) {
		return nil, invalid(ReasonUnsupportedVersion, "/eventVersion: only major version 1 (1, 1.x, 1.x.y) is understood")
	}
	if verr := normaliseKeys(doc); verr != nil {
		return nil, verr
	}
	if err := schemas()[name].Validate(doc); err != nil {
		return nil, invalid(ReasonSchema, schemaDetail(err))
	}
	return build(fields(doc))
}

// isVersion1 reports whether v is "1", "1.N" or "1.N.N" with decimal N.
// Pre-release and build suffixes are refused: GoTo has only ever sent 1.0.0,
// and anything fancier is a sign the contract moved.
func isVersion1(v string) bool {
	rest, ok := strings.CutPrefix(v, "1")
	if !ok {
		return false
	}
	for parts := 0; rest != ""; parts++ {
		if parts == 2 || rest[0] != '.' {
			return false
		}
		rest = rest[1:]
		n := 0
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 0 {
			return false
		}
		rest = rest[n:]
	}
	return true
}

// normaliseKeys rewrites key members sent as JSON integers to their decimal
// string, exactly as written: the decoder kept them as json.Number text, so
// no float64 is ever involved. Keys of any other type are left for the
// schema to reject.
func normaliseKeys(doc map[string]any) *ValidationError {
	for _, f := range keyFields {
		n, ok := doc[f].(json.Number)
		if !ok {
			continue
		}
		s := string(n)
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return invalid(ReasonInvalidKey, "/"+f+": numeric key must be a non-negative integer without fraction or exponent")
			}
		}
		if len(s) > maxKeyDigits {
			return invalid(ReasonInvalidKey, "/"+f+": numeric key has more than 19 digits")
		}
		doc[f] = s
	}
	return nil
}

// decodeDocument decodes raw into the generic form the schema validator
// takes (map[string]any, []any, string, json.Number, bool, nil) in a single
// pass that also enforces the hostile-input rules. Building the tree here,
// rather than validating and then json.Unmarshal-ing, scans the bytes once
// and sees duplicate members, which Unmarshal hides.
//
// It is a small hand-written scanner because json.Decoder.Token costs about
// three times as much (it allocates per token and per value end), and this
// runs on every request. Escaped strings, the rare case, are handed to
// encoding/json, so unescaping is never re-implemented. FuzzParse checks the
// result against encoding/json.
//
// The body is converted to a string once and every unescaped string and number in
// the tree is a substring of it: one allocation instead of one per member name and
// value. The tree (and an Event built from it) therefore keeps the whole body alive,
// which costs nothing here: the caller holds the body for as long anyway.
func decodeDocument(raw []byte) (map[string]any, *ValidationError) {
	s := scanner{data: raw, text: string(raw)}
	s.path = s.pathBuf[:0]
	s.skipSpace()
	if s.pos >= len(raw) {
		return nil, invalid(ReasonMalformedJSON, "unexpected end of input")
	}
	if raw[s.pos] != '{' {
		return nil, invalid(ReasonMalformedJSON, "top-level value must be an object")
	}
	s.pos++
	doc, verr := s.object(1)
	if verr != nil {
		return nil, verr
	}
	s.skipSpace()
	if s.pos != len(raw) {
		return nil, invalid(ReasonMalformedJSON, "unexpected data after the top-level object")
	}
	return doc, nil
}

type scanner struct {
	data []byte
	text string // data as a string, for substrings
	pos  int
	path []string // member names and indexes of the enclosing values, for error details
	// pathBuf backs path for the nesting real payloads have, so it is not grown.
	pathBuf [4]string
}

// topLevelMembers is the capacity hint for the top-level object: the largest event,
// registrant.added, has about two dozen members. Sizing the map once saves its growth
// steps; nested objects (responses[], times[]) are small and start empty.
const topLevelMembers = 24

func (s *scanner) syntax() *ValidationError {
	if s.pos >= len(s.data) {
		return invalid(ReasonMalformedJSON, "unexpected end of input")
	}
	// The offset locates the problem without echoing payload bytes.
	return invalid(ReasonMalformedJSON, "syntax error at byte offset "+strconv.Itoa(s.pos))
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end.
func (s *scanner) peek() byte {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return 0
	}
	return s.data[s.pos]
}

func (s *scanner) where(last string) string {
	return pointer(append(s.path[:len(s.path):len(s.path)], last))
}

// object reads members up to the closing brace; the opening one is consumed.
func (s *scanner) object(depth int) (map[string]any, *ValidationError) {
	var m map[string]any
	if depth == 1 {
		m = make(map[string]any, topLevelMembers)
	} else {
		m = make(map[string]any)
	}
	if s.peek() == '}' {
		s.pos++
		return m, nil
	}
	for {
		if s.peek() != '"' {
			return nil, s.syntax()
		}
		k, verr := s.string()
		if verr != nil {
			return nil, verr
		}
		if _, dup := m[k]; dup {
			return nil, invalid(ReasonDuplicateKey, s.where(k)+": member appears more than once")
		}
		if s.peek() != ':' {
			return nil, s.syntax()
		}
		s.pos++
		s.path = append(s.path, k)
		v, verr := s.value(depth)
		s.path = s.path[:len(s.path)-1]
		if verr != nil {
			return nil, verr
		}
		m[k] = v
		switch s.peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return m, nil
		default:
			return nil, s.syntax()
		}
	}
}

// array reads elements up to the closing bracket; the opening one is consumed.
func (s *scanner) array(depth int) ([]any, *ValidationError) {
	a := []any{}
	if s.peek() == ']' {
		s.pos++
		return a, nil
	}
	for {
		s.path = append(s.path, strconv.Itoa(len(a)))
		v, verr := s.value(depth)
		s.path = s.path[:len(s.path)-1]
		if verr != nil {
			return nil, verr
		}
		a = append(a, v)
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return a, nil
		default:
			return nil, s.syntax()
		}
	}
}

// value reads one value inside a container at depth.
func (s *scanner) value(depth int) (any, *ValidationError) {
	switch c := s.peek(); {
	case c == '{' || c == '[':
		if depth+1 > MaxDepth {
			return nil, invalid(ReasonTooDeep, pointer(s.path)+": nesting deeper than "+strconv.Itoa(MaxDepth))
		}
		s.pos++
		if c == '{' {
			return s.object(depth + 1)
		}
		return s.array(depth + 1)
	case c == '"':
		return s.string()
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == 't':
		return true, s.literal("true")
	case c == 'f':
		return false, s.literal("false")
	case c == 'n':
		return nil, s.literal("null")
	default:
		return nil, s.syntax()
	}
}

func (s *scanner) literal(lit string) *ValidationError {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(lit)) {
		return s.syntax()
	}
	s.pos += len(lit)
	return nil
}

// number reads a JSON number and keeps its text (json.Number), so keys and
// epoch milliseconds never pass through float64.
func (s *scanner) number() (json.Number, *ValidationError) {
	d, start := s.data, s.pos
	i := start
	digits := func() bool {
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case !digits():
		s.pos = i
		return "", s.syntax()
	}
	if i < len(d) && d[i] == '.' {
		i++
		if !digits() {
			s.pos = i
			return "", s.syntax()
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if !digits() {
			s.pos = i
			return "", s.syntax()
		}
	}
	s.pos = i
	return json.Number(s.text[start:i]), nil
}

// string reads a JSON string; s.pos is at the opening quote. The body is
// already known to be valid UTF-8.
func (s *scanner) string() (string, *ValidationError) {
	d, start := s.data, s.pos
	escaped := false
	i := start + 1
	for ; i < len(d); i++ {
		c := d[i]
		if c == '"' {
			break
		}
		if c < 0x20 {
			s.pos = i
			return "", s.syntax()
		}
		if c == '\\' {
			escaped = true
			i++ // skip the escaped byte; encoding/json validates the escape below
		}
	}
	if i >= len(d) {
		s.pos = len(d)
		return "", s.syntax()
	}
	s.pos = i + 1
	if !escaped {
		return s.text[start+1 : i], nil
	}
	// encoding/json silently turns an unpaired UTF-16 surrogate escape into
	// U+FFFD; PostgreSQL's jsonb refuses it, so refuse it here first.
	if hasLoneSurrogate(d[start+1 : i]) {
		return "", invalid(ReasonInvalidUTF8, pointer(s.path)+": string escapes an unpaired UTF-16 surrogate")
	}
	var str string
	if err := json.Unmarshal(d[start:i+1], &str); err != nil {
		s.pos = start
		return "", s.syntax()
	}
	// PostgreSQL text and jsonb cannot hold U+0000; catching it here keeps
	// one bad delivery from failing a later batch insert.
	if strings.IndexByte(str, 0) >= 0 {
		return "", invalid(ReasonInvalidUTF8, pointer(s.path)+": string contains U+0000")
	}
	return str, nil
}

// hasLoneSurrogate reports whether the escaped string body b contains a
// \uD800-\uDBFF escape not followed by a \uDC00-\uDFFF one, or a low
// surrogate escape without a preceding high one. Malformed escapes are left
// for encoding/json to reject.
func hasLoneSurrogate(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if i+1 < len(b) && b[i+1] != 'u' {
			i++ // a two-byte escape such as \\ or \"
			continue
		}
		r, ok := hex4(b, i+2)
		if !ok {
			return false
		}
		i += 5
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		case r >= 0xD800 && r <= 0xDBFF:
			lo, ok := hex4(b, i+3)
			if i+2 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' || !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 6
		}
	}
	return false
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// fields reads members of a validated document. The schema has already
// checked types, so a failed assertion can only mean "absent" and yields
// the zero value.
type fields map[string]any

func (f fields) str(name string) string { s, _ := f[name].(string); return s }
func (f fields) key(name string) Key    { return Key(f.str(name)) }

func (f fields) envelope() (Envelope, *ValidationError) {
	ts, verr := f.timePtr("timestamp")
	return Envelope{
		EventName:    f.str("eventName"),
		EventVersion: f.str("eventVersion"),
		Product:      f.str("product"),
		EventKey:     f.str("eventKey"),
		Timestamp:    ts,
	}, verr
}

// timePtr parses an optional date-time member. The schema's date-time format
// is RFC 3339, which admits a few forms Go's parser does not (a leap second
// :60, lower-case t/z); those are refused here rather than stored wrong.
func (f fields) timePtr(name string) (*time.Time, *ValidationError) {
	s, ok := f[name].(string)
	if !ok {
		return nil, nil
	}
	t, verr := parseTime(s, "/"+name)
	if verr != nil {
		return nil, verr
	}
	return &t, nil
}

func parseTime(s, ptr string) (time.Time, *ValidationError) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, invalid(ReasonSchema, ptr+": date-time not representable")
	}
	return t.UTC(), nil
}

// maxEpochMillis is 9999-12-31T23:59:59.999Z: the end of RFC 3339's range
// and well inside PostgreSQL's timestamptz.
const maxEpochMillis = 253402300799999

func (f fields) epochMillis(name string) (*time.Time, *ValidationError) {
	n, ok := f[name].(json.Number)
	if !ok {
		return nil, nil
	}
	// The schema's "integer" admits 1.0 and 1e3; only plain digits are
	// milliseconds as GoTo sends them.
	ms, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || ms < 0 || ms > maxEpochMillis {
		return nil, invalid(ReasonSchema, "/"+name+": must be epoch milliseconds between 1970 and 9999 as a plain integer")
	}
	t := time.UnixMilli(ms).UTC()
	return &t, nil
}

func (f fields) responses() []Response {
	items, _ := f["responses"].([]any)
	if items == nil {
		return nil
	}
	out := make([]Response, 0, len(items))
	for _, it := range items {
		r := fields(asObject(it))
		out = append(out, Response{Question: r.str("question"), Answer: r.str("answer")})
	}
	return out
}

func (f fields) times() ([]TimeRange, *ValidationError) {
	items, _ := f["times"].([]any)
	if items == nil {
		return nil, nil
	}
	out := make([]TimeRange, 0, len(items))
	for i, it := range items {
		r := fields(asObject(it))
		var tr TimeRange
		var verr *ValidationError
		if s, ok := r["startTime"].(string); ok {
			if tr.Start, verr = parseTime(s, "/times/"+strconv.Itoa(i)+"/startTime"); verr != nil {
				return nil, verr
			}
		}
		if s, ok := r["endTime"].(string); ok {
			if tr.End, verr = parseTime(s, "/times/"+strconv.Itoa(i)+"/endTime"); verr != nil {
				return nil, verr
			}
		}
		out = append(out, tr)
	}
	return out, nil
}

func asObject(v any) map[string]any { m, _ := v.(map[string]any); return m }

// builders maps an eventName to the conversion from a validated document.
var builders = map[string]func(fields) (Event, *ValidationError){
	EventRegistrantAdded:  buildRegistrantAdded,
	EventRegistrantJoined: buildRegistrantJoined,
	EventWebinarCreated:   buildWebinarCreated,
	EventWebinarChanged:   buildWebinarChanged,
}

func buildRegistrantAdded(f fields) (Event, *ValidationError) {
	env, verr := f.envelope()
	if verr != nil {
		return nil, verr
	}
	reg, verr := f.timePtr("registrationDate")
	if verr != nil {
		return nil, verr
	}
	return &RegistrantAdded{
		Meta:               env,
		WebinarKey:         f.key("webinarKey"),
		RegistrantKey:      f.key("registrantKey"),
		WebinarCreatorKey:  f.key("webinarCreatorKey"),
		FirstName:          f.str("firstName"),
		LastName:           f.str("lastName"),
		Email:              f.str("email"),
		Phone:              f.str("phone"),
		Organization:       f.str("organization"),
		JobTitle:           f.str("jobTitle"),
		Industry:           f.str("industry"),
		Comments:           f.str("comments"),
		RegistrationDate:   reg,
		Status:             f.str("status"),
		WebinarTitle:       f.str("webinarTitle"),
		ExperienceType:     f.str("experienceType"),
		RecurrenceType:     f.str("recurrenceType"),
		RegistrationSource: f.str("registrationSource"),
		JoinURL:            f.str("joinUrl"),
		Responses:          f.responses(),
	}, nil
}

func buildRegistrantJoined(f fields) (Event, *ValidationError) {
	env, verr := f.envelope()
	if verr != nil {
		return nil, verr
	}
	join, verr := f.epochMillis("joinTime")
	if verr != nil {
		return nil, verr
	}
	return &RegistrantJoined{
		Meta:              env,
		WebinarKey:        f.key("webinarKey"),
		SessionKey:        f.key("sessionKey"),
		RegistrantKey:     f.key("registrantKey"),
		WebinarCreatorKey: f.key("webinarCreatorKey"),
		FirstName:         f.str("firstName"),
		LastName:          f.str("lastName"),
		Email:             f.str("email"),
		WebinarTitle:      f.str("webinarTitle"),
		ExperienceType:    f.str("experienceType"),
		RecurrenceType:    f.str("recurrenceType"),
		JoinTime:          join,
	}, nil
}

func buildWebinarCreated(f fields) (Event, *ValidationError) {
	env, verr := f.envelope()
	if verr != nil {
		return nil, verr
	}
	created, verr := f.timePtr("webinarCreationDate")
	if verr != nil {
		return nil, verr
	}
	times, verr := f.times()
	if verr != nil {
		return nil, verr
	}
	return &WebinarCreated{
		Meta:                env,
		AccountKey:          f.key("accountKey"),
		OrganizerKey:        f.key("organizerKey"),
		WebinarKey:          f.key("webinarKey"),
		RecurrenceKey:       f.key("recurrenceKey"),
		WebinarTitle:        f.str("webinarTitle"),
		Description:         f.str("description"),
		ExperienceType:      f.str("experienceType"),
		RecurrenceType:      f.str("recurrenceType"),
		WebinarCreationDate: created,
		Status:              f.str("status"),
		Times:               times,
		TimeZone:            f.str("timeZone"),
	}, nil
}

func buildWebinarChanged(f fields) (Event, *ValidationError) {
	env, verr := f.envelope()
	if verr != nil {
		return nil, verr
	}
	times, verr := f.times()
	if verr != nil {
		return nil, verr
	}
	return &WebinarChanged{
		Meta:           env,
		AccountKey:     f.key("accountKey"),
		OrganizerKey:   f.key("organizerKey"),
		WebinarKey:     f.key("webinarKey"),
		RecurrenceKey:  f.key("recurrenceKey"),
		WebinarTitle:   f.str("webinarTitle"),
		Description:    f.str("description"),
		ExperienceType: f.str("experienceType"),
		RecurrenceType: f.str("recurrenceType"),
		Status:         f.str("status"),
		Times:          times,
		TimeZone:       f.str("timeZone"),
	}, nil
}
