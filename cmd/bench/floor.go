package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/turnout-analytics/turnout/internal/ingest"
)

// floorCommand is the hidden subcommand that serves the HTTP floor (see serveHTTPFloor).
const floorCommand = "http-floor"

// serveHTTPFloor serves, on addr, the part of ingest every delivery pays before any of its
// own work: a chi router on net/http with ingest's server limits, reading the body to the
// end and answering 200 with ingest's answer — no signature check, no validation, no
// database. Its rate under the same load generator is an upper bound on what ingest can
// reach on this machine, printed beside the baseline so the ingest figure can be read
// against both.
func serveHTTPFloor(ctx context.Context, addr string) error {
	r := chi.NewRouter()
	r.Post(ingest.CallbackPath, func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, ingest.DefaultMaxBodyBytes)); err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		body := []byte(`{"status":"stored"}`)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
	return serveReference(ctx, addr, r, "HTTP floor")
}

// measureHTTPFloor starts this program's HTTP floor server as a process of its own (as
// ingest is) and drives it with the lean client for d at the given concurrency. It
// returns the rate and the CPU split per request.
func measureHTTPFloor(ctx context.Context, senders int, d time.Duration, postmaster int) (float64, cpuEach, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, cpuEach{}, fmt.Errorf("find own executable: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return 0, cpuEach{}, err
	}
	cmd := exec.CommandContext(ctx, self, floorCommand, addr)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, cpuEach{}, fmt.Errorf("start HTTP floor server: %w", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := waitReady(ctx, "http://"+addr+"/readyz", 10*time.Second); err != nil {
		return 0, cpuEach{}, fmt.Errorf("HTTP floor server did not start: %w", err)
	}
	client := newRawClient(addr, 2*senders)
	defer client.close() // before the server is killed: its connections are of no further use
	send := client.post
	var seq atomic.Int64
	deliver := func(ctx context.Context) (int, error) {
		n := seq.Add(1)
		return send(ctx, fmt.Appendf(nil, deliveryBody, n, n, n))
	}
	if _, _, err := closedLoop(ctx, deliver, senders, 2*time.Second); err != nil {
		return 0, cpuEach{}, err
	}
	before, err := sampleCPU(cmd.Process.Pid, postmaster)
	if err != nil {
		return 0, cpuEach{}, err
	}
	ok, _, err := closedLoop(ctx, deliver, senders, d)
	if err != nil {
		return 0, cpuEach{}, err
	}
	after, err := sampleCPU(cmd.Process.Pid, postmaster)
	if err != nil {
		return 0, cpuEach{}, err
	}
	return float64(ok) / d.Seconds(), perDelivery(before, after, ok, "server"), nil
}

// freeAddr returns a loopback address with a port free at the time of the call.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// serveReference serves r (a reference receiver of bench ingest: the HTTP floor or the
// Watermill peer) on addr with ingest's server limits, and a /readyz that always answers,
// until ctx ends.
func serveReference(ctx context.Context, addr string, r chi.Router, what string) error {
	r.Get("/readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	srv := &http.Server{
		Addr:              addr,
		Handler:           r,
		ReadHeaderTimeout: ingest.DefaultReadHeaderTimeout,
		ReadTimeout:       ingest.DefaultReadTimeout,
		IdleTimeout:       ingest.DefaultIdleTimeout,
		MaxHeaderBytes:    ingest.DefaultMaxHeaderBytes,
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", what, err)
	}
	return nil
}
