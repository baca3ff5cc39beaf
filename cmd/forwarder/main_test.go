package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/turnout-analytics/turnout/internal/forwarder"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestLoadConfig: defaults when unset, values when set, and every bad variable reported
// by name in one error.
func TestLoadConfig(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(nil, env(map[string]string{"DATABASE_URL": "postgres://x/y"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATSURL != defaultNATSURL || cfg.Addr != defaultAddr || !cfg.Migrate ||
		cfg.Forwarder.Stream.Replicas != forwarder.DefaultReplicas ||
		cfg.Forwarder.Stream.DuplicateWindow != forwarder.DefaultDuplicateWindow ||
		cfg.Forwarder.BatchSize != forwarder.DefaultBatchSize {
		t.Errorf("defaults not applied: %+v", cfg)
	}

	cfg, err = loadConfig([]string{"-migrate=false"}, env(map[string]string{
		"DATABASE_URL":               "postgres://x/y",
		"NATS_URL":                   "nats://a:4222,nats://b:4222",
		"FORWARDER_ADDR":             "127.0.0.1:9",
		"FORWARDER_STREAM_REPLICAS":  "3",
		"FORWARDER_DUPLICATE_WINDOW": "10m",
		"FORWARDER_BATCH_SIZE":       "500",
		"FORWARDER_ACK_WAIT":         "2s",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Migrate || cfg.Forwarder.Stream.Replicas != 3 || cfg.Forwarder.Stream.DuplicateWindow != 10*time.Minute ||
		cfg.Forwarder.BatchSize != 500 || cfg.Forwarder.AckWait != 2*time.Second || cfg.Addr != "127.0.0.1:9" {
		t.Errorf("values not read: %+v", cfg)
	}

	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"everything wrong", map[string]string{
			"NATS_URL":                  "::not a url",
			"FORWARDER_STREAM_REPLICAS": "7",
			"FORWARDER_BATCH_SIZE":      "0",
			"FORWARDER_ACK_WAIT":        "soon",
			"LOG_LEVEL":                 "loud",
		}, []string{"DATABASE_URL", "NATS_URL", "FORWARDER_STREAM_REPLICAS", "FORWARDER_BATCH_SIZE", "FORWARDER_ACK_WAIT", "LOG_LEVEL"}},
		{"window shorter than a retry", map[string]string{
			"DATABASE_URL":               "postgres://x/y",
			"FORWARDER_DUPLICATE_WINDOW": "5s",
		}, []string{"FORWARDER_DUPLICATE_WINDOW"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(nil, env(tc.env), io.Discard)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %s: %v", w, err)
				}
			}
		})
	}
}

// TestRunReportsBadConfiguration: run refuses to start, before touching any server.
func TestRunReportsBadConfiguration(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), nil, env(map[string]string{}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("run without DATABASE_URL: %v", err)
	}
}
