// Package webhook implements GoToWebinar's delivery signature scheme.
//
// GoTo signs each delivery with HMAC-SHA256 over
//
//	X-Webhook-Signature-Timestamp + ":" + raw body
//
// (":" + body when the timestamp header is absent, as the one public verifier does:
// never the body alone), keyed with the
// secret key's value as plain bytes, and sends the standard Base64 of the
// digest, bare, in X-Webhook-Signature. The scheme is not documented by GoTo;
// it follows the one public implementation that verifies it (see
// shared/GOTO-FACTS.md). For signing, the timestamp is an opaque string,
// because its format is unknown. CheckTimestamp optionally reads it as a time
// for a replay window; it guesses between the plausible formats, which is why
// the window stays off until the format is confirmed against a live delivery.
//
// The package depends on the standard library only and does no I/O, so the
// HTTP layer decides how errors map to status codes.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"hash"
	"strings"
	"sync"
)

// HeaderSignature is the request header carrying the Base64 HMAC-SHA256 signature.
const HeaderSignature = "X-Webhook-Signature"

// HeaderTimestamp is the request header whose value is prefixed, with ":", to
// the body before signing. An absent header signs like an empty one: ":" + body.
//
// Signing the body alone when the header is absent would be a forgery hazard: a
// captured signature over ts + ":" + body would then also verify the body
// ts + ":" + body sent without the header.
const HeaderTimestamp = "X-Webhook-Signature-Timestamp"

var (
	// ErrMissingSignature reports an absent or blank signature header.
	ErrMissingSignature = errors.New("webhook: missing signature")
	// ErrBadSignature reports a signature that is not standard Base64 of a
	// SHA-256 digest or that matches none of the configured keys.
	ErrBadSignature = errors.New("webhook: bad signature")
)

// maxSigLen bounds the header we are willing to decode. Standard Base64 of a
// 32-byte digest is exactly 44 characters; anything longer cannot match, and
// refusing it early keeps a hostile header from costing a large decode.
const maxSigLen = (sha256.Size + 2) / 3 * 4 // 44

// Sign returns the standard Base64 HMAC-SHA256 signature of timestamp + ":" +
// body under key. timestamp == "" stands for an absent or empty header. Sign
// exists for tests and for tools that replay deliveries.
func Sign(key []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(timestamp))
	m.Write([]byte{':'})
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verifier checks signatures against a set of secret keys. Any configured
// key is accepted, because GoTo rotates keys by creating a new one with a
// future validFrom and it is not known which key signs during the overlap.
// A Verifier is safe for concurrent use.
type Verifier struct {
	// pool holds per-goroutine scratch: one keyed HMAC state per key plus
	// buffers, so a steady-state Verify allocates nothing. hmac's Reset
	// returns to the keyed state without re-hashing the key.
	pool sync.Pool
}

type scratch struct {
	macs []hash.Hash
	msg  []byte // timestamp + ":" (the body is written separately)
	in   []byte // the signature header text, copied to avoid a conversion allocation
	sum  [sha256.Size]byte
	sig  [maxSigLen]byte
}

// NewVerifier returns a Verifier accepting signatures made with any of keys.
// It fails when no key is given or a key is empty, because an empty HMAC key
// would make every signature forgeable by anyone who reads this code.
func NewVerifier(keys ...[]byte) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("webhook: new verifier: no secret key configured")
	}
	owned := make([][]byte, len(keys))
	for i, k := range keys {
		if len(k) == 0 {
			return nil, errors.New("webhook: new verifier: empty secret key")
		}
		// Copy so a caller reusing its buffer cannot change our keys.
		owned[i] = append([]byte(nil), k...)
	}
	v := &Verifier{}
	v.pool.New = func() any {
		s := &scratch{macs: make([]hash.Hash, len(owned))}
		for i, k := range owned {
			s.macs[i] = hmac.New(sha256.New, k)
		}
		return s
	}
	return v, nil
}

// Verify reports whether sig is a valid signature of timestamp + ":" + body
// under any configured key. Pass "" for an absent timestamp header: GoTo's
// scheme signs ":" + body then, exactly as for an empty header.
//
// Surrounding whitespace in sig is ignored. It returns ErrMissingSignature for
// a blank sig and ErrBadSignature for anything that is not strict standard
// Base64 of a matching digest. Every key is tried and compared in constant
// time, so timing reveals neither which key matched nor how much of the
// digest did.
func (v *Verifier) Verify(timestamp string, body []byte, sig string) error {
	sig = strings.TrimSpace(sig)
	if sig == "" {
		return ErrMissingSignature
	}
	// The decoder silently skips CR and LF inside the input; a signature
	// containing them is not what GoTo sends, so refuse instead of guessing.
	if len(sig) != maxSigLen || strings.ContainsAny(sig, "\r\n") {
		return ErrBadSignature
	}

	s := v.pool.Get().(*scratch)
	defer v.pool.Put(s)

	s.in = append(s.in[:0], sig...)
	n, err := base64.StdEncoding.Strict().Decode(s.sig[:], s.in)
	if err != nil || n != sha256.Size {
		return ErrBadSignature
	}
	want := s.sig[:n]

	s.msg = append(append(s.msg[:0], timestamp...), ':')
	match := 0
	for _, m := range s.macs {
		m.Reset()
		m.Write(s.msg)
		m.Write(body)
		// Accumulate without branching on the result so every key costs the
		// same whether or not an earlier one matched. (hmac.Equal is this same
		// comparison returning a bool; the int form lets us OR the results.)
		match |= subtle.ConstantTimeCompare(m.Sum(s.sum[:0]), want)
	}
	if match != 1 {
		return ErrBadSignature
	}
	return nil
}
