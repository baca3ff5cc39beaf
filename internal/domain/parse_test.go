package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sample reads testdata/<name>.json.
func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// edit decodes a sample (numbers kept exact), applies fn and re-encodes it.
func edit(t testing.TB, name string, fn func(m map[string]any)) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(sample(t, name)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func set(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
func del(k string) func(map[string]any)        { return func(m map[string]any) { delete(m, k) } }

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func ptr[T any](v T) *T { return &v }

func TestParseSamples(t *testing.T) {
	tests := []struct {
		file string
		want Event
	}{
		{"registrant_added", &RegistrantAdded{
			Meta: Envelope{EventName: EventRegistrantAdded, EventVersion: "1.0.0", Product: "g2w",
				EventKey: "5f0d3b0e-8c4a-4a58-9d7e-0c2f4b1e6a11", Timestamp: ptr(ts("2024-03-05T14:22:31.517Z"))},
			WebinarKey: "9100000000000000001", RegistrantKey: "9223372036854775807", WebinarCreatorKey: "3241236151789206543",
			FirstName: "Ada", LastName: "Lovelace", Email: "ada.lovelace@example.com", Phone: "+44 20 7946 0958",
			Organization: "Analytical Engines Ltd", JobTitle: "Head of Research", Industry: "Computer Software",
			Comments: "Looking forward to the Q&A on reporting.", RegistrationDate: ptr(ts("2024-03-05T14:22:30Z")),
			Status: "APPROVED", WebinarTitle: "Quarterly Product Update: What's New in Q2", ExperienceType: "CLASSIC",
			RecurrenceType: "single_session", RegistrationSource: "linkedin",
			JoinURL: "https://global.gotowebinar.com/join/9100000000000000001/102938475",
			Responses: []Response{
				{Question: "How did you hear about us?", Answer: "Newsletter"},
				{Question: "What do you want to learn?", Answer: "Attendance reporting and attribution"},
			},
		}},
		{"registrant_joined", &RegistrantJoined{
			Meta: Envelope{EventName: EventRegistrantJoined, EventVersion: "1.0.0", Product: "g2w",
				EventKey: "0b6a4c52-2f8e-4d7b-b1a3-6f3e9d2c7a40", Timestamp: ptr(ts("2024-04-10T15:01:07.204Z"))},
			WebinarKey: "9100000000000000001", SessionKey: "28510147", RegistrantKey: "9223372036854775807",
			WebinarCreatorKey: "3241236151789206543", WebinarTitle: "Quarterly Product Update: What's New in Q2",
			ExperienceType: "CLASSIC", RecurrenceType: "single_session", FirstName: "Ada", LastName: "Lovelace",
			Email: "ada.lovelace@example.com", JoinTime: ptr(ts("2024-04-10T15:01:06.981Z")),
		}},
		{"webinar_created", &WebinarCreated{
			Meta: Envelope{EventName: EventWebinarCreated, EventVersion: "1.0.0", Product: "g2w",
				EventKey: "c3e1f9a2-7b44-4e0c-8a5d-91d2b6f0e3c7", Timestamp: ptr(ts("2024-03-01T09:15:42.880Z"))},
			AccountKey: "7104623381215871234", OrganizerKey: "3241236151789206543", WebinarKey: "9100000000000000001",
			RecurrenceKey: "1234567890123456789", WebinarTitle: "Quarterly Product Update: What's New in Q2",
			Description:    "A 45-minute tour of the quarter's releases, followed by live Q&A.",
			ExperienceType: "CLASSIC", RecurrenceType: "series", WebinarCreationDate: ptr(ts("2024-03-01T09:15:41Z")),
			Status: "NEW", TimeZone: "Europe/London",
			Times: []TimeRange{
				{Start: ts("2024-04-10T15:00:00Z"), End: ts("2024-04-10T15:45:00Z")},
				{Start: ts("2024-04-17T15:00:00Z"), End: ts("2024-04-17T15:45:00Z")},
			},
		}},
		{"webinar_changed", &WebinarChanged{
			Meta: Envelope{EventName: EventWebinarChanged, EventVersion: "1.0.0", Product: "g2w",
				EventKey: "e8b7d6c5-4a3b-4c2d-9e1f-0a9b8c7d6e5f", Timestamp: ptr(ts("2024-03-20T11:48:03.051Z"))},
			AccountKey: "7104623381215871234", OrganizerKey: "3241236151789206543", WebinarKey: "9100000000000000001",
			WebinarTitle:   "Quarterly Product Update: What's New in Q2 (rescheduled)",
			Description:    "A 45-minute tour of the quarter's releases, followed by live Q&A.",
			ExperienceType: "CLASSIC", RecurrenceType: "series", Status: "UPDATED", TimeZone: "Europe/London",
			Times: []TimeRange{{Start: ts("2024-04-11T15:00:00Z"), End: ts("2024-04-11T15:45:00Z")}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := Parse(sample(t, tt.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse =\n%+v\nwant\n%+v", got, tt.want)
			}
			if got.Envelope() != tt.want.Envelope() && !reflect.DeepEqual(got.Envelope(), tt.want.Envelope()) {
				t.Fatalf("Envelope() = %+v", got.Envelope())
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name  string
		body  []byte
		check func(t *testing.T, e Event)
	}{
		{"string keys", edit(t, "registrant_added", func(m map[string]any) {
			m["webinarKey"], m["registrantKey"] = "9100000000000000001", "abc-not-numeric"
		}), func(t *testing.T, e Event) {
			r := e.(*RegistrantAdded)
			if r.WebinarKey != "9100000000000000001" || r.RegistrantKey != "abc-not-numeric" {
				t.Errorf("keys = %q, %q", r.WebinarKey, r.RegistrantKey)
			}
		}},
		{"max int64 and above-2^53 keys exact", []byte(`{"eventName":"registrant.joined","eventVersion":"1.0.0","product":"g2w","eventKey":"k",` +
			`"webinarKey":9223372036854775807,"sessionKey":9100000000000000001,"registrantKey":9999999999999999999}`),
			func(t *testing.T, e Event) {
				r := e.(*RegistrantJoined)
				if r.WebinarKey != "9223372036854775807" || r.SessionKey != "9100000000000000001" || r.RegistrantKey != "9999999999999999999" {
					t.Errorf("keys = %q, %q, %q", r.WebinarKey, r.SessionKey, r.RegistrantKey)
				}
			}},
		{"key zero", []byte(`{"eventName":"webinar.created","eventVersion":"1.0.0","product":"g2w","eventKey":"k","webinarKey":0}`),
			func(t *testing.T, e Event) {
				if k := e.(*WebinarCreated).WebinarKey; k != "0" {
					t.Errorf("WebinarKey = %q", k)
				}
			}},
		{"version 1", edit(t, "webinar_created", set("eventVersion", "1")), nil},
		{"version 1.0", edit(t, "webinar_created", set("eventVersion", "1.0")), nil},
		{"version 1.2.3", edit(t, "webinar_created", set("eventVersion", "1.2.3")), nil},
		{"minimal registrant.added", []byte(`{"eventName":"registrant.added","eventVersion":"1.0.0","product":"g2w","eventKey":"k","webinarKey":"1","registrantKey":"2","email":"a@example.com"}`),
			func(t *testing.T, e Event) {
				r := e.(*RegistrantAdded)
				if r.Meta.Timestamp != nil || r.RegistrationDate != nil || r.Responses != nil {
					t.Errorf("absent optionals not zero: %+v", r)
				}
			}},
		{"minimal registrant.joined has nil JoinTime", []byte(`{"eventName":"registrant.joined","eventVersion":"1.0.0","product":"g2w","eventKey":"k","webinarKey":1,"sessionKey":2,"registrantKey":3}`),
			func(t *testing.T, e Event) {
				if e.(*RegistrantJoined).JoinTime != nil {
					t.Error("JoinTime not nil")
				}
			}},
		{"webinar deleted", edit(t, "webinar_changed", set("status", "DELETED")), func(t *testing.T, e Event) {
			if s := e.(*WebinarChanged).Status; s != "DELETED" {
				t.Errorf("Status = %q", s)
			}
		}},
		{"timestamp with offset is normalised to UTC", edit(t, "webinar_changed", set("timestamp", "2024-03-20T13:48:03.051+02:00")), func(t *testing.T, e Event) {
			if got := *e.Envelope().Timestamp; !got.Equal(ts("2024-03-20T11:48:03.051Z")) || got.Location() != time.UTC {
				t.Errorf("Timestamp = %v", got)
			}
		}},
		{"escapes decoded", edit(t, "registrant_added", set("firstName", "A\u00efda \"Q\" \\ \U0001F600 </>")), func(t *testing.T, e Event) {
			if got := e.(*RegistrantAdded).FirstName; got != "A\u00efda \"Q\" \\ \U0001F600 </>" {
				t.Errorf("FirstName = %q", got)
			}
		}},
		{"surrogate pair escape", []byte(`{"eventName":"webinar.changed","eventVersion":"1.0.0","product":"g2w","eventKey":"k","webinarKey":"1","webinarTitle":"\ud83d\ude00 \/"}`), func(t *testing.T, e Event) {
			if got := e.(*WebinarChanged).WebinarTitle; got != "\U0001F600 /" {
				t.Errorf("WebinarTitle = %q", got)
			}
		}},
		{"unknown extra members are ignored", edit(t, "registrant_joined", set("attendeeCountry", "NZ")), nil},
		{"nesting at the limit", nested(MaxDepth), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse(tt.body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}
}

// nested returns a valid webinar.created whose extra member "x" makes the
// document exactly depth levels deep.
func nested(depth int) []byte {
	return []byte(`{"eventName":"webinar.created","eventVersion":"1.0.0","product":"g2w","eventKey":"k","webinarKey":"1","x":` +
		strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`)
}

// secret marks values that must never appear in an error detail.
const secret = "SECRETVALUE"

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name   string
		body   []byte
		reason string
		detail string // substring expected in Detail; "" skips the check
	}{
		// registrant.added
		{"added: missing registrantKey", edit(t, "registrant_added", del("registrantKey")), ReasonSchema, "/registrantKey: missing required property"},
		{"added: missing email", edit(t, "registrant_added", del("email")), ReasonSchema, "/email: missing required property"},
		{"added: missing eventKey", edit(t, "registrant_added", del("eventKey")), ReasonSchema, "/eventKey: missing required property"},
		{"added: firstName wrong type", edit(t, "registrant_added", set("firstName", 12345)), ReasonSchema, "/firstName: must be string"},
		{"added: bad email", edit(t, "registrant_added", set("email", secret+"-no-at-sign")), ReasonSchema, "/email: not a valid email"},
		{"added: bad joinUrl", edit(t, "registrant_added", set("joinUrl", secret+" not a uri")), ReasonSchema, "/joinUrl: not a valid uri"},
		{"added: bad registrationDate", edit(t, "registrant_added", set("registrationDate", "2024-13-05 "+secret)), ReasonSchema, "/registrationDate: not a valid date-time"},
		{"added: bad timestamp", edit(t, "registrant_added", set("timestamp", "yesterday")), ReasonSchema, "/timestamp: not a valid date-time"},
		{"added: responses not array", edit(t, "registrant_added", set("responses", secret)), ReasonSchema, "/responses: must be array"},
		{"added: answer wrong type", edit(t, "registrant_added", set("responses", []any{map[string]any{"question": "q", "answer": 7}})), ReasonSchema, "/responses/0/answer: must be string"},
		{"added: product", edit(t, "registrant_added", set("product", "g2m")), ReasonSchema, "/product: not one of the allowed values"},
		{"added: 20-digit key", edit(t, "registrant_added", set("registrantKey", json.Number("92233720368547758070"))), ReasonInvalidKey, "/registrantKey: numeric key has more than 19 digits"},
		{"added: float key", edit(t, "registrant_added", set("webinarKey", json.Number("9100000000000000001.5"))), ReasonInvalidKey, "/webinarKey: numeric key must be a non-negative integer"},
		{"added: exponent key", edit(t, "registrant_added", set("webinarKey", json.Number("9.1e18"))), ReasonInvalidKey, "/webinarKey"},
		{"added: integral float key", edit(t, "registrant_added", set("webinarKey", json.Number("1.0"))), ReasonInvalidKey, "/webinarKey"},
		{"added: negative key", edit(t, "registrant_added", set("webinarCreatorKey", json.Number("-1"))), ReasonInvalidKey, "/webinarCreatorKey"},
		{"added: boolean key", edit(t, "registrant_added", set("registrantKey", true)), ReasonSchema, "/registrantKey: must be string"},
		{"added: null key", edit(t, "registrant_added", set("registrantKey", nil)), ReasonSchema, "/registrantKey: must be string"},
		{"added: several errors", edit(t, "registrant_added", func(m map[string]any) { delete(m, "email"); m["phone"] = 1 }), ReasonSchema, "/email: missing required property (and 1 more)"},

		// registrant.joined
		{"joined: missing sessionKey", edit(t, "registrant_joined", del("sessionKey")), ReasonSchema, "/sessionKey: missing required property"},
		{"joined: joinTime string", edit(t, "registrant_joined", set("joinTime", "1712761266981")), ReasonSchema, "/joinTime: must be integer"},
		{"joined: joinTime fraction", edit(t, "registrant_joined", set("joinTime", json.Number("1712761266981.5"))), ReasonSchema, "/joinTime: must be integer"},
		{"joined: joinTime exponent", edit(t, "registrant_joined", set("joinTime", json.Number("1.712761266981e12"))), ReasonSchema, "/joinTime: must be epoch milliseconds"},
		{"joined: joinTime huge", edit(t, "registrant_joined", set("joinTime", json.Number("99999999999999999999"))), ReasonSchema, "/joinTime: must be epoch milliseconds"},
		{"joined: joinTime negative", edit(t, "registrant_joined", set("joinTime", json.Number("-1"))), ReasonSchema, "/joinTime"},
		{"joined: bad email", edit(t, "registrant_joined", set("email", secret)), ReasonSchema, "/email: not a valid email"},
		{"joined: float sessionKey", edit(t, "registrant_joined", set("sessionKey", json.Number("28510147.0"))), ReasonInvalidKey, "/sessionKey"},

		// webinar.created
		{"created: missing webinarKey", edit(t, "webinar_created", del("webinarKey")), ReasonSchema, "/webinarKey: missing required property"},
		{"created: status UPDATED", edit(t, "webinar_created", set("status", "UPDATED")), ReasonSchema, "/status: not one of the allowed values"},
		{"created: times not array", edit(t, "webinar_created", set("times", map[string]any{})), ReasonSchema, "/times: must be array"},
		{"created: bad startTime", edit(t, "webinar_created", set("times", []any{map[string]any{"startTime": "2024-04-10 15:00", "endTime": "2024-04-10T15:45:00Z"}})), ReasonSchema, "/times/0/startTime: not a valid date-time"},
		{"created: leap second", edit(t, "webinar_created", set("webinarCreationDate", "2016-12-31T23:59:60Z")), ReasonSchema, "/webinarCreationDate"},
		{"created: 20-digit recurrenceKey", edit(t, "webinar_created", set("recurrenceKey", json.Number("12345678901234567890"))), ReasonInvalidKey, "/recurrenceKey"},
		{"created: eventKey number", edit(t, "webinar_created", set("eventKey", 5)), ReasonSchema, "/eventKey: must be string"},

		// webinar.changed
		{"changed: missing webinarKey", edit(t, "webinar_changed", del("webinarKey")), ReasonSchema, "/webinarKey: missing required property"},
		{"changed: status NEW", edit(t, "webinar_changed", set("status", "NEW")), ReasonSchema, "/status: not one of the allowed values"},
		{"changed: bad endTime", edit(t, "webinar_changed", set("times", []any{map[string]any{"endTime": secret}})), ReasonSchema, "/times/0/endTime: not a valid date-time"},
		{"changed: float accountKey", edit(t, "webinar_changed", set("accountKey", json.Number("1e3"))), ReasonInvalidKey, "/accountKey"},

		// event name and version
		{"unknown event", edit(t, "registrant_added", set("eventName", "survey.submitted")), ReasonUnknownEvent, "/eventName"},
		{"missing eventName", edit(t, "registrant_added", del("eventName")), ReasonSchema, "/eventName: missing required property"},
		{"eventName not string", edit(t, "registrant_added", set("eventName", 1)), ReasonSchema, "/eventName: must be string"},
		{"version 2.0.0", edit(t, "registrant_added", set("eventVersion", "2.0.0")), ReasonUnsupportedVersion, "/eventVersion"},
		{"version 2 beats schema errors", edit(t, "registrant_added", func(m map[string]any) { m["eventVersion"] = "2"; delete(m, "email") }), ReasonUnsupportedVersion, ""},
		{"version 1.0.0-beta", edit(t, "registrant_added", set("eventVersion", "1.0.0-beta")), ReasonUnsupportedVersion, ""},
		{"version 1.0.0.0", edit(t, "registrant_added", set("eventVersion", "1.0.0.0")), ReasonUnsupportedVersion, ""},
		{"version 10", edit(t, "registrant_added", set("eventVersion", "10")), ReasonUnsupportedVersion, ""},
		{"version 1.", edit(t, "registrant_added", set("eventVersion", "1.")), ReasonUnsupportedVersion, ""},
		{"version empty", edit(t, "registrant_added", set("eventVersion", "")), ReasonUnsupportedVersion, ""},
		{"version number", edit(t, "registrant_added", set("eventVersion", 1)), ReasonSchema, "/eventVersion: must be string"},
		{"version missing", edit(t, "registrant_added", del("eventVersion")), ReasonSchema, "/eventVersion: missing required property"},

		// hostile input
		{"invalid UTF-8", []byte("{\"eventName\":\"registrant.added\",\"firstName\":\"\xff\xfe\"}"), ReasonInvalidUTF8, ""},
		{"NUL escape in value", []byte(`{"eventName":"registrant.added","firstName":"a\u0000b"}`), ReasonInvalidUTF8, "/firstName: string contains U+0000"},
		{"NUL escape in name", []byte(`{"a\u0000":1}`), ReasonInvalidUTF8, ""},
		{"lone high surrogate", []byte(`{"eventName":"registrant.added","firstName":"a\ud83d"}`), ReasonInvalidUTF8, "/firstName: string escapes an unpaired UTF-16 surrogate"},
		{"lone low surrogate", []byte(`{"eventName":"registrant.added","firstName":"\ude00x"}`), ReasonInvalidUTF8, "/firstName"},
		{"high surrogate then non-surrogate", []byte(`{"firstName":"\ud83d\u0041"}`), ReasonInvalidUTF8, ""},
		{"bad escape", []byte(`{"firstName":"\x41"}`), ReasonMalformedJSON, ""},
		{"raw control character", []byte("{\"firstName\":\"a\tb\"}"), ReasonMalformedJSON, ""},
		{"leading zero number", []byte(`{"webinarKey":0123}`), ReasonMalformedJSON, ""},
		{"bare minus", []byte(`{"webinarKey":-}`), ReasonMalformedJSON, ""},
		{"bad literal", []byte(`{"x":tru}`), ReasonMalformedJSON, ""},
		{"duplicate top-level key", []byte(`{"eventName":"registrant.added","email":"a@example.com","email":"b@example.com"}`), ReasonDuplicateKey, "/email: member appears more than once"},
		{"duplicate nested key", []byte(`{"responses":[{"question":"q","question":"r"}],"eventName":"registrant.added"}`), ReasonDuplicateKey, "/responses/0/question"},
		{"duplicate via escape", []byte(`{"email":"a@example.com","em\u0061il":"b@example.com"}`), ReasonDuplicateKey, "/email"},
		{"too deep", nested(MaxDepth + 1), ReasonTooDeep, "nesting deeper than 32"},
		{"very deep", []byte(`{"x":` + strings.Repeat("[", 100000)), ReasonTooDeep, ""},
		{"top-level array", []byte(`[{"eventName":"registrant.added"}]`), ReasonMalformedJSON, "top-level value must be an object"},
		{"top-level string", []byte(`"registrant.added"`), ReasonMalformedJSON, "top-level value must be an object"},
		{"top-level null", []byte(`null`), ReasonMalformedJSON, "top-level value must be an object"},
		{"empty body", []byte(``), ReasonMalformedJSON, "unexpected end of input"},
		{"whitespace body", []byte(" \n"), ReasonMalformedJSON, "unexpected end of input"},
		{"truncated", sample(t, "registrant_added")[:100], ReasonMalformedJSON, ""},
		{"trailing object", append(sample(t, "webinar_changed"), []byte(`{}`)...), ReasonMalformedJSON, "unexpected data after the top-level object"},
		{"trailing garbage", append(sample(t, "webinar_changed"), []byte(secret)...), ReasonMalformedJSON, ""},
		{"syntax error", []byte(`{"eventName":` + secret + `}`), ReasonMalformedJSON, "syntax error at byte offset"},
		{"single quotes", []byte(`{'eventName':'x'}`), ReasonMalformedJSON, ""},
		{"trailing comma", []byte(`{"eventName":"x",}`), ReasonMalformedJSON, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse(tt.body)
			if err == nil {
				t.Fatalf("Parse = %+v, want %s error", e, tt.reason)
			}
			if e != nil {
				t.Errorf("Parse returned an event alongside %v", err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T %v is not a *ValidationError", err, err)
			}
			if ve.Reason != tt.reason {
				t.Errorf("Reason = %q (%s), want %q", ve.Reason, ve.Detail, tt.reason)
			}
			if !strings.Contains(ve.Detail, tt.detail) {
				t.Errorf("Detail = %q, want it to contain %q", ve.Detail, tt.detail)
			}
			if strings.Contains(ve.Error(), secret) || strings.Contains(ve.Error(), "example.com") {
				t.Errorf("error echoes a payload value: %q", ve.Error())
			}
		})
	}
}

func TestSchemasCompile(t *testing.T) {
	m := schemas()
	for _, name := range []string{EventRegistrantAdded, EventRegistrantJoined, EventWebinarCreated, EventWebinarChanged} {
		if m[name] == nil {
			t.Errorf("no schema for %s", name)
		}
	}
}

func TestValidationErrorMessage(t *testing.T) {
	err := &ValidationError{Reason: ReasonSchema, Detail: "/email: missing required property"}
	if got, want := err.Error(), "invalid event: schema: /email: missing required property"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func BenchmarkParse(b *testing.B) {
	for _, name := range []string{"registrant_added", "registrant_joined", "webinar_created", "webinar_changed"} {
		body := sample(b, name)
		b.Run(name, func(b *testing.B) {
			if _, err := Parse(body); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := Parse(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
