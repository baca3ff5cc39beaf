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

	"github.com/turnout-analytics/turnout/internal/envflag"
	"github.com/turnout-analytics/turnout/internal/g2wapi"
	"github.com/turnout-analytics/turnout/internal/g2wctl"
)

const usageText = `Usage: g2wctl <command> [flags] [args]

Commands:
  login                                 authorize in a browser; store the token (0600)
  setup --callback URL [--events a,b]   secret key, webhooks, activation, subscriptions (idempotent);
                                        prints G2W_SECRET_KEYS=<value> for ingest
  doctor [--callback URL]               check webhooks, subscriptions and the callback; exit 1 if not ok
  secret create                         create a secret key; prints G2W_SECRET_KEYS=<value>
  webhooks create --callback URL [--events a,b] | list | get KEY | activate KEY... | deactivate KEY...
  subscriptions create --callback URL WEBHOOKKEY... | list | get KEY
                | update KEY... [--state ACTIVE|INACTIVE] [--callback URL] | delete KEY...

Every command takes --client-id, --client-secret, --api-url, --auth-url, --token-file and
--client-credentials (or G2W_CLIENT_ID, G2W_CLIENT_SECRET, G2W_API_URL, G2W_AUTH_URL,
G2W_TOKEN_FILE, G2W_CLIENT_CREDENTIALS); run "g2wctl <command> -h" for its flags.
The token file also keeps the secret key setup created, because GoTo shows its value only once.
`

// httpTimeout bounds each request to GoTo (token requests included).
const httpTimeout = 30 * time.Second

// errDoctor is returned when doctor found a problem; the checklist says which.
var errDoctor = errors.New("doctor: some checks failed")

// dispatch runs the command named by args[0].
func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usageText)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	name, rest := args[0], args[1:]
	var sub string
	if name == "secret" || name == "webhooks" || name == "subscriptions" {
		if len(rest) == 0 {
			return fmt.Errorf("%s: a subcommand is required (see g2wctl -h)", name)
		}
		sub, rest = rest[0], rest[1:]
	}
	a := &app{getenv: getenv, stdout: stdout, stderr: stderr}
	var err error
	switch name + " " + sub {
	case "login ":
		err = a.login(ctx, rest)
	case "setup ":
		err = a.setup(ctx, rest)
	case "doctor ":
		err = a.doctor(ctx, rest)
	case "secret create":
		err = a.secretCreate(ctx, rest)
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

// oauthContext carries the HTTP client x/oauth2 uses for token requests.
func oauthContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: httpTimeout})
}

// client returns an API client authenticated by the stored token (refreshed and persisted)
// or, with --client-credentials, by the client_credentials grant.
func (a *app) client(ctx context.Context, cfg config) (*g2wapi.Client, *g2wctl.Store, error) {
	store := &g2wctl.Store{Path: cfg.TokenFile}
	conf := g2wctl.OAuthConfig(cfg.ClientID, cfg.ClientSecret, cfg.AuthURL)
	octx := oauthContext(ctx)
	var ts oauth2.TokenSource
	if cfg.ClientCredentials {
		ts = g2wctl.ClientCredentials(octx, conf)
	} else {
		var err error
		if ts, err = g2wctl.StoredToken(octx, conf, store); err != nil {
			return nil, nil, err
		}
	}
	hc := oauth2.NewClient(octx, ts)
	hc.Timeout = httpTimeout
	c, err := g2wapi.New(g2wapi.Config{BaseURL: cfg.APIURL, HTTPClient: hc})
	if err != nil {
		return nil, nil, err
	}
	return c, store, nil
}

func (a *app) login(ctx context.Context, args []string) error {
	var redirect string
	timeout := 5 * time.Minute
	cfg, pos, err := a.parse("login [--redirect URL] [--timeout 5m]", args, func(fs *flag.FlagSet) {
		fs.Var(envflag.StringValue(&redirect), "redirect", "loopback redirect URL registered with the OAuth client (default http://127.0.0.1:<random>/callback)")
		fs.Var(envflag.DurationValue(&timeout), "timeout", "how long to wait for the browser")
	})
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("login: unexpected arguments %q", pos)
	}
	conf := g2wctl.OAuthConfig(cfg.ClientID, cfg.ClientSecret, cfg.AuthURL)
	tok, err := g2wctl.Login(oauthContext(ctx), conf, g2wctl.LoginConfig{RedirectURL: redirect, Timeout: timeout,
		OnURL: func(u string) { fmt.Fprintf(a.stderr, "Open this URL in a browser to log in to GoTo:\n\n%s\n\n", u) }})
	if err != nil {
		return err
	}
	store := &g2wctl.Store{Path: cfg.TokenFile}
	if err := store.Update(func(f *g2wctl.File) { f.Token = tok }); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "logged in; token stored in %s\n", cfg.TokenFile)
	return nil
}

func (a *app) setup(ctx context.Context, args []string) error {
	var callback string
	events := listValue(g2wctl.Events)
	cfg, pos, err := a.parse("setup --callback URL [--events a,b,c]", args, func(fs *flag.FlagSet) {
		fs.Var(envflag.StringValue(&callback), "callback", "ingest's webhook URL (https on live GoTo; required)")
		fs.Var(&events, "events", "events to subscribe to")
	})
	if err != nil {
		return err
	}
	if callback == "" || len(pos) > 0 {
		return errors.New("setup: --callback URL is required and nothing else")
	}
	c, store, err := a.client(ctx, cfg)
	if err != nil {
		return err
	}
	f, err := store.Load()
	if err != nil {
		return err
	}
	var known *g2wapi.SecretKey
	if s := f.SecretKey; s != nil && s.APIURL == cfg.APIURL && s.Value != "" {
		known = &g2wapi.SecretKey{ID: s.ID, Value: s.Value, ValidFrom: s.ValidFrom}
	}
	res, err := g2wctl.Setup(ctx, c, g2wctl.SetupConfig{Callback: callback, Events: events, Secret: known,
		SaveSecret: func(k g2wapi.SecretKey) error { return saveSecret(store, cfg.APIURL, k) },
		Out:        a.stderr})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "setup complete: %d created, %d webhooks and subscriptions ACTIVE\n", res.Created, len(res.Webhooks))
	fmt.Fprintf(a.stdout, "G2W_SECRET_KEYS=%s\n", res.Secret.Value)
	return nil
}

func saveSecret(store *g2wctl.Store, apiURL string, k g2wapi.SecretKey) error {
	return store.Update(func(f *g2wctl.File) {
		f.SecretKey = &g2wctl.StoredSecret{APIURL: apiURL, ID: k.ID, Value: k.Value, ValidFrom: k.ValidFrom}
	})
}

func (a *app) doctor(ctx context.Context, args []string) error {
	var callback string
	cfg, pos, err := a.parse("doctor [--callback URL]", args, func(fs *flag.FlagSet) {
		fs.Var(envflag.StringValue(&callback), "callback", "check only the webhooks calling this URL")
	})
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("doctor: unexpected arguments %q", pos)
	}
	c, _, err := a.client(ctx, cfg)
	if err != nil {
		return err
	}
	ok, err := g2wctl.Doctor(ctx, c, g2wctl.DoctorConfig{Callback: callback,
		HTTPClient: &http.Client{Timeout: 10 * time.Second}, Out: a.stdout})
	if err != nil {
		return err
	}
	if !ok {
		return errDoctor
	}
	return nil
}

func (a *app) secretCreate(ctx context.Context, args []string) error {
	cfg, pos, err := a.parse("secret create", args, nil)
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
	k, err := c.CreateSecretKey(ctx)
	if err != nil {
		return err
	}
	// Saved first: GoTo never shows the value again.
	if err := saveSecret(store, cfg.APIURL, k); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "secret key %s created, valid from %s; stored in %s\n", cmp.Or(k.ID, "(no id)"), formatTime(k.ValidFrom), cfg.TokenFile)
	fmt.Fprintf(a.stdout, "G2W_SECRET_KEYS=%s\n", k.Value)
	return nil
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
		changes := make([]g2wapi.UserSubscriptionChange, len(keys))
		for i, k := range keys {
			changes[i] = g2wapi.UserSubscriptionChange{Key: k, State: g2wapi.State(state), CallbackURL: callback}
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
