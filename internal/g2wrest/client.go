package g2wrest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/time/rate"
)

// DefaultBaseURL is live GoToWebinar's v2 REST API, the server the spec names.
const DefaultBaseURL = "https://api.getgo.com/G2W/rest/v2"

// Defaults of Config.
const (
	// DefaultRate is live GoTo's limit: it answers 429 above 10 requests/s per API.
	DefaultRate = 10.0
	// DefaultMaxAttempts bounds the sends of one request answered 429, 5xx or not at all.
	DefaultMaxAttempts = 6
	// DefaultBackoff is the first wait after a failed attempt; it doubles up to DefaultMaxBackoff.
	DefaultBackoff = 500 * time.Millisecond
	// DefaultMaxBackoff caps one wait between attempts.
	DefaultMaxBackoff = 30 * time.Second
	// DefaultPageSize is the largest page the API serves (size and limit are at most 200):
	// fewer pages, fewer calls.
	DefaultPageSize = 200
	// maxPages is a last-resort guard against an API that keeps answering pages forever.
	maxPages = 100_000
	// maxBody bounds one answer read into memory (a 200-item page is a few hundred KiB).
	maxBody = 64 << 20
)

// ErrPagingIgnored is returned when the API answers a page other than the one asked for, or
// the same page twice: live GoTo silently ignores a paging parameter it does not know and
// answers page 0 again, which would otherwise loop forever or duplicate items.
var ErrPagingIgnored = errors.New("the API ignored the paging parameters (a page was repeated)")

// APIError is an answer other than 200, after retries.
type APIError struct {
	Status int
	Code   string // int_err_code, when the answer has one
	Msg    string
}

func (e *APIError) Error() string {
	if e.Code != "" || e.Msg != "" {
		return fmt.Sprintf("GoTo API answered %d: %s %s", e.Status, e.Code, e.Msg)
	}
	return fmt.Sprintf("GoTo API answered %d", e.Status)
}

// Config configures a Client. The zero value talks to live GoTo with http.DefaultClient
// (unauthenticated) at DefaultRate; callers pass an authenticating *http.Client.
type Config struct {
	// BaseURL is the API root. Default DefaultBaseURL.
	BaseURL string
	// HTTPClient sends the requests. Default http.DefaultClient.
	HTTPClient *http.Client
	// Credentials supply the bearer token (g2wctl's organizer profiles); the token is
	// refreshed once when GoTo refuses it (401, or 403 InvalidToken). Nil: no Authorization
	// header (HTTPClient may carry its own).
	Credentials Credentials
	// Limiter paces every request, retries included. Share one between the Clients of
	// several organizers when the limit is per application. Default: DefaultRate, burst 1.
	Limiter *rate.Limiter
	// MaxAttempts bounds the sends of one request. Default DefaultMaxAttempts.
	MaxAttempts int
	// Backoff and MaxBackoff shape the wait after a 429, a 5xx or a transport error:
	// exponential from Backoff, capped at MaxBackoff, with jitter. Defaults DefaultBackoff,
	// DefaultMaxBackoff.
	Backoff, MaxBackoff time.Duration
	// PageSize is the size (or limit) asked for on paged lists, 1 to 200. Default DefaultPageSize.
	PageSize int
	// Stats, when set, counts this Client's calls (share one between Clients to add them up).
	Stats *Stats
}

// Client reads GoToWebinar's REST reporting API. It is safe for concurrent use.
type Client struct {
	wire     *WireClient
	pageSize int
	stats    *Stats
}

// New returns a Client configured by cfg, with defaults filled in.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Limiter == nil {
		cfg.Limiter = rate.NewLimiter(DefaultRate, 1)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.PageSize > DefaultPageSize {
		return nil, fmt.Errorf("create client: page size %d is above the API's %d", cfg.PageSize, DefaultPageSize)
	}
	if cfg.Stats == nil {
		cfg.Stats = &Stats{}
	}
	d := &doer{client: cfg.HTTPClient, creds: cfg.Credentials, limiter: cfg.Limiter, maxAttempts: cfg.MaxAttempts,
		backoff: cfg.Backoff, maxBackoff: cfg.MaxBackoff, stats: cfg.Stats}
	wire, err := NewClient(cfg.BaseURL, WithHTTPClient(d))
	if err != nil {
		return nil, fmt.Errorf("create client: %w", err)
	}
	return &Client{wire: wire, pageSize: cfg.PageSize, stats: cfg.Stats}, nil
}

// Stats returns the counters this Client adds to.
func (c *Client) Stats() *Stats { return c.stats }

// Item is one element of a list: its bytes exactly as the API sent them, and their decoding.
type Item[T any] struct {
	Raw   json.RawMessage
	Value T
}

// Webinars returns every webinar of organizer whose times fall in [from, to), paging to the end.
func (c *Client) Webinars(ctx context.Context, organizer string, from, to time.Time) ([]Item[Webinar], error) {
	items, err := pageAll[Webinar](ctx, c.pageSize, "webinars", func(page int) (*http.Response, error) {
		return c.wire.ListWebinars(ctx, organizer, &ListWebinarsParams{FromTime: from, ToTime: to, Page: &page, Size: &c.pageSize})
	})
	if err != nil {
		return nil, fmt.Errorf("list webinars of organizer %s: %w", organizer, err)
	}
	return items, nil
}

// OrganizerSessions returns every completed session of organizer's webinars that ended in
// [from, to), paging to the end.
func (c *Client) OrganizerSessions(ctx context.Context, organizer string, from, to time.Time) ([]Item[Session], error) {
	items, err := pageAll[Session](ctx, c.pageSize, "sessionInfoResources", func(page int) (*http.Response, error) {
		return c.wire.ListOrganizerSessions(ctx, organizer, &ListOrganizerSessionsParams{FromTime: from, ToTime: to, Page: &page, Size: &c.pageSize})
	})
	if err != nil {
		return nil, fmt.Errorf("list sessions of organizer %s: %w", organizer, err)
	}
	return items, nil
}

// WebinarSessions returns every past session of a webinar, paging to the end.
func (c *Client) WebinarSessions(ctx context.Context, organizer, webinar string) ([]Item[Session], error) {
	items, err := pageAll[Session](ctx, c.pageSize, "sessionInfoResources", func(page int) (*http.Response, error) {
		return c.wire.ListWebinarSessions(ctx, organizer, webinar, &ListWebinarSessionsParams{Page: &page, Size: &c.pageSize})
	})
	if err != nil {
		return nil, fmt.Errorf("list sessions of webinar %s: %w", webinar, err)
	}
	return items, nil
}

// SessionAttendees returns everyone who attended a session, with their join/leave intervals
// (one unpaged answer).
func (c *Client) SessionAttendees(ctx context.Context, organizer, webinar, session string) ([]Item[Attendee], error) {
	body, err := receive(c.wire.ListSessionAttendees(ctx, organizer, webinar, session))
	if err != nil {
		return nil, fmt.Errorf("list attendees of session %s: %w", session, err)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, fmt.Errorf("decode attendees of session %s: %w", session, err)
	}
	items, err := decodeItems[Attendee](raws)
	if err != nil {
		return nil, fmt.Errorf("decode attendees of session %s: %w", session, err)
	}
	return items, nil
}

// Registrants returns every registrant of a webinar. It pages with page and limit (the
// registrants call ignores size); an answer that is a bare array is the whole list (what
// the API sends without paging parameters), so it ends the paging.
func (c *Client) Registrants(ctx context.Context, organizer, webinar string) ([]Item[Registrant], error) {
	var (
		all  []Item[Registrant]
		prev [sha256.Size]byte
	)
	for page := 0; page < maxPages; page++ {
		body, err := receive(c.wire.ListRegistrants(ctx, organizer, webinar, &ListRegistrantsParams{Page: &page, Limit: &c.pageSize}))
		if err != nil {
			return nil, fmt.Errorf("list registrants of webinar %s: %w", webinar, err)
		}
		if b := bytes.TrimLeft(body, " \t\r\n"); len(b) > 0 && b[0] == '[' {
			if page > 0 {
				return nil, fmt.Errorf("list registrants of webinar %s: page %d: %w", webinar, page, ErrPagingIgnored)
			}
			var raws []json.RawMessage
			if err := json.Unmarshal(b, &raws); err != nil {
				return nil, fmt.Errorf("decode registrants of webinar %s: %w", webinar, err)
			}
			items, err := decodeItems[Registrant](raws)
			if err != nil {
				return nil, fmt.Errorf("decode registrants of webinar %s: %w", webinar, err)
			}
			return items, nil
		}
		var p struct {
			Data  []json.RawMessage `json:"data"`
			Total int               `json:"total"`
			Page  int               `json:"page"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			return nil, fmt.Errorf("decode registrants of webinar %s: %w", webinar, err)
		}
		sum := sha256.Sum256(body)
		if p.Page != page || (page > 0 && len(p.Data) > 0 && sum == prev) {
			return nil, fmt.Errorf("list registrants of webinar %s: asked for page %d, got %d: %w", webinar, page, p.Page, ErrPagingIgnored)
		}
		prev = sum
		items, err := decodeItems[Registrant](p.Data)
		if err != nil {
			return nil, fmt.Errorf("decode registrants of webinar %s: %w", webinar, err)
		}
		all = append(all, items...)
		if len(p.Data) == 0 || len(all) >= p.Total {
			return all, nil
		}
	}
	return nil, fmt.Errorf("list registrants of webinar %s: more than %d pages: %w", webinar, maxPages, ErrPagingIgnored)
}

// pageAll fetches pages 0, 1, … of a page/size list whose items are _embedded[embedded],
// until the last page (page.totalPages) or an empty or short one.
func pageAll[T any](ctx context.Context, size int, embedded string, get func(page int) (*http.Response, error)) ([]Item[T], error) {
	var (
		all  []Item[T]
		prev [sha256.Size]byte
	)
	for page := 0; page < maxPages; page++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		body, err := receive(get(page))
		if err != nil {
			return nil, err
		}
		var p struct {
			Embedded map[string][]json.RawMessage `json:"_embedded"`
			Page     PageInfo                     `json:"page"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			return nil, fmt.Errorf("decode page %d: %w", page, err)
		}
		raws := p.Embedded[embedded]
		sum := sha256.Sum256(body)
		if (p.Page.Number != nil && *p.Page.Number != page) || (page > 0 && len(raws) > 0 && sum == prev) {
			return nil, fmt.Errorf("asked for page %d: %w", page, ErrPagingIgnored)
		}
		prev = sum
		items, err := decodeItems[T](raws)
		if err != nil {
			return nil, fmt.Errorf("decode page %d: %w", page, err)
		}
		all = append(all, items...)
		last := len(raws) == 0 || len(raws) < size
		if p.Page.TotalPages != nil {
			last = page+1 >= *p.Page.TotalPages
		}
		if last {
			return all, nil
		}
	}
	return nil, fmt.Errorf("more than %d pages: %w", maxPages, ErrPagingIgnored)
}

// decodeItems decodes each raw item into T, keeping the raw bytes.
func decodeItems[T any](raws []json.RawMessage) ([]Item[T], error) {
	items := make([]Item[T], len(raws))
	for i, raw := range raws {
		items[i].Raw = raw
		if err := json.Unmarshal(raw, &items[i].Value); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
	}
	return items, nil
}

// receive reads a 200 answer's body, or turns any other answer into an *APIError.
func receive(resp *http.Response, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		apiErr := &APIError{Status: resp.StatusCode}
		var e Error
		if json.Unmarshal(body, &e) == nil {
			if e.IntErrCode != nil {
				apiErr.Code = *e.IntErrCode
			}
			if e.Msg != nil {
				apiErr.Msg = *e.Msg
			}
		}
		return nil, apiErr
	}
	return body, nil
}
