package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/turnout-analytics/turnout/internal/envflag"
	"github.com/turnout-analytics/turnout/internal/g2wapi"
	"github.com/turnout-analytics/turnout/internal/g2wctl"
)

// DefaultAuthURL is GoTo's OAuth2 server; authorize and token are below it.
const DefaultAuthURL = "https://authentication.logmeininc.com/oauth"

// config is what every command reads from its flags and the environment, once. A flag wins
// over its variable, which wins over the default.
type config struct {
	ClientID          string // --client-id, G2W_CLIENT_ID; required
	ClientSecret      string // --client-secret, G2W_CLIENT_SECRET; required; never printed
	APIURL            string // --api-url, G2W_API_URL; default g2wapi.DefaultBaseURL
	AuthURL           string // --auth-url, G2W_AUTH_URL; default DefaultAuthURL
	TokenFile         string // --token-file, G2W_TOKEN_FILE; default g2wctl.DefaultPath
	ClientCredentials bool   // --client-credentials, G2W_CLIENT_CREDENTIALS: client_credentials grant
	Profile           string // --profile, G2W_PROFILE: the organizer a one-user command acts as
	SecretKeys        string // G2W_SECRET_KEYS: ingest's keys, when set here (setup, secret rotate)
}

// command is one parsed invocation: its flag set (with the common flags bound), the config
// they fill, and errors met while reading the environment.
type command struct {
	fs     *flag.FlagSet
	env    *envflag.Set
	cfg    config
	getenv func(string) string
}

// newCommand returns a flag set named name with the common flags bound to their variables.
func newCommand(name, usage string, getenv func(string) string, stderr io.Writer) *command {
	c := &command{fs: flag.NewFlagSet(name, flag.ContinueOnError), getenv: getenv,
		cfg: config{APIURL: g2wapi.DefaultBaseURL, AuthURL: DefaultAuthURL}}
	c.fs.SetOutput(stderr)
	c.env = envflag.New(c.fs, getenv)
	c.fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: g2wctl %s\n\nFlags (each also read from the variable in brackets; the flag wins):\n", usage)
		c.fs.PrintDefaults()
	}
	c.env.String(&c.cfg.ClientID, "client-id", "G2W_CLIENT_ID", "OAuth client id (required)")
	c.env.Secret(&c.cfg.ClientSecret, "client-secret", "G2W_CLIENT_SECRET", "OAuth client secret (required; prefer the variable)")
	c.env.String(&c.cfg.APIURL, "api-url", "G2W_API_URL", "Webhooks Management API base URL")
	c.env.String(&c.cfg.AuthURL, "auth-url", "G2W_AUTH_URL", "OAuth2 server base URL (…/authorize, …/token)")
	c.env.String(&c.cfg.TokenFile, "token-file", "G2W_TOKEN_FILE", "token and secret-key file (default $XDG_CONFIG_HOME/turnout/g2w-token.json)")
	c.env.Bool(&c.cfg.ClientCredentials, "client-credentials", "G2W_CLIENT_CREDENTIALS", "use the client_credentials grant instead of the stored login token")
	c.env.String(&c.cfg.Profile, "profile", "G2W_PROFILE", "organizer profile to act as (default: the only one, else \"default\")")
	c.env.Env(envflag.StringValue(&c.cfg.SecretKeys), "G2W_SECRET_KEYS")
	return c
}

// parse parses args, allowing flags after positional arguments (`update KEY --state …`), and
// checks the common configuration. It returns the positional arguments.
func (c *command) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			return nil, err
		}
		args = c.fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	errs := c.env.Errors()
	if c.cfg.ClientID == "" {
		errs = append(errs, errors.New("G2W_CLIENT_ID (--client-id) is required"))
	}
	if c.cfg.ClientSecret == "" {
		errs = append(errs, errors.New("G2W_CLIENT_SECRET (--client-secret) is required"))
	}
	if c.cfg.TokenFile == "" {
		path, err := g2wctl.DefaultPath(c.getenv)
		if err != nil {
			errs = append(errs, fmt.Errorf("G2W_TOKEN_FILE (--token-file): no default: %w", err))
		}
		c.cfg.TokenFile = path
	}
	return pos, errors.Join(errs...)
}

// The flag.Value types below parse one setting each.

// listValue is a comma-separated list.
type listValue []string

func (v *listValue) String() string { return strings.Join(*v, ",") }
func (v *listValue) Set(s string) error {
	*v = nil
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*v = append(*v, part)
		}
	}
	if len(*v) == 0 {
		return errors.New("empty list")
	}
	return nil
}

// stateValue is ACTIVE or INACTIVE.
type stateValue g2wapi.State

func (v *stateValue) String() string { return string(*v) }
func (v *stateValue) Set(s string) error {
	st := g2wapi.State(strings.ToUpper(strings.TrimSpace(s)))
	if st != g2wapi.StateActive && st != g2wapi.StateInactive {
		return fmt.Errorf("%q is neither ACTIVE nor INACTIVE", s)
	}
	*v = stateValue(st)
	return nil
}
