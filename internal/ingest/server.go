package ingest

import (
	"log"
	"net/http"
	"time"
)

// NewOpsServer returns the http.Server of the operations listener (s.OpsHandler).
func (s *Service) NewOpsServer() *http.Server {
	return &http.Server{
		Handler:           s.ops,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		ReadTimeout:       DefaultReadTimeout,
		WriteTimeout:      DefaultReadTimeout + s.cfg.ReadyTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
	}
}

// Defaults applied by NewServer to zero ServerConfig fields.
const (
	// DefaultReadHeaderTimeout cuts off a client that trickles its request line and
	// headers (slowloris); net/http closes such a connection without an answer.
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultReadTimeout bounds reading a whole request, body included: a 1 MiB
	// delivery needs about 105 kB/s, a real one (a few KiB) almost nothing. A body cut
	// off is answered 400 and stores nothing. Short, because a slow body holds its share
	// of the read budget.
	DefaultReadTimeout = 10 * time.Second
	// DefaultIdleTimeout closes keep-alive connections idle this long.
	DefaultIdleTimeout = 30 * time.Second
	// DefaultMaxConns caps the connections the public listener holds (see connLimiter).
	DefaultMaxConns = 1024
	// DefaultMaxHeaderBytes caps the request headers (net/http answers 431 above it,
	// allowing itself 4 KiB of slack). Real deliveries carry well under 2 KiB.
	DefaultMaxHeaderBytes = 64 << 10
	// writeTimeoutMargin is how much longer than the commit timeout the server waits
	// to write an answer, so a stuck database is answered 503 rather than cut off.
	writeTimeoutMargin = 10 * time.Second
)

// ServerConfig holds the HTTP server's limits. Zero fields take the Default* values;
// tests pass short timeouts to watch slow senders being cut off.
type ServerConfig struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	// WriteTimeout defaults to the service's CommitTimeout plus 10s.
	WriteTimeout   time.Duration
	IdleTimeout    time.Duration
	MaxHeaderBytes int
	// MaxConns caps the open connections (default DefaultMaxConns): beyond it the
	// longest idle connection is closed, or the new one if none is idle.
	MaxConns int
	// ErrorLog receives net/http's own complaints (TLS handshakes, panics); nil is
	// the standard logger.
	ErrorLog *log.Logger
}

// NewServer returns the http.Server that serves s.Handler with the limits every
// public listener needs against hostile or slow clients: timeouts, a header limit and a
// connection cap (the read budget is the handler's). It sets no address: call
// Serve with a listener. cmd/ingest runs exactly this server.
func (s *Service) NewServer(cfg ServerConfig) *http.Server {
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = s.cfg.CommitTimeout + writeTimeoutMargin
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	conns := newConnLimiter(cfg.MaxConns, s.metrics.connsEvicted.Inc)
	return &http.Server{
		ConnState:         conns.track,
		Handler:           s.handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          cfg.ErrorLog,
	}
}
