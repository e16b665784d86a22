package shield

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"unicode/utf8"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
)

// CapabilityClass is what a tool can do to the world.
type CapabilityClass string

// The capability classes.
const (
	ClassRead           CapabilityClass = "read"
	ClassWrite          CapabilityClass = "write"
	ClassDangerousLocal CapabilityClass = "dangerous_local"
	ClassEgress         CapabilityClass = "egress"
	ClassEconomy        CapabilityClass = "economy"
)

func (c CapabilityClass) valid() bool {
	switch c {
	case ClassRead, ClassWrite, ClassDangerousLocal, ClassEgress, ClassEconomy:
		return true
	}
	return false
}

// taintSensitive reports whether tainted inputs may not directly trigger an
// action of class c. The unknown class "" is: what cannot be classified is
// treated as the most dangerous.
func (c CapabilityClass) taintSensitive() bool {
	switch c {
	case ClassWrite, ClassDangerousLocal, ClassEgress, "":
		return true
	}
	return false
}

// RiskTier is how much harm a misuse of a tool can do.
type RiskTier string

// The risk tiers.
const (
	RiskLow      RiskTier = "low"
	RiskMedium   RiskTier = "medium"
	RiskHigh     RiskTier = "high"
	RiskCritical RiskTier = "critical"
)

func (r RiskTier) valid() bool {
	switch r {
	case RiskLow, RiskMedium, RiskHigh, RiskCritical:
		return true
	}
	return false
}

// ArgRule constrains one top-level argument of a tool call. The checks that
// are set all apply; several rules may name one argument.
//
// The text of a value, which AllowedValues, Pattern and MaxLen judge, is the
// string itself for a string and the canonical JSON of the value for
// anything else: a rule written for strings is not sidestepped by passing
// the same characters as a number, an array or an object.
type ArgRule struct {
	Arg           string   `json:"arg"`
	Required      bool     `json:"required,omitempty"`      // the argument must be present (null counts as present)
	Forbidden     bool     `json:"forbidden,omitempty"`     // the argument must be absent
	AllowedValues []string `json:"allowedValues,omitempty"` // the text must be one of these; empty: any
	Pattern       string   `json:"pattern,omitempty"`       // RE2; the whole text must match (anchored implicitly)
	MaxLen        int      `json:"maxLen,omitempty"`        // at most this many bytes of text; 0: no limit
	Type          string   `json:"type,omitempty"`          // "string", "number", "boolean", "object", "array", or "" for any
}

// Tool is a tool as a server declares it (name, description, input schema:
// the part a digest covers) together with the local policy that vaultcrux
// attaches to it (class, risk, approval, argument rules: outside the digest).
type Tool struct {
	Name             string          `json:"name"`
	Description      string          `json:"description"`
	InputSchema      json.RawMessage `json:"inputSchema,omitempty"`
	Class            CapabilityClass `json:"capabilityClass"`
	Risk             RiskTier        `json:"riskTier"`
	RequiresApproval bool            `json:"requiresApproval,omitempty"`
	ArgRules         []ArgRule       `json:"argRules,omitempty"`
}

func (t *Tool) clone() Tool {
	c := *t
	c.InputSchema = slices.Clone(t.InputSchema)
	c.ArgRules = slices.Clone(t.ArgRules)
	for i := range c.ArgRules {
		c.ArgRules[i].AllowedValues = slices.Clone(c.ArgRules[i].AllowedValues)
	}
	return c
}

// Server is a registered tool server: its identity and its tools. ID is
// vaultcrux's own handle for it and is not part of its digest.
type Server struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	URL         string `json:"url,omitempty"`
	Command     string `json:"command,omitempty"`
	PublisherID string `json:"publisherId,omitempty"`
	Tools       []Tool `json:"tools"`
}

// ServerDigest returns the digest that pins s: "blake3:" and the lowercase
// hex BLAKE3-256 of the canonical JSON (receipt.Canonical) of
//
//	{"identity":{"command":…,"name":…,"publisherId":…,"url":…},
//	 "tools":[{"description":…,"inputSchema":…,"name":…},…]}
//
// with the tools sorted by name (in UTF-16 code unit order, as JavaScript
// sorts, so that other implementations agree). The input schema is parsed
// and canonicalised, so reformatting it keeps the digest while any change
// of meaning breaks it; an absent schema is null. Class, risk, approval and
// argument rules are local policy, not what the server declares, and are
// left out: editing them does not unpin the server.
//
// A tool without a name, two tools of one name, a schema that is not
// strict JSON (see receipt.ParseJSON) and text that is not UTF-8 are
// Invalid errors: such a server has no digest and cannot be pinned.
func ServerDigest(s *Server) (digest string, err error) {
	defer vaultcrux.Wrap(&err, "shield.ServerDigest")
	if s == nil {
		return "", vaultcrux.E(vaultcrux.Invalid, "no server")
	}
	tools := make([]*Tool, len(s.Tools))
	for i := range s.Tools {
		tools[i] = &s.Tools[i]
		if tools[i].Name == "" {
			return "", vaultcrux.Ef(vaultcrux.Invalid, "tool %d has no name", i)
		}
	}
	slices.SortFunc(tools, func(a, b *Tool) int { return compareUTF16(a.Name, b.Name) })
	list := make([]any, len(tools))
	for i, t := range tools {
		if i > 0 && tools[i-1].Name == t.Name {
			return "", vaultcrux.E(vaultcrux.Invalid, "two tools have the same name")
		}
		var schema any
		if len(t.InputSchema) > 0 {
			if schema, err = receipt.ParseJSON(t.InputSchema); err != nil {
				return "", vaultcrux.Ef(vaultcrux.Invalid, "tool %d: input schema is not valid JSON", i)
			}
		}
		list[i] = map[string]any{"name": t.Name, "description": t.Description, "inputSchema": schema}
	}
	doc := map[string]any{
		"identity": map[string]any{"name": s.Name, "url": s.URL, "command": s.Command, "publisherId": s.PublisherID},
		"tools":    list,
	}
	b, err := receipt.Canonical(doc)
	if err != nil {
		return "", err
	}
	return receipt.Hash(b), nil
}

// compareUTF16 orders strings by UTF-16 code units, as JavaScript's default
// sort does. It differs from byte order only where a character above U+FFFF
// meets one in U+E000–U+FFFF.
func compareUTF16(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			ua, ub := leadUnit(ra), leadUnit(rb)
			if ua != ub {
				return int(ua) - int(ub)
			}
			return int(ra) - int(rb)
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) - len(b)
}

func leadUnit(r rune) rune {
	if r < 0x10000 {
		return r
	}
	return 0xd800 + (r-0x10000)>>10
}

// compiledRule is an ArgRule ready to apply.
type compiledRule struct {
	ArgRule
	re *regexp.Regexp
}

var argTypes = map[string]bool{"": true, "string": true, "number": true, "boolean": true, "object": true, "array": true}

// compileTool checks the local policy of t and compiles its patterns. An
// error makes the tool unusable (every call of it is a policy_error); it is
// never skipped, which would silently lift the rule. Compiled patterns are
// shared through cache (a *regexp.Regexp is safe for concurrent use):
// servers tend to repeat a few patterns over many tools.
func compileTool(t *Tool, cache map[string]*regexp.Regexp) ([]compiledRule, error) {
	if !t.Class.valid() {
		return nil, fmt.Errorf("unknown capability class %q", t.Class)
	}
	if !t.Risk.valid() {
		return nil, fmt.Errorf("unknown risk tier %q", t.Risk)
	}
	rules := make([]compiledRule, len(t.ArgRules))
	for i, r := range t.ArgRules {
		switch {
		case r.Arg == "":
			return nil, fmt.Errorf("argument rule %d names no argument", i)
		case r.Required && r.Forbidden:
			return nil, fmt.Errorf("argument rule %d for %q is both required and forbidden", i, r.Arg)
		case r.MaxLen < 0:
			return nil, fmt.Errorf("argument rule %d for %q has a negative maxLen", i, r.Arg)
		case !argTypes[r.Type]:
			return nil, fmt.Errorf("argument rule %d for %q has unknown type %q", i, r.Arg, r.Type)
		}
		rules[i].ArgRule = r
		if r.Pattern != "" {
			// \A and \z anchor the whole text whatever flags the pattern
			// sets inside its group, unlike ^ and $ under (?m).
			re, ok := cache[r.Pattern]
			if !ok {
				var err error
				if re, err = regexp.Compile(`\A(?:` + r.Pattern + `)\z`); err != nil {
					return nil, fmt.Errorf("argument rule %d for %q: invalid pattern", i, r.Arg)
				}
				cache[r.Pattern] = re
			}
			rules[i].re = re
		}
	}
	return rules, nil
}

// checkArgs applies rules to the parsed arguments of a call. It returns a
// description of the first violation, naming the rule's argument but never
// quoting a value, or "" when every rule holds.
func checkArgs(rules []compiledRule, args map[string]any) (string, error) {
	for i := range rules {
		r := &rules[i]
		v, present := args[r.Arg]
		switch {
		case !present && r.Required:
			return fmt.Sprintf("argument %q is required", r.Arg), nil
		case !present:
			continue
		case r.Forbidden:
			return fmt.Sprintf("argument %q is forbidden", r.Arg), nil
		}
		if r.Type != "" && !hasType(v, r.Type) {
			return fmt.Sprintf("argument %q is not of type %s", r.Arg, r.Type), nil
		}
		if len(r.AllowedValues) == 0 && r.re == nil && r.MaxLen == 0 {
			continue
		}
		text, err := valueText(v)
		if err != nil {
			return "", err
		}
		if r.MaxLen > 0 && len(text) > r.MaxLen {
			return fmt.Sprintf("argument %q is longer than %d bytes", r.Arg, r.MaxLen), nil
		}
		if len(r.AllowedValues) > 0 && !slices.Contains(r.AllowedValues, text) {
			return fmt.Sprintf("argument %q is not an allowed value", r.Arg), nil
		}
		if r.re != nil && !r.re.MatchString(text) {
			return fmt.Sprintf("argument %q does not match its pattern", r.Arg), nil
		}
	}
	return "", nil
}

func hasType(v any, typ string) bool {
	switch v.(type) {
	case string:
		return typ == "string"
	case json.Number:
		return typ == "number"
	case bool:
		return typ == "boolean"
	case map[string]any:
		return typ == "object"
	case []any:
		return typ == "array"
	}
	return false // null has no type a rule can name
}

func valueText(v any) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	b, err := receipt.Canonical(v)
	return string(b), err
}
