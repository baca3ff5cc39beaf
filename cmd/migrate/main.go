// Command migrate applies Turnout's pending migrations to DATABASE_URL and exits. The
// services apply them at start too (unless run with -migrate=false); this is for operators
// who upgrade the schema as a separate deployment step (make migrate).
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/turnout-analytics/turnout/migrations"
)

func main() {
	if err := run(os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(1)
	}
	fmt.Println("migrate: database is up to date")
}

func run(getenv func(string) string) error {
	u := getenv("DATABASE_URL")
	if u == "" {
		return errors.New("DATABASE_URL is required (a postgres:// URL)")
	}
	return migrations.Up(u)
}
