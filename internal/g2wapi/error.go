package g2wapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// APIError is a non-2xx answer from the GoTo API. Methods return it unwrapped, so a caller can
// print it as one line and match it with errors.As.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Message is GoTo's explanation, taken from the error body; empty if it gave none.
	Message string
}

// Error returns one line: "GoTo API: 403 Forbidden: <message>".
func (e *APIError) Error() string {
	s := fmt.Sprintf("GoTo API: %d %s", e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// maxMessage bounds the message taken from a non-JSON error body (an HTML error page, say).
const maxMessage = 200

// newAPIError builds an APIError from a response status and body. GoTo's error bodies come in
// several shapes across its APIs ({"description"}, {"message"}, {"msg"}, OAuth's
// {"error", "error_description"}), so the first non-empty known field wins; a body that is not
// JSON is used as text, on one line and shortened.
func newAPIError(status int, body []byte) *APIError {
	var fields map[string]any
	if json.Unmarshal(body, &fields) == nil {
		for _, name := range []string{"description", "message", "msg", "error_description", "error", "errorCode"} {
			if s, ok := fields[name].(string); ok && strings.TrimSpace(s) != "" {
				return &APIError{Status: status, Message: oneLine(s)}
			}
		}
		return &APIError{Status: status}
	}
	return &APIError{Status: status, Message: oneLine(string(body))}
}

// oneLine collapses whitespace (newlines included) and shortens s to maxMessage bytes,
// on a UTF-8 boundary.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
