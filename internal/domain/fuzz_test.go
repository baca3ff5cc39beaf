package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"
)

var reasons = map[string]bool{
	ReasonMalformedJSON: true, ReasonInvalidUTF8: true, ReasonDuplicateKey: true, ReasonTooDeep: true,
	ReasonUnknownEvent: true, ReasonUnsupportedVersion: true, ReasonSchema: true, ReasonInvalidKey: true,
}

func FuzzParse(f *testing.F) {
	// The realistic samples seed every event type; more seeds, including
	// hostile shapes, live in testdata/fuzz/FuzzParse.
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := Parse(raw)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T is not a *ValidationError", err)
			}
			if !reasons[ve.Reason] || ve.Detail == "" {
				t.Fatalf("bad ValidationError %+v", ve)
			}
			if ev != nil {
				t.Fatal("event returned with an error")
			}
		} else {
			// Re-parsing is deterministic.
			again, err := Parse(raw)
			if err != nil || !reflect.DeepEqual(ev, again) {
				t.Fatalf("re-parse differs: %v", err)
			}
			if !json.Valid(raw) {
				t.Fatal("accepted invalid JSON")
			}
			if _, ok := builders[ev.Envelope().EventName]; !ok {
				t.Fatalf("accepted unknown event")
			}
		}
		checkScanner(t, raw)
	})
}

// checkScanner compares the hand-written scanner with encoding/json.
func checkScanner(t *testing.T, raw []byte) {
	if !utf8.Valid(raw) {
		return
	}
	doc, verr := decodeDocument(raw)
	valid := json.Valid(raw)
	if verr == nil {
		if !valid {
			t.Fatal("scanner accepted what encoding/json rejects")
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var want map[string]any
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		if !reflect.DeepEqual(doc, want) {
			t.Fatalf("scanner tree differs from encoding/json:\n%#v\n%#v", doc, want)
		}
		return
	}
	if verr.Reason == ReasonMalformedJSON && valid && verr.Detail != "top-level value must be an object" {
		t.Fatalf("scanner rejected valid JSON: %v", verr)
	}
}
