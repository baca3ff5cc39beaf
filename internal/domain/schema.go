package domain

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"go.yaml.in/yaml/v3"
)

// specYAML is GoTo's AsyncAPI contract, copied verbatim from
// shared/specs so that a change to the contract is a visible diff here.
//
//go:embed spec/gotowebinar-webhooks.asyncapi.yaml
var specYAML []byte

// schemas compiles the payload schema of every message in the spec once, on
// first use, keyed by message name (= eventName). The spec is embedded, so a
// failure is a build defect caught by the tests, not a runtime condition;
// it panics rather than make every Parse return an impossible error.
var schemas = sync.OnceValue(func() map[string]*jsonschema.Schema {
	m, err := compileSpec(specYAML)
	if err != nil {
		panic("domain: embedded AsyncAPI spec: " + err.Error())
	}
	for _, name := range []string{EventRegistrantAdded, EventRegistrantJoined, EventWebinarCreated, EventWebinarChanged} {
		if m[name] == nil {
			panic("domain: embedded AsyncAPI spec has no message named " + name)
		}
	}
	return m
})

// compileSpec extracts components.messages.*.payload from an AsyncAPI 2.x
// document and compiles each as a JSON Schema with format assertions on.
func compileSpec(doc []byte) (map[string]*jsonschema.Schema, error) {
	var spec struct {
		Components struct {
			Messages map[string]struct {
				Name    string `yaml:"name"`
				Payload any    `yaml:"payload"`
			} `yaml:"messages"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(doc, &spec); err != nil {
		return nil, fmt.Errorf("decode spec: %w", err)
	}
	c := jsonschema.NewCompiler()
	// AsyncAPI 2.x schema objects are a superset of draft 7.
	c.DefaultDraft(jsonschema.Draft7)
	// date-time, email and uri are part of the contract, not annotations.
	c.AssertFormat()
	out := make(map[string]*jsonschema.Schema, len(spec.Components.Messages))
	for id, msg := range spec.Components.Messages {
		if msg.Name == "" || msg.Payload == nil {
			return nil, fmt.Errorf("message %s: missing name or payload", id)
		}
		// YAML decodes to Go ints and such; a JSON round trip hands the
		// compiler the exact value types it expects.
		b, err := json.Marshal(msg.Payload)
		if err != nil {
			return nil, fmt.Errorf("message %s: encode payload schema: %w", id, err)
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("message %s: decode payload schema: %w", id, err)
		}
		url := "mem:///components/messages/" + id + "/payload.json"
		if err := c.AddResource(url, v); err != nil {
			return nil, fmt.Errorf("message %s: add schema: %w", id, err)
		}
		s, err := c.Compile(url)
		if err != nil {
			return nil, fmt.Errorf("message %s: compile schema: %w", id, err)
		}
		out[msg.Name] = s
	}
	return out, nil
}

// compileProperties lists the top-level property names of each message's payload
// schema, keyed by message name.
func compileProperties(doc []byte) (map[string]map[string]struct{}, error) {
	var spec struct {
		Components struct {
			Messages map[string]struct {
				Name    string `yaml:"name"`
				Payload struct {
					Properties map[string]any `yaml:"properties"`
				} `yaml:"payload"`
			} `yaml:"messages"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(doc, &spec); err != nil {
		return nil, fmt.Errorf("decode spec: %w", err)
	}
	out := make(map[string]map[string]struct{}, len(spec.Components.Messages))
	for _, msg := range spec.Components.Messages {
		props := make(map[string]struct{}, len(msg.Payload.Properties))
		for p := range msg.Payload.Properties {
			props[p] = struct{}{}
		}
		out[msg.Name] = props
	}
	return out, nil
}

// schemaDetail turns the library's error into a value-free message. The
// library's own text can quote the instance (for example a format error
// prints the offending e-mail address), so only the location and the kind of
// rule are kept. With several violations the one at the smallest JSON
// pointer is reported, so the detail is stable across runs.
func schemaDetail(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return "does not match the event schema"
	}
	var leaves []string
	collectLeaves(ve, &leaves)
	if len(leaves) == 0 {
		return "does not match the event schema"
	}
	sort.Strings(leaves)
	d := leaves[0]
	if len(leaves) > 1 {
		d += " (and " + strconv.Itoa(len(leaves)-1) + " more)"
	}
	return d
}

func collectLeaves(ve *jsonschema.ValidationError, out *[]string) {
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			collectLeaves(c, out)
		}
		return
	}
	ptr := pointer(ve.InstanceLocation)
	var rule string
	switch k := ve.ErrorKind.(type) {
	case *kind.Required:
		// One entry per missing property reads like the brief's example
		// "/registrantKey: missing required property".
		for _, p := range k.Missing {
			*out = append(*out, pointer(append(append([]string(nil), ve.InstanceLocation...), p))+": missing required property")
		}
		return
	case *kind.Type:
		rule = "must be " + strings.Join(k.Want, " or ")
	case *kind.Enum:
		rule = "not one of the allowed values"
	case *kind.Const:
		rule = "not the required constant"
	case *kind.Format:
		rule = "not a valid " + k.Want
	default:
		rule = "fails " + strings.Join(ve.ErrorKind.KeywordPath(), "/")
	}
	*out = append(*out, ptr+": "+rule)
}

// pointer renders an instance location as an RFC 6901 JSON pointer ("/" for
// the document itself, to keep the detail readable). Segments are member
// names and array indexes; they are capped so a hostile member name cannot
// bloat logs.
func pointer(segs []string) string {
	if len(segs) == 0 {
		return "/"
	}
	var b strings.Builder
	for _, s := range segs {
		if len(s) > 64 {
			s = strings.ToValidUTF8(s[:64], "") + "…"
		}
		b.WriteByte('/')
		b.WriteString(pointerEscaper.Replace(s))
	}
	return b.String()
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")
