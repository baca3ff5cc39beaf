// Package envflag binds command-line flags that mirror environment variables, for the
// commands configured both ways: a flag wins over its variable, which wins over the
// built-in default, and every bad variable is reported by name, all of them at once.
package envflag

import (
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Set binds flags of a flag.FlagSet to environment variables read through getenv.
type Set struct {
	fs     *flag.FlagSet
	getenv func(string) string
	errs   []error
}

// New returns a Set binding flags of fs to the variables getenv reads.
func New(fs *flag.FlagSet, getenv func(string) string) *Set {
	return &Set{fs: fs, getenv: getenv}
}

// Errors returns the problems met reading the variables so far, each naming its variable.
func (s *Set) Errors() []error { return slices.Clone(s.errs) }

// Var registers the flag name for v, first setting v from the variable env when that is
// set. The help text names the variable.
func (s *Set) Var(v flag.Value, name, env, help string) {
	s.Env(v, env)
	s.fs.Var(v, name, help+" ["+env+"]")
}

// Env sets v from the variable env when that is set, for a setting with no flag.
func (s *Set) Env(v flag.Value, env string) {
	if str := s.getenv(env); str != "" {
		if err := v.Set(str); err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s: %w", env, err))
		}
	}
}

// String binds a string, trimmed of surrounding space.
func (s *Set) String(p *string, name, env, help string) { s.Var((*stringValue)(p), name, env, help) }

// Secret binds a string that -h never shows (its default may come from the environment).
func (s *Set) Secret(p *string, name, env, help string) { s.Var((*secretValue)(p), name, env, help) }

// Bool binds a boolean flag that may stand alone (-name means true).
func (s *Set) Bool(p *bool, name, env, help string) { s.Var((*boolValue)(p), name, env, help) }

// Duration binds a positive duration.
func (s *Set) Duration(p *time.Duration, name, env, help string) {
	s.Var((*durationValue)(p), name, env, help)
}

// Int binds an integer of at least min and, when max > 0, at most max.
func (s *Set) Int(p *int, minimum, maximum int, name, env, help string) {
	s.Var(&intValue{p: p, min: minimum, max: maximum}, name, env, help)
}

// Uint binds an unsigned 64-bit integer.
func (s *Set) Uint(p *uint64, name, env, help string) { s.Var((*uintValue)(p), name, env, help) }

// Float binds a number from min to max.
func (s *Set) Float(p *float64, minimum, maximum float64, name, env, help string) {
	s.Var(&floatValue{p: p, min: minimum, max: maximum}, name, env, help)
}

// DurationValue adapts a *time.Duration (positive) for Env or flag.FlagSet.Var.
func DurationValue(p *time.Duration) flag.Value { return (*durationValue)(p) }

// StringValue adapts a *string (trimmed of surrounding space) for flag.FlagSet.Var.
func StringValue(p *string) flag.Value { return (*stringValue)(p) }

type stringValue string

func (v *stringValue) String() string     { return string(*v) }
func (v *stringValue) Set(s string) error { *v = stringValue(strings.TrimSpace(s)); return nil }

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

// IsBoolFlag lets the flag stand alone.
func (v *boolValue) IsBoolFlag() bool { return true }

type durationValue time.Duration

func (v *durationValue) String() string { return time.Duration(*v).String() }
func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q is not a positive duration such as 60m", s)
	}
	*v = durationValue(d)
	return nil
}

type intValue struct {
	p        *int
	min, max int // max 0: no upper bound
}

func (v *intValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < v.min {
		return fmt.Errorf("%q is not an integer of at least %d", s, v.min)
	}
	if v.max > 0 && n > v.max {
		return fmt.Errorf("%q is not an integer from %d to %d", s, v.min, v.max)
	}
	*v.p = n
	return nil
}

type uintValue uint64

func (v *uintValue) String() string { return strconv.FormatUint(uint64(*v), 10) }
func (v *uintValue) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not an unsigned integer", s)
	}
	*v = uintValue(n)
	return nil
}

type floatValue struct {
	p        *float64
	min, max float64
}

func (v *floatValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatFloat(*v.p, 'g', -1, 64)
}

func (v *floatValue) Set(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < v.min || f > v.max {
		return fmt.Errorf("%q is not a number from %g to %g", s, v.min, v.max)
	}
	*v.p = f
	return nil
}
