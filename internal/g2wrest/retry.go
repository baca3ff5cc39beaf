package g2wrest

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

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
	limiter             *rate.Limiter
	maxAttempts         int
	backoff, maxBackoff time.Duration
	stats               *Stats
}

// Do sends req at most maxAttempts times. The last failed answer is returned as is, for the
// caller to report; a transport error after the last attempt is returned.
func (d *doer) Do(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	wait := d.backoff
	for attempt := 1; ; attempt++ {
		if err := d.limiter.Wait(ctx); err != nil {
			return nil, err
		}
		d.stats.Calls.Add(1)
		resp, err := d.client.Do(req)
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
