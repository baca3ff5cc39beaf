package g2wapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// This file decodes both the spec's response shapes and live GoTo's (see GOTO-FACTS.md,
// "Management API"): HAL lists under "_embedded", `state` for `webhookState`,
// `userSubscriptionKey` for `subscriptionKey`, numeric ids.

// wireWebhook is a webhook as either shape carries it.
type wireWebhook struct {
	WebhookKey   flexKey  `json:"webhookKey"`
	EventName    string   `json:"eventName"`
	EventVersion string   `json:"eventVersion"`
	Product      string   `json:"product"`
	CallbackURL  string   `json:"callbackUrl"`
	WebhookState string   `json:"webhookState"` // the spec's name
	State        string   `json:"state"`        // live GoTo's name
	CreateTime   flexTime `json:"createTime"`
}

func (w wireWebhook) webhook() Webhook {
	return Webhook{
		Key:          string(w.WebhookKey),
		EventName:    w.EventName,
		EventVersion: w.EventVersion,
		Product:      w.Product,
		CallbackURL:  w.CallbackURL,
		State:        State(firstNonEmpty(w.State, w.WebhookState)),
		CreatedAt:    time.Time(w.CreateTime),
	}
}

// wireUserSubscription is a user subscription as either shape carries it.
type wireUserSubscription struct {
	SubscriptionKey       flexKey `json:"subscriptionKey"`     // the spec's name
	UserSubscriptionKey   flexKey `json:"userSubscriptionKey"` // live GoTo's name
	UserKey               flexKey `json:"userKey"`
	WebhookKey            flexKey `json:"webhookKey"`
	CallbackURL           string  `json:"callbackUrl"`
	UserSubscriptionState string  `json:"userSubscriptionState"`
	ActivationState       string  `json:"activationState"` // live only
}

func (w wireUserSubscription) userSubscription() UserSubscription {
	return UserSubscription{
		Key:             firstNonEmpty(string(w.UserSubscriptionKey), string(w.SubscriptionKey)),
		WebhookKey:      string(w.WebhookKey),
		UserKey:         string(w.UserKey),
		CallbackURL:     w.CallbackURL,
		State:           State(w.UserSubscriptionState),
		ActivationState: State(w.ActivationState),
	}
}

// wireSecretKey is a secret key as either shape carries it: the spec's {secretKey} or live
// GoTo's {value, validFrom, id}.
type wireSecretKey struct {
	SecretKey string   `json:"secretKey"`
	Value     string   `json:"value"`
	ValidFrom flexTime `json:"validFrom"`
	ID        flexKey  `json:"id"`
}

// Embedded list names in live GoTo's HAL responses.
const (
	embeddedWebhooks          = "webhooks"
	embeddedUserSubscriptions = "userSubscriptions"
)

// decodeList decodes a list response in any of its shapes: a bare array (the spec's lists),
// {"_embedded": {name: [...]}} (live GoTo), or, when single is true, one bare object (the
// spec's create responses). An object without "_embedded" in a list response is an empty HAL
// list, which GoTo-style APIs answer with the list omitted.
func decodeList[T any](body []byte, name string, single bool) ([]T, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, nil
	}
	switch body[0] {
	case '[':
		var items []T
		err := json.Unmarshal(body, &items)
		return items, err
	case '{':
		var hal struct {
			Embedded map[string]json.RawMessage `json:"_embedded"`
		}
		if err := json.Unmarshal(body, &hal); err != nil {
			return nil, err
		}
		if hal.Embedded != nil {
			var items []T
			if raw, ok := hal.Embedded[name]; ok {
				if err := json.Unmarshal(raw, &items); err != nil {
					return nil, err
				}
			}
			return items, nil
		}
		if !single {
			return nil, nil
		}
		var item T
		if err := json.Unmarshal(body, &item); err != nil {
			return nil, err
		}
		return []T{item}, nil
	default:
		return nil, fmt.Errorf("unexpected JSON starting %q", body[0])
	}
}

// flexKey is an identifier sent as a JSON string or a JSON integer (GoTo's keys can be up to 19
// digits, so the digits are kept as text, never passed through float64).
type flexKey string

// UnmarshalJSON accepts a string, an integer or null.
func (k *flexKey) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*k = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*k = flexKey(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("decode key: %s is neither a string nor a number", b)
	}
	*k = flexKey(n.String())
	return nil
}

// timeLayouts are the timestamp forms accepted: RFC 3339 (the spec's date-time) and the
// Java-style forms GoTo's other APIs use (offset without a colon, or none).
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
}

// flexTime is a timestamp sent as an ISO-8601 string or as epoch milliseconds.
type flexTime time.Time

// UnmarshalJSON accepts a string in one of timeLayouts, an integer of epoch milliseconds, or
// null/"" (the zero time).
func (t *flexTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = flexTime{}
		return nil
	}
	if len(b) > 0 && b[0] != '"' {
		var ms int64
		if err := json.Unmarshal(b, &ms); err != nil {
			return fmt.Errorf("decode time: %s is neither a string nor epoch milliseconds", b)
		}
		*t = flexTime(time.UnixMilli(ms).UTC())
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s == "" {
		*t = flexTime{}
		return nil
	}
	for _, layout := range timeLayouts {
		if v, err := time.Parse(layout, s); err == nil {
			*t = flexTime(v.UTC())
			return nil
		}
	}
	return fmt.Errorf("decode time: unrecognised format %q", s)
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
