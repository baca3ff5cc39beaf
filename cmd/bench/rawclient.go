package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/turnout-analytics/turnout/internal/webhook"
)

// rawClient posts signed deliveries over keep-alive HTTP/1.1 connections written by hand:
// one request at a time per connection (no pipelining), but without net/http's transport
// machinery (two goroutines and channel hand-offs per connection), which cost the load
// generator more CPU per request than a C client like pgbench's spends. On two shared
// cores every microsecond the load generator saves is left to the server and PostgreSQL,
// so the benchmark reports the server's throughput with both clients.
type rawClient struct {
	addr  string
	conns chan *rawConn
	// dials counts the connections opened: a sender that finds none idle opens one,
	// and one returned to a full pool is closed.
	dials atomic.Int64
}

type rawConn struct {
	c   net.Conn
	br  *bufio.Reader
	buf []byte
}

func newRawClient(addr string, size int) *rawClient {
	return &rawClient{addr: addr, conns: make(chan *rawConn, size)}
}

// post delivers body signed with benchSecret and returns the status code.
func (rc *rawClient) post(ctx context.Context, body []byte) (int, error) {
	var conn *rawConn
	select {
	case conn = <-rc.conns:
	default:
		rc.dials.Add(1)
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", rc.addr)
		if err != nil {
			return 0, fmt.Errorf("dial: %w", err)
		}
		conn = &rawConn{c: c, br: bufio.NewReaderSize(c, 4096)}
	}
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	b := conn.buf[:0]
	b = append(b, "POST /gotowebinar/callback HTTP/1.1\r\nHost: "...)
	b = append(b, rc.addr...)
	b = append(b, "\r\nContent-Type: application/json\r\n"+webhook.HeaderTimestamp+": "...)
	b = append(b, ts...)
	b = append(b, "\r\n"+webhook.HeaderSignature+": "...)
	b = append(b, webhook.Sign([]byte(benchSecret), ts, body)...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	conn.buf = b
	if _, err := conn.c.Write(b); err != nil {
		conn.c.Close()
		return 0, fmt.Errorf("write request: %w", err)
	}
	resp, err := http.ReadResponse(conn.br, nil)
	if err != nil {
		conn.c.Close()
		return 0, fmt.Errorf("read response: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		conn.c.Close()
	} else {
		select {
		case rc.conns <- conn:
		default:
			conn.c.Close()
		}
	}
	return resp.StatusCode, nil
}

// close closes the idle connections; connections still in use are closed by their post.
func (rc *rawClient) close() {
	for {
		select {
		case conn := <-rc.conns:
			conn.c.Close()
		default:
			return
		}
	}
}
