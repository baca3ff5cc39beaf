// Command projector builds and maintains the analytics schema from the event log.
//
//	projector [-migrate=false]                 live: consume the log into analytics
//	projector rebuild [-migrate=false]         rebuild analytics from the whole log, then exit
//	projector status [-json] [-migrate=false]  positions, lag and parked events
//	projector forget -email X | -registrant-key K [-webinar-key W]
//	                                           erase a person's personal data (GDPR)
//
// Configuration is read from the environment; see config.go.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "projector:", err)
		os.Exit(1)
	}
}
