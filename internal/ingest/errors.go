package ingest

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/turnout-analytics/turnout/internal/domain"
	"github.com/turnout-analytics/turnout/internal/webhook"
)

// ErrUnavailable marks a delivery that could not be stored because the database failed
// (or the service is shutting down). The sender should retry: it is answered 503.
var ErrUnavailable = errors.New("ingest: storage unavailable")

var (
	errTooLarge = errors.New("request body too large")
	errReadBody = errors.New("read request body")
)

// Pre-encoded response bodies for the hot path.
var (
	bodyStored      = []byte(`{"status":"stored"}` + "\n")
	bodyDuplicate   = []byte(`{"status":"duplicate"}` + "\n")
	bodyUnverified  = []byte(`{"status":"unverified"}` + "\n")
	bodyMissingTS   = []byte(`{"error":"unauthorized","reason":"missing_timestamp"}` + "\n")
	bodyBusy        = []byte(`{"error":"busy"}` + "\n")
	bodyMissingSig  = []byte(`{"error":"unauthorized","reason":"missing_signature"}` + "\n")
	bodyBadSig      = []byte(`{"error":"unauthorized","reason":"bad_signature"}` + "\n")
	bodyStaleTS     = []byte(`{"error":"unauthorized","reason":"stale_timestamp"}` + "\n")
	bodyBadTS       = []byte(`{"error":"unauthorized","reason":"bad_timestamp"}` + "\n")
	bodyTooLarge    = []byte(`{"error":"too_large"}` + "\n")
	bodyUnavailable = []byte(`{"error":"unavailable"}` + "\n")
	bodyBadRequest  = []byte(`{"error":"bad_request"}` + "\n")
	bodyInternal    = []byte(`{"error":"internal"}` + "\n")
)

// errorResponse maps every error the callback can meet to its HTTP status and body. It is
// the only place that decides status codes for failures:
//
//	413 too_large                 body over the limit (Content-Length or streamed)
//	401 unauthorized              signature missing or wrong (enforce mode; kept in the
//	                              unverified store); or a verified delivery refused by
//	                              the timestamp rules: header missing while required
//	                              (or the window is on), stale, or unparseable
//	400 invalid                   body is not acceptable JSON at all: malformed_json,
//	                              invalid_utf8, duplicate_key, too_deep (quarantined)
//	422 invalid                   JSON that cannot be keyed: missing_event_key,
//	                              event_key_too_long, missing_event_name, missing_key,
//	                              invalid_key (quarantined)
//	400 bad_request               the body could not be read (client aborted)
//	503 busy                      the bytes of bodies being read are at their budget
//	503 unavailable               database down or shutting down: retry later
//	500 internal                  anything else (a bug)
func errorResponse(err error) (int, []byte) {
	var ve *domain.ValidationError
	switch {
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge, bodyTooLarge
	case errors.Is(err, webhook.ErrMissingSignature):
		return http.StatusUnauthorized, bodyMissingSig
	case errors.Is(err, webhook.ErrBadSignature):
		return http.StatusUnauthorized, bodyBadSig
	case errors.Is(err, webhook.ErrStaleTimestamp):
		return http.StatusUnauthorized, bodyStaleTS
	case errors.Is(err, webhook.ErrBadTimestamp):
		return http.StatusUnauthorized, bodyBadTS
	case errors.Is(err, webhook.ErrMissingTimestamp):
		return http.StatusUnauthorized, bodyMissingTS
	case errors.Is(err, errBusy):
		return http.StatusServiceUnavailable, bodyBusy
	case errors.As(err, &ve):
		return validationStatus(ve.Reason), validationBody(ve)
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable, bodyUnavailable
	case errors.Is(err, errReadBody):
		return http.StatusBadRequest, bodyBadRequest
	default:
		return http.StatusInternalServerError, bodyInternal
	}
}

// validationStatus separates "not JSON we can read" (400) from "JSON that cannot be
// keyed" (422), so a sender's dashboard tells transport corruption
// apart from a contract change.
func validationStatus(reason string) int {
	switch reason {
	case domain.ReasonMalformedJSON, domain.ReasonInvalidUTF8, domain.ReasonDuplicateKey, domain.ReasonTooDeep:
		return http.StatusBadRequest
	default:
		return http.StatusUnprocessableEntity
	}
}

func validationBody(ve *domain.ValidationError) []byte {
	// Reason and Detail never hold payload values (domain's contract), so they are safe
	// to echo to the sender.
	b, err := json.Marshal(struct {
		Error  string `json:"error"`
		Reason string `json:"reason"`
		Detail string `json:"detail"`
	}{"invalid", ve.Reason, ve.Detail})
	if err != nil {
		return bodyInternal
	}
	return append(b, '\n')
}
