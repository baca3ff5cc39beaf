package rebuild

import (
	"testing"
	"time"
)

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
