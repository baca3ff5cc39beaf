package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

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
}

// command is one parsed invocation: its flag set (with the common flags bound), the config
// they fill, and errors met while reading the environment.
type command struct {
	fs     *flag.FlagSet
	cfg    config
	errs   []error
	getenv func(string) string
}

// newCommand returns a flag set named name with the common flags bound to their variables.
func newCommand(name, usage string, getenv func(string) string, stderr io.Writer) *command {
	c := &command{fs: flag.NewFlagSet(name, flag.ContinueOnError), getenv: getenv,
		cfg: config{APIURL: g2wapi.DefaultBaseURL, AuthURL: DefaultAuthURL}}
	c.fs.SetOutput(stderr)
	c.fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: g2wctl %s\n\nFlags (each also read from the variable in brackets; the flag wins):\n", usage)
		c.fs.PrintDefaults()
	}
	c.bind((*stringValue)(&c.cfg.ClientID), "client-id", "G2W_CLIENT_ID", "OAuth client id (required)")
	c.bind((*secretValue)(&c.cfg.ClientSecret), "client-secret", "G2W_CLIENT_SECRET", "OAuth client secret (required; prefer the variable)")
	c.bind((*stringValue)(&c.cfg.APIURL), "api-url", "G2W_API_URL", "Webhooks Management API base URL")
	c.bind((*stringValue)(&c.cfg.AuthURL), "auth-url", "G2W_AUTH_URL", "OAuth2 server base URL (…/authorize, …/token)")
	c.bind((*stringValue)(&c.cfg.TokenFile), "token-file", "G2W_TOKEN_FILE", "token and secret-key file (default $XDG_CONFIG_HOME/turnout/g2w-token.json)")
	c.bind((*boolValue)(&c.cfg.ClientCredentials), "client-credentials", "G2W_CLIENT_CREDENTIALS", "use the client_credentials grant instead of the stored login token")
	return c
}

// bind registers a flag whose default comes from env when set; a bad env value is reported
// by name.
func (c *command) bind(v flag.Value, name, env, help string) {
	if s := c.getenv(env); s != "" {
		if err := v.Set(s); err != nil {
			c.errs = append(c.errs, fmt.Errorf("%s: %w", env, err))
		}
	}
	c.fs.Var(v, name, help+" ["+env+"]")
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
	if c.cfg.ClientID == "" {
		c.errs = append(c.errs, errors.New("G2W_CLIENT_ID (--client-id) is required"))
	}
	if c.cfg.ClientSecret == "" {
		c.errs = append(c.errs, errors.New("G2W_CLIENT_SECRET (--client-secret) is required"))
	}
	if c.cfg.TokenFile == "" {
		path, err := g2wctl.DefaultPath(c.getenv)
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("G2W_TOKEN_FILE (--token-file): no default: %w", err))
		}
		c.cfg.TokenFile = path
	}
	return pos, errors.Join(c.errs...)
}

// The flag.Value types below parse one setting each.

type stringValue string

func (v *stringValue) String() string     { return string(*v) }
func (v *stringValue) Set(s string) error { *v = stringValue(strings.TrimSpace(s)); return nil }

// secretValue never shows its value, so -h does not print a secret from the environment.
type secretValue string

func (v *secretValue) String() string     { return "" }
func (v *secretValue) Set(s string) error { *v = secretValue(s); return nil }

type boolValue bool

func (v *boolValue) String() string { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q is not true or false", s)
	}
	*v = boolValue(b)
	return nil
}

// IsBoolFlag lets --client-credentials stand alone.
func (v *boolValue) IsBoolFlag() bool { return true }

type durationValue time.Duration

func (v *durationValue) String() string { return time.Duration(*v).String() }
func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q is not a positive duration such as 5m", s)
	}
	*v = durationValue(d)
	return nil
}

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
