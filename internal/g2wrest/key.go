package g2wrest

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// DecimalKey is a GoTo key (webinarKey, sessionKey, registrantKey, organizerKey, …): the
// reporting API sends it as a JSON string in some answers and as a bare integer of up to 19
// digits in others. It is decoded without passing through float64 (which would round it) and
// kept as the decimal text, the form Turnout stores keys in.
type DecimalKey string

// UnmarshalJSON accepts "123" or 123; anything but decimal digits is an error.
func (k *DecimalKey) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*k = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("decode key: %w", err)
		}
		b = []byte(s)
	}
	if !decimal(b) {
		return fmt.Errorf("decode key: %.40q is not a decimal key", b)
	}
	*k = DecimalKey(b)
	return nil
}

// MarshalJSON writes the key as a JSON string, the form that survives every JSON reader.
func (k DecimalKey) MarshalJSON() ([]byte, error) {
	return json.Marshal(string(k))
}

// decimal reports whether b is 1 to 19 ASCII digits (GoTo's keys fit an int64).
func decimal(b []byte) bool {
	if len(b) == 0 || len(b) > 19 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
