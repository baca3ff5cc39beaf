package main

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/turnout-analytics/turnout/internal/pgtest"
)

func TestRunRequiresDatabaseURL(t *testing.T) {
	err := run(func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("run without DATABASE_URL = %v, want an error naming DATABASE_URL", err)
	}
}

func TestRunIsIdempotent(t *testing.T) {
	u := pgtest.URL(t) // already migrated: running again must be a no-op, not an error
	env := func(k string) string {
		if k == "DATABASE_URL" {
			return u
		}
		return ""
	}
	for range 2 {
		if err := run(env); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var version int
	var dirty bool
	if err := conn.QueryRow(context.Background(), `SELECT version, dirty FROM schema_migrations`).Scan(&version, &dirty); err != nil {
		t.Fatalf("read migration version: %v", err)
	}
	if version < 1 || dirty {
		t.Fatalf("schema_migrations = (%d, dirty=%v), want a clean version >= 1", version, dirty)
	}
}
