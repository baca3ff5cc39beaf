package forwarder

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamName is the JetStream stream the forwarder publishes to; it captures every subject
// under SubjectPrefix.
const StreamName = "TURNOUT"

// StreamConfig is the configuration of the TURNOUT stream when the forwarder creates it.
type StreamConfig struct {
	// Replicas is how many servers hold the stream (1, or 3 in a cluster; at most 5).
	Replicas int
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id to drop a re-publish.
	DuplicateWindow time.Duration
}

// EnsureStream creates the TURNOUT stream if it is missing. An existing stream is left as
// it is (an operator may have tuned its limits or replicas); a different replica count or
// duplicate window is reported in the returned info so the caller can log it.
func EnsureStream(ctx context.Context, nc *nats.Conn, cfg StreamConfig) (*jetstream.StreamInfo, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	s, err := js.Stream(ctx, StreamName)
	if err == nil {
		return s.CachedInfo(), nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("look up stream %s: %w", StreamName, err)
	}
	s, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Turnout: every GoToWebinar event of the log, raw, in log order",
		Subjects:    []string{SubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		// Created by another forwarder between our look-up and our create.
		if s, err = js.Stream(ctx, StreamName); err == nil {
			return s.CachedInfo(), nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", StreamName, err)
	}
	return s.CachedInfo(), nil
}
