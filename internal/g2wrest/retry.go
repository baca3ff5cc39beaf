package g2wrest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Credentials supplies the OAuth2 access token sent as a bearer token (the same shape as
// g2wapi.Credentials, which g2wctl's profiles implement).
type Credentials interface {
	// Token returns the current access token, refreshed first if it is known to have expired.
	Token(ctx context.Context) (string, error)
	// Refresh obtains a new access token: the API has just refused the current one.
	Refresh(ctx context.Context) (string, error)
}

// Stats counts a Client's traffic. The fields are safe for concurrent use.
type Stats struct {
	Calls       atomic.Int64 // requests sent, retries included
	Throttled   atomic.Int64 // answers 429 Too Many Requests
	ServerError atomic.Int64 // answers 5xx
	Retries     atomic.Int64 // requests sent again after a 429, a 5xx or a transport error
}

// doer sends each request through the rate limiter and retries it after a 429, a 5xx or a
// transport error, with exponential backoff and full jitter. The reporting API's calls are all
// GETs without a body, so a request can be sent again as is.
type doer struct {
	client              *http.Client
	creds               Credentials // nil: no Authorization header
	limiter             *rate.Limiter
	maxAttempts         int
	backoff, maxBackoff time.Duration
	stats               *Stats
}

// Do sends req at most maxAttempts times. The last failed answer is returned as is, for the
// caller to report; a transport error after the last attempt is returned.
//
// With credentials, a 401 (or a 403 whose body says InvalidToken, how GoTo answers a revoked
// token) makes it refresh the token and send again, once; that send does not count as an
// attempt: nothing was processed.
func (d *doer) Do(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	wait := d.backoff
	token, err := d.token(ctx, false)
	if err != nil {
		return nil, err
	}
	refreshed := false
	for attempt := 1; ; attempt++ {
		if err := d.limiter.Wait(ctx); err != nil {
			return nil, err
		}
		send := req
		if token != "" {
			send = req.Clone(ctx)
			send.Header.Set("Authorization", "Bearer "+token)
		}
		d.stats.Calls.Add(1)
		resp, err := d.client.Do(send)
		if err == nil && d.creds != nil && !refreshed && tokenRefused(resp) {
			if token, err = d.token(ctx, true); err != nil {
				return nil, err
			}
			refreshed = true
			attempt--
			continue
		}
		retry := false
		switch {
		case err != nil:
			// A canceled context is the caller's decision, not a fault to retry.
			retry = ctx.Err() == nil
		case resp.StatusCode == http.StatusTooManyRequests:
			d.stats.Throttled.Add(1)
			retry = true
		case resp.StatusCode >= 500:
			d.stats.ServerError.Add(1)
			retry = true
		}
		if !retry || attempt >= d.maxAttempts {
			return resp, err
		}
		if resp != nil {
			// Drain so the connection can be reused.
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
		}
		d.stats.Retries.Add(1)
		// Full jitter: concurrent clients that were refused together do not retry together.
		if err := sleep(ctx, time.Duration(rand.Int64N(int64(wait))+1)); err != nil {
			return nil, err
		}
		wait = min(2*wait, d.maxBackoff)
	}
}

// sleep waits for d or until ctx is done, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// token returns the access token (a refreshed one when refresh is set); "" without credentials.
func (d *doer) token(ctx context.Context, refresh bool) (string, error) {
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

// tokenRefused reports whether resp refuses the token: 401, or 403 with int_err_code
// InvalidToken. A refused answer's body is drained and closed; any other is left unread.
func tokenRefused(resp *http.Response) bool {
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		return false
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusForbidden {
		var e struct {
			Code string `json:"int_err_code"`
		}
		if json.Unmarshal(body, &e) != nil || e.Code != "InvalidToken" {
			// Not a token problem: give the caller the answer back, body intact.
			resp.Body = io.NopCloser(bytes.NewReader(body))
			return false
		}
	}
	return true
}
