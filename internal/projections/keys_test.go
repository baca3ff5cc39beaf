package projections

import (
	"bytes"
	"encoding/json"
	"testing"
)

type keys struct{ name, webinar, registrant string }

// parseKeys reads the event name and keys with json.Number, so 19-digit integer keys keep
// their digits and compare equal to the same key sent as a string.
func parseKeys(t *testing.T, payload []byte) keys {
	t.Helper()
	var p struct {
		EventName     string `json:"eventName"`
		WebinarKey    any    `json:"webinarKey"`
		RegistrantKey any    `json:"registrantKey"`
	}
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	if err := d.Decode(&p); err != nil {
		t.Fatalf("parse generated payload: %v", err)
	}
	str := func(v any) string {
		switch v := v.(type) {
		case json.Number:
			return v.String()
		case string:
			return v
		}
		return ""
	}
	return keys{p.EventName, str(p.WebinarKey), str(p.RegistrantKey)}
}
