// Package faults holds Turnout's crash tests: the real ingest and projector binaries are
// killed with SIGKILL at random moments under load and restarted, and the tests check that
// nothing acknowledged is lost, nothing is stored twice, and the analytics tables end up
// equal to a clean rebuild from the log. It has no code of its own, only tests.
package faults
