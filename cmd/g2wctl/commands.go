package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/time/rate"

	"github.com/turnout-analytics/turnout/internal/envflag"
	"github.com/turnout-analytics/turnout/internal/g2wapi"
	"github.com/turnout-analytics/turnout/internal/g2wctl"
)

const usageText = `Usage: g2wctl <command> [flags] [args]

Commands:
  login [--profile NAME] [--login-hint EMAIL]  authorize an organizer in a browser; store the
                                        token (0600) under a profile (default "default")
  profiles                              list the logged-in organizers
  setup --callback URL [--events a,b] [--profiles a,b]
                                        webhooks, activation, and every organizer's (or those
                                        named) subscriptions, idempotent; a secret key only on
                                        a first setup; prints G2W_SECRET_KEYS=… for ingest
  doctor [--callback URL] [--profiles a,b]  check every organizer and event is ACTIVE and the
                                        callback answers; exit 1 if not
  secret create [--replace]             create a key valid at once; prints G2W_SECRET_KEYS=<value>
  secret rotate --valid-from T          create the next key, valid from T (RFC 3339, or a
                                        duration from now such as 24h); prints
                                        G2W_SECRET_KEYS=<old>,<new> for ingest, to set before T
  webhooks create --callback URL [--events a,b] | list | get KEY | activate KEY... | deactivate KEY...
  subscriptions create --callback URL WEBHOOKKEY... | list | get KEY
                | update KEY... [--state ACTIVE|INACTIVE] [--callback URL] | delete KEY...

Every command takes --client-id, --client-secret, --api-url, --auth-url, --token-file,
--client-credentials and --profile (or G2W_CLIENT_ID, G2W_CLIENT_SECRET, G2W_API_URL,
G2W_AUTH_URL, G2W_TOKEN_FILE, G2W_CLIENT_CREDENTIALS, G2W_PROFILE); run "g2wctl <command> -h"
for its flags. G2W_SECRET_KEYS, when set, is taken as ingest's current keys: setup then
creates none, and secret rotate prints them beside the new one.
The token file also keeps the secret keys g2wctl created, because GoTo shows a value only once.
`

// httpTimeout bounds each request to GoTo (token requests included).
const httpTimeout = 30 * time.Second

// errDoctor is returned when doctor found a problem; the checklist says which.
var errDoctor = errors.New("doctor: some checks failed")

// groups are the commands that take a subcommand.
var groups = map[string][]string{
	"secret":        {"create", "rotate"},
	"webhooks":      {"create", "list", "get", "activate", "deactivate"},
	"subscriptions": {"create", "list", "get", "update", "delete"},
}

// dispatch runs the command named by args[0].
func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) || args[0] == "help" {
		fmt.Fprint(stderr, usageText)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	name, rest := args[0], args[1:]
	var sub string
	if subs, ok := groups[name]; ok {
		if len(rest) == 0 || isHelp(rest[0]) {
			fmt.Fprintf(stderr, "Usage: g2wctl %s <%s> [flags]; see g2wctl -h\n", name, strings.Join(subs, "|"))
			if len(rest) == 0 {
				return fmt.Errorf("%s: a subcommand is required (see g2wctl -h)", name)
			}
			return nil
		}
		sub, rest = rest[0], rest[1:]
	}
	a := &app{getenv: getenv, stdout: stdout, stderr: stderr, limiter: g2wapi.NewLimiter(g2wapi.DefaultRequestsPerSecond)}
	var err error
	switch name + " " + sub {
	case "login ":
		err = a.login(ctx, rest)
	case "profiles ":
		err = a.profiles(rest)
	case "setup ":
		err = a.setup(ctx, rest)
	case "doctor ":
		err = a.doctor(ctx, rest)
	case "secret create":
		err = a.secretCreate(ctx, rest)
	case "secret rotate":
		err = a.secretRotate(ctx, rest)
	case "webhooks create", "webhooks list", "webhooks get", "webhooks activate", "webhooks deactivate":
		err = a.webhooks(ctx, sub, rest)
	case "subscriptions create", "subscriptions list", "subscriptions get", "subscriptions update", "subscriptions delete":
		err = a.subscriptions(ctx, sub, rest)
	default:
		fmt.Fprint(stderr, usageText)
		return fmt.Errorf("unknown command %q", strings.TrimSpace(name+" "+sub))
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func isHelp(arg string) bool { return arg == "-h" || arg == "--help" || arg == "-help" }

// describe turns an error into what the user sees: an API or OAuth failure as one line with
// status and message, without the wrapping that led to it; anything else as it is.
func describe(err error) error {
	if err == nil {
		return nil
	}
	var apiErr *g2wapi.APIError
	if errors.As(err, &apiErr) {
		return apiErr
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		msg := cmp.Or(re.ErrorDescription, re.ErrorCode)
		status := "no response"
		if re.Response != nil {
			status = re.Response.Status
		}
		if msg == "" {
			return fmt.Errorf("GoTo OAuth: %s", status)
		}
		return fmt.Errorf("GoTo OAuth: %s: %s", status, strings.Join(strings.Fields(msg), " "))
	}
	return err
}

// app holds what every command needs.
type app struct {
	getenv         func(string) string
	stdout, stderr io.Writer
	// limiter keeps every client of this run, whichever organizer's, within GoTo's limit.
	limiter *rate.Limiter
}

// parse reads a command's configuration: common flags plus those extra registers.
func (a *app) parse(usage string, args []string, extra func(fs *flag.FlagSet)) (config, []string, error) {
	c := newCommand(usage, usage, a.getenv, a.stderr)
	if extra != nil {
		extra(c.fs)
	}
	pos, err := c.parse(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c.cfg, nil, err
		}
		return c.cfg, nil, fmt.Errorf("read configuration: %w", err)
	}
	return c.cfg, pos, nil
}

// tokenHTTP sends token requests.
var tokenHTTP = &http.Client{Timeout: httpTimeout}

// oauthContext carries the HTTP client x/oauth2 uses for token requests.
func oauthContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, tokenHTTP)
}

// newClient returns an API client calling with creds.
func (a *app) newClient(cfg config, creds g2wapi.Credentials) (*g2wapi.Client, error) {
	return g2wapi.New(g2wapi.Config{BaseURL: cfg.APIURL, HTTPClient: &http.Client{Timeout: httpTimeout},
		Credentials: creds, Limiter: a.limiter})
}

// clientCredentialsProfile names the organizer of --client-credentials in what is printed.
const clientCredentialsProfile = "client-credentials"

// organizers returns an Organizer, with its own client, for each profile named (all the
// stored profiles when names is empty) or, with --client-credentials, the one the
// client_credentials grant gives.
func (a *app) organizers(cfg config, names []string) ([]g2wctl.Organizer, *g2wctl.Store, error) {
	store := &g2wctl.Store{Path: cfg.TokenFile}
	conf := g2wctl.OAuthConfig(cfg.ClientID, cfg.ClientSecret, cfg.AuthURL)
	if cfg.ClientCredentials {
		c, err := a.newClient(cfg, g2wctl.ClientCredentials(conf, tokenHTTP))
		if err != nil {
			return nil, nil, err
		}
		return []g2wctl.Organizer{{Profile: clientCredentialsProfile, Client: c}}, store, nil
	}
	f, err := store.Load()
	if err != nil {
		return nil, nil, err
	}
	if len(names) == 0 {
		if names = f.ProfileNames(); len(names) == 0 {
			return nil, nil, g2wctl.ErrNoToken
		}
	}
	out := make([]g2wctl.Organizer, 0, len(names))
	for _, name := range names {
		creds, err := g2wctl.StoredCredentials(conf, tokenHTTP, store, name)
		if err != nil {
			return nil, nil, err
		}
		c, err := a.newClient(cfg, creds)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, g2wctl.Organizer{Profile: name, Key: f.Profiles[name].OrganizerKey, Client: c})
	}
	return out, store, nil
}

// client returns an API client for the one organizer a command acts as: --profile, else the
// only stored profile, else "default" (or the client_credentials grant).
func (a *app) client(_ context.Context, cfg config) (*g2wapi.Client, *g2wctl.Store, error) {
	name := cfg.Profile
	if name == "" && !cfg.ClientCredentials {
		f, err := (&g2wctl.Store{Path: cfg.TokenFile}).Load()
		if err != nil {
			return nil, nil, err
		}
		name = g2wctl.DefaultProfile
		if names := f.ProfileNames(); len(names) == 1 {
			name = names[0]
		}
	}
	orgs, store, err := a.organizers(cfg, []string{name})
	if err != nil {
		return nil, nil, err
	}
	return orgs[0].Client, store, nil
}

func (a *app) login(ctx context.Context, args []string) error {
	var redirect, hint string
	timeout := 5 * time.Minute
	cfg, pos, err := a.parse("login [--profile NAME] [--login-hint EMAIL] [--redirect URL] [--timeout 5m]", args, func(fs *flag.FlagSet) {
		fs.Var(envflag.StringValue(&redirect), "redirect", "loopback redirect URL registered with the OAuth client (default http://127.0.0.1:<random>/callback)")
		fs.Var(envflag.StringValue(&hint), "login-hint", "the organizer's email, proposed by the login page (login_hint)")
		fs.Var(envflag.DurationValue(&timeout), "timeout", "how long to wait for the browser")
	})
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("login: unexpected arguments %q", pos)
	}
	profile := cmp.Or(cfg.Profile, g2wctl.DefaultProfile)
	conf := g2wctl.OAuthConfig(cfg.ClientID, cfg.ClientSecret, cfg.AuthURL)
	tok, err := g2wctl.Login(oauthContext(ctx), conf, g2wctl.LoginConfig{RedirectURL: redirect, Timeout: timeout, LoginHint: hint,
		OnURL: func(u string) { fmt.Fprintf(a.stderr, "Open this URL in a browser to log in to GoTo:\n\n%s\n\n", u) }})
	if err != nil {
		return err
	}
	store := &g2wctl.Store{Path: cfg.TokenFile}
	if err := g2wctl.SaveLogin(store, profile, tok); err != nil {
		return err
	}
	f, err := store.Load()
	if err != nil {
		return err
	}
	p := f.Profiles[profile]
	fmt.Fprintf(a.stdout, "logged in as profile %s (organizer %s %s); token stored in %s\n", profile,
		cmp.Or(p.OrganizerKey, "?"), p.Email, cfg.TokenFile)
	return nil
}

func (a *app) profiles(args []string) error {
	cfg, pos, err := a.parse("profiles", args, nil)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("profiles: unexpected arguments %q", pos)
	}
	f, err := (&g2wctl.Store{Path: cfg.TokenFile}).Load()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tORGANIZER KEY\tEMAIL\tTOKEN EXPIRES")
	for _, name := range f.ProfileNames() {
		p := f.Profiles[name]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, cmp.Or(p.OrganizerKey, "-"), cmp.Or(p.Email, "-"), formatTime(p.Token.Expiry))
	}
	return tw.Flush()
}

// recordedKeys returns the secret keys recorded for cfg's API, oldest first.
func recordedKeys(f g2wctl.File, apiURL string) []g2wapi.SecretKey {
	var out []g2wapi.SecretKey
	for _, s := range f.Secrets(apiURL) {
		out = append(out, g2wapi.SecretKey{ID: s.ID, Value: s.Value, ValidFrom: s.ValidFrom})
	}
	return out
}

// keysLine is what ingest's G2W_SECRET_KEYS must be: every key, comma-separated.
func keysLine(values []string) string {
	return "G2W_SECRET_KEYS=" + strings.Join(values, ",")
}

func (a *app) setup(ctx context.Context, args []string) error {
	var callback string
	var names listValue
	events := listValue(g2wctl.Events)
	cfg, pos, err := a.parse("setup --callback URL [--events a,b,c] [--profiles a,b]", args, func(fs *flag.FlagSet) {
		fs.Var(envflag.StringValue(&callback), "callback", "ingest's webhook URL (https on live GoTo; required)")
		fs.Var(&events, "events", "events to subscribe to")
		fs.Var(&names, "profiles", "organizers to subscribe (default: every logged-in one)")
	})
	if err != nil {
		return err
	}
	if callback == "" || len(pos) > 0 {
		return errors.New("setup: --callback URL is required and nothing else")
	}
	orgs, store, err := a.organizers(cfg, names)
	if err != nil {
		return err
	}
	f, err := store.Load()
	if err != nil {
		return err
	}
	res, err := g2wctl.Setup(ctx, g2wctl.SetupConfig{Callback: callback, Events: events, Organizers: orgs,
		SecretKeys: recordedKeys(f, cfg.APIURL), SecretKeysGiven: strings.TrimSpace(cfg.SecretKeys) != "",
		SaveSecret: func(k g2wapi.SecretKey) error { return saveSecret(store, cfg.APIURL, k) },
		Out:        a.stderr})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "setup complete: %d created; %d webhooks ACTIVE, each with an ACTIVE subscription of %d organizers\n",
		res.Created, len(res.Webhooks), len(orgs))
	if len(res.SecretKeys) > 0 {
		values := make([]string, len(res.SecretKeys))
		for i, k := range res.SecretKeys {
			values[i] = k.Value
		}
		fmt.Fprintln(a.stdout, keysLine(values))
	}
	return nil
}

func saveSecret(store *g2wctl.Store, apiURL string, k g2wapi.SecretKey) error {
	return store.Update(func(f *g2wctl.File) {
		f.SecretKeys = append(f.SecretKeys, g2wctl.StoredSecret{APIURL: apiURL, ID: k.ID, Value: k.Value, ValidFrom: k.ValidFrom})
	})
}

func (a *app) doctor(ctx context.Context, args []string) error {
	var callback string
	var names listValue
	events := listValue(g2wctl.Events)
	cfg, pos, err := a.parse("doctor [--callback URL] [--profiles a,b]", args, func(fs *flag.FlagSet) {
		fs.Var(envflag.StringValue(&callback), "callback", "check only the webhooks calling this URL")
		fs.Var(&events, "events", "events that must be delivered")
		fs.Var(&names, "profiles", "organizers to check (default: every logged-in one)")
	})
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("doctor: unexpected arguments %q", pos)
	}
	orgs, _, err := a.organizers(cfg, names)
	if err != nil {
		return err
	}
	ok, err := g2wctl.Doctor(ctx, g2wctl.DoctorConfig{Callback: callback, Events: events, Organizers: orgs,
		HTTPClient: &http.Client{Timeout: 10 * time.Second}, Out: a.stdout})
	if err != nil {
		return err
	}
	if !ok {
		return errDoctor
	}
	return nil
}

// errKeyRecorded is returned by secret create when a key is already recorded: a new key
// valid at once would make ingest, which knows only the old one, refuse every delivery.
var errKeyRecorded = errors.New("secret create: a key is already recorded for this API; " +
	"use `g2wctl secret rotate --valid-from T` to replace it without losing deliveries, or --replace to make a key valid at once")

func (a *app) secretCreate(ctx context.Context, args []string) error {
	var replace bool
	cfg, pos, err := a.parse("secret create [--replace]", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&replace, "replace", false, "create a key valid at once although one is recorded (ingest refuses deliveries until it has the new key)")
	})
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("secret create: unexpected arguments %q", pos)
	}
	c, store, err := a.client(ctx, cfg)
	if err != nil {
		return err
	}
	f, err := store.Load()
	if err != nil {
		return err
	}
	if len(f.Secrets(cfg.APIURL)) > 0 && !replace {
		return errKeyRecorded
	}
	k, err := c.CreateSecretKey(ctx, time.Time{})
	if err != nil {
		return err
	}
	// Saved first: GoTo never shows the value again.
	if err := saveSecret(store, cfg.APIURL, k); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "secret key %s created, valid from %s; stored in %s\n", cmp.Or(k.ID, "(no id)"), formatTime(k.ValidFrom), cfg.TokenFile)
	fmt.Fprintln(a.stdout, keysLine([]string{k.Value}))
	return nil
}

// secretRotate creates the next key, valid from a future time, and prints the
// G2W_SECRET_KEYS line holding the current keys and the new one: given to ingest before that
// time, every delivery verifies, whichever key GoTo signs it with.
func (a *app) secretRotate(ctx context.Context, args []string) error {
	var validFrom string
	cfg, pos, err := a.parse("secret rotate --valid-from T", args, func(fs *flag.FlagSet) {
		fs.Var(envflag.StringValue(&validFrom), "valid-from", "when GoTo starts signing with the new key: RFC 3339 (2026-12-01T06:00:00Z) or a duration from now (24h); required")
	})
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("secret rotate: unexpected arguments %q", pos)
	}
	at, err := parseValidFrom(validFrom, time.Now())
	if err != nil {
		return fmt.Errorf("secret rotate: --valid-from: %w", err)
	}
	c, store, err := a.client(ctx, cfg)
	if err != nil {
		return err
	}
	f, err := store.Load()
	if err != nil {
		return err
	}
	// The current keys: what ingest has (G2W_SECRET_KEYS), else what g2wctl recorded.
	var current []string
	for v := range strings.SplitSeq(cfg.SecretKeys, ",") {
		if v = strings.TrimSpace(v); v != "" {
			current = append(current, v)
		}
	}
	if len(current) == 0 {
		for _, k := range f.Secrets(cfg.APIURL) {
			current = append(current, k.Value)
		}
	}
	if len(current) == 0 {
		return errors.New("secret rotate: the current key is unknown here: set G2W_SECRET_KEYS to ingest's keys, so the line printed keeps them")
	}
	k, err := c.CreateSecretKey(ctx, at)
	if err != nil {
		return err
	}
	if err := saveSecret(store, cfg.APIURL, k); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "secret key %s created, valid from %s; stored in %s.\n"+
		"Give ingest the line below and restart it before then; once no delivery signed with the old key\n"+
		"can still arrive (a day after), G2W_SECRET_KEYS=<new key> alone is enough.\n",
		cmp.Or(k.ID, "(no id)"), formatTime(cmp.Or(k.ValidFrom, at)), cfg.TokenFile)
	fmt.Fprintln(a.stdout, keysLine(append(current, k.Value)))
	return nil
}

// parseValidFrom reads --valid-from: an RFC 3339 time, or a duration from now. It must be in
// the future: a key valid at once is what rotation avoids.
func parseValidFrom(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("required (RFC 3339, or a duration from now such as 24h)")
	}
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		d, derr := time.ParseDuration(s)
		if derr != nil {
			return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration", s)
		}
		at = now.Add(d)
	}
	if !at.After(now) {
		return time.Time{}, fmt.Errorf("%s is not in the future; for a key valid at once use secret create", at.Format(time.RFC3339))
	}
	return at.Truncate(time.Second), nil
}

func (a *app) webhooks(ctx context.Context, sub string, args []string) error {
	var callback string
	events := listValue(g2wctl.Events)
	cfg, keys, err := a.parse("webhooks "+sub, args, func(fs *flag.FlagSet) {
		if sub == "create" {
			fs.Var(envflag.StringValue(&callback), "callback", "callback URL (required)")
			fs.Var(&events, "events", "events to create webhooks for")
		}
	})
	if err != nil {
		return err
	}
	if err := checkArgs("webhooks "+sub, keys, map[string]int{"create": 0, "list": 0, "get": 1, "activate": -1, "deactivate": -1}[sub]); err != nil {
		return err
	}
	c, _, err := a.client(ctx, cfg)
	if err != nil {
		return err
	}
	switch sub {
	case "create":
		if callback == "" {
			return errors.New("webhooks create: --callback URL is required")
		}
		ws, err := c.CreateWebhooks(ctx, callback, events...)
		if err != nil {
			return err
		}
		return printWebhooks(a.stdout, ws)
	case "list":
		ws, err := c.ListWebhooks(ctx)
		if err != nil {
			return err
		}
		return printWebhooks(a.stdout, ws)
	case "get":
		w, err := c.GetWebhook(ctx, keys[0])
		if err != nil {
			return err
		}
		return printWebhooks(a.stdout, []g2wapi.Webhook{w})
	default: // activate, deactivate
		state := g2wapi.StateActive
		if sub == "deactivate" {
			state = g2wapi.StateInactive
		}
		if err := c.SetWebhookState(ctx, state, keys...); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%d webhooks %s\n", len(keys), state)
		return nil
	}
}

func (a *app) subscriptions(ctx context.Context, sub string, args []string) error {
	var callback string
	var state stateValue
	cfg, keys, err := a.parse("subscriptions "+sub, args, func(fs *flag.FlagSet) {
		if sub == "create" || sub == "update" {
			fs.Var(envflag.StringValue(&callback), "callback", "callback URL")
		}
		if sub == "update" {
			fs.Var(&state, "state", "ACTIVE or INACTIVE")
		}
	})
	if err != nil {
		return err
	}
	if err := checkArgs("subscriptions "+sub, keys, map[string]int{"create": -1, "list": 0, "get": 1, "update": -1, "delete": -1}[sub]); err != nil {
		return err
	}
	c, _, err := a.client(ctx, cfg)
	if err != nil {
		return err
	}
	switch sub {
	case "create":
		if callback == "" {
			return errors.New("subscriptions create: --callback URL is required")
		}
		subs, err := c.CreateUserSubscriptions(ctx, callback, keys...)
		if err != nil {
			return err
		}
		return printSubscriptions(a.stdout, subs)
	case "list":
		subs, err := c.ListUserSubscriptions(ctx)
		if err != nil {
			return err
		}
		return printSubscriptions(a.stdout, subs)
	case "get":
		s, err := c.GetUserSubscription(ctx, keys[0])
		if err != nil {
			return err
		}
		return printSubscriptions(a.stdout, []g2wapi.UserSubscription{s})
	case "update":
		if state == "" && callback == "" {
			return errors.New("subscriptions update: --state or --callback is required")
		}
		// GoTo requires each subscription's webhook key beside its own: read them first.
		changes := make([]g2wapi.UserSubscriptionChange, len(keys))
		for i, k := range keys {
			sub, err := c.GetUserSubscription(ctx, k)
			if err != nil {
				return err
			}
			changes[i] = g2wapi.UserSubscriptionChange{Key: k, WebhookKey: sub.WebhookKey, State: g2wapi.State(state), CallbackURL: callback}
		}
		if err := c.UpdateUserSubscriptions(ctx, changes...); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%d subscriptions updated\n", len(keys))
		return nil
	default: // delete
		if err := c.DeleteUserSubscriptions(ctx, keys...); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%d subscriptions deleted\n", len(keys))
		return nil
	}
}

// checkArgs checks the number of keys: want exactly n, or at least one when n is -1.
func checkArgs(name string, keys []string, n int) error {
	switch {
	case n == -1 && len(keys) == 0:
		return fmt.Errorf("%s: at least one key is required", name)
	case n >= 0 && len(keys) != n:
		return fmt.Errorf("%s: want %d key arguments, got %d", name, n, len(keys))
	}
	return nil
}

func printWebhooks(w io.Writer, ws []g2wapi.Webhook) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WEBHOOK KEY\tEVENT\tSTATE\tCALLBACK")
	for _, h := range ws {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.Key, h.EventName, h.State, h.CallbackURL)
	}
	return tw.Flush()
}

func printSubscriptions(w io.Writer, subs []g2wapi.UserSubscription) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBSCRIPTION KEY\tWEBHOOK KEY\tSTATE\tACTIVATION\tCALLBACK")
	for _, s := range subs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Key, s.WebhookKey, s.State, cmp.Or(s.ActivationState, "-"), s.CallbackURL)
	}
	return tw.Flush()
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "(not given)"
	}
	return t.Format(time.RFC3339)
}
