package projector

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

func TestEnvelopeOfMatchesTheLogColumns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, payload, wantName, wantKey string
	}{
		{"strings", `{"eventName":"registrant.added","eventKey":"5f0d3b0e"}`, "registrant.added", "5f0d3b0e"},
		{"numeric key as ->> renders it", `{"eventName":"webinar.created","eventKey":9100000000000000001}`, "webinar.created", "9100000000000000001"},
		{"missing fields", `{"product":"g2w"}`, "", ""},
		{"not JSON: ingest metadata", `not json`, "meta.name", "meta-key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := message.NewMessage("id", []byte(tt.payload))
			msg.Metadata.Set("event_name", "meta.name")
			msg.Metadata.Set("event_key", "meta-key")
			name, key := envelopeOf(msg)
			if name != tt.wantName || key != tt.wantKey {
				t.Errorf("envelopeOf = (%q, %q), want (%q, %q)", name, key, tt.wantName, tt.wantKey)
			}
		})
	}
}

func TestRateETA(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		total     int64
		done      int64
		elapsed   time.Duration
		perSecond float64
		eta       time.Duration
	}{
		{"half way", 1000, 500, 10 * time.Second, 50, 10 * time.Second},
		{"nothing yet", 1000, 0, time.Second, 0, 0},
		{"more than expected arrived", 100, 150, 3 * time.Second, 50, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			perSecond, eta := rate{start: start, total: tt.total}.eta(tt.done, start.Add(tt.elapsed))
			if perSecond != tt.perSecond || eta != tt.eta {
				t.Errorf("eta = (%v, %v), want (%v, %v)", perSecond, eta, tt.perSecond, tt.eta)
			}
		})
	}
}
