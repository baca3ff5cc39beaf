package projections

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
)

// acceptedByIngest mirrors ingest's acceptance rule (issue 10): a JSON object with a
// non-empty string eventKey and a string eventName; for the four known events, the keys the
// projections need are exact decimal integers of at most 19 digits, bare or as strings.
// Everything else — nulls, wrong types and unparseable values in other fields, unknown
// events — is accepted.
func acceptedByIngest(raw []byte) bool {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil || obj == nil {
		return false
	}
	var key, name string
	if json.Unmarshal(obj["eventKey"], &key) != nil || key == "" || json.Unmarshal(obj["eventName"], &name) != nil {
		return false
	}
	need := map[string][]string{
		nameCreated: {"webinarKey"}, nameChanged: {"webinarKey"},
		nameAdded:  {"webinarKey", "registrantKey"},
		nameJoined: {"webinarKey", "registrantKey", "sessionKey"},
	}[name]
	digits := regexp.MustCompile(`^[0-9]{1,19}$`)
	for _, k := range need {
		v := bytes.TrimSpace(obj[k])
		var s string
		if json.Unmarshal(v, &s) == nil {
			v = []byte(s)
		}
		if !digits.Match(v) {
			return false
		}
	}
	return true
}

// hostile are values a field of an accepted event may hold: each must project (the field
// NULL if it cannot be used), never park the event. Not here: the escape \u0000 and unpaired
// surrogates, which the log itself refuses (its generated columns cannot hold them), so
// ingest cannot accept them.
var hostile = []string{
	`null`, `""`, `0`, `-1`, `1.5`, `true`, `[]`, `{}`, `[1,"x",null]`, `{"a":{"b":[null]}}`,
	`99999999999999999999999999`, `1e20`, `1e1000000`, `-1e-1000000`,
	`"not a date"`, `"0000-01-01T00:00:00Z"`, `"2026-02-30T10:00:00Z"`, `"2026-11-20T10:15:29"`,
	`"294277-01-01T00:00:00Z"`, `"2026-11-20"`, `"infinity"`, `"1795100000000"`, `"-1795100000000"`,
	`-1795100000000`, `99999999999999999`, `"\\u0000"`, `"\ud83d\ude00"`, `"zoë.nguyễn@exämple.com"`, `"ゆうこ@例え.jp"`,
	`"` + strings.Repeat("é", 5000) + `"`,
	`[{"startTime":"0000-01-01T00:00:00Z","endTime":"not a date"},{"startTime":null},5,"x"]`,
	`[{"question":"Topics?","answer":["a","b"]}]`,
}

// payloads are the accepted payloads the property test applies: the domain samples, the
// fuzz corpus entries ingest accepts, every sample with each field (keys too, when the
// value keeps the event acceptable) set to each hostile value, and named real-world shapes.
func payloads(t *testing.T) [][]byte {
	t.Helper()
	var out [][]byte
	add := func(b []byte) {
		if acceptedByIngest(b) {
			out = append(out, b)
		}
	}
	samples, err := filepath.Glob(filepath.Join("..", "domain", "testdata", "*.json"))
	if err != nil || len(samples) == 0 {
		t.Fatalf("read domain samples: %v (%d)", err, len(samples))
	}
	corpus, err := filepath.Glob(filepath.Join("..", "domain", "testdata", "fuzz", "FuzzParse", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range corpus {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// go test fuzz v1, then []byte("…") as a Go string literal.
		for _, line := range strings.Split(string(b), "\n") {
			if lit, ok := strings.CutPrefix(line, "[]byte("); ok {
				if s, err := strconv.Unquote(strings.TrimSuffix(lit, ")")); err == nil {
					add([]byte(s))
				}
			}
		}
	}
	n := 0
	for _, p := range samples {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		add(b)
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(b, &obj); err != nil {
			t.Fatal(err)
		}
		fields := []string{"timestamp", "joinTime", "registrationDate", "webinarCreationDate", "times", "responses",
			"email", "firstName", "webinarTitle", "experienceType", "recurrenceKey", "joinUrl", "status",
			"eventVersion", "registrationSource", "comments", "timeZone", "sessionKey", "webinarKey", "registrantKey"}
		for _, f := range fields {
			for _, v := range hostile {
				n++
				mutated := map[string]json.RawMessage{}
				for k, x := range obj {
					mutated[k] = x
				}
				mutated[f] = json.RawMessage(v)
				mutated["eventKey"] = json.RawMessage(strconv.Quote("lenient-" + strconv.Itoa(n)))
				add(rawJSON(t, mutated))
			}
		}
	}
	// Shapes from issue 10 the loop above does not make.
	for _, s := range []string{
		`{"eventName":"survey.submitted","eventKey":"s-1","webinarKey":1,"answers":[1]}`,
		`{"eventName":"registrant.added","eventVersion":"1.1","eventKey":"v11","webinarKey":"0012","registrantKey":"34"}`,
		`{"eventName":"registrant.joined","eventKey":"j-min","webinarKey":1,"registrantKey":2,"sessionKey":3}`,
		`{"eventName":"webinar.changed","eventKey":"c-min","webinarKey":1}`,
		`{"eventName":"webinar.created","eventKey":"w-min","webinarKey":"9223372036854775807","times":{"startTime":"x"}}`,
		`{"eventName":"","eventKey":"empty-name"}`,
	} {
		add([]byte(s))
	}
	return out
}

func rawJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEveryAcceptedPayloadProjects is the property of issue 10: whatever ingest accepts,
// the projections apply without an error — so nothing is ever parked for a field value —
// by the rebuild's path (the log, set-based, all at once) and the live path's per-event
// apply alike, and both give the same tables.
func TestEveryAcceptedPayloadProjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.Pool(t)
	all := payloads(t)
	if len(all) < 500 {
		t.Fatalf("only %d accepted payloads generated", len(all))
	}
	events := make([]Event, len(all))
	for i, p := range all {
		events[i] = Event{ReceivedAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Payload: p}
	}
	stored, pos := appendLog(t, pool, events, 97)
	create(t, pool, "rebuild")
	inTx(t, pool, func(tx pgx.Tx) error {
		_, err := ApplyLog(ctx, tx, "rebuild", eventlog.Position{}, pos[len(pos)-1])
		if err != nil {
			t.Errorf("ApplyLog of %d accepted payloads: %v", len(stored), err)
		}
		return nil
	})
	create(t, pool, "live")
	for _, e := range stored {
		inTx(t, pool, func(tx pgx.Tx) error {
			if err := Apply(ctx, tx, "live", e); err != nil {
				t.Errorf("Apply of an accepted payload failed (it would be parked): %v\n%s", err, e.Payload)
			}
			return nil
		})
	}
	compareDumps(t, dumpAll(t, pool, "rebuild"), dumpAll(t, pool, "live"))
	// And the unparseable values are NULL, not guessed: a year 0 registration date.
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM rebuild.registrants WHERE registration_date IS NULL`).Scan(&n); err != nil || n == 0 {
		t.Errorf("registrants with a NULL registration_date: %d, %v; want some", n, err)
	}
}
