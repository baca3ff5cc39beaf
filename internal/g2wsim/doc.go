// Package g2wsim is a local GoToWebinar: an in-memory emulator of GoTo's Webhooks Management
// API (secret keys, webhooks, user subscriptions) under /G2W/rest/v2, a minimal OAuth2
// authorization server (/oauth/authorize, /oauth/token), and a delivery engine that POSTs
// scenario events, signed as live GoTo signs them, to every callback whose webhook and user
// subscription are both ACTIVE.
//
// The API serves the shapes of the spec (internal/g2wapi/openapi.yaml) and also accepts the
// request shapes live GoTo takes (arrays on create, `state` on PUT /webhooks, arrays on
// delete), so cmd/g2wctl runs against it unchanged. Where a live-shaped request has no spec
// counterpart, the answer is live-shaped too; see api.go.
//
// It is a development, demo and load-testing tool: nothing is persisted, and callbacks may be
// plain http.
package g2wsim
