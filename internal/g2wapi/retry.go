package g2wapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
	"golang.org/x/time/rate"
)

// Credentials supplies the OAuth2 access token the client sends as a bearer token.
type Credentials interface {
	// Token returns the current access token, refreshing it first if it is known to have
	// expired.
	Token(ctx context.Context) (string, error)
	// Refresh obtains a new access token even though the current one looks valid: the API
	// has just refused it (GoTo may revoke a token before its expiry).
	Refresh(ctx context.Context) (string, error)
}

// errNoRewind is returned when a request would be sent again but its body cannot be re-read.
var errNoRewind = errors.New("resend request: body cannot be rewound")

// transport sends the client's requests: it waits for the client-side rate limit, adds the
// bearer token, refreshes the token once when GoTo refuses it, and retries what can safely be
// retried. It is an HttpRequestDoer, so the generated client goes through it too.
type transport struct {
	client      *http.Client
	creds       Credentials // nil: no Authorization header
	limiter     *rate.Limiter
	maxAttempts int
	backoff     time.Duration
	maxWait     time.Duration
}

// Do sends req. Retries, up to maxAttempts sends in all, with an exponential backoff with
// jitter (Retry-After when the answer carries one):
//   - 429 Too Many Requests, for every method: GoTo refused the request unprocessed;
//   - 5xx and network errors, for idempotent methods only (GET, PUT, DELETE, HEAD): a POST
//     that failed that way may have created something, and creating it again would make a
//     duplicate webhook or a second secret key, so its error goes to the caller, whose
//     idempotent sequence (setup) can be run again.
//
// A 401, or a 403 whose body says InvalidToken (how GoTo answers an expired token), makes it
// refresh the token and resend once, whatever the method: the request was not processed.
// The last answer is returned as it is, so the caller reports it like any other.
func (d *transport) Do(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	b := &backoff.ExponentialBackOff{InitialInterval: d.backoff, RandomizationFactor: jitter, Multiplier: 2, MaxInterval: d.maxWait}
	b.Reset()
	token, err := d.token(ctx, false)
	if err != nil {
		return nil, err
	}
	refreshed := false
	for attempt := 1; ; attempt++ {
		if err := d.limiter.Wait(ctx); err != nil {
			return nil, fmt.Errorf("wait for the client rate limit: %w", err)
		}
		send, err := rewind(req, attempt > 1 || refreshed)
		if err != nil {
			return nil, err
		}
		if token != "" {
			send.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := d.client.Do(send)
		if err == nil && d.creds != nil && !refreshed {
			refused, rerr := tokenRefused(resp)
			if rerr != nil {
				return nil, rerr
			}
			if refused {
				discard(resp)
				if token, err = d.token(ctx, true); err != nil {
					return nil, err
				}
				refreshed = true
				attempt-- // the refused send does not count: nothing was processed
				continue
			}
		}
		wait, asked, retry := d.retryable(req.Method, resp, err, b)
		if !retry || attempt >= d.maxAttempts || ctx.Err() != nil {
			return resp, err
		}
		if asked && wait > d.maxWait {
			// The server asks for longer than we are willing to block; let the caller see it.
			return resp, err
		}
		wait = min(wait, d.maxWait) // jitter may take a backoff past its cap
		if resp != nil {
			discard(resp)
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// jitter spreads each backoff over ±50% of its nominal value, so clients throttled together
// do not come back together.
const jitter = 0.5

// token returns the access token, a refreshed one when refresh is true; "" without
// credentials.
func (d *transport) token(ctx context.Context, refresh bool) (string, error) {
	if d.creds == nil {
		return "", nil
	}
	get := d.creds.Token
	if refresh {
		get = d.creds.Refresh
	}
	tok, err := get(ctx)
	if err != nil {
		return "", fmt.Errorf("get access token: %w", err)
	}
	return tok, nil
}

// retryable says whether an answer (or a failure to get one) may be retried, after how long,
// and whether the server asked for that wait (Retry-After).
func (d *transport) retryable(method string, resp *http.Response, err error, b *backoff.ExponentialBackOff) (wait time.Duration, asked, retry bool) {
	idempotent := method == http.MethodGet || method == http.MethodHead || method == http.MethodPut || method == http.MethodDelete
	switch {
	case err != nil:
		return b.NextBackOff(), false, idempotent
	case resp.StatusCode == http.StatusTooManyRequests:
		retry = true
	case resp.StatusCode >= 500:
		retry = idempotent
	default:
		return 0, false, false
	}
	if wait, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		return wait, true, retry
	}
	return b.NextBackOff(), false, retry
}

// tokenRefused reports whether resp refuses the access token: 401, or 403 with GoTo's
// {"int_err_code": "InvalidToken"}. A 403 body is read to find out, and put back.
func tokenRefused(resp *http.Response) (bool, error) {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return true, nil
	case http.StatusForbidden:
	default:
		return false, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()
	if err != nil {
		return false, fmt.Errorf("read response: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var e struct {
		Code string `json:"int_err_code"`
	}
	return json.Unmarshal(body, &e) == nil && e.Code == invalidToken, nil
}

// invalidToken is GoTo's int_err_code for a bad or expired access token.
const invalidToken = "InvalidToken"

// discard drains and closes a response body so its connection can be reused.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// rewind returns a copy of req to send, its body starting again from the beginning when
// again is true. Requests built from a bytes.Reader (all of ours) carry GetBody.
func rewind(req *http.Request, again bool) (*http.Request, error) {
	next := req.Clone(req.Context())
	if !again || req.Body == nil || req.Body == http.NoBody {
		return next, nil
	}
	if req.GetBody == nil {
		return nil, errNoRewind
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("resend request: %w", err)
	}
	next.Body = body
	return next, nil
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
func retryAfter(value string, now time.Time) (time.Duration, bool) {
	if value == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(value); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if at, err := http.ParseTime(value); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}

// sleep waits for d or until ctx is done, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
