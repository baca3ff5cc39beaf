package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

var (
	vectorKey  = []byte("f1679e36-17fe-48fa-93da-44195fd9e293")
	vectorTS   = "1700000000000"
	vectorBody = []byte(`{"eventName":"registrant.joined"}`)
	vectorSig  = "Awlj9khaE6Aw5LnMc6AEV7ssTf96+QL6wd2GWH5AuEo="
)

func TestSignVector(t *testing.T) {
	if got := Sign(vectorKey, vectorTS, vectorBody); got != vectorSig {
		t.Fatalf("Sign = %q, want %q", got, vectorSig)
	}
}

func TestNewVerifier(t *testing.T) {
	if _, err := NewVerifier(); err == nil {
		t.Error("NewVerifier() with no key: want error")
	}
	if _, err := NewVerifier(vectorKey, nil); err == nil {
		t.Error("NewVerifier with an empty key: want error")
	}
	if _, err := NewVerifier(vectorKey, []byte{}); err == nil {
		t.Error("NewVerifier with a zero-length key: want error")
	}
}

func TestVerifierCopiesKeys(t *testing.T) {
	k := append([]byte(nil), vectorKey...)
	v, err := NewVerifier(k)
	if err != nil {
		t.Fatal(err)
	}
	k[0] = 'x'
	if err := v.Verify(vectorTS, vectorBody, vectorSig); err != nil {
		t.Fatalf("Verify after caller mutated its key slice: %v", err)
	}
}

func TestVerify(t *testing.T) {
	other := []byte("0b1c2d3e-aaaa-bbbb-cccc-ddddeeeeffff")
	noTSSig := Sign(vectorKey, "", vectorBody)
	// The body "ts:body" with no timestamp header must not borrow the signature of the
	// timestamped delivery: the absent header signs ":" + body, never the body alone.
	spliced := []byte(vectorTS + ":" + string(vectorBody))
	urlSafe := base64.URLEncoding.EncodeToString(mustDecode(t, vectorSig))
	if urlSafe == vectorSig {
		t.Fatal("test vector has no URL-unsafe characters; pick another")
	}

	tests := []struct {
		name string
		keys [][]byte
		ts   string
		body []byte
		sig  string
		want error
	}{
		{"vector", [][]byte{vectorKey}, vectorTS, vectorBody, vectorSig, nil},
		{"surrounding whitespace", [][]byte{vectorKey}, vectorTS, vectorBody, " \t" + vectorSig + " ", nil},
		{"no timestamp header signs colon and body", [][]byte{vectorKey}, "", vectorBody, noTSSig, nil},
		{"ts:body as the body without the header", [][]byte{vectorKey}, "", spliced, vectorSig, ErrBadSignature},
		{"body alone is not what is signed", [][]byte{vectorKey}, "", vectorBody, rawHMAC(vectorKey, vectorBody), ErrBadSignature},
		{"wrong key", [][]byte{other}, vectorTS, vectorBody, vectorSig, ErrBadSignature},
		{"second key of several", [][]byte{other, vectorKey, []byte("third")}, vectorTS, vectorBody, vectorSig, nil},
		{"tampered body", [][]byte{vectorKey}, vectorTS, []byte(`{"eventName":"registrant.added"}`), vectorSig, ErrBadSignature},
		{"tampered timestamp", [][]byte{vectorKey}, "1700000000001", vectorBody, vectorSig, ErrBadSignature},
		{"timestamp dropped", [][]byte{vectorKey}, "", vectorBody, vectorSig, ErrBadSignature},
		{"empty sig", [][]byte{vectorKey}, vectorTS, vectorBody, "", ErrMissingSignature},
		{"blank sig", [][]byte{vectorKey}, vectorTS, vectorBody, "  \t ", ErrMissingSignature},
		{"garbage base64", [][]byte{vectorKey}, vectorTS, vectorBody, "not base64 at all!!", ErrBadSignature},
		{"garbage of the right length", [][]byte{vectorKey}, vectorTS, vectorBody, strings.Repeat("*", 44), ErrBadSignature},
		{"URL-safe variant", [][]byte{vectorKey}, vectorTS, vectorBody, urlSafe, ErrBadSignature},
		{"unpadded", [][]byte{vectorKey}, vectorTS, vectorBody, strings.TrimRight(vectorSig, "="), ErrBadSignature},
		{"embedded newline", [][]byte{vectorKey}, vectorTS, vectorBody, vectorSig[:20] + "\n" + vectorSig[20:], ErrBadSignature},
		{"prefixed", [][]byte{vectorKey}, vectorTS, vectorBody, "sha256=" + vectorSig, ErrBadSignature},
		{"truncated digest", [][]byte{vectorKey}, vectorTS, vectorBody, base64.StdEncoding.EncodeToString(mustDecode(t, vectorSig)[:31]), ErrBadSignature},
		{"hex instead of base64", [][]byte{vectorKey}, vectorTS, vectorBody, "0367" + strings.Repeat("0", 60), ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(tt.keys...)
			if err != nil {
				t.Fatal(err)
			}
			if got := v.Verify(tt.ts, tt.body, tt.sig); !errors.Is(got, tt.want) {
				t.Fatalf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestVerifyAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	v, err := NewVerifier([]byte("other"), vectorKey)
	if err != nil {
		t.Fatal(err)
	}
	_ = v.Verify(vectorTS, vectorBody, vectorSig) // warm the pool
	allocs := testing.AllocsPerRun(100, func() {
		if err := v.Verify(vectorTS, vectorBody, vectorSig); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("Verify allocates %.1f times per call, want 0", allocs)
	}
}

func BenchmarkVerify(b *testing.B) {
	v, err := NewVerifier([]byte("previous-key"), vectorKey)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(strings.Repeat("x", 1024))
	sig := Sign(vectorKey, vectorTS, body)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := v.Verify(vectorTS, body, sig); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(vectorKey, vectorTS, vectorBody, vectorSig)
	f.Add([]byte("k"), "", []byte("{}"), "")
	f.Add([]byte("k"), "", []byte{}, " Awlj9khaE6Aw5LnMc6AEV7ssTf96-QL6wd2GWH5AuEo ")
	f.Fuzz(func(t *testing.T, key []byte, ts string, body []byte, sig string) {
		if len(key) == 0 {
			key = []byte{0}
		}
		v, err := NewVerifier(key)
		if err != nil {
			t.Fatal(err)
		}
		// Random signatures must never panic, and may only pass if they are
		// the real signature (modulo surrounding whitespace).
		good := rawHMAC(key, []byte(ts+":"+string(body)))
		if Sign(key, ts, body) != good {
			t.Fatalf("Sign does not cover ts + \":\" + body")
		}
		if err := v.Verify(ts, body, sig); err == nil && strings.TrimSpace(sig) != good {
			t.Fatalf("Verify accepted %q, real signature is %q", sig, good)
		}
		// Sign then Verify round-trips.
		if err := v.Verify(ts, body, good); err != nil {
			t.Fatalf("Verify(Sign(...)) = %v", err)
		}
	})
}

// rawHMAC is the Base64 HMAC-SHA256 of msg under key, computed independently of Sign.
func rawHMAC(key, msg []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
