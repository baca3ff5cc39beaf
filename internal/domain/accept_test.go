package domain

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// withMembers returns the sample payload testdata/name.json with members set (a nil value
// deletes the member; json.RawMessage values are inserted verbatim).
func withMembers(t testing.TB, name string, set map[string]any) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		if v == nil {
			delete(m, k)
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		m[k] = b
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var null = json.RawMessage("null")

// TestAccept runs the acceptance rule over the shapes real accounts send. Each accepted
// case lists every finding it must produce (and no other); each refused case its reason.
func TestAccept(t *testing.T) {
	t.Parallel()
	const added, joined, created, changed = "registrant_added", "registrant_joined", "webinar_created", "webinar_changed"
	tests := []struct {
		name     string
		body     []byte
		reason   string    // refused with this reason; "" = accepted
		findings []Finding // when accepted
		keys     Keys      // when accepted, the keys checked (zero fields unchecked)
	}{
		{name: "conformant registrant.added", body: withMembers(t, added, nil),
			keys: Keys{WebinarKey: "9100000000000000001", RegistrantKey: "9223372036854775807"}},
		{name: "conformant registrant.joined", body: withMembers(t, joined, nil),
			keys: Keys{SessionKey: "28510147"}},
		{name: "conformant webinar.created", body: withMembers(t, created, nil)},
		{name: "conformant webinar.changed", body: withMembers(t, changed, nil)},
		{name: "internationalized email (RFC 6531)", body: withMembers(t, added, map[string]any{"email": "josé.müller@exämple.de"}),
			findings: []Finding{{"/email", ProblemFormat}}},
		{name: "null recurrenceKey", body: withMembers(t, created, map[string]any{"recurrenceKey": null}),
			findings: []Finding{{"/recurrenceKey", ProblemNull}}},
		{name: "null optional string", body: withMembers(t, added, map[string]any{"organization": null}),
			findings: []Finding{{"/organization", ProblemNull}}},
		{name: "empty joinUrl", body: withMembers(t, added, map[string]any{"joinUrl": ""}),
			findings: []Finding{{"/joinUrl", ProblemEmpty}}},
		{name: "registrationDate without a zone", body: withMembers(t, added, map[string]any{"registrationDate": "2024-03-05T14:22:30"}),
			findings: []Finding{{"/registrationDate", ProblemFormat}}},
		{name: "registrationDate in year 0", body: withMembers(t, added, map[string]any{"registrationDate": "0000-01-01T00:00:00Z"}),
			findings: []Finding{{"/registrationDate", ProblemUnparseable}}},
		{name: "registrationDate with a leap second", body: withMembers(t, added, map[string]any{"registrationDate": "2016-12-31T23:59:60Z"}),
			findings: []Finding{{"/registrationDate", ProblemUnparseable}}},
		{name: "multiple-choice answer as an array", body: withMembers(t, added, map[string]any{
			"responses": []any{map[string]any{"question": "Topics?", "answer": []string{"A", "B"}}}}),
			findings: []Finding{{"/responses/0/answer", ProblemType}}},
		{name: "survey.submitted", body: []byte(`{"eventName":"survey.submitted","eventKey":"s-1","webinarKey":1,"answers":[1]}`),
			findings: []Finding{{"/eventName", ProblemUnknownEvent}}, keys: Keys{WebinarKey: "1"}},
		{name: "unknown event without any key", body: []byte(`{"eventName":"","eventKey":"e"}`),
			findings: []Finding{{"/eventName", ProblemUnknownEvent}}},
		{name: "eventVersion 1.1", body: withMembers(t, added, map[string]any{"eventVersion": "1.1"}),
			findings: []Finding{{"/eventVersion", ProblemVersion}}},
		{name: "eventVersion 2.0.0 is stored unchecked", body: withMembers(t, added, map[string]any{"eventVersion": "2.0.0", "email": 5}),
			findings: []Finding{{"/eventVersion", ProblemVersion}}},
		{name: "unknown field", body: withMembers(t, joined, map[string]any{"attendeeDevice": "phone"}),
			findings: []Finding{{"/attendeeDevice", ProblemUnknownField}}},
		{name: "number where a string is declared", body: withMembers(t, added, map[string]any{"phone": 4420}),
			findings: []Finding{{"/phone", ProblemType}}},
		{name: "product other than g2w", body: withMembers(t, added, map[string]any{"product": "g2m"}),
			findings: []Finding{{"/product", ProblemValue}}},
		{name: "email missing", body: withMembers(t, added, map[string]any{"email": nil}),
			findings: []Finding{{"/email", ProblemMissing}}},
		{name: "joinTime as a fraction", body: withMembers(t, joined, map[string]any{"joinTime": json.RawMessage("1712761266981.5")}),
			findings: []Finding{{"/joinTime", ProblemType}}},
		{name: "joinTime with an exponent", body: withMembers(t, joined, map[string]any{"joinTime": json.RawMessage("1.712761266981e12")}),
			findings: []Finding{{"/joinTime", ProblemFormat}}},
		{name: "timestamp on a webinar event", body: withMembers(t, created, map[string]any{"timestamp": "2024-03-05T14:22:31.517Z"})},
		{name: "joinTime beyond 9999", body: withMembers(t, joined, map[string]any{"joinTime": json.RawMessage("999999999999999999")}),
			findings: []Finding{{"/joinTime", ProblemUnparseable}}},
		{name: "optional key not numeric", body: withMembers(t, added, map[string]any{"webinarCreatorKey": "abc"}),
			findings: []Finding{{"/webinarCreatorKey", ProblemType}}},
		{name: "string keys with leading zeros are canonical", body: withMembers(t, joined, map[string]any{"webinarKey": "000123", "sessionKey": "0"}),
			keys: Keys{WebinarKey: "123", SessionKey: "0"}},
		{name: "several problems, sorted", body: withMembers(t, added, map[string]any{"email": "bad", "joinUrl": "", "zzz": 1}),
			findings: []Finding{{"/email", ProblemFormat}, {"/joinUrl", ProblemEmpty}, {"/zzz", ProblemUnknownField}}},

		{name: "not JSON", body: []byte(`{"eventName":`), reason: ReasonMalformedJSON},
		{name: "not an object", body: []byte(`["registrant.added"]`), reason: ReasonMalformedJSON},
		{name: "invalid UTF-8", body: []byte("{\"eventKey\":\"\xff\"}"), reason: ReasonInvalidUTF8},
		{name: "duplicate member", body: []byte(`{"eventKey":"a","eventKey":"b","eventName":"x"}`), reason: ReasonDuplicateKey},
		{name: "no eventKey", body: withMembers(t, added, map[string]any{"eventKey": nil}), reason: ReasonMissingEventKey},
		{name: "empty eventKey", body: withMembers(t, added, map[string]any{"eventKey": ""}), reason: ReasonMissingEventKey},
		{name: "numeric eventKey", body: withMembers(t, added, map[string]any{"eventKey": 7}), reason: ReasonMissingEventKey},
		{name: "eventKey too long", body: withMembers(t, added, map[string]any{"eventKey": strings.Repeat("k", MaxEventKeyBytes+1)}), reason: ReasonEventKeyTooLong},
		{name: "no eventName", body: withMembers(t, added, map[string]any{"eventName": nil}), reason: ReasonMissingEventName},
		{name: "eventName not a string", body: withMembers(t, added, map[string]any{"eventName": 1}), reason: ReasonMissingEventName},
		{name: "no webinarKey", body: withMembers(t, added, map[string]any{"webinarKey": nil}), reason: ReasonMissingKey},
		{name: "null registrantKey", body: withMembers(t, added, map[string]any{"registrantKey": null}), reason: ReasonMissingKey},
		{name: "joined without sessionKey", body: withMembers(t, joined, map[string]any{"sessionKey": nil}), reason: ReasonMissingKey},
		{name: "20-digit key", body: withMembers(t, joined, map[string]any{"sessionKey": json.RawMessage("12345678901234567890")}), reason: ReasonInvalidKey},
		{name: "fractional key", body: withMembers(t, joined, map[string]any{"sessionKey": json.RawMessage("1.0")}), reason: ReasonInvalidKey},
		{name: "negative key", body: withMembers(t, created, map[string]any{"webinarKey": json.RawMessage("-1")}), reason: ReasonInvalidKey},
		{name: "key of letters", body: withMembers(t, changed, map[string]any{"webinarKey": "w-1"}), reason: ReasonInvalidKey},
		{name: "empty string key", body: withMembers(t, added, map[string]any{"registrantKey": ""}), reason: ReasonInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := Accept(tt.body)
			if tt.reason != "" {
				var ve *ValidationError
				if !errors.As(err, &ve) || ve.Reason != tt.reason {
					t.Fatalf("Accept = %+v, %v; want refused with %s", a, err, tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("Accept: %v", err)
			}
			if !reflect.DeepEqual(a.Findings, tt.findings) {
				t.Errorf("findings = %v, want %v", a.Findings, tt.findings)
			}
			if slow, _ := acceptWith(tt.body, false); !reflect.DeepEqual(a, slow) {
				t.Errorf("fast path %+v, full validator %+v", a, slow)
			}
			checkKey := func(name string, got, want Key) {
				if want != "" && got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			checkKey("webinarKey", a.Keys.WebinarKey, tt.keys.WebinarKey)
			checkKey("registrantKey", a.Keys.RegistrantKey, tt.keys.RegistrantKey)
			checkKey("sessionKey", a.Keys.SessionKey, tt.keys.SessionKey)
			if a.EventKey == "" || a.EventName == "" && !strings.Contains(string(tt.body), `"eventName":""`) {
				t.Errorf("envelope not filled: %+v", a)
			}
		})
	}
}

// TestFastRulesCoverTheSpec: every known event has rules, so the fast path is taken.
func TestFastRulesCoverTheSpec(t *testing.T) {
	t.Parallel()
	for _, name := range []string{EventRegistrantAdded, EventRegistrantJoined, EventWebinarCreated, EventWebinarChanged} {
		if fastRules()[name] == nil {
			t.Errorf("no fast rules for %s", name)
		}
	}
	for _, name := range []string{"registrant_added", "registrant_joined", "webinar_created", "webinar_changed"} {
		doc, verr := decodeDocument(withMembers(t, name, nil))
		if verr != nil {
			t.Fatal(verr)
		}
		if _, verr := acceptKeysForTest(doc); verr != nil {
			t.Fatal(verr)
		}
		if !fastRules()[doc["eventName"].(string)].conforms(map[string]any(doc)) {
			t.Errorf("the conformant sample %s does not take the fast path", name)
		}
	}
}

// acceptKeysForTest rewrites integer keys to strings as Accept does before the schema.
func acceptKeysForTest(doc map[string]any) (map[string]any, *ValidationError) {
	for _, k := range keyFields {
		if c, ok := canonicalKey(doc[k]); ok {
			doc[k] = string(c)
		}
	}
	return doc, nil
}

func TestFindingMetricLabel(t *testing.T) {
	t.Parallel()
	for field, want := range map[string]string{
		"/email":               "/email",
		"/responses/12/answer": "/responses/*/answer",
		"/times/0/startTime":   "/times/*/startTime",
		"/attendeeDevice":      "/(other)",
		"/a/b/c/d":             "/(other)",
	} {
		if got := (Finding{Field: field}).MetricLabel(); got != want {
			t.Errorf("MetricLabel(%s) = %s, want %s", field, got, want)
		}
	}
}

var acceptReasons = map[string]bool{
	ReasonMalformedJSON: true, ReasonInvalidUTF8: true, ReasonDuplicateKey: true, ReasonTooDeep: true,
	ReasonMissingEventKey: true, ReasonEventKeyTooLong: true, ReasonMissingEventName: true,
	ReasonMissingKey: true, ReasonInvalidKey: true,
}

// FuzzAccept checks Accept on arbitrary bodies: it never panics, refuses only with its
// own reasons, is deterministic, accepts only JSON objects with an eventKey, and
// accepts everything Parse (the spec's full contract) accepts, except where it is
// stricter on purpose (eventKey and required keys).
// Seeds: the samples in testdata/*.json and the committed corpora of FuzzParse and
// FuzzAccept.
func FuzzAccept(f *testing.F) {
	for _, pattern := range []string{"testdata/*.json", "testdata/fuzz/FuzzParse/*"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			if strings.HasPrefix(string(b), "go test fuzz v1\n") {
				var s string
				if err := unquoteCorpus(b, &s); err != nil {
					f.Fatalf("%s: %v", p, err)
				}
				b = []byte(s)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, err := Accept(raw)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || !acceptReasons[ve.Reason] || ve.Detail == "" {
				t.Fatalf("bad refusal %v", err)
			}
			// Stricter than the spec only where the log needs it: an empty eventKey, and
			// required keys that are not decimal integers (the spec allows any string).
			stricter := ve.Reason == ReasonMissingEventKey || ve.Reason == ReasonEventKeyTooLong || ve.Reason == ReasonInvalidKey
			if ev, perr := Parse(raw); perr == nil && !stricter {
				t.Fatalf("Parse accepts what Accept refuses (%v): %+v", err, ev)
			}
			return
		}
		if !json.Valid(raw) || a.EventKey == "" || len(a.EventKey) > MaxEventKeyBytes {
			t.Fatalf("accepted %+v", a)
		}
		again, err := Accept(raw)
		if err != nil || !reflect.DeepEqual(a, again) {
			t.Fatalf("re-accept differs: %v", err)
		}
		// The fast path for conforming payloads agrees with the full validator.
		slow, verr := acceptWith(raw, false)
		if verr != nil || !reflect.DeepEqual(a, slow) {
			t.Fatalf("fast path %+v, full validator %+v (%v)", a, slow, verr)
		}
		for _, fd := range a.Findings {
			if !strings.HasPrefix(fd.Field, "/") || fd.Problem == "" {
				t.Fatalf("bad finding %+v", fd)
			}
		}
		if ev, perr := Parse(raw); perr == nil {
			env := ev.Envelope()
			if env.EventKey != a.EventKey || env.EventName != a.EventName {
				t.Fatalf("Parse and Accept disagree on the envelope")
			}
		}
	})
}

// unquoteCorpus reads the single []byte(...) value of a corpus file.
func unquoteCorpus(b []byte, out *string) error {
	lines := strings.SplitN(string(b), "\n", 3)
	if len(lines) < 2 {
		return errors.New("short corpus file")
	}
	v := strings.TrimSpace(lines[1])
	v = strings.TrimSuffix(strings.TrimPrefix(v, "[]byte("), ")")
	u, err := strconv.Unquote(v)
	*out = u
	return err
}

// BenchmarkAccept is BenchmarkParse's sample through the acceptance rule, for comparison
// (go test -bench 'Parse|Accept' ./internal/domain).
func BenchmarkAccept(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "registrant_added.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Accept(raw); err != nil {
			b.Fatal(err)
		}
	}
}
