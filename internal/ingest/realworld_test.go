package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turnout-analytics/turnout/internal/domain"
	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/rebuild"
)

// registrantAdded is a live-shaped registrant.added for webinar 9100000000000000001 with the
// given eventKey and registrantKey; members in set replace (or, as nil, remove) the defaults.
func registrantAdded(t testing.TB, eventKey string, registrant int, set map[string]any) []byte {
	t.Helper()
	m := map[string]any{
		"eventName": "registrant.added", "eventVersion": "1.0.0", "product": "g2w", "eventKey": eventKey,
		"timestamp": "2024-03-05T14:22:31.517Z", "webinarKey": json.Number("9100000000000000001"),
		"registrantKey": json.Number(fmt.Sprint(registrant)), "webinarCreatorKey": json.Number("3241236151789206543"),
		"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com", "organization": "Engines",
		"registrationDate": "2024-03-05T14:22:30Z", "status": "APPROVED", "registrationSource": "linkedin",
		"joinUrl": "https://global.gotowebinar.com/join/1/2", "webinarTitle": "Q2",
		"recurrenceType": "single_session", "experienceType": "CLASSIC",
		"responses": []any{map[string]any{"question": "Why?", "answer": "Reporting"}},
	}
	for k, v := range set {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRealWorldShapes delivers, signed, the shapes real accounts produce through the HTTP
// handler on a real PostgreSQL. Accepted ones are answered 200, stored raw with their
// data-quality findings in the log row's metadata and counted in
// turnout_ingest_data_quality_total; after a projector rebuild, every accepted registrant
// is counted in analytics with its email as sent. Refused ones (nothing to key them by)
// are answered 4xx and quarantined with their reason.
func TestRealWorldShapes(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	svc, base := testService(t, pool, Config{})

	tests := []struct {
		name     string
		body     []byte
		want     int
		findings string // the log row's data_quality metadata ("" = none); or the quarantine reason
		email    string // registrant.added only: the email analytics must hold ("" = not projected)
	}{
		{"conformant", registrantAdded(t, "rw-1", 1, nil), 200, "", "ada@example.com"},
		{"internationalized email", registrantAdded(t, "rw-2", 2, map[string]any{"email": "josé.müller@exämple.de"}), 200,
			`[{"field":"/email","problem":"format"}]`, "josé.müller@exämple.de"},
		{"optional field absent", registrantAdded(t, "rw-3", 3, map[string]any{"organization": nil}), 200, "", "ada@example.com"},
		{"null organization sent as null", []byte(strings.Replace(string(registrantAdded(t, "rw-4", 4, nil)), `"organization":"Engines"`, `"organization":null`, 1)), 200,
			`[{"field":"/organization","problem":"null"}]`, "ada@example.com"},
		{"empty joinUrl", registrantAdded(t, "rw-5", 5, map[string]any{"joinUrl": ""}), 200,
			`[{"field":"/joinUrl","problem":"empty"}]`, "ada@example.com"},
		{"registrationDate without zone", registrantAdded(t, "rw-6", 6, map[string]any{"registrationDate": "2024-03-05T14:22:30"}), 200,
			`[{"field":"/registrationDate","problem":"format"}]`, "ada@example.com"},
		{"multiple-choice answer as an array", registrantAdded(t, "rw-7", 7, map[string]any{
			"responses": []any{map[string]any{"question": "Topics?", "answer": []any{"A", "B"}}}}), 200,
			`[{"field":"/responses/0/answer","problem":"type"}]`, "ada@example.com"},
		{"eventVersion 1.1", registrantAdded(t, "rw-8", 8, map[string]any{"eventVersion": "1.1"}), 200,
			`[{"field":"/eventVersion","problem":"version"}]`, "ada@example.com"},
		{"string keys", registrantAdded(t, "rw-9", 9, map[string]any{"registrantKey": "9"}), 200, "", "ada@example.com"},
		{"unknown field", registrantAdded(t, "rw-10", 10, map[string]any{"attendeeDevice": "phone"}), 200,
			`[{"field":"/attendeeDevice","problem":"unknown_field"}]`, "ada@example.com"},
		{"survey.submitted", []byte(`{"eventName":"survey.submitted","eventVersion":"1.0.0","product":"g2w","eventKey":"rw-11","webinarKey":9100000000000000001,"answers":[{"q":1,"a":"yes"}]}`), 200,
			`[{"field":"/eventName","problem":"unknown_event"}]`, ""},
		{"no eventKey", registrantAdded(t, "", 12, map[string]any{"eventKey": nil}), 422, domain.ReasonMissingEventKey, ""},
		{"no registrantKey", registrantAdded(t, "rw-13", 13, map[string]any{"registrantKey": nil}), 422, domain.ReasonMissingKey, ""},
		{"non-numeric webinarKey", registrantAdded(t, "rw-14", 14, map[string]any{"webinarKey": "webinar-1"}), 422, domain.ReasonInvalidKey, ""},
		{"not JSON", []byte(`{"eventName":"registrant.added","eventKey":"rw-15",`), 400, domain.ReasonMalformedJSON, ""},
	}
	accepted := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, resp := post(t, base, tt.body, signed(testKey, tt.body))
			if code != tt.want {
				t.Fatalf("got %d %s, want %d", code, resp, tt.want)
			}
			if code != http.StatusOK {
				var reason string
				err := pool.QueryRow(context.Background(),
					`SELECT reason FROM ingest_quarantine WHERE body = $1`, tt.body).Scan(&reason)
				if err != nil || reason != tt.findings {
					t.Errorf("quarantine: reason %q (%v), want %q", reason, err, tt.findings)
				}
				return
			}
			accepted++
			var payload, quality string
			err := pool.QueryRow(context.Background(), `
				SELECT payload::text, coalesce(metadata->>'data_quality', '')
				FROM `+eventlog.Table+` WHERE payload::text = $1`, string(tt.body)).Scan(&payload, &quality)
			if err != nil {
				t.Fatalf("log row: %v", err)
			}
			if quality != tt.findings {
				t.Errorf("data_quality = %s, want %s", quality, tt.findings)
			}
		})
	}
	if n := count(t, pool, countLog); n != accepted {
		t.Errorf("log has %d rows, want %d", n, accepted)
	}
	for _, c := range []struct{ event, field, problem string }{
		{"registrant.added", "/email", "format"}, {"registrant.added", "/responses/*/answer", "type"},
		{"registrant.added", "/(other)", "unknown_field"}, {"other", "/eventName", "unknown_event"},
	} {
		if got := testutil.ToFloat64(svc.metrics.dataQuality.WithLabelValues(c.event, c.field, c.problem)); got != 1 {
			t.Errorf("data_quality_total{%s,%s,%s} = %v, want 1", c.event, c.field, c.problem, got)
		}
	}

	// The projector (as it is) counts every accepted registrant, email as sent.
	rebuildWhenVisible(t, pool, accepted)
	for _, tt := range tests {
		if tt.email == "" {
			continue
		}
		var a struct{ Key string }
		if err := json.Unmarshal(tt.body, &struct {
			Key *string `json:"eventKey"`
		}{&a.Key}); err != nil {
			t.Fatal(err)
		}
		var email string
		err := pool.QueryRow(context.Background(), `
			SELECT r.email FROM analytics.registrants r
			WHERE r.webinar_key = '9100000000000000001' AND r.registrant_key = $1`,
			strings.TrimPrefix(a.Key, "rw-")).Scan(&email)
		if err != nil || email != tt.email {
			t.Errorf("%s: analytics email %q (%v), want %q", tt.name, email, err, tt.email)
		}
	}
	var registrants int
	if err := pool.QueryRow(context.Background(),
		`SELECT registrants FROM analytics.webinar_conversion WHERE webinar_key = '9100000000000000001'`).Scan(&registrants); err != nil {
		t.Fatal(err)
	}
	if registrants != 10 {
		t.Errorf("webinar_conversion.registrants = %d, want the 10 accepted registrations", registrants)
	}
}

// rebuildWhenVisible waits until n log rows are visible to the projector's reader (other
// tests' open transactions can hold pg_snapshot_xmin back briefly), then rebuilds
// analytics from the log with the projector as it is.
func rebuildWhenVisible(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for count(t, pool, `SELECT count(*) FROM `+eventlog.Table+`
		WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())`) < n {
		if time.Now().After(deadline) {
			t.Fatalf("log rows not visible to the reader within 30s")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
	}
	proj := rebuild.New(pool, rebuild.Config{}, slog.New(slog.DiscardHandler), rebuild.NewMetrics(prometheus.NewRegistry()))
	if _, err := proj.Rebuild(ctx, quietProgress{}); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
}

// quietProgress discards a rebuild's progress reports.
type quietProgress struct{}

func (quietProgress) Start(eventlog.Position, bool, int64) {}
func (quietProgress) Update(int64)                         {}
func (quietProgress) Finish(rebuild.Stats)                 {}
