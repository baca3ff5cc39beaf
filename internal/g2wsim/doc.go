// Package g2wsim is a local GoToWebinar: an in-memory emulator of GoTo's Webhooks Management
// API (secret keys, webhooks, user subscriptions) under /G2W/rest/v2, a minimal OAuth2
// authorization server (/oauth/authorize, /oauth/token), and a delivery engine that POSTs
// scenario events, signed as live GoTo signs them, to every callback whose webhook and user
// subscription are both ACTIVE.
//
// It is as strict as GoTo's published API, so tests catch what live GoTo would refuse: the
// request shapes of the published API (arrays, product=g2w on lists, both keys on a
// subscription update), https callbacks (loopback excepted), 403 InvalidToken for a bad or
// expired token, 200 on creates, UUID webhook keys, new webhooks and subscriptions visible
// only after Config.VisibilityDelay, and injected 503s and 429s (Config.FailureRate,
// ThrottleRate). api.go lists where the seed spec and the published API differ.
//
// # Organizers
//
// The emulated company account has several organizers (Config.Organizers, Sim.Organizers),
// each logging in for a token of their own (login_hint on /oauth/authorize). A user
// subscription belongs to the organizer whose token created it, and an event is delivered
// only through ACTIVE subscriptions of the organizer it belongs to (its organizerKey or
// webinarCreatorKey). ShareScenario (or Sim.Scenario) shares a generated scenario's webinars
// out among the organizers, round robin in webinar key order, rewriting each event's
// organizer keys; each OrganizerScenario carries that organizer's events and expected
// figures. Other emulators of the same account (the REST reporting API) should take their
// organizers and per-organizer scenarios from these, so both APIs describe the same account,
// and can take the same tokens with Sim.Authenticate (OrganizerKeyFrom names the caller).
//
// Secret keys honour validFrom: deliveries are signed with the key that became valid last.
//
// It is a development, demo and load-testing tool: nothing is persisted.
package g2wsim
