package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestClusterSurvivesLeaderKill starts three servers, creates an R3 stream, SIGKILLs its
// leader and checks that another node takes over, that messages stored before are still
// there, and that the killed node rejoins on its old ports.
func TestClusterSurvivesLeaderKill(t *testing.T) {
	t.Parallel()
	c := New(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := js.Publish(ctx, "t.x", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	leader, err := c.StreamLeader(ctx, nc, "T")
	if err != nil {
		t.Fatal(err)
	}
	c.Kill(leader)
	var newLeader int
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		newLeader, err = c.StreamLeader(rctx, nc, "T")
		rcancel()
		if err == nil && newLeader != leader {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no new leader after killing %s: %v", c.Nodes[leader].Name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().State.Msgs; got != 10 {
		t.Fatalf("after the leader's death the stream holds %d messages, want 10", got)
	}
	if err := c.Restart(leader); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(ctx); err != nil {
		t.Fatalf("restarted node: %v", err)
	}
}
