package reconcile

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/turnout-analytics/turnout/internal/eventlog"
)

// The events reconcile appends to the log: Turnout's own names, never GoTo's, so a reader of
// the log always knows which facts came from a webhook and which from the REST API.
const (
	NameWebinar    = "turnout.webinar.snapshot"    // a webinar, as the webinars list answers it
	NameSession    = "turnout.session.snapshot"    // a past session: actual start and end
	NameRegistrant = "turnout.registrant.snapshot" // a registrant, as the registrants list answers it
	NameAttendance = "turnout.attendance.snapshot" // an attendee of a session, with join/leave intervals
)

// Source is the metadata source of every event reconcile appends.
const Source = "rest"

// header is the envelope of a snapshot event. Keys are decimal text whatever the API sent;
// the item itself follows as "snapshot", byte for byte as fetched.
type header struct {
	EventName     string `json:"eventName"`
	EventKey      string `json:"eventKey"`
	EventVersion  string `json:"eventVersion"`
	Source        string `json:"source"`
	OrganizerKey  string `json:"organizerKey"`
	WebinarKey    string `json:"webinarKey"`
	SessionKey    string `json:"sessionKey,omitempty"`
	RegistrantKey string `json:"registrantKey,omitempty"`
	FetchedAt     string `json:"fetchedAt"`
}

// scope is where a snapshot belongs: the keys that, with the fetched bytes, identify it.
type scope struct {
	organizer, webinar, session, registrant string
}

// snapshot returns the log record of one fetched item.
//
// Its eventKey is a hash of the event name, the scope and the raw item, so fetching the same
// unchanged item again gives the same key, which the log's dedup refuses: a second run over
// unchanged data appends nothing, and a changed item appends a new snapshot. fetchedAt is
// left out of the hash for that reason. The key is shaped like a UUID (version 8, RFC 9562's
// custom version), the shape of GoTo's own eventKeys.
func snapshot(name string, s scope, raw json.RawMessage, fetchedAt time.Time) (eventlog.OwnEvent, error) {
	h := sha256.New()
	for _, part := range []string{name, s.organizer, s.webinar, s.session, s.registrant} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	h.Write(raw)
	sum := h.Sum(nil)
	sum[6] = sum[6]&0x0f | 0x80 // version 8
	sum[8] = sum[8]&0x3f | 0x80 // RFC 9562 variant
	key := fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
	head, err := json.Marshal(header{EventName: name, EventKey: key, EventVersion: "1.0.0", Source: Source,
		OrganizerKey: s.organizer, WebinarKey: s.webinar, SessionKey: s.session, RegistrantKey: s.registrant,
		FetchedAt: fetchedAt.UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return eventlog.OwnEvent{}, fmt.Errorf("encode %s: %w", name, err)
	}
	// json.Marshal would compact and re-escape the item: append its bytes unchanged instead.
	payload := make([]byte, 0, len(head)+len(raw)+16)
	payload = append(payload, head[:len(head)-1]...)
	payload = append(payload, `,"snapshot":`...)
	payload = append(payload, raw...)
	payload = append(payload, '}')
	return eventlog.OwnEvent{Payload: payload, EventName: name, EventKey: key, Source: Source, ReceivedAt: fetchedAt}, nil
}
