package g2wsim

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"
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

// errNotFound reports an unknown (or not yet visible) webhook or subscription key.
var errNotFound = errors.New("not found")

type secretKey struct {
	id        int64
	value     string
	validFrom time.Time
}

type webhookRec struct {
	key          string // a UUID, as live GoTo's
	eventName    string
	eventVersion string
	product      string
	callbackURL  string
	state        State
	created      time.Time
	visibleAt    time.Time // creation is eventually consistent: unseen before this
}

type subscriptionRec struct {
	key         string // 19 digits, sent as a JSON integer
	webhookKey  string
	userKey     string // the organizer whose token created it
	callbackURL string
	state       State
	created     time.Time
	visibleAt   time.Time
}

// store is the emulator's state: what GoTo keeps per developer application. One mutex is
// enough; the management API is low-traffic and the delivery engine only reads.
//
// Every read takes the time: a record created less than the visibility delay ago does not
// exist yet for any call or delivery, as on live GoTo, whose integrations wait about 2 s
// between creating and activating a webhook.
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

// subscriptionKeyBase starts the 19-digit user subscription keys.
const subscriptionKeyBase = 3300000000000000000

// newSubscriptionKey returns a fresh key. Callers hold mu.
func (s *store) newSubscriptionKey() string {
	s.next++
	return strconv.FormatInt(subscriptionKeyBase+s.next, 10)
}

func (s *store) addSecret(value string, validFrom time.Time) secretKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := secretKey{id: int64(len(s.secrets) + 1), value: value, validFrom: validFrom}
	s.secrets = append(s.secrets, k)
	return k
}

// signingKey returns the key GoTo signs with at now: of the keys already valid, the one that
// became valid last (creation order breaks ties). A rotation is a key created with a future
// validFrom; it takes over when that time comes, and not before.
func (s *store) signingKey(now time.Time) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *secretKey
	for i, k := range s.secrets {
		if k.validFrom.After(now) {
			continue
		}
		if best == nil || !k.validFrom.Before(best.validFrom) {
			best = &s.secrets[i]
		}
	}
	if best == nil {
		return "", false
	}
	return best.value, true
}

func visible(at, now time.Time) bool { return !now.Before(at) }

func (s *store) addWebhooks(items []webhookRec, now time.Time, delay time.Duration) []webhookRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]webhookRec, len(items))
	for i, w := range items {
		w.state = StateInactive // live GoTo creates webhooks INACTIVE
		w.created = now.UTC()
		w.visibleAt = now.Add(delay)
		s.webhooks[w.key] = &w
		out[i] = w
	}
	return out
}

// webhookLocked returns the visible webhook key. Callers hold mu.
func (s *store) webhookLocked(key string, now time.Time) (*webhookRec, bool) {
	w, ok := s.webhooks[key]
	if !ok || !visible(w.visibleAt, now) {
		return nil, false
	}
	return w, true
}

func (s *store) webhook(key string, now time.Time) (webhookRec, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.webhookLocked(key, now)
	if !ok {
		return webhookRec{}, errNotFound
	}
	return *w, nil
}

func (s *store) listWebhooks(product string, now time.Time) []webhookRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]webhookRec, 0, len(s.webhooks))
	for _, w := range s.webhooks {
		if w.product == product && visible(w.visibleAt, now) {
			out = append(out, *w)
		}
	}
	// Creation order, so a listing reads like the set-up; UUIDs break ties.
	slices.SortFunc(out, func(a, b webhookRec) int { return cmp.Or(a.created.Compare(b.created), strings.Compare(a.key, b.key)) })
	return out
}

// change is one entry of a PUT /webhooks or PUT /userSubscriptions; empty fields are left as
// they are.
type change struct {
	key         string
	webhookKey  string // PUT /userSubscriptions: the subscription's webhook, which must match
	state       State
	callbackURL string
}

// updateWebhooks applies all changes or, when a key is unknown, none.
func (s *store) updateWebhooks(changes []change, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range changes {
		if _, ok := s.webhookLocked(c.key, now); !ok {
			return errNotFound
		}
	}
	for _, c := range changes {
		w := s.webhooks[c.key]
		if c.state != "" {
			w.state = c.state
		}
		if c.callbackURL != "" {
			w.callbackURL = c.callbackURL
		}
	}
	return nil
}

// deleteWebhooks deletes all the webhooks, and their subscriptions, or, when a key is unknown,
// nothing.
func (s *store) deleteWebhooks(keys []string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if _, ok := s.webhookLocked(k, now); !ok {
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
func (s *store) addSubscriptions(items []subscriptionRec, now time.Time, delay time.Duration) ([]subscriptionView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range items {
		if _, ok := s.webhookLocked(it.webhookKey, now); !ok {
			return nil, errNotFound
		}
	}
	out := make([]subscriptionView, len(items))
	for i, it := range items {
		it.key = s.newSubscriptionKey()
		it.created = now.UTC()
		it.visibleAt = now.Add(delay)
		s.subs[it.key] = &it
		out[i] = s.viewLocked(&it)
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

// subscriptionLocked returns user's visible subscription key: a user sees only their own.
// Callers hold mu.
func (s *store) subscriptionLocked(key, user string, now time.Time) (*subscriptionRec, bool) {
	sub, ok := s.subs[key]
	if !ok || sub.userKey != user || !visible(sub.visibleAt, now) {
		return nil, false
	}
	return sub, true
}

func (s *store) subscription(key, user string, now time.Time) (subscriptionView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subscriptionLocked(key, user, now)
	if !ok {
		return subscriptionView{}, errNotFound
	}
	return s.viewLocked(sub), nil
}

// listSubscriptions returns user's visible subscriptions.
func (s *store) listSubscriptions(user string, now time.Time) []subscriptionView {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]subscriptionView, 0, len(s.subs))
	for _, sub := range s.subs {
		if sub.userKey == user && visible(sub.visibleAt, now) {
			out = append(out, s.viewLocked(sub))
		}
	}
	slices.SortFunc(out, func(a, b subscriptionView) int { return cmpKey(a.key, b.key) })
	return out
}

// updateSubscriptions applies all of user's changes or, when a key is unknown or names
// another webhook, none.
func (s *store) updateSubscriptions(changes []change, user string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range changes {
		sub, ok := s.subscriptionLocked(c.key, user, now)
		if !ok || sub.webhookKey != c.webhookKey {
			return errNotFound
		}
	}
	for _, c := range changes {
		sub := s.subs[c.key]
		if c.state != "" {
			sub.state = c.state
		}
		if c.callbackURL != "" {
			sub.callbackURL = c.callbackURL
		}
	}
	return nil
}

// deleteSubscriptions deletes all of user's subscriptions keys or, when a key is unknown,
// none.
func (s *store) deleteSubscriptions(keys []string, user string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if _, ok := s.subscriptionLocked(k, user, now); !ok {
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
	// Secret is the signing key value: the one valid when the target was resolved.
	Secret string
}

// targets returns where an event named eventName of organizer goes at now: one target per
// visible ACTIVE subscription of organizer to a visible ACTIVE webhook for that event. GoTo
// delivers an organizer's events only through a subscription made with their own token.
// Without a valid secret key nothing can be signed, so nothing is delivered.
func (s *store) targets(eventName, organizer string, now time.Time) []Target {
	secret, ok := s.signingKey(now)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Target
	for _, sub := range s.subs {
		if sub.state != StateActive || sub.userKey != organizer || !visible(sub.visibleAt, now) {
			continue
		}
		w, ok := s.webhookLocked(sub.webhookKey, now)
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
