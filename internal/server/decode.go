package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/vaultcrux/vaultcrux"
)

// maxJSONDepth bounds nesting so that a small body cannot make a deep
// recursion anywhere downstream.
const maxJSONDepth = 32

// bodyInfo is what checkJSON learns about a body.
type bodyInfo struct {
	tenantID *string // the top-level "tenantId", when present
	keys     []string
}

// checkJSON validates an untrusted request body before anything else
// reads it: valid UTF-8, exactly one JSON object, nesting at most
// maxJSONDepth, no duplicate keys at any level, not even keys that differ
// only in case (two parsers could disagree on which one wins, and Go's
// decoder matches field names case-insensitively). It returns the
// top-level "tenantId" when the body names one, so that the caller can
// compare it with the principal's tenant before doing any work, and the
// top-level keys, which decode matches exactly against the request type.
func checkJSON(body []byte) (info bodyInfo, err error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return info, vaultcrux.E(vaultcrux.Invalid, "request body is empty; a JSON object is required")
	}
	if !utf8.Valid(body) {
		return info, vaultcrux.E(vaultcrux.Invalid, "request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]struct{}
		expect bool // object: the next token is a key
	}
	var stack []frame
	// valueDone: a value just completed; its enclosing object wants a key next.
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].expect = true
		}
	}
	first := true
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return info, malformed(err)
		}
		if first {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return info, vaultcrux.E(vaultcrux.Invalid, "request body must be a JSON object")
			}
			first = false
		} else if len(stack) == 0 {
			return info, vaultcrux.E(vaultcrux.Invalid, "request body has data after the JSON object")
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if len(stack) >= maxJSONDepth {
					return info, vaultcrux.E(vaultcrux.Invalid, "request body is nested too deeply")
				}
				stack = append(stack, frame{object: d == '{', keys: map[string]struct{}{}, expect: d == '{'})
			default: // '}' or ']': the decoder guarantees it matches
				stack = stack[:len(stack)-1]
				valueDone()
			}
			continue
		}
		top := &stack[len(stack)-1]
		if !top.object || !top.expect {
			valueDone()
			continue
		}
		key, _ := tok.(string) // the decoder guarantees object keys are strings
		folded := strings.ToLower(key)
		if _, dup := top.keys[folded]; dup {
			return info, vaultcrux.Ef(vaultcrux.Invalid, "duplicate JSON key %q", truncate(key, 64))
		}
		top.keys[folded] = struct{}{}
		top.expect = false
		if len(stack) == 1 {
			info.keys = append(info.keys, key)
			if key == "tenantId" {
				v, err := dec.Token()
				if err != nil {
					return info, malformed(err)
				}
				s, ok := v.(string)
				if !ok {
					return info, vaultcrux.E(vaultcrux.Invalid, "tenantId must be a string")
				}
				info.tenantID = &s
				top.expect = true
			}
		}
	}
	if first {
		return info, vaultcrux.E(vaultcrux.Invalid, "request body must be a JSON object")
	}
	if len(stack) != 0 {
		return info, vaultcrux.E(vaultcrux.Invalid, "malformed JSON: unexpected end of input")
	}
	return info, nil
}

// decode unmarshals a body that checkJSON accepted into v (a pointer to a
// struct), refusing fields v does not declare, spelled exactly. Request
// types embed tenantRef so that a matching "tenantId" is accepted.
func decode(body []byte, keys []string, v any) error {
	known := jsonFields(reflect.TypeOf(v).Elem())
	for _, k := range keys {
		if _, ok := known[k]; !ok {
			return vaultcrux.Ef(vaultcrux.Invalid, "unknown field %q", truncate(k, 64))
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return malformed(err)
	}
	return nil
}

var fieldCache sync.Map // reflect.Type → map[string]struct{}

// jsonFields returns the JSON names of t's fields, embedded structs included.
func jsonFields(t reflect.Type) map[string]struct{} {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]struct{})
	}
	m := map[string]struct{}{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = struct{}{}
	}
	fieldCache.Store(t, m)
	return m
}

// tenantRef is embedded in every request body type: the body may name the
// tenant, which readBody has already compared with the principal's.
type tenantRef struct {
	TenantID string `json:"tenantId,omitempty"`
}

// malformed turns a decoder error into a user-safe message. The decoder's
// messages name offsets, field names and Go types only; they never carry
// the body's values beyond a field name, which the client sent.
func malformed(err error) error {
	var se *json.SyntaxError
	var ute *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return vaultcrux.Ef(vaultcrux.Invalid, "malformed JSON at byte %d", se.Offset)
	case errors.As(err, &ute):
		return vaultcrux.Ef(vaultcrux.Invalid, "field %q has the wrong type", truncate(ute.Field, 64))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return vaultcrux.E(vaultcrux.Invalid, "malformed JSON: unexpected end of input")
	}
	if msg := err.Error(); len(msg) > len(unknownField) && msg[:len(unknownField)] == unknownField {
		return vaultcrux.Ef(vaultcrux.Invalid, "unknown field %s", truncate(msg[len(unknownField):], 64))
	}
	return vaultcrux.E(vaultcrux.Invalid, "malformed JSON")
}

const unknownField = "json: unknown field "

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so the message stays valid UTF-8.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
