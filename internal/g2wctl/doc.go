// Package g2wctl is the logic behind the g2wctl command: the user's token and secret-key file
// (one profile per logged-in organizer), OAuth2 credentials that refresh and persist
// themselves, the interactive login, and the idempotent setup (every organizer subscribed)
// and doctor (every organizer and event checked) sequences over internal/g2wapi. It reads no
// environment and prints only to the writers it is given; cmd/g2wctl wires it.
package g2wctl
