package ingest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turnout-analytics/turnout/internal/domain"
	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/webhook"
)

// syncBuffer is a bytes.Buffer the server's goroutines may write to concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serveReal runs svc behind the http.Server cmd/ingest runs (NewServer) on a loopback
// port. It returns the base URL, the listen address, and what net/http logged, where a
// recovered handler panic would show up.
func serveReal(t *testing.T, svc *Service, sc ServerConfig) (base, addr string, errLog *syncBuffer) {
	t.Helper()
	errLog = &syncBuffer{}
	sc.ErrorLog = log.New(errLog, "", 0)
	srv := svc.NewServer(sc)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), ln.Addr().String(), errLog
}

// newService is testService without the httptest server: the caller serves it.
func newService(t *testing.T, pool *pgxpool.Pool, cfg Config) *Service {
	t.Helper()
	if cfg.SecretKeys == nil && cfg.Mode != Observe {
		cfg.SecretKeys = [][]byte{testKey}
	}
	svc, err := New(pool, cfg, nil)
	if err != nil {
		t.Fatalf("new service: %v", err)
	}
	t.Cleanup(svc.Close) // registered first, so it runs after the server's cleanup
	return svc
}

// created returns a minimal valid webinar.created body with eventKey key and the raw
// JSON text webinarKey, plus extra members (raw JSON text starting with a comma).
func created(key, webinarKey, extra string) []byte {
	return fmt.Appendf(nil, `{"eventName":"webinar.created","eventVersion":"1.0.0","product":"g2w","eventKey":%q,"webinarKey":%s%s}`,
		key, webinarKey, extra)
}

// sizedEvent returns a valid webinar.created body of exactly n bytes: an array of
// question/answer objects (so the parser walks structure, not one long string) topped
// up with a string member.
func sizedEvent(t *testing.T, key string, n int) []byte {
	t.Helper()
	const item = `{"question":"How did you hear about us?","answer":"Newsletter"},`
	var b bytes.Buffer
	b.Write(created(key, "9100000000000000001", ""))
	b.Truncate(b.Len() - 1) // reopen the object
	b.WriteString(`,"responses":[`)
	const closing = `{}],"pad":""}`
	for b.Len()+len(item)+len(closing) < n {
		b.WriteString(item)
	}
	b.WriteString(`{}],"pad":"`)
	pad := n - b.Len() - len(`"}`)
	if pad < 0 {
		t.Fatalf("cannot size a body to %d bytes", n)
	}
	b.WriteString(strings.Repeat("x", pad))
	b.WriteString(`"}`)
	if b.Len() != n {
		t.Fatalf("sized body is %d bytes, want %d", b.Len(), n)
	}
	return b.Bytes()
}

// randomHex returns n random hex digits: incompressible, unlike a repeated letter,
// which PostgreSQL would compress below any size limit.
func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// TestHostileDeliveries sends hostile bodies and headers through the real handler and
// server, each twice: signed with the configured key (authentic: GoTo itself, or
// someone holding the key) and signed with another key (forged).
//
// The rule the table checks: a forged delivery is refused 401 before its body is
// parsed, so a forger learns nothing about the parser, and stores nothing. The only
// answers given before the signature are the transport limits: 413 for a body over
// 1 MiB and 431 for oversized headers. An authentic delivery is never dropped: if
// it is a valid event it is stored, whatever its Content-Type; if it is not, it is
// quarantined with the reason (400 for bytes that are not acceptable JSON, 422 for
// JSON that breaks the contract) and nothing enters the log or the dedup table.
func TestHostileDeliveries(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	svc := newService(t, pool, Config{})
	base, _, errLog := serveReal(t, svc, ServerConfig{})

	var multipartBody bytes.Buffer
	mw := multipart.NewWriter(&multipartBody)
	_ = mw.SetBoundary("turnout-test-boundary")
	part, _ := mw.CreateFormFile("payload", "event.json")
	_, _ = part.Write(created("hostile-multipart-encoded", "1", ""))
	_ = mw.Close()

	deep := func(depth int) []byte {
		return created("hostile-deep", "1", `,"x":`+strings.Repeat("[", depth-1)+strings.Repeat("]", depth-1))
	}
	const tooLarge = DefaultMaxBodyBytes + 1

	tests := []struct {
		name      string
		body      []byte
		ctype     string      // Content-Type; "" is application/json, "-" sends none
		header    http.Header // set after signing (may replace the signature)
		chunked   bool        // hide the length: the client streams the body
		want      int         // authentic delivery's status
		reason    string      // the response's reason, if any
		stored    bool        // the authentic delivery enters the log
		quarantin string      // the authentic delivery's quarantine reason, if any
		forged    int         // forged delivery's status; 0 means 401
		webinar   string      // payload->>'webinarKey' of the stored row, if checked
	}{
		{name: "huge JSON just under 1 MiB", body: sizedEvent(t, "hostile-under-limit", DefaultMaxBodyBytes-1), want: 200, stored: true},
		{name: "huge JSON of exactly 1 MiB", body: sizedEvent(t, "hostile-at-limit", DefaultMaxBodyBytes), want: 200, stored: true},
		{name: "huge JSON 1 byte over, Content-Length", body: sizedEvent(t, "hostile-over-limit", tooLarge), want: 413, forged: 413},
		{name: "huge JSON 1 byte over, chunked", body: sizedEvent(t, "hostile-over-limit", tooLarge), chunked: true, want: 413, forged: 413},
		{name: "nested one level beyond MaxDepth", body: deep(domain.MaxDepth + 1), want: 400, reason: domain.ReasonTooDeep, quarantin: domain.ReasonTooDeep},
		{name: "nested 100,000 deep", body: deep(100_000), want: 400, reason: domain.ReasonTooDeep, quarantin: domain.ReasonTooDeep},
		{name: "invalid UTF-8 in a member name (overlong /)", body: created("hostile-utf8", "1", ",\"\xc0\xaf\":1"), want: 400, reason: domain.ReasonInvalidUTF8, quarantin: domain.ReasonInvalidUTF8},
		{name: "unpaired surrogate escape", body: []byte(`{"eventName":"webinar.created","eventVersion":"1.0.0","product":"g2w","eventKey":"hostile-\ud800","webinarKey":1}`), want: 400, reason: domain.ReasonInvalidUTF8, quarantin: domain.ReasonInvalidUTF8},
		{name: "UTF-8 byte order mark", body: append([]byte("\xef\xbb\xbf"), created("hostile-bom", "1", "")...), want: 400, reason: domain.ReasonMalformedJSON, quarantin: domain.ReasonMalformedJSON},
		// PostgreSQL's ->> takes the last copy, our dedup would take the first:
		// a duplicate eventKey could store one event under another's key.
		{name: "duplicate member at the top level (eventKey)", body: created("hostile-dup-a", "1", `,"eventKey":"hostile-dup-b"`), want: 400, reason: domain.ReasonDuplicateKey, quarantin: domain.ReasonDuplicateKey},
		{name: "duplicate member nested", body: created("hostile-dup-nested", "1", `,"times":[{"startTime":"2024-04-10T15:00:00Z","endTime":"2024-04-10T16:00:00Z","endTime":"2024-04-10T17:00:00Z"}]`), want: 400, reason: domain.ReasonDuplicateKey, quarantin: domain.ReasonDuplicateKey},
		{name: "19-digit numeric key", body: created("hostile-19-digits", "9223372036854775807", ""), want: 200, stored: true, webinar: "9223372036854775807"},
		{name: "20-digit numeric key", body: created("hostile-20-digits", "18446744073709551615", ""), want: 422, reason: domain.ReasonInvalidKey, quarantin: domain.ReasonInvalidKey},
		{name: "30-digit numeric key", body: created("hostile-30-digits", "123456789012345678901234567890", ""), want: 422, reason: domain.ReasonInvalidKey, quarantin: domain.ReasonInvalidKey},
		{name: "eventKey too long for the dedup index", body: created(randomHex(3000), "1", ""), want: 422, reason: domain.ReasonEventKeyTooLong, quarantin: domain.ReasonEventKeyTooLong},
		// Content-Type is not checked: the signed body decides (see callback).
		{name: "Content-Type text/plain", body: created("hostile-text-plain", "1", ""), ctype: "text/plain", want: 200, stored: true},
		{name: "Content-Type missing", body: created("hostile-no-ctype", "1", ""), ctype: "-", want: 200, stored: true},
		{name: "Content-Type multipart, JSON body", body: created("hostile-multipart-header", "1", ""), ctype: "multipart/form-data; boundary=x", want: 200, stored: true},
		{name: "multipart-encoded body", body: multipartBody.Bytes(), ctype: mw.FormDataContentType(), want: 400, reason: domain.ReasonMalformedJSON, quarantin: domain.ReasonMalformedJSON},
		{name: "empty body", body: []byte{}, want: 400, reason: domain.ReasonMalformedJSON, quarantin: domain.ReasonMalformedJSON},
		{name: "top level is an array", body: []byte(`[` + string(created("hostile-array", "1", "")) + `]`), want: 400, reason: domain.ReasonMalformedJSON, quarantin: domain.ReasonMalformedJSON},
		{name: "top level is null", body: []byte(`null`), want: 400, reason: domain.ReasonMalformedJSON, quarantin: domain.ReasonMalformedJSON},
		{name: "top level is a string", body: []byte(`"registrant.joined"`), want: 400, reason: domain.ReasonMalformedJSON, quarantin: domain.ReasonMalformedJSON},
		{name: "headers over MaxHeaderBytes", body: created("hostile-big-headers", "1", ""),
			header: http.Header{"X-Padding": {strings.Repeat("a", DefaultMaxHeaderBytes+8<<10)}}, want: 431, forged: 431},
		{name: "signature header of 48 KiB", body: created("hostile-big-signature", "1", ""),
			header: http.Header{webhook.HeaderSignature: {strings.Repeat("A", 48<<10)}}, want: 401, reason: "bad_signature"},
		{name: "invalid UTF-8 in a kept header", body: []byte(`{"eventName":`),
			header: http.Header{"User-Agent": {"\xff\xfe GoTo"}}, want: 400, reason: domain.ReasonMalformedJSON, quarantin: domain.ReasonMalformedJSON},
	}

	deliver := func(t *testing.T, body []byte, key []byte, ctype string, extra http.Header, chunked bool) (int, string) {
		t.Helper()
		var r io.Reader = bytes.NewReader(body)
		if chunked {
			r = io.MultiReader(r)
		}
		req, err := http.NewRequest(http.MethodPost, base+CallbackPath, r)
		if err != nil {
			t.Fatal(err)
		}
		if chunked {
			req.ContentLength = -1
		}
		switch ctype {
		case "":
			req.Header.Set("Content-Type", "application/json")
		case "-":
		default:
			req.Header.Set("Content-Type", ctype)
		}
		req.Header.Set(webhook.HeaderTimestamp, testTimestamp)
		req.Header.Set(webhook.HeaderSignature, webhook.Sign(key, testTimestamp, body))
		for k, v := range extra {
			req.Header[k] = v
		}
		return do(t, req)
	}
	type counts struct{ log, keys, quarantine int }
	snapshot := func(t *testing.T) counts {
		return counts{count(t, pool, countLog), count(t, pool, countKeys), count(t, pool, countQuarantine)}
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("authentic", func(t *testing.T) {
				before := snapshot(t)
				code, resp := deliver(t, tt.body, testKey, tt.ctype, tt.header, tt.chunked)
				if code != tt.want || (tt.reason != "" && !strings.Contains(resp, `"reason":"`+tt.reason+`"`)) {
					t.Errorf("got %d %.200s, want %d with reason %q", code, resp, tt.want, tt.reason)
				}
				want := before
				if tt.stored {
					want.log++
					want.keys++
				}
				if tt.quarantin != "" {
					want.quarantine++
				}
				if got := snapshot(t); got != want {
					t.Fatalf("rows (log, dedup, quarantine): %v before, %v after, want %v", before, got, want)
				}
				if tt.stored {
					var payload, webinar string
					err := pool.QueryRow(context.Background(), `
						SELECT payload::text, payload->>'webinarKey' FROM `+eventlog.Table+`
						ORDER BY "offset" DESC LIMIT 1`).Scan(&payload, &webinar)
					if err != nil {
						t.Fatal(err)
					}
					if payload != string(tt.body) {
						t.Errorf("stored payload (%d bytes) differs from the body (%d bytes)", len(payload), len(tt.body))
					}
					if tt.webinar != "" && webinar != tt.webinar {
						t.Errorf("webinarKey stored as %q, want %q", webinar, tt.webinar)
					}
				}
				if tt.quarantin != "" {
					var (
						reason string
						body   []byte
					)
					err := pool.QueryRow(context.Background(), `
						SELECT reason, body FROM ingest_quarantine ORDER BY id DESC LIMIT 1`).Scan(&reason, &body)
					if err != nil {
						t.Fatal(err)
					}
					if reason != tt.quarantin || !bytes.Equal(body, tt.body) {
						t.Errorf("quarantined with reason %q, body equal %v; want reason %q and the body",
							reason, bytes.Equal(body, tt.body), tt.quarantin)
					}
				}
			})
			t.Run("forged", func(t *testing.T) {
				want := tt.forged
				if want == 0 {
					want = http.StatusUnauthorized
				}
				before := snapshot(t)
				if code, resp := deliver(t, tt.body, []byte("not-the-configured-key"), tt.ctype, tt.header, tt.chunked); code != want {
					t.Errorf("got %d %.200s, want %d", code, resp, want)
				}
				if got := snapshot(t); got != before {
					t.Errorf("forged delivery changed rows (log, dedup, quarantine): %v before, %v after", before, got)
				}
			})
		})
	}
	if strings.Contains(errLog.String(), "panic") {
		t.Errorf("the server recovered a panic:\n%s", errLog.String())
	}
}

// trickle writes head and then body to a raw connection to addr, one byte per every
// interval (the whole of head at once when trickleHead is false), until the server cuts
// the connection off or everything is sent. It returns how long the server took to cut
// it off from the moment of connecting, what the server answered (possibly nothing),
// and whether the whole request got through.
func trickle(t *testing.T, addr string, head, body []byte, trickleHead bool, every time.Duration) (cutAfter time.Duration, answer string, sentAll bool) {
	t.Helper()
	start := time.Now()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	closed := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(conn) // until the server closes (or resets) the connection
		closed <- string(b)
	}()

	var slow []byte
	if trickleHead {
		slow = append(append(slow, head...), body...)
	} else {
		if _, err := conn.Write(head); err != nil {
			t.Fatalf("write headers: %v", err)
		}
		slow = body
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; i < len(slow); i++ {
		select {
		case answer = <-closed:
			return time.Since(start), answer, false
		case <-tick.C:
		}
		if _, err := conn.Write(slow[i : i+1]); err != nil {
			break // cut off: the reader reports when
		}
	}
	select {
	case answer = <-closed:
		return time.Since(start), answer, false
	case <-time.After(10 * time.Second):
		return time.Since(start), "", true
	}
}

// TestSlowSendersAreCutOff runs the server cmd/ingest runs, with short timeouts, and
// clients that trickle their headers or their body a byte at a time. Each is cut off
// soon after its timeout, long before it would have finished; nothing is stored; and
// the server answers a normal delivery meanwhile and afterwards.
func TestSlowSendersAreCutOff(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	svc := newService(t, pool, Config{})
	const (
		headerTimeout = 400 * time.Millisecond
		readTimeout   = 800 * time.Millisecond
		every         = 40 * time.Millisecond // a ~300-byte request takes ~12s at this rate
		slack         = 3 * time.Second       // a loaded 2-core machine under -race
	)
	base, addr, errLog := serveReal(t, svc, ServerConfig{ReadHeaderTimeout: headerTimeout, ReadTimeout: readTimeout})

	request := func(key string) (head, body []byte) {
		body = created(key, "9100000000000000001", "")
		head = fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%s: %s\r\n%s: %s\r\nContent-Length: %d\r\n\r\n",
			CallbackPath, addr, webhook.HeaderTimestamp, testTimestamp,
			webhook.HeaderSignature, webhook.Sign(testKey, testTimestamp, body), len(body))
		return head, body
	}
	tests := []struct {
		name        string
		trickleHead bool
		timeout     time.Duration
	}{
		{"trickled headers", true, headerTimeout},
		{"trickled body", false, readTimeout},
	}
	badRequests := testutil.ToFloat64(svc.metrics.deliveries.WithLabelValues(outcomeBadRequest))
	var wg sync.WaitGroup
	for i, tt := range tests {
		wg.Go(func() {
			head, body := request(fmt.Sprintf("slow-sender-%d", i))
			cut, answer, sentAll := trickle(t, addr, head, body, tt.trickleHead, every)
			t.Logf("%s: cut off after %s (timeout %s), answer %.40q", tt.name, cut, tt.timeout, answer)
			if sentAll {
				t.Errorf("%s: the server read the whole request at one byte per %s", tt.name, every)
				return
			}
			if cut < tt.timeout/2 || cut > tt.timeout+slack {
				t.Errorf("%s: cut off after %s, want about %s", tt.name, cut, tt.timeout)
			}
			if strings.HasPrefix(answer, "HTTP/1.1 2") {
				t.Errorf("%s: answered %.40q", tt.name, answer)
			}
		})
	}
	// Served while the slow senders hold their connections.
	body := created("slow-sender-bystander", "1", "")
	if code, resp := post(t, base, body, signed(testKey, body)); code != http.StatusOK {
		t.Errorf("delivery beside the slow senders: %d %s", code, resp)
	}
	wg.Wait()
	body = created("slow-sender-after", "1", "")
	if code, resp := post(t, base, body, signed(testKey, body)); code != http.StatusOK {
		t.Errorf("delivery after the slow senders: %d %s", code, resp)
	}

	if n := count(t, pool, `SELECT count(*) FROM `+eventlog.Table+` WHERE event_key LIKE 'slow-sender-_'`); n != 0 {
		t.Errorf("%d slow deliveries in the log", n)
	}
	for q, want := range map[string]int{countLog: 2, countKeys: 2, countQuarantine: 0} {
		if n := count(t, pool, q); n != want {
			t.Errorf("%s = %d, want %d", q, n, want)
		}
	}
	// The headers never reached the handler; the body did, and its read failed.
	if got := testutil.ToFloat64(svc.metrics.deliveries.WithLabelValues(outcomeBadRequest)); got != badRequests+1 {
		t.Errorf("deliveries_total{bad_request} went from %v to %v, want +1 (the trickled body)", badRequests, got)
	}
	if strings.Contains(errLog.String(), "panic") {
		t.Errorf("the server recovered a panic:\n%s", errLog.String())
	}
}
