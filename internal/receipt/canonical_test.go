package receipt

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vaultcrux/vaultcrux"
)

// The want values are what JavaScript (V8) prints for String(Number(in)),
// which is what JSON.stringify writes.
func TestFormatNumber(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"zero", "0", "0"},
		{"negative zero", "-0", "0"},
		{"negative zero fraction", "-0.0", "0"},
		{"one", "1", "1"},
		{"minus one", "-1", "-1"},
		{"one and a half", "1.5", "1.5"},
		{"one tenth", "0.1", "0.1"},
		{"trailing zero", "1.0", "1"},
		{"1e21 switches to exponent", "1e21", "1e+21"},
		{"1e+21 explicit sign", "1e+21", "1e+21"},
		{"minus 1e21", "-1e21", "-1e+21"},
		{"1e20 stays plain", "1e20", "100000000000000000000"},
		{"21 nines round up to 1e21", "999999999999999999999", "1e+21"},
		{"plain with fraction dropped", "100000000000000000000.5", "100000000000000000000"},
		{"1e-7 switches to exponent", "1e-7", "1e-7"},
		{"2e-7", "2e-7", "2e-7"},
		{"1.23e-7", "1.23e-7", "1.23e-7"},
		{"0.00000012345", "0.00000012345", "1.2345e-7"},
		{"0.000001 stays plain", "0.000001", "0.000001"},
		{"1e-6 written plain", "1e-6", "0.000001"},
		{"0.1e-5", "0.1e-5", "0.000001"},
		{"1.1e-6", "1.1e-6", "0.0000011"},
		{"0.0000012345", "0.0000012345", "0.0000012345"},
		{"rounded to 17 digits", "123456789012345678", "123456789012345680"},
		{"20 digits", "12345678901234567890", "12345678901234567000"},
		{"smallest subnormal", "5e-324", "5e-324"},
		{"smallest subnormal misspelt", "4.9e-324", "5e-324"},
		{"1e-323", "1e-323", "1e-323"},
		{"smallest normal", "2.2250738585072014e-308", "2.2250738585072014e-308"},
		{"largest double", "1.7976931348623157e308", "1.7976931348623157e+308"},
		{"1e300", "1e300", "1e+300"},
		{"2**53", "9007199254740992", "9007199254740992"},
		{"2**53+1 rounds", "9007199254740993", "9007199254740992"},
		{"-(2**53+1) rounds", "-9007199254740993", "-9007199254740992"},
		{"0.1+0.2", "0.30000000000000004", "0.30000000000000004"},
		{"upper case exponent", "1E2", "100"},
		{"fraction times exponent", "0.5e1", "5"},
		{"123e-20", "123e-20", "1.23e-18"},
		{"negative small", "-1.5e-10", "-1.5e-10"},
		{"17 significant digits in exponent form", "1.2345678901234567e21", "1.2345678901234568e+21"},
		{"pi-ish", "3.14159", "3.14159"},
		{"4.35", "4.35", "4.35"},
		{"underflow to zero", "1e-400", "0"},
		{"negative underflow to zero", "-1e-400", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FormatNumber(json.Number(tt.in))
			if err != nil {
				t.Fatalf("FormatNumber(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("FormatNumber(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestFormatNumberErrors(t *testing.T) {
	for _, in := range []string{"", "1e400", "-1e400", "NaN", "Inf", "+1", "01", "1.", ".5", "0x10", "1_000", "1e", "--1", " 1", "1 "} {
		if got, err := FormatNumber(json.Number(in)); err == nil {
			t.Errorf("FormatNumber(%q) = %q, want an error", in, got)
		}
	}
}

func TestCanonical(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"scalars", []any{nil, true, false, "", json.Number("0")}, `[null,true,false,"",0]`},
		{"keys sorted", map[string]any{"b": 1, "a": 2, "B": 3, "aa": 4, "": 5}, `{"":5,"B":3,"a":2,"aa":4,"b":1}`},
		{
			// U+10000 is D800 DC00 in UTF-16, below U+E000 and U+FFFD;
			// in UTF-8 (F0…) it sorts after them (EE…, EF…).
			"non-BMP key sorts before high BMP keys",
			map[string]any{"\uFFFD": 1, "\U00010000": 2, "\uE000": 3, "z": 4},
			"{\"z\":4,\"\U00010000\":2,\"\uE000\":3,\"\uFFFD\":1}",
		},
		{
			"two non-BMP keys",
			map[string]any{"\U0001F600": 1, "\U00010437": 2},
			"{\"\U00010437\":2,\"\U0001F600\":1}",
		},
		{
			"nested and nulls kept",
			map[string]any{"z": map[string]any{"y": nil, "x": []any{map[string]any{"b": nil, "a": []any{}}}}, "a": map[string]any{}},
			`{"a":{},"z":{"x":[{"a":[],"b":null}],"y":null}}`,
		},
		{"array order kept", []any{"b", "a", json.Number("2"), json.Number("1")}, `["b","a",2,1]`},
		{"quote and backslash", `say "hi" \o/`, `"say \"hi\" \\o/"`},
		{"short escapes", "\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"other controls lowercase hex", "\x00\x01\x0b\x1f", `"\u0000\u0001\u000b\u001f"`},
		{"DEL not escaped", "\x7f", "\"\x7f\""},
		{"no HTML escaping", "<a href='x'>&amp;</a>", `"<a href='x'>&amp;</a>"`},
		{"line and paragraph separators as they are", "a\u2028b\u2029c", "\"a\u2028b\u2029c\""},
		{"slash not escaped", "a/b", `"a/b"`},
		{"non-ASCII as it is", "Zürich €, 日本, \U0001F600", "\"Zürich €, 日本, \U0001F600\""},
		{"numbers normalised", []any{json.Number("1.50"), json.Number("-0"), json.Number("1E2"), json.Number("1e21")}, `[1.5,0,100,1e+21]`},
		{"Go ints", []any{0, -7, int64(1) << 53, -(int64(1) << 53)}, `[0,-7,9007199254740992,-9007199254740992]`},
		{"Go floats", []any{0.65, math.Copysign(0, -1), 1e21, 1e-7, 5e-324}, `[0.65,0,1e+21,1e-7,5e-324]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonical(tt.in)
			if err != nil {
				t.Fatalf("Canonical: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("Canonical = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCanonicalErrors(t *testing.T) {
	deep := any(json.Number("1"))
	for range maxDepth + 1 {
		deep = []any{deep}
	}
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	tests := []struct {
		name string
		in   any
	}{
		{"NaN", math.NaN()},
		{"+Inf", math.Inf(1)},
		{"-Inf", []any{math.Inf(-1)}},
		{"invalid json.Number", json.Number("1.")},
		{"json.Number overflow", json.Number("1e999")},
		{"json.Number hex", json.Number("0x1p3")},
		{"int above 2**53", int64(1)<<53 + 1},
		{"int below -2**53", []any{-(int64(1) << 53) - 1}},
		{"invalid UTF-8 string", "a\xffb"},
		{"invalid UTF-8 key", map[string]any{"\xc3": 1}},
		{"surrogate half in UTF-8", "\xed\xa0\x80"},
		{"too deep", deep},
		{"cyclic", cyclic},
		{"unsupported type", []any{uint8(1)}},
		{"unsupported map type", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := Canonical(tt.in); err == nil {
				t.Errorf("Canonical = %s, want an error", got)
			}
		})
	}
}

func TestCanonicalDepthLimit(t *testing.T) {
	v := any(nil)
	for range maxDepth {
		v = []any{v}
	}
	if _, err := Canonical(v); err != nil {
		t.Errorf("Canonical of depth %d: %v", maxDepth, err)
	}
}

func TestCompareUTF16(t *testing.T) {
	// Written in the order JavaScript's default sort leaves them.
	sorted := []string{"", "A", "Z", "a", "aa", "ab", "b", "é", "\u07ff", "\u0800", "\uD7FF", "\U00010000", "\U0001F600", "\U0010FFFF", "\uE000", "\uFFFD", "\uFFFF"}
	for i := range sorted {
		for j := range sorted {
			got := compareUTF16(sorted[i], sorted[j])
			switch {
			case i < j && got >= 0, i > j && got <= 0, i == j && got != 0:
				t.Errorf("compareUTF16(%q, %q) = %d, want sign of %d", sorted[i], sorted[j], got, i-j)
			}
		}
	}
}

func TestParseJSON(t *testing.T) {
	tests := []struct {
		name, in string
		want     any
	}{
		{"object", ` { "a" : [1, -2.5e3, true, false, null, "x"] } `, map[string]any{"a": []any{json.Number("1"), json.Number("-2.5e3"), true, false, nil, "x"}}},
		{"number text kept", `[1.50, 1E2, -0]`, []any{json.Number("1.50"), json.Number("1E2"), json.Number("-0")}},
		{"escapes", `"\"\\\/\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00\u0000"`, "\"\\/\b\f\n\r\tAé€\U0001F600\x00"},
		{"raw non-ASCII", `"Zürich \u2028"`, "Zürich \u2028"},
		{"scalar at top", `7`, json.Number("7")},
		{"empty containers", `[{},[]]`, []any{map[string]any{}, []any{}}},
		{"underflow is zero", `1e-400`, json.Number("1e-400")},
		{"same key in different objects", `[{"a":1},{"a":2}]`, []any{map[string]any{"a": json.Number("1")}, map[string]any{"a": json.Number("2")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseJSON([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseJSON(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseJSON(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseJSONDepth(t *testing.T) {
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	if _, err := ParseJSON([]byte(nest(64))); err != nil {
		t.Errorf("depth 64: %v", err)
	}
	if _, err := ParseJSON([]byte(nest(65))); err == nil {
		t.Errorf("depth 65 accepted")
	}
	objects := strings.Repeat(`{"a":`, 65) + "1" + strings.Repeat("}", 65)
	if _, err := ParseJSON([]byte(objects)); err == nil {
		t.Errorf("object depth 65 accepted")
	}
}

func TestParseJSONRejects(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"only space", "  "},
		{"duplicate key", `{"a":1,"a":2}`},
		{"duplicate key after unescaping", `{"a":1,"\u0061":2}`},
		{"nested duplicate key", `{"x":{"k":1,"k":1}}`},
		{"invalid UTF-8", "\"a\xffb\""},
		{"invalid UTF-8 outside strings", "[1]\xff"},
		{"UTF-8 surrogate", "\"\xed\xa0\x80\""},
		{"overlong UTF-8", "\"\xc0\xaf\""},
		{"byte order mark", "\ufeff{}"},
		{"lone high surrogate", `"\ud800"`},
		{"lone high surrogate then text", `"\ud800abcdef"`},
		{"lone low surrogate", `"\udc00"`},
		{"high surrogate then non-surrogate escape", `"\ud800\u0041"`},
		{"two high surrogates", `"\ud800\ud800"`},
		{"reversed pair", `"\ude00\ud83d"`},
		{"trailing data", `{} {}`},
		{"trailing comma in array", `[1,]`},
		{"trailing comma in object", `{"a":1,}`},
		{"trailing garbage", `1x`},
		{"unterminated string", `"abc`},
		{"unterminated array", `[1`},
		{"unterminated object", `{"a":1`},
		{"missing colon", `{"a" 1}`},
		{"non-string key", `{1:1}`},
		{"raw control in string", "\"a\tb\""},
		{"raw newline in string", "\"a\nb\""},
		{"bad escape", `"\x41"`},
		{"short unicode escape", `"\u12"`},
		{"non-hex unicode escape", `"\u12g4"`},
		{"single quotes", `'a'`},
		{"leading zero", `01`},
		{"plus sign", `+1`},
		{"bare dot", `.5`},
		{"dot without digits", `1.`},
		{"exponent without digits", `1e`},
		{"NaN", `NaN`},
		{"Infinity", `Infinity`},
		{"overflow", `1e309`},
		{"negative overflow", `[-1e309]`},
		{"truncated literal", `tru`},
		{"capital literal", `True`},
		{"comment", `[1] // c`},
		{"vertical tab space", "[\v1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseJSON([]byte(tt.in))
			if err == nil {
				t.Fatalf("ParseJSON(%q) = %#v, want an error", tt.in, got)
			}
			var e *vaultcrux.Error
			if !errors.As(err, &e) || e.Kind != vaultcrux.Invalid || e.Msg == "" {
				t.Fatalf("ParseJSON(%q) error %#v, want *vaultcrux.Error of kind Invalid with a message", tt.in, err)
			}
			if len(tt.in) > 2 && strings.Contains(e.Msg, tt.in) {
				t.Errorf("message %q quotes the input", e.Msg)
			}
		})
	}
}

func TestParseJSONErrorOffset(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"\"a\xffb\"", "at byte 2: invalid UTF-8"},
		{`{"a":1,"a":2}`, "at byte 7: duplicate object key"},
		{`[1,2]x`, "at byte 5: data after the value"},
		{`["\ud800"]`, "at byte 2: unpaired UTF-16 surrogate"},
	}
	for _, tt := range tests {
		_, err := ParseJSON([]byte(tt.in))
		if got := vaultcrux.ErrorMessage(err); !strings.HasSuffix(got, tt.want) {
			t.Errorf("ParseJSON(%q) message %q, want it to end in %q", tt.in, got, tt.want)
		}
	}
}

// TestCanonicalMatchesEncodingJSON cross-checks string escaping against
// encoding/json with HTML escaping off, which below U+0300 escapes as
// JSON.stringify does (it differs above, escaping U+2028 and U+2029).
func TestCanonicalMatchesEncodingJSON(t *testing.T) {
	for c := rune(0); c < 0x300; c++ {
		s := "x" + string(c) + "y"
		got, err := Canonical(s)
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		enc := json.NewEncoder(&sb)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimSuffix(sb.String(), "\n"); string(got) != want {
			t.Errorf("Canonical(%q) = %s, encoding/json gives %s", s, got, want)
		}
	}
}

func TestFormatNumberRoundTripsFloats(t *testing.T) {
	values := []float64{0.1, 0.2, 1 / 3.0, 2 / 3.0, math.Pi, math.E, math.MaxFloat64, math.SmallestNonzeroFloat64,
		1e21 - 65536, 1e21, 1e-7, 9.999999999999999e-7, 123456.789, 1 << 62, -1e-300}
	for _, v := range values {
		s, err := FormatNumber(json.Number(strconv.FormatFloat(v, 'g', -1, 64)))
		if err != nil {
			t.Fatalf("FormatNumber(%v): %v", v, err)
		}
		got, err := strconv.ParseFloat(s, 64)
		if err != nil || got != v {
			t.Errorf("FormatNumber(%v) = %q, which reads back as %v (%v)", v, s, got, err)
		}
	}
}
