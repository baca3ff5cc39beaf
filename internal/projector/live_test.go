package projector

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestConnectionLost(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"crash shutdown", &pgconn.PgError{Code: "57P02"}, true},
		{"starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"wrapped", fmt.Errorf("apply prefetched _prefetch_17: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"network", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{"eof", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"pgx closed", fmt.Errorf("failed to deallocate cached statement(s): %w", pgconn.ErrConnClosed), true},
		{"permission denied", &pgconn.PgError{Code: "42501"}, false},
		{"bad cast", &pgconn.PgError{Code: "22007"}, false},
		{"other", errors.New("something else"), false},
	} {
		if got := connectionLost(tc.err); got != tc.want {
			t.Errorf("%s: connectionLost(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{"defaults", Config{}, ""},
		{"retries fit", Config{MaxRetries: 20, RetryInterval: 100 * time.Millisecond, BatchDeadline: 38 * time.Second}, ""},
		{"retries outlast the deadline", Config{MaxRetries: 20, RetryInterval: 100 * time.Millisecond, BatchDeadline: 10 * time.Second}, "retry budget"},
		{"deadline too short", Config{BatchDeadline: 100 * time.Millisecond, BatchTarget: time.Millisecond}, "at least"},
		{"target past the deadline", Config{BatchDeadline: 2 * time.Second, BatchTarget: 3 * time.Second}, "BatchTarget"},
		{"min above max", Config{MinBatch: 10, MaxBatch: 5}, "MinBatch"},
		{"negative retries", Config{MaxRetries: -1}, "MaxRetries"},
	} {
		err := tt.cfg.WithDefaults().Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: Validate = %v, want valid", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: Validate = %v, want an error about %q", tt.name, err, tt.want)
		}
	}
}

func TestRetryBudget(t *testing.T) {
	t.Parallel()
	c := Config{MaxRetries: 6, RetryInterval: 10 * time.Millisecond}
	// 10 + 20 + 40 + 80 + 100 + 100 (doubling, capped at 10x).
	if got, want := c.RetryBudget(), 350*time.Millisecond; got != want {
		t.Errorf("RetryBudget = %v, want %v", got, want)
	}
}
