package webhook

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time // zero: ErrBadTimestamp
	}{
		{"1700000000000", time.UnixMilli(1700000000000)},                 // the signature vector's: epoch ms
		{"1700000000", time.Unix(1700000000, 0)},                         // epoch s
		{"999999999999", time.Unix(999999999999, 0)},                     // just below 1e12: seconds, far future
		{"1000000000000", time.UnixMilli(1000000000000)},                 // 1e12: milliseconds (2001)
		{"0", time.Unix(0, 0)},                                           // parses; the window refuses it
		{"9223372036854775807", time.UnixMilli(9223372036854775807)},     // int64 max: ms
		{"2024-04-10T15:01:07.204Z", time.UnixMilli(1712761267204)},      // GoTo's payload timestamp style
		{"2024-04-10T15:01:07Z", time.Unix(1712761267, 0)},               // no fraction
		{"2024-04-10T17:01:07.204+02:00", time.UnixMilli(1712761267204)}, // offset
		{"2024-04-10T15:01:07.204999999Z", time.Unix(1712761267, 204999999)},
		{"", time.Time{}},
		{"9223372036854775808", time.Time{}},           // overflows int64
		{"-1700000000", time.Time{}},                   // signed
		{"+1700000000", time.Time{}},                   // signed
		{"1700000000.5", time.Time{}},                  // fractional epoch
		{" 1700000000", time.Time{}},                   // net/http trims; anything else is not ours
		{"1.7e9", time.Time{}},                         // exponent
		{"2024-04-10T15:01:07", time.Time{}},           // ISO-8601 without a zone: which one?
		{"2024-04-10", time.Time{}},                    // date only
		{"Wed, 10 Apr 2024 15:01:07 GMT", time.Time{}}, // HTTP-date
		{"2024-13-10T15:01:07Z", time.Time{}},          // month 13
		{"yesterday", time.Time{}},
		{strings.Repeat("1", 65), time.Time{}}, // over the length bound
		{"١٧٠٠٠٠٠٠٠٠", time.Time{}},            // Arabic-Indic digits
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTimestamp(tt.in)
			if tt.want.IsZero() {
				if !errors.Is(err, ErrBadTimestamp) {
					t.Fatalf("ParseTimestamp(%q) = %v, %v; want ErrBadTimestamp", tt.in, got, err)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Fatalf("ParseTimestamp(%q) = %v, %v; want %v in UTC", tt.in, got, err, tt.want.UTC())
			}
		})
	}
}

func TestCheckTimestamp(t *testing.T) {
	now := time.Date(2024, 4, 10, 15, 0, 0, 0, time.UTC) // the injected clock
	const tol = 5 * time.Minute
	ms := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).UnixMilli(), 10) }
	s := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	iso := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }

	tests := []struct {
		name string
		v    string
		want error
	}{
		{"now, epoch ms", ms(0), nil},
		{"now, epoch s", s(0), nil},
		{"now, RFC 3339", iso(0), nil},
		{"exactly tolerance ago", ms(-tol), nil},
		{"exactly tolerance ahead", ms(tol), nil},
		{"a millisecond too old", ms(-tol - time.Millisecond), ErrStaleTimestamp},
		{"a millisecond too far ahead", ms(tol + time.Millisecond), ErrStaleTimestamp},
		{"an hour old, epoch s", s(-time.Hour), ErrStaleTimestamp},
		{"an hour ahead, RFC 3339", iso(time.Hour), ErrStaleTimestamp},
		{"the epoch", "0", ErrStaleTimestamp},
		// Far-future instants saturate now.Sub; negating that overflowed in a naive check.
		{"30,000 years ahead, epoch s", "999999999999", ErrStaleTimestamp},
		{"int64 max ms", "9223372036854775807", ErrStaleTimestamp},
		{"year 9999", "9999-12-31T23:59:59Z", ErrStaleTimestamp},
		{"year 0", "0000-01-01T00:00:00Z", ErrStaleTimestamp},
		{"unparseable", "yesterday", ErrBadTimestamp},
		{"empty", "", ErrBadTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckTimestamp(tt.v, now, tol); !errors.Is(err, tt.want) {
				t.Fatalf("CheckTimestamp(%q) = %v, want %v", tt.v, err, tt.want)
			}
		})
	}
}

func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"1700000000000", "1700000000", "2024-04-10T15:01:07.204Z", "", "-1", "9223372036854775808"} {
		f.Add(s)
	}
	now := time.Date(2024, 4, 10, 15, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		ts, err := ParseTimestamp(v)
		cerr := CheckTimestamp(v, now, time.Hour)
		if err != nil {
			if !errors.Is(err, ErrBadTimestamp) || !errors.Is(cerr, ErrBadTimestamp) {
				t.Fatalf("ParseTimestamp(%q) = %v, CheckTimestamp = %v; want ErrBadTimestamp from both", v, err, cerr)
			}
			return
		}
		// Whatever parses is judged by its distance from now alone.
		inside := !ts.Before(now.Add(-time.Hour)) && !ts.After(now.Add(time.Hour))
		if inside != (cerr == nil) || (!inside && !errors.Is(cerr, ErrStaleTimestamp)) {
			t.Fatalf("%q parses to %v; CheckTimestamp = %v, inside the window: %v", v, ts, cerr, inside)
		}
	})
}
