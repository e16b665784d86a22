package receipt

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/zeebo/blake3"

	"github.com/vaultcrux/vaultcrux"
)

// maxDepth is the deepest nesting of arrays and objects accepted in JSON
// and produced in canonical form; the outermost array or object is at depth 1.
// Receipts nest three or four levels; the bound keeps recursion on untrusted
// input shallow and stops a cyclic Go value from recursing forever.
const maxDepth = 64

// maxSafeInteger is 2**53, the largest magnitude up to which every integer
// is a float64, hence a JavaScript number, exactly.
const maxSafeInteger = 1 << 53

func invalidJSON(off int, msg string) error {
	return &vaultcrux.Error{Op: "receipt.ParseJSON", Kind: vaultcrux.Invalid, Msg: fmt.Sprintf("invalid JSON at byte %d: %s", off, msg)}
}

func invalidValue(msg string) error { return vaultcrux.E(vaultcrux.Invalid, msg) }

// ParseJSON parses data as exactly one JSON value (RFC 8259) into the value
// model of this package: map[string]any, []any, string, json.Number, bool
// and nil.
//
// It is stricter than encoding/json, so that what it accepts has exactly one
// canonical form and means the same to every reader: the input must be valid
// UTF-8 without a byte order mark; an escaped UTF-16 surrogate must be half
// of a pair (a lone one has no UTF-8 form, so JSON.stringify and this
// package could not agree on its canonical text); object keys must be
// distinct after unescaping; a number must be finite as a float64; nesting is
// at most 64 deep; only whitespace may follow the value. Numbers keep their
// source text in a json.Number; Canonical normalises it.
//
// Errors are *vaultcrux.Error of kind Invalid, with a message that names a
// byte offset and never quotes the input.
func ParseJSON(data []byte) (any, error) {
	if !utf8.Valid(data) {
		return nil, invalidJSON(invalidUTF8At(data), "invalid UTF-8")
	}
	p := parser{data: data}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, invalidJSON(p.pos, "data after the value")
	}
	return v, nil
}

// invalidUTF8At returns the offset of the first invalid UTF-8 sequence.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// parser is a recursive-descent JSON parser over input already known to be
// valid UTF-8. depth counts the arrays and objects that enclose the value
// being parsed.
type parser struct {
	data []byte
	pos  int
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (any, error) {
	if p.pos >= len(p.data) {
		return nil, invalidJSON(p.pos, "unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		if depth >= maxDepth {
			return nil, invalidJSON(p.pos, "nested more than 64 deep")
		}
		return p.object(depth + 1)
	case c == '[':
		if depth >= maxDepth {
			return nil, invalidJSON(p.pos, "nested more than 64 deep")
		}
		return p.array(depth + 1)
	case c == '"':
		return p.string()
	case c == '-' || ('0' <= c && c <= '9'):
		return p.number()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	default:
		return nil, invalidJSON(p.pos, "unexpected character")
	}
}

func (p *parser) literal(word string) error {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return invalidJSON(p.pos, "unexpected character")
	}
	p.pos += len(word)
	return nil
}

func (p *parser) object(depth int) (any, error) {
	p.pos++ // '{'
	m := make(map[string]any)
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return m, nil
	}
	for {
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, invalidJSON(p.pos, "expected an object key")
		}
		keyPos := p.pos
		key, err := p.string()
		if err != nil {
			return nil, err
		}
		if _, dup := m[key]; dup {
			return nil, invalidJSON(keyPos, "duplicate object key")
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, invalidJSON(p.pos, "expected ':'")
		}
		p.pos++
		p.skipSpace()
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		m[key] = v
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, invalidJSON(p.pos, "unexpected end of input")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			p.skipSpace()
		case '}':
			p.pos++
			return m, nil
		default:
			return nil, invalidJSON(p.pos, "expected ',' or '}'")
		}
	}
}

func (p *parser) array(depth int) (any, error) {
	p.pos++ // '['
	a := make([]any, 0)
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return a, nil
	}
	for {
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, invalidJSON(p.pos, "unexpected end of input")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			p.skipSpace()
		case ']':
			p.pos++
			return a, nil
		default:
			return nil, invalidJSON(p.pos, "expected ',' or ']'")
		}
	}
}

// string parses a string token. The input is valid UTF-8, so only escapes
// and raw control characters need checking.
func (p *parser) string() (string, error) {
	start := p.pos
	p.pos++ // '"'
	// Fast path: no escapes.
	i := p.pos
	for i < len(p.data) && p.data[i] != '"' && p.data[i] != '\\' && p.data[i] >= 0x20 {
		i++
	}
	if i < len(p.data) && p.data[i] == '"' {
		s := string(p.data[p.pos:i])
		p.pos = i + 1
		return s, nil
	}
	buf := make([]byte, 0, i-p.pos+16)
	buf = append(buf, p.data[p.pos:i]...)
	p.pos = i
	for {
		if p.pos >= len(p.data) {
			return "", invalidJSON(start, "unterminated string")
		}
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(buf), nil
		case c < 0x20:
			return "", invalidJSON(p.pos, "control character in string")
		case c != '\\':
			buf = append(buf, c)
			p.pos++
			continue
		}
		if p.pos+1 >= len(p.data) {
			return "", invalidJSON(start, "unterminated string")
		}
		esc := p.data[p.pos+1]
		p.pos += 2
		switch esc {
		case '"', '\\', '/':
			buf = append(buf, esc)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, err := p.unicodeEscape()
			if err != nil {
				return "", err
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", invalidJSON(p.pos-2, "invalid escape")
		}
	}
}

// unicodeEscape reads the four hex digits after \u, and the second half of
// a surrogate pair when the first is a high surrogate.
func (p *parser) unicodeEscape() (rune, error) {
	at := p.pos - 2
	r1, ok := p.hex4()
	if !ok {
		return 0, invalidJSON(at, "invalid \\u escape")
	}
	if !utf16.IsSurrogate(r1) {
		return r1, nil
	}
	if r1 >= 0xdc00 || len(p.data)-p.pos < 6 || p.data[p.pos] != '\\' || p.data[p.pos+1] != 'u' {
		return 0, invalidJSON(at, "unpaired UTF-16 surrogate")
	}
	p.pos += 2
	r2, ok := p.hex4()
	if !ok {
		return 0, invalidJSON(p.pos-2, "invalid \\u escape")
	}
	r := utf16.DecodeRune(r1, r2)
	if r == utf8.RuneError {
		return 0, invalidJSON(at, "unpaired UTF-16 surrogate")
	}
	return r, nil
}

func (p *parser) hex4() (rune, bool) {
	if len(p.data)-p.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	p.pos += 4
	return r, true
}

func (p *parser) number() (any, error) {
	start := p.pos
	n := numberLen(p.data[p.pos:])
	if n == 0 {
		return nil, invalidJSON(start, "invalid number")
	}
	p.pos += n
	text := string(p.data[start:p.pos])
	if _, err := strconv.ParseFloat(text, 64); err != nil {
		// The grammar matched, so the only failure is overflow to ±Inf.
		return nil, invalidJSON(start, "number out of range")
	}
	return json.Number(text), nil
}

// numberLen returns the length of the longest prefix of b that is a JSON
// number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, or 0 if there is
// none.
func numberLen(b []byte) int {
	i := 0
	digits := func() int {
		j := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i - j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return 0
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return 0
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0
		}
	}
	return i
}

// Canonical returns the canonical JSON text of v: object keys sorted by
// UTF-16 code units, arrays in order, nulls kept, no whitespace, strings
// escaped as JSON.stringify escapes them, numbers written as ECMAScript's
// Number::toString writes them. For the JSON values that ParseJSON returns
// it is byte for byte what JavaScript's JSON.stringify writes for the same
// value with keys sorted.
//
// v is built of map[string]any, []any, string, json.Number, bool and nil;
// int, int64 and float64 are accepted too, for callers building values in
// Go. An integer beyond ±2**53, which a JavaScript number could not hold
// exactly, is an error rather than silently rounded (a json.Number is a
// JSON text and is rounded as JavaScript rounds it). NaN, ±Inf, a
// json.Number that is not a JSON number or overflows float64, invalid UTF-8
// in a string or key, and nesting deeper than 64 are errors.
func Canonical(v any) (b []byte, err error) {
	defer vaultcrux.Wrap(&err, "receipt.Canonical")
	return canonical(v)
}

// canonical is Canonical for callers that add their own error context.
func canonical(v any) ([]byte, error) {
	return appendCanonical(make([]byte, 0, 512), v, 0)
}

func appendCanonical(b []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case string:
		return appendString(b, v)
	case json.Number:
		f, err := parseNumber(v)
		if err != nil {
			return nil, err
		}
		return appendFloat(b, f), nil
	case int:
		return appendInt(b, int64(v))
	case int64:
		return appendInt(b, v)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, invalidValue("number is NaN or infinite")
		}
		return appendFloat(b, v), nil
	case map[string]any:
		if depth >= maxDepth {
			return nil, invalidValue("value nested more than 64 deep")
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, compareUTF16)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendString(b, k); err != nil {
				return nil, err
			}
			b = append(b, ':')
			if b, err = appendCanonical(b, v[k], depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		if depth >= maxDepth {
			return nil, invalidValue("value nested more than 64 deep")
		}
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendCanonical(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	default:
		// A programming error, not bad input: not user-safe.
		return nil, fmt.Errorf("unsupported type %T", v)
	}
}

func appendInt(b []byte, i int64) ([]byte, error) {
	if i > maxSafeInteger || i < -maxSafeInteger {
		return nil, invalidValue("integer beyond 2**53 cannot be represented exactly")
	}
	return strconv.AppendInt(b, i, 10), nil
}

// compareUTF16 orders strings as JavaScript's default sort does: by UTF-16
// code units. That is UTF-8 byte order except where a character above
// U+FFFF (a surrogate pair, 0xD800–0xDBFF first) meets one in
// U+E000–U+FFFF: UTF-8 puts the supplementary character last, UTF-16 first.
func compareUTF16(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	if i == len(a) || i == len(b) {
		return len(a) - len(b)
	}
	// Back up to the start of the character in which they differ; the
	// common prefix holds the same whole characters in both.
	for i > 0 && !utf8.RuneStart(a[i]) {
		i--
	}
	ra, _ := utf8.DecodeRuneInString(a[i:])
	rb, _ := utf8.DecodeRuneInString(b[i:])
	if ua, ub := firstUnit(ra), firstUnit(rb); ua != ub {
		return int(ua) - int(ub)
	}
	// Same lead surrogate: the trail surrogates order as the runes do.
	return int(ra) - int(rb)
}

// firstUnit returns the first UTF-16 code unit of r.
func firstUnit(r rune) rune {
	if r < 0x10000 {
		return r
	}
	return 0xd800 + (r-0x10000)>>10
}

const hexDigits = "0123456789abcdef"

// appendString writes s as JSON.stringify does: only '"', '\\' and control
// characters are escaped, with the short forms where JSON has them and
// lowercase \u00xx otherwise. '<', '>', '&', U+2028 and U+2029 are written
// as they are.
func appendString(b []byte, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, invalidValue("string is not valid UTF-8")
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"'), nil
}

// parseNumber returns the float64 that JavaScript reads from n, or an error
// when n is not a JSON number or does not fit a float64. strconv.ParseFloat
// alone would also take "Inf", "0x1p3" or "1_0", so the JSON grammar is
// checked first.
func parseNumber(n json.Number) (float64, error) {
	s := string(n)
	if len(s) == 0 || numberLen([]byte(s)) != len(s) {
		return 0, invalidValue("not a JSON number")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, invalidValue("number out of range")
	}
	return f, nil
}

// FormatNumber returns n as JavaScript writes the number it denotes
// (ECMAScript Number::toString, which JSON.stringify uses): the shortest
// digits that read back as the same float64, in plain notation when the
// decimal exponent is in [-7, 21) and as d.ddde±x otherwise; -0 is "0".
func FormatNumber(n json.Number) (string, error) {
	f, err := parseNumber(n)
	if err != nil {
		return "", err
	}
	return string(appendFloat(nil, f)), nil
}

// appendFloat writes a finite f as ECMAScript Number::toString does.
func appendFloat(b []byte, f float64) []byte {
	if f == 0 {
		return append(b, '0') // also -0
	}
	if f < 0 {
		b = append(b, '-')
		f = -f
	}
	// Shortest round-trip digits: "d.ddddde±xx" or "de±xx".
	var tmp [32]byte
	sci := strconv.AppendFloat(tmp[:0], f, 'e', -1, 64)
	var digits [24]byte
	k := 0
	i := 0
	for ; sci[i] != 'e'; i++ {
		if sci[i] != '.' {
			digits[k] = sci[i]
			k++
		}
	}
	exp, _ := strconv.Atoi(string(sci[i+1:])) // strconv wrote it; cannot fail
	d := digits[:k]
	n := exp + 1 // the position of the decimal point, as ECMAScript counts it
	switch {
	case k <= n && n <= 21:
		b = append(b, d...)
		for range n - k {
			b = append(b, '0')
		}
	case 0 < n && n <= 21:
		b = append(b, d[:n]...)
		b = append(b, '.')
		b = append(b, d[n:]...)
	case -6 < n && n <= 0:
		b = append(b, '0', '.')
		for range -n {
			b = append(b, '0')
		}
		b = append(b, d...)
	default:
		b = append(b, d[0])
		if k > 1 {
			b = append(b, '.')
			b = append(b, d[1:]...)
		}
		b = append(b, 'e')
		if n-1 >= 0 {
			b = append(b, '+')
		}
		b = strconv.AppendInt(b, int64(n-1), 10)
	}
	return b
}

// Hash returns the receipt hash of canonical JSON bytes:
// "blake3:" followed by the lowercase hex BLAKE3-256 digest.
func Hash(canonical []byte) string {
	sum := blake3.Sum256(canonical)
	var out [7 + 64]byte
	copy(out[:], "blake3:")
	hex.Encode(out[7:], sum[:])
	return string(out[:])
}
