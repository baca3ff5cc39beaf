package g2wsim

import (
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"
)

// State is the state of a webhook or a user subscription.
type State string

// The two states; events are delivered only when the webhook and its user subscription are
// both ACTIVE.
const (
	StateActive   State = "ACTIVE"
	StateInactive State = "INACTIVE"
)

func (s State) valid() bool { return s == StateActive || s == StateInactive }

// errNotFound reports an unknown webhook or subscription key.
var errNotFound = errors.New("not found")

type secretKey struct {
	id        int64
	value     string
	validFrom time.Time
}

type webhookRec struct {
	key          string
	eventName    string
	eventVersion string
	product      string
	callbackURL  string
	state        State
	created      time.Time
}

type subscriptionRec struct {
	key         string
	webhookKey  string
	userKey     string
	callbackURL string
	state       State
}

// store is the emulator's state: what GoTo keeps per developer application. One mutex is
// enough; the management API is low-traffic and the delivery engine only reads.
type store struct {
	mu       sync.Mutex
	next     int64
	secrets  []secretKey // in creation order
	webhooks map[string]*webhookRec
	subs     map[string]*subscriptionRec
}

func newStore() *store {
	return &store{webhooks: map[string]*webhookRec{}, subs: map[string]*subscriptionRec{}}
}

// newKey returns a fresh key shaped like live GoTo's 19-digit numeric keys. Callers hold mu.
func (s *store) newKey(base int64) string {
	s.next++
	return strconv.FormatInt(base+s.next, 10)
}

const (
	webhookKeyBase      = 2200000000000000000
	subscriptionKeyBase = 3300000000000000000
)

func (s *store) addSecret(value string, validFrom time.Time) secretKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := secretKey{id: int64(len(s.secrets) + 1), value: value, validFrom: validFrom}
	s.secrets = append(s.secrets, k)
	return k
}

// signingKey returns the newest key already valid at now: live GoTo's rotation is a key created
// with a future validFrom, which takes over once that time comes.
func (s *store) signingKey(now time.Time) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range slices.Backward(s.secrets) {
		if !k.validFrom.After(now) {
			return k.value, true
		}
	}
	return "", false
}

func (s *store) addWebhooks(items []webhookRec, now time.Time) []webhookRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]webhookRec, len(items))
	for i, w := range items {
		w.key = s.newKey(webhookKeyBase)
		w.state = StateInactive // live GoTo creates webhooks INACTIVE
		w.created = now.UTC()
		s.webhooks[w.key] = &w
		out[i] = w
	}
	return out
}

func (s *store) webhook(key string) (webhookRec, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.webhooks[key]
	if !ok {
		return webhookRec{}, errNotFound
	}
	return *w, nil
}

func (s *store) listWebhooks(product string) []webhookRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]webhookRec, 0, len(s.webhooks))
	for _, w := range s.webhooks {
		if product == "" || w.product == product {
			out = append(out, *w)
		}
	}
	slices.SortFunc(out, func(a, b webhookRec) int { return cmpKey(a.key, b.key) })
	return out
}

// change is one entry of a PUT /webhooks or PUT /userSubscriptions; empty fields are left as
// they are.
type change struct {
	key         string
	state       State
	callbackURL string
}

// updateWebhooks applies all changes or, when a key is unknown, none.
func (s *store) updateWebhooks(changes []change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return applyChanges(s.webhooks, changes, func(w *webhookRec) (*State, *string) { return &w.state, &w.callbackURL })
}

// applyChanges applies changes to the records of m whose state and callback URL fields
// returns, all of them or, when a key is unknown, none.
func applyChanges[R any](m map[string]*R, changes []change, fields func(*R) (*State, *string)) error {
	for _, c := range changes {
		if _, ok := m[c.key]; !ok {
			return errNotFound
		}
	}
	for _, c := range changes {
		state, callbackURL := fields(m[c.key])
		if c.state != "" {
			*state = c.state
		}
		if c.callbackURL != "" {
			*callbackURL = c.callbackURL
		}
	}
	return nil
}

// deleteWebhooks deletes all the webhooks, and their subscriptions, or, when a key is unknown,
// nothing.
func (s *store) deleteWebhooks(keys []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if _, ok := s.webhooks[k]; !ok {
			return errNotFound
		}
	}
	for _, k := range keys {
		delete(s.webhooks, k)
		for sk, sub := range s.subs {
			if sub.webhookKey == k {
				delete(s.subs, sk)
			}
		}
	}
	return nil
}

// addSubscriptions creates all the subscriptions or, when a webhook key is unknown, none.
func (s *store) addSubscriptions(items []subscriptionRec) ([]subscriptionRec, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range items {
		if _, ok := s.webhooks[it.webhookKey]; !ok {
			return nil, errNotFound
		}
	}
	out := make([]subscriptionRec, len(items))
	for i, it := range items {
		it.key = s.newKey(subscriptionKeyBase)
		s.subs[it.key] = &it
		out[i] = it
	}
	return out, nil
}

// subscriptionView is a subscription with its derived activation state.
type subscriptionView struct {
	subscriptionRec
	activation State
}

// viewLocked derives live GoTo's activationState. Callers hold mu.
func (s *store) viewLocked(sub *subscriptionRec) subscriptionView {
	v := subscriptionView{subscriptionRec: *sub, activation: StateInactive}
	if w, ok := s.webhooks[sub.webhookKey]; ok && w.state == StateActive && sub.state == StateActive {
		v.activation = StateActive
	}
	return v
}

func (s *store) subscription(key string) (subscriptionView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs[key]
	if !ok {
		return subscriptionView{}, errNotFound
	}
	return s.viewLocked(sub), nil
}

func (s *store) listSubscriptions() []subscriptionView {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]subscriptionView, 0, len(s.subs))
	for _, sub := range s.subs {
		out = append(out, s.viewLocked(sub))
	}
	slices.SortFunc(out, func(a, b subscriptionView) int { return cmpKey(a.key, b.key) })
	return out
}

// updateSubscriptions applies all changes or, when a key is unknown, none.
func (s *store) updateSubscriptions(changes []change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return applyChanges(s.subs, changes, func(sub *subscriptionRec) (*State, *string) { return &sub.state, &sub.callbackURL })
}

// deleteSubscriptions deletes all the subscriptions or, when a key is unknown, none.
func (s *store) deleteSubscriptions(keys []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if _, ok := s.subs[k]; !ok {
			return errNotFound
		}
	}
	for _, k := range keys {
		delete(s.subs, k)
	}
	return nil
}

// Target is one callback an event is delivered to.
type Target struct {
	// URL is the callback: the subscription's, else its webhook's.
	URL string
	// Secret is the signing key value.
	Secret string
}

// targets returns where an event named eventName goes now: one target per ACTIVE subscription
// of an ACTIVE webhook for that event. Without a valid secret key nothing can be signed, so
// nothing is delivered.
func (s *store) targets(eventName string, now time.Time) []Target {
	secret, ok := s.signingKey(now)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Target
	for _, sub := range s.subs {
		if sub.state != StateActive {
			continue
		}
		w, ok := s.webhooks[sub.webhookKey]
		if !ok || w.state != StateActive || w.eventName != eventName {
			continue
		}
		url := sub.callbackURL
		if url == "" {
			url = w.callbackURL
		}
		out = append(out, Target{URL: url, Secret: secret})
	}
	slices.SortFunc(out, func(a, b Target) int { return cmpKey(a.URL, b.URL) })
	return out
}

// cmpKey orders keys of equal length numerically, so listings are stable.
func cmpKey(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
