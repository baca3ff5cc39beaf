package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/turnout-analytics/turnout/internal/domain"
	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/webhook"
)

// CallbackPath is where GoTo delivers webhooks (and validates the URL with a GET).
const CallbackPath = "/gotowebinar/callback"

// quarantineTimeout bounds the quarantine insert, which runs detached from the request so
// an authentic delivery is kept even if its sender hangs up.
const quarantineTimeout = 5 * time.Second

// quarantinedHeaders are the request headers kept with a quarantined body for diagnosis.
var quarantinedHeaders = []string{
	"Content-Type", "User-Agent", webhook.HeaderSignature, webhook.HeaderTimestamp, "X-Forwarded-For",
}

// routes is the public listener's handler: only what GoTo needs (and a liveness probe).
// /metrics and /readyz are on the operations listener (opsRoutes): metrics tell an
// attacker about traffic and failures, and every /readyz costs a database round trip.
func (s *Service) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(s.instrument)
	r.Post(CallbackPath, s.callback)
	r.Get(CallbackPath, ok) // GoTo validates a callback URL with a GET that must answer 200.
	r.Get("/healthz", ok)
	return r
}

// opsRoutes is the operations listener's handler: liveness, readiness and metrics.
func (s *Service) opsRoutes() http.Handler {
	r := chi.NewRouter()
	r.Get("/healthz", ok)
	r.Get("/readyz", s.ready)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	return r
}

func ok(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

// ready answers 200 when the database answers a ping within ReadyTimeout.
func (s *Service) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.logger.Warn("readiness check failed", slog.Any("error", err))
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
		return
	}
	ok(w, r)
}

// callback receives one delivery: size check, read budget, signature, the acceptance
// rule, then the unverified store, the quarantine or the event log. It answers only once
// the delivery is durably stored.
//
// Content-Type is deliberately not checked. GoTo sends application/json, but the
// signature covers the body, not the headers, and there is no way to re-fetch a
// delivery: answering 415 to an authentic one whose header a proxy rewrote, or that
// GoTo labels differently one day, would lose it. Whatever the header says, the body
// must be a JSON event, or it is quarantined like any other authentic invalid body
// (the header is kept with it).
func (s *Service) callback(w http.ResponseWriter, r *http.Request) {
	received := time.Now().UTC()

	if r.ContentLength > s.cfg.MaxBodyBytes {
		// Refuse before reading a byte; net/http closes the connection rather than
		// draining a large unread body.
		s.fail(w, outcomeTooLarge, errTooLarge)
		return
	}
	release, err := s.reads.acquire(r.Context(), r.ContentLength, s.cfg.MaxBodyBytes)
	if err != nil {
		s.fail(w, outcomeBusy, err)
		return
	}
	defer release() // the body is garbage once the handler returns (see recycle)
	buf := getBuffer(r.ContentLength)
	body, err := readBody(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), buf)
	if err != nil {
		putBuffer(buf)
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.fail(w, outcomeTooLarge, errTooLarge)
		} else {
			s.fail(w, outcomeBadRequest, errors.Join(errReadBody, err))
		}
		return
	}
	recycle := true
	defer func() {
		if recycle {
			putBuffer(body)
		}
	}()

	if reason, err := s.verify(r, body, received); err != nil {
		s.unverified(w, r, received, reason, body, err)
		return
	}

	acc, err := domain.Accept(body)
	if err != nil {
		s.quarantine(w, r, received, body, err)
		return
	}
	d := Delivery{Entry: eventlog.Entry{
		Body:              body,
		EventName:         acc.EventName,
		EventKey:          acc.EventKey,
		SignatureVerified: true,
		ReceivedAt:        received,
	}}
	if len(acc.Findings) > 0 {
		d.DataQuality = findingsJSON(acc.Findings)
	}
	outcome, err := s.batcher.submit(r.Context(), d)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			// The batch may still hold body; let the garbage collector have it.
			recycle = false
		}
		if !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrClosed) {
			// The client went away before its batch committed; nobody reads this answer.
			err = errors.Join(ErrUnavailable, err)
		}
		s.fail(w, outcomeUnavailable, err)
		return
	}

	if outcome == Duplicate {
		s.metrics.duplicates.Inc()
		s.metrics.deliveries.WithLabelValues(outcomeDuplicate).Inc()
		writeJSON(w, http.StatusOK, bodyDuplicate)
		return
	}
	// Counted once stored, so a redelivery does not count its findings twice.
	for _, f := range acc.Findings {
		s.metrics.dataQuality.WithLabelValues(acc.EventLabel(), f.MetricLabel(), f.Problem).Inc()
	}
	s.metrics.deliveries.WithLabelValues(outcomeStored).Inc()
	writeJSON(w, http.StatusOK, bodyStored)
}

// findingsJSON encodes findings for MetaDataQuality.
func findingsJSON(fs []domain.Finding) string {
	b, err := json.Marshal(fs)
	if err != nil { // a slice of two-string structs always encodes
		panic("ingest: encode findings: " + err.Error())
	}
	return string(b)
}

// verify checks the delivery's signature and then the timestamp rules: with
// RequireTimestamp or the replay window on, the timestamp header must be present; with
// the window on, it must lie within TimestampTolerance of received (when the request
// arrived, so a slow upload does not age it). It returns nil, or the metric reason and
// the error that refuses the delivery.
func (s *Service) verify(r *http.Request, body []byte, received time.Time) (string, error) {
	ts, hasTS := headerValue(r.Header, webhook.HeaderTimestamp)
	var err error
	if s.verifier == nil {
		err = webhook.ErrMissingSignature // Observe mode without keys: nothing can verify.
	} else {
		// An absent header signs ":" + body, like an empty one (webhook's doc).
		err = s.verifier.Verify(ts, body, r.Header.Get(webhook.HeaderSignature))
		// Only after the signature holds: the timestamp judged is then the sender's
		// own, and a forger cannot tell a bad timestamp from a wrong signature.
		switch {
		case err != nil:
		case !hasTS && (s.cfg.RequireTimestamp || s.cfg.TimestampTolerance > 0):
			err = webhook.ErrMissingTimestamp
		case hasTS && s.cfg.TimestampTolerance > 0:
			err = webhook.CheckTimestamp(ts, received, s.cfg.TimestampTolerance)
		}
	}
	if err == nil {
		return "", nil
	}
	reason := signatureFailureReason(err)
	if s.verifier != nil {
		s.metrics.signatureFailures.WithLabelValues(reason).Inc()
	}
	if reason == reasonStale || reason == reasonBadTimestamp || reason == reasonNoTimestamp {
		// Authentic but refused by the timestamp rules: worth a line, since a burst means
		// clock skew, a replay, or a wrong guess at GoTo's timestamp format. The
		// timestamp is not personal data; an absurdly long one is left out.
		attrs := []any{slog.String("signature", reason), slog.Duration("tolerance", s.cfg.TimestampTolerance)}
		if len(ts) <= 64 {
			attrs = append(attrs, slog.String("timestamp", ts))
		}
		s.logger.Warn("signed timestamp refused", attrs...)
	}
	return reason, err
}

// unverified keeps a delivery that did not verify in the unverified store, never in the
// log: it claims no eventKey and reaches analytics only if `ingest requeue` later
// verifies it. Enforce mode answers 401 whether or not it could be kept (a forger learns
// nothing); Observe mode answers 202 once it is kept, 503 when it could not be.
func (s *Service) unverified(w http.ResponseWriter, r *http.Request, received time.Time, reason string, body []byte, verr error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), quarantineTimeout)
	defer cancel()
	err := s.unverifiedStore.keep(ctx, received, reason, r.Header, body)
	if s.cfg.Mode == Enforce {
		s.fail(w, outcomeUnauthorized, verr)
		return
	}
	if err != nil {
		s.fail(w, outcomeUnavailable, errors.Join(ErrUnavailable, err))
		return
	}
	s.logger.Warn("kept unverified delivery (observe mode)", slog.String("signature", reason), slog.Int("body_bytes", len(body)))
	s.metrics.deliveries.WithLabelValues(outcomeUnverifiedStored).Inc()
	writeJSON(w, http.StatusAccepted, bodyUnverified)
}

// signatureFailureReason is the metric label for an error of verify.
func signatureFailureReason(err error) string {
	switch {
	case errors.Is(err, webhook.ErrMissingSignature):
		return reasonMissing
	case errors.Is(err, webhook.ErrStaleTimestamp):
		return reasonStale
	case errors.Is(err, webhook.ErrBadTimestamp):
		return reasonBadTimestamp
	case errors.Is(err, webhook.ErrMissingTimestamp):
		return reasonNoTimestamp
	default:
		return reasonBad
	}
}

// quarantine stores an authentic delivery that Accept refused and answers 4xx, or 503
// when it could not be stored so that the sender retries.
func (s *Service) quarantine(w http.ResponseWriter, r *http.Request, received time.Time, body []byte, acceptErr error) {
	var ve *domain.ValidationError
	if !errors.As(acceptErr, &ve) {
		// domain.Accept promises *ValidationError only; anything else is a bug.
		s.logger.Error("accept delivery", slog.Any("error", acceptErr))
		s.fail(w, outcomeUnavailable, acceptErr)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), quarantineTimeout)
	defer cancel()
	err := s.store.Quarantine(ctx, Quarantined{
		ReceivedAt:        received,
		Reason:            ve.Reason,
		Detail:            ve.Detail,
		SignatureVerified: true,
		Headers:           keptHeaders(r.Header, quarantinedHeaders),
		Body:              body,
	})
	if err != nil {
		s.logger.Error("quarantine delivery", slog.String("reason", ve.Reason), slog.Any("error", err))
		s.fail(w, outcomeUnavailable, errors.Join(ErrUnavailable, err))
		return
	}
	s.logger.Info("quarantined delivery", slog.String("reason", ve.Reason), slog.String("detail", ve.Detail))
	s.metrics.quarantined.WithLabelValues(ve.Reason).Inc()
	s.metrics.deliveries.WithLabelValues(outcomeQuarantined).Inc()
	status, b := errorResponse(acceptErr)
	writeJSON(w, status, b)
}

// fail counts a refused delivery and answers with the status errorResponse chooses.
func (s *Service) fail(w http.ResponseWriter, outcome string, err error) {
	s.metrics.deliveries.WithLabelValues(outcome).Inc()
	status, b := errorResponse(err)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // the sender hung up; nothing left to tell it
}

// headerValue is Header.Get that also reports presence, because an empty timestamp
// header and an absent one sign differently.
func headerValue(h http.Header, key string) (string, bool) {
	v, ok := h[key] // key is already canonical
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// Body buffers are pooled: at thousands of deliveries a second, a fresh buffer per
// request is most of the handler's garbage. Buffers that grew beyond maxPooledBuffer (a
// rare large delivery) are left to the collector so the pool does not pin memory.
//
// A buffer is sized from Content-Length only up to maxPooledBuffer: beyond that it grows
// as bytes actually arrive, so a sender that claims 1 MiB and sends nothing costs no more
// than that (the read budget bounds how many such reads there are).
const (
	minBuffer       = 4 << 10
	maxPooledBuffer = 64 << 10
)

var bufferPool = sync.Pool{New: func() any { b := make([]byte, 0, minBuffer); return &b }}

func getBuffer(contentLength int64) []byte {
	b := *bufferPool.Get().(*[]byte)
	if contentLength >= 0 && int64(cap(b)) < contentLength+1 {
		// +1 so reading to EOF does not grow the buffer.
		b = make([]byte, 0, min(contentLength+1, maxPooledBuffer))
	}
	return b[:0]
}

func putBuffer(b []byte) {
	if cap(b) > maxPooledBuffer {
		return
	}
	b = b[:0]
	bufferPool.Put(&b)
}

// readBody reads r to EOF into buf, growing it as needed, like io.ReadAll but reusing buf.
func readBody(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// instrument records each request's duration by route pattern and status code.
func (s *Service) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(&sw, r)
		route := "unmatched" // unknown paths must not mint label values
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		s.metrics.requestDuration.WithLabelValues(route, strconv.Itoa(sw.status)).Observe(time.Since(start).Seconds())
	})
}

// statusWriter remembers the status code written through it.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
