package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/turnout-analytics/turnout/internal/g2wsim"
	"github.com/turnout-analytics/turnout/internal/scenario"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	base := map[string]string{"G2WSIM_CLIENT_ID": "id", "G2WSIM_CLIENT_SECRET": "s3cret"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		check   func(config) bool
		wantErr []string // each must appear in the error
	}{
		{name: "defaults", env: base, check: func(c config) bool {
			return c.Addr == "127.0.0.1:8095" && c.TokenLifetime == time.Hour && c.Concurrency == 4 && c.Seed == 1 && !c.Shuffle
		}},
		{name: "env", env: with("G2WSIM_RATE", "50", "G2WSIM_DUPLICATES", "0.1", "G2WSIM_SHUFFLE", "true", "G2WSIM_API_RATE", "10"),
			check: func(c config) bool { return c.Rate == 50 && c.Duplicates == 0.1 && c.Shuffle && c.APIRate == 10 }},
		{name: "strictness defaults", env: base, check: func(c config) bool {
			return c.Organizers == 1 && c.VisibilityDelay == time.Second && c.FailureRate == 0 && c.ThrottleRate == 0 && !c.InsecureCallbacks
		}},
		{name: "strictness", env: with("G2WSIM_ORGANIZERS", "2", "G2WSIM_VISIBILITY_DELAY", "250ms", "G2WSIM_FAILURE_RATE", "0.1",
			"G2WSIM_THROTTLE_RATE", "0.2", "G2WSIM_INSECURE_CALLBACKS", "true"), check: func(c config) bool {
			return c.Organizers == 2 && c.VisibilityDelay == 250*time.Millisecond && c.FailureRate == 0.1 && c.ThrottleRate == 0.2 && c.InsecureCallbacks
		}},
		{name: "bad strictness", env: with("G2WSIM_ORGANIZERS", "0", "G2WSIM_FAILURE_RATE", "0.6", "G2WSIM_THROTTLE_RATE", "0.6"),
			wantErr: []string{"G2WSIM_ORGANIZERS", "G2WSIM_FAILURE_RATE + G2WSIM_THROTTLE_RATE"}},
		{name: "flags win", env: with("G2WSIM_SEED", "3"), args: []string{"-seed", "9", "-shuffle", "-token-lifetime", "5m", "-listen", ":0"},
			check: func(c config) bool {
				return c.Seed == 9 && c.Shuffle && c.TokenLifetime == 5*time.Minute && c.Addr == ":0"
			}},
		{name: "scenario size", env: with("G2WSIM_WEBINARS", "100", "G2WSIM_REGISTRANTS", "50", "G2WSIM_JOIN_RATE", "0.3"), args: []string{"-join-rate", "0.8"},
			check: func(c config) bool { return c.Webinars == 100 && c.Registrants == 50 && c.JoinRate == 0.8 }},
		{name: "default scenario size", env: base,
			check: func(c config) bool { return c.Webinars == 0 && c.Registrants == 20 && c.JoinRate == 0.6 }},
		{name: "bad scenario size", env: with("G2WSIM_WEBINARS", "-1", "G2WSIM_REGISTRANTS", "0", "G2WSIM_JOIN_RATE", "2"),
			wantErr: []string{"G2WSIM_WEBINARS", "G2WSIM_REGISTRANTS", "G2WSIM_JOIN_RATE"}},
		{name: "scenario too large", env: with("G2WSIM_WEBINARS", "100000", "G2WSIM_REGISTRANTS", "100"),
			wantErr: []string{"G2WSIM_WEBINARS × G2WSIM_REGISTRANTS"}},
		{name: "missing client", env: map[string]string{}, wantErr: []string{"G2WSIM_CLIENT_ID", "G2WSIM_CLIENT_SECRET"}},
		{name: "bad values", env: with("G2WSIM_DUPLICATES", "2", "G2WSIM_TOKEN_LIFETIME", "soon", "G2WSIM_CONCURRENCY", "0", "LOG_LEVEL", "loud"),
			wantErr: []string{"G2WSIM_DUPLICATES", "G2WSIM_TOKEN_LIFETIME", "G2WSIM_CONCURRENCY", "LOG_LEVEL"}},
		{name: "bad flag", env: base, args: []string{"-rate", "-1"}, wantErr: []string{"rate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadConfig(tt.args, env(tt.env), io.Discard)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatal("want an error")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %s", err, w)
					}
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Error("the error shows the client secret")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("config %+v", cfg)
			}
		})
	}
}

// syncBuffer is a goroutine-safe stdout for run.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRun starts the binary's run, gets a token, asks for a delivery (no webhooks are set up,
// so every event is unrouted), and shuts it down.
func TestRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-seed", "4"},
			env(map[string]string{"G2WSIM_CLIENT_ID": "id", "G2WSIM_CLIENT_SECRET": "secret", "LOG_LEVEL": "warn"}), &out)
	}()

	var addr string
	deadline := time.Now().Add(5 * time.Second)
	for addr == "" {
		if a, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "listening on "); ok {
			addr = a
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run ended early: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("run did not start listening within 5s")
		}
	}
	base := "http://" + addr

	cc := clientcredentials.Config{ClientID: "id", ClientSecret: "secret", TokenURL: base + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}
	resp, err := cc.Client(ctx).Get(base + g2wsim.BasePath + "/userSubscriptions?product=g2w")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("management API with a token: %d", resp.StatusCode)
	}

	resp, err = http.Post(base+"/_sim/deliver", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var report g2wsim.Report
	err = json.NewDecoder(resp.Body).Decode(&report)
	_ = resp.Body.Close()
	if want := len(scenario.Generate(4).Events); err != nil || report.Events != want || report.Unrouted != want || len(report.Expected) == 0 {
		t.Errorf("deliver report %+v, %v; want %d events, all unrouted, with expected figures", report, err, want)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not shut down")
	}
}
