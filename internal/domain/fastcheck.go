package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// The fast path of Accept. Nearly every delivery conforms to the spec, and walking the
// whole payload with the JSON Schema validator was most of Accept's CPU (pprof:
// BenchmarkAccept). The payload schemas of the spec use only type, enum, format,
// properties, required and items, so a conforming payload can be recognised with a
// direct walk: types, enumerations and required members checked here, each format
// checked by the library itself against a one-keyword schema (so "valid email" means
// exactly what it means to the validator). Only a payload the walk does not recognise as
// conforming goes through the full validator, which then names its findings.
// FuzzAccept checks that both paths give the same result on every input.

// rule is one schema of the spec reduced to the keywords it uses.
type rule struct {
	typ  string
	enum []string
	// format is the library's own check of the declared format (nil: none), taken from a
	// one-keyword schema it compiled, and called directly: through Schema.Validate the
	// validator's set-up cost more than the check (pprof, make bench-ingest).
	format   *jsonschema.Format
	required []string
	props    map[string]*rule
	items    *rule
}

// schemaKeywords are the keywords compileRules understands; annotations are ignored.
var schemaKeywords = map[string]bool{
	"type": true, "enum": true, "format": true, "properties": true, "required": true, "items": true,
	"example": true, "description": true,
}

// fastRules are the rules of each message's payload, keyed by event name, compiled from
// the embedded spec once. A spec using another keyword fails here, which the tests
// catch: the fast path must never be looser than the validator.
var fastRules = sync.OnceValue(func() map[string]*rule {
	m, err := compileRules(specYAML)
	if err != nil {
		panic("domain: embedded AsyncAPI spec: " + err.Error())
	}
	return m
})

func compileRules(doc []byte) (map[string]*rule, error) {
	var spec struct {
		Components struct {
			Messages map[string]struct {
				Name    string         `yaml:"name"`
				Payload map[string]any `yaml:"payload"`
			} `yaml:"messages"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(doc, &spec); err != nil {
		return nil, fmt.Errorf("decode spec: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.AssertFormat()
	formats := map[string]*jsonschema.Format{}
	out := map[string]*rule{}
	for id, msg := range spec.Components.Messages {
		r, err := compileRule(c, formats, msg.Payload)
		if err != nil {
			return nil, fmt.Errorf("message %s: %w", id, err)
		}
		out[msg.Name] = r
	}
	return out, nil
}

func compileRule(c *jsonschema.Compiler, formats map[string]*jsonschema.Format, s map[string]any) (*rule, error) {
	r := &rule{}
	for k := range s {
		if !schemaKeywords[k] {
			return nil, fmt.Errorf("keyword %q is not understood by the fast path", k)
		}
	}
	r.typ, _ = s["type"].(string)
	if r.typ == "" {
		return nil, fmt.Errorf("a schema without a single type")
	}
	if e, ok := s["enum"].([]any); ok {
		for _, v := range e {
			str, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("a non-string enum value")
			}
			r.enum = append(r.enum, str)
		}
	}
	if f, ok := s["format"].(string); ok {
		if formats[f] == nil {
			url := "mem:///formats/" + f + ".json"
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(`{"format":` + jsonQuote(f) + `}`)))
			if err != nil {
				return nil, err
			}
			if err := c.AddResource(url, v); err != nil {
				return nil, err
			}
			sch, err := c.Compile(url)
			if err != nil {
				return nil, err
			}
			if sch.Format == nil || sch.Format.Name == "regex" {
				// Not asserted, or checked by the validator another way: the fast path
				// would not mean what the validator means.
				return nil, fmt.Errorf("format %q is not checked by the fast path", f)
			}
			formats[f] = sch.Format
		}
		r.format = formats[f]
	}
	if req, ok := s["required"].([]any); ok {
		for _, v := range req {
			name, _ := v.(string)
			r.required = append(r.required, name)
		}
	}
	if props, ok := s["properties"].(map[string]any); ok {
		r.props = map[string]*rule{}
		for name, p := range props {
			ps, ok := p.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("property %s: not a schema", name)
			}
			pr, err := compileRule(c, formats, ps)
			if err != nil {
				return nil, fmt.Errorf("property %s: %w", name, err)
			}
			r.props[name] = pr
		}
	}
	if items, ok := s["items"].(map[string]any); ok {
		ir, err := compileRule(c, formats, items)
		if err != nil {
			return nil, fmt.Errorf("items: %w", err)
		}
		r.items = ir
	}
	sort.Strings(r.required)
	return r, nil
}

func jsonQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

// conforms reports whether v certainly satisfies r. False means "not known": the caller
// asks the validator.
func (r *rule) conforms(v any) bool {
	switch r.typ {
	case "string":
		s, ok := v.(string)
		if !ok {
			return false
		}
		if r.enum != nil && !contains(r.enum, s) {
			return false
		}
		return r.format == nil || r.format.Validate(s) == nil // as the validator does for a string
	case "integer":
		// Plain digits only; the validator decides 1.0, 1e3 and the like.
		n, ok := v.(json.Number)
		if !ok || r.enum != nil || r.format != nil {
			return false
		}
		s := string(n)
		if len(s) > 0 && s[0] == '-' {
			s = s[1:]
		}
		return s != "" && allDigits(s)
	case "array":
		a, ok := v.([]any)
		if !ok || r.enum != nil || r.format != nil {
			return false
		}
		if r.items == nil {
			return true
		}
		for _, it := range a {
			if !r.items.conforms(it) {
				return false
			}
		}
		return true
	case "object":
		m, ok := v.(map[string]any)
		if !ok || r.enum != nil || r.format != nil {
			return false
		}
		for _, name := range r.required {
			if _, ok := m[name]; !ok {
				return false
			}
		}
		for name, pr := range r.props {
			if pv, ok := m[name]; ok && !pr.conforms(pv) {
				return false
			}
		}
		return true
	default:
		return false
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
