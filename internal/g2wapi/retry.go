package g2wapi

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"time"
)

// retryDoer sends requests through an *http.Client and retries those answered 429 Too Many
// Requests: GoTo rate-limits the management API at 10 requests/s, which a setup sequence
// (secret, four webhooks, activation, subscriptions) can reach.
type retryDoer struct {
	client      *http.Client
	maxAttempts int
	backoff     time.Duration
	maxWait     time.Duration
}

// Do sends req, and after a 429 waits (Retry-After when the answer carries one, else an
// exponential backoff) and sends it again, up to maxAttempts sends in all. The last 429 is
// returned as is, so the caller reports it like any other API error.
func (d *retryDoer) Do(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	backoff := d.backoff
	for attempt := 1; ; attempt++ {
		resp, err := d.client.Do(req)
		if err != nil || resp.StatusCode != http.StatusTooManyRequests || attempt >= d.maxAttempts {
			return resp, err
		}
		wait, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		if !ok {
			wait, backoff = backoff, min(2*backoff, d.maxWait)
		}
		if wait > d.maxWait {
			// The server asks for longer than we are willing to block; let the caller see it.
			return resp, nil
		}
		// Drain so the connection can be reused, then rewind the body for the next send.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if req, err = rewind(req); err != nil {
			return nil, err
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// rewind returns a copy of req whose body starts again from the beginning. Requests built from
// a bytes.Reader (all of ours) carry GetBody.
func rewind(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	if req.GetBody == nil {
		return nil, errNoRewind
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	next := req.Clone(req.Context())
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
