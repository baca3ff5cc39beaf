// Command g2wctl wires Turnout to a GoToWebinar account: OAuth2 login, the webhook secret key,
// webhooks and user subscriptions, an idempotent `setup` and a `doctor` that checks delivery
// can flow. It talks to live GoTo by default and to cmd/g2wsim when G2W_API_URL and
// G2W_AUTH_URL point there. The logic lives in internal/g2wctl; this package parses arguments
// and prints.
//
// The token file (default $XDG_CONFIG_HOME/turnout/g2w-token.json, mode 0600, replaced
// atomically) holds one profile per organizer logged in with `login --profile NAME` (the
// OAuth2 token, rewritten on every refresh), and the webhook secret keys g2wctl created, each
// tagged with the API URL it belongs to. GoTo returns a key's value only when creating it, so
// keeping them is what lets a re-run of setup print G2W_SECRET_KEYS again, and `secret rotate`
// print old and new. setup never creates a key when one is recorded or G2W_SECRET_KEYS is set,
// nor on an application that already has webhooks: a key valid at once would make ingest
// refuse every delivery. With --client-credentials (automation, g2wsim) no token is stored,
// only the secret keys.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "g2wctl:", err)
		stop()
		os.Exit(1)
	}
}

// run executes one g2wctl command. Results meant for other programs (keys, the
// G2W_SECRET_KEYS line, the doctor checklist) go to stdout, progress and prompts to stderr.
// A returned error is one line for API and OAuth failures (status and message, no wrapping).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return describe(dispatch(ctx, args, getenv, stdout, stderr))
}
