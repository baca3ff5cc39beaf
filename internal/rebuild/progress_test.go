package rebuild

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
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

func TestEventFault(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"bad cast", &pgconn.PgError{Code: "22007"}, true},
		{"numeric overflow", &pgconn.PgError{Code: "22003"}, true},
		{"not null", fmt.Errorf("apply: %w", &pgconn.PgError{Code: "23502"}), true},
		{"index row too large", &pgconn.PgError{Code: "54000"}, true},
		{"permission", &pgconn.PgError{Code: "42501"}, false},
		{"missing table", &pgconn.PgError{Code: "42P01"}, false},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, false},
		{"shutdown", &pgconn.PgError{Code: "57P01"}, false},
		{"cancelled", context.Canceled, false},
	} {
		if got := EventFault(tt.err); got != tt.want {
			t.Errorf("%s: EventFault(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}
