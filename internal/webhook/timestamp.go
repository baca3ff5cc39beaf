package webhook

import (
	"errors"
	"strconv"
	"time"
)

var (
	// ErrBadTimestamp reports a timestamp header that is none of the formats
	// ParseTimestamp knows.
	ErrBadTimestamp = errors.New("webhook: unparseable signature timestamp")
	// ErrStaleTimestamp reports a timestamp further from now than the replay
	// window allows, in either direction.
	ErrStaleTimestamp = errors.New("webhook: signature timestamp outside the replay window")
	// ErrMissingTimestamp reports a delivery without the timestamp header where the
	// receiver requires one (a timestamp is required, or the replay window is on: a
	// delivery without a timestamp cannot be placed in a window).
	ErrMissingTimestamp = errors.New("webhook: missing signature timestamp")
)

// epochMillisFrom is where ParseTimestamp switches from epoch seconds to epoch
// milliseconds. 1e12 ms is September 2001, and 1e12 s is some 30,000 years
// away, so no plausible delivery time is ambiguous.
const epochMillisFrom = 1e12

// maxTimestampLen bounds the header value ParseTimestamp looks at. The longest
// RFC 3339 form (nanoseconds and a numeric offset) is 35 characters.
const maxTimestampLen = 64

// ParseTimestamp interprets the value of HeaderTimestamp. GoTo does not
// document its format, so it accepts the three that are plausible:
//
//   - decimal epoch milliseconds, for values of at least 1e12;
//   - decimal epoch seconds, for smaller values;
//   - RFC 3339 (ISO-8601 with a zone), with or without fractional seconds.
//
// Signs, fractions of epoch values, and zoneless ISO-8601 are refused with
// ErrBadTimestamp rather than guessed at: a wrong guess would either refuse
// every delivery or let stale ones through.
func ParseTimestamp(v string) (time.Time, error) {
	if v == "" || len(v) > maxTimestampLen {
		return time.Time{}, ErrBadTimestamp
	}
	if allDigits(v) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil { // more than int64 holds
			return time.Time{}, ErrBadTimestamp
		}
		if n >= epochMillisFrom {
			return time.UnixMilli(n).UTC(), nil
		}
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, v) // accepts fractional seconds too
	if err != nil {
		return time.Time{}, ErrBadTimestamp
	}
	return t.UTC(), nil
}

// CheckTimestamp reports whether the timestamp header value v lies within
// tolerance of now, either side (a sender's clock may run ahead). It returns
// ErrBadTimestamp when v does not parse and ErrStaleTimestamp when it lies
// outside the window; a timestamp exactly tolerance away is accepted.
//
// Call it only after the signature verified: the timestamp is signed, so a
// verified one is the sender's, and a forger must not learn whether its
// timestamp or its signature was wrong.
func CheckTimestamp(v string, now time.Time, tolerance time.Duration) error {
	t, err := ParseTimestamp(v)
	if err != nil {
		return err
	}
	// Compare instants rather than the magnitude of now.Sub(t): Sub saturates
	// at the extremes of time.Duration, and negating the most negative
	// Duration overflows back to a negative value that would pass the window.
	if t.Before(now.Add(-tolerance)) || t.After(now.Add(tolerance)) {
		return ErrStaleTimestamp
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
