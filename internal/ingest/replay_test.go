package ingest

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/webhook"
)

// TestReplayWindow checks G2W_TIMESTAMP_TOLERANCE's and G2W_REQUIRE_TIMESTAMP's effect
// through the handler: with the window on, a verified delivery whose signed timestamp is
// stale, ahead, unparseable or missing is refused 401 and enters neither the log nor the
// quarantine, only the unverified store (Observe mode answers 202 instead); with a
// timestamp required, a delivery without the header is refused the same way;
// a forged one is refused for its signature first, so the forger learns nothing about
// the window; with the window off (the default) the timestamp is not judged at all.
// Timestamps are relative to the real clock; webhook's tests pin the boundaries.
func TestReplayWindow(t *testing.T) {
	t.Parallel()
	const tolerance = 5 * time.Minute
	now := time.Now()
	epochMS := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).UnixMilli(), 10) }
	epochS := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	rfc3339 := func(d time.Duration) string { return now.Add(d).UTC().Format(time.RFC3339Nano) }
	const noHeader = "\x00" // sentinel: sign with an empty timestamp and send no header
	const spliced = "\x01"  // sentinel: send testTimestamp + ":" + body, signed with testTimestamp, without the header

	services := map[string]Config{
		"enforce": {TimestampTolerance: tolerance},
		"observe": {Mode: Observe, SecretKeys: [][]byte{testKey}, TimestampTolerance: tolerance},
		"require": {RequireTimestamp: true},
		"off":     {},
	}
	tests := []struct {
		name    string
		service string
		ts      string
		key     []byte
		body    string // "" is a valid event
		want    int
		reason  string // response reason
		metric  string // signature_failures_total reason that must go up by one
		stored  bool   // in the log
		kept    bool   // in ingest_unverified
	}{
		{"fresh epoch ms", "enforce", epochMS(0), testKey, "", 200, "", "", true, false},
		{"fresh epoch s", "enforce", epochS(-time.Minute), testKey, "", 200, "", "", true, false},
		{"fresh RFC 3339, slightly ahead", "enforce", rfc3339(time.Minute), testKey, "", 200, "", "", true, false},
		{"no timestamp header: refused, not waved through", "enforce", noHeader, testKey, "", 401, "missing_timestamp", reasonNoTimestamp, false, true},
		{"an hour old", "enforce", epochMS(-time.Hour), testKey, "", 401, "stale_timestamp", reasonStale, false, true},
		{"an hour ahead", "enforce", rfc3339(time.Hour), testKey, "", 401, "stale_timestamp", reasonStale, false, true},
		{"the signature vector's 2023 timestamp", "enforce", testTimestamp, testKey, "", 401, "stale_timestamp", reasonStale, false, true},
		{"unparseable", "enforce", "yesterday", testKey, "", 401, "bad_timestamp", reasonBadTimestamp, false, true},
		{"zoneless ISO-8601", "enforce", now.UTC().Format("2006-01-02T15:04:05"), testKey, "", 401, "bad_timestamp", reasonBadTimestamp, false, true},
		{"stale and invalid: refused, not quarantined", "enforce", epochMS(-time.Hour), testKey, `{"eventName":`, 401, "stale_timestamp", reasonStale, false, true},
		{"forged and stale: the signature answers", "enforce", epochMS(-time.Hour), []byte("forger"), "", 401, "bad_signature", reasonBad, false, true},
		{"observe keeps a stale one apart", "observe", epochMS(-time.Hour), testKey, "", 202, "", reasonStale, false, true},
		{"observe verifies a fresh one", "observe", epochMS(0), testKey, "", 200, "", "", true, false},
		{"required timestamp present", "require", "yesterday", testKey, "", 200, "", "", true, false},
		{"required timestamp missing", "require", noHeader, testKey, "", 401, "missing_timestamp", reasonNoTimestamp, false, true},
		{"window off accepts any timestamp", "off", "yesterday", testKey, "", 200, "", "", true, false},
		{"window off accepts no timestamp header", "off", noHeader, testKey, "", 200, "", "", true, false},
		{"ts:body sent as the body without the header", "off", spliced, testKey, "", 401, "bad_signature", reasonBad, false, true},
	}

	envs := map[string]*Service{}
	bases := map[string]string{}
	for name, cfg := range services {
		pool, _ := pgtest.Pool(t)
		svc, base := testService(t, pool, cfg)
		envs[name], bases[name] = svc, base
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, base := envs[tt.service], bases[tt.service]
			pool := svc.store.pool
			key := "replay-" + strconv.Itoa(i)
			body := []byte(tt.body)
			if tt.body == "" {
				body = created(key, "9100000000000000001", "")
			}
			h := http.Header{"Content-Type": {"application/json"}}
			switch tt.ts {
			case noHeader:
				h.Set(webhook.HeaderSignature, webhook.Sign(tt.key, "", body))
			case spliced:
				// A captured delivery's signature over ts:body, replayed with ts:body as
				// the body and the timestamp header dropped.
				h.Set(webhook.HeaderSignature, webhook.Sign(tt.key, testTimestamp, body))
				body = append([]byte(testTimestamp+":"), body...)
			default:
				h.Set(webhook.HeaderTimestamp, tt.ts)
				h.Set(webhook.HeaderSignature, webhook.Sign(tt.key, tt.ts, body))
			}
			failures := map[string]float64{}
			for _, r := range []string{reasonMissing, reasonBad, reasonStale, reasonBadTimestamp, reasonNoTimestamp} {
				failures[r] = testutil.ToFloat64(svc.metrics.signatureFailures.WithLabelValues(r))
			}
			logBefore, quarantineBefore := count(t, pool, countLog), count(t, pool, countQuarantine)
			keptBefore := count(t, pool, countUnverified)

			code, resp := post(t, base, body, h)
			if code != tt.want || (tt.reason != "" && !strings.Contains(resp, `"reason":"`+tt.reason+`"`)) {
				t.Errorf("got %d %s, want %d with reason %q", code, resp, tt.want, tt.reason)
			}
			for r, before := range failures {
				want := before
				if r == tt.metric {
					want++
				}
				if got := testutil.ToFloat64(svc.metrics.signatureFailures.WithLabelValues(r)); got != want {
					t.Errorf("signature_failures_total{reason=%q} went from %v to %v, want %v", r, before, got, want)
				}
			}
			if n := count(t, pool, countQuarantine); n != quarantineBefore {
				t.Errorf("quarantine went from %d to %d rows", quarantineBefore, n)
			}
			wantLog := logBefore
			if tt.stored {
				wantLog++
			}
			if n := count(t, pool, countLog); n != wantLog {
				t.Fatalf("log went from %d to %d rows, want %d", logBefore, n, wantLog)
			}
			wantKept := keptBefore
			if tt.kept {
				wantKept++
			}
			if n := count(t, pool, countUnverified); n != wantKept {
				t.Errorf("ingest_unverified went from %d to %d rows, want %d", keptBefore, n, wantKept)
			}
		})
	}
}
