package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestConfigErrorsNameTheVariable: every missing or bad value is reported, by name, at once;
// good values are read.
func TestConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the error; none: no error
	}{
		{name: "nothing set", env: map[string]string{"HOME": "/h"},
			want: []string{"DATABASE_URL", "G2W_CLIENT_ID", "G2W_CLIENT_SECRET"}},
		{name: "client credentials need the organizer", env: map[string]string{"DATABASE_URL": "postgres://x", "G2W_CLIENT_ID": "i",
			"G2W_CLIENT_SECRET": "s", "G2W_CLIENT_CREDENTIALS": "true"}, want: []string{"G2W_ORGANIZER_KEY"}},
		{name: "bad values", args: []string{"once", "-since", "-5h"}, env: map[string]string{"DATABASE_URL": "postgres://x", "G2W_CLIENT_ID": "i",
			"G2W_CLIENT_SECRET": "s", "HOME": "/h", "RECONCILE_RATE": "fast", "RECONCILE_SWEEP_DAYS": "0", "LOG_LEVEL": "loud"},
			want: []string{"RECONCILE_RATE", "RECONCILE_SWEEP_DAYS", "LOG_LEVEL", "-since"}},
		{name: "stray argument", args: []string{"twice"}, env: map[string]string{"DATABASE_URL": "postgres://x", "G2W_CLIENT_ID": "i",
			"G2W_CLIENT_SECRET": "s", "HOME": "/h"}, want: []string{"unexpected arguments"}},
		{name: "good", args: []string{"once", "-since", "48h"}, env: map[string]string{"DATABASE_URL": "postgres://x", "G2W_CLIENT_ID": "i",
			"G2W_CLIENT_SECRET": "s", "HOME": "/h", "G2W_PROFILES": "alice, bob"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if !cfg.Once || cfg.Since != 48*time.Hour || strings.Join(cfg.Profiles, "|") != "alice|bob" || cfg.TokenFile != "/h/.config/turnout/g2w-token.json" {
					t.Errorf("config = %+v", cfg)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
			if strings.Contains(err.Error(), "s\"") && tt.env["G2W_CLIENT_SECRET"] != "" {
				t.Errorf("error shows the client secret: %q", err)
			}
		})
	}
}
