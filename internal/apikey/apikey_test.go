package apikey

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/vaultcrux/vaultcrux"
)

// fixedRandom returns n deterministic bytes.
func fixedRandom(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*37 + 11)
	}
	return b
}

// validKey is a well-formed key made from fixedRandom.
func validKey(t testing.TB) string {
	t.Helper()
	tok, err := Generate(bytes.NewReader(fixedRandom(42)))
	if err != nil {
		t.Fatal(err)
	}
	return tok.Reveal()
}

func TestGenerateParse(t *testing.T) {
	for i := range 200 {
		tok, err := Generate(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key := tok.Reveal()
		if len(key) != 74 {
			t.Fatalf("len(%q) = %d, want 74", key, len(key))
		}
		got, err := Parse(key)
		if err != nil {
			t.Fatalf("key %d: Parse: %v", i, err)
		}
		if got.ID != tok.ID || got.Reveal() != key {
			t.Fatalf("key %d: Parse gave id %q, key %q; want %q, %q", i, got.ID, got.Reveal(), tok.ID, key)
		}
		if want := key[5:21]; tok.ID != want {
			t.Fatalf("key %d: ID = %q, want %q", i, tok.ID, want)
		}
	}
}

func TestGenerateUnique(t *testing.T) {
	const n = 2000
	ids := make(map[string]bool, n)
	secrets := make(map[string]bool, n)
	for range n {
		tok, err := Generate(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if ids[tok.ID] {
			t.Fatalf("duplicate id %q", tok.ID)
		}
		if secrets[tok.secret] {
			t.Fatalf("duplicate secret")
		}
		ids[tok.ID], secrets[tok.secret] = true, true
	}
}

func TestGenerateRandFailure(t *testing.T) {
	tests := []struct {
		name   string
		reader func() *bytes.Reader
		err    error
	}{
		{"empty", func() *bytes.Reader { return bytes.NewReader(nil) }, nil},
		{"41 bytes", func() *bytes.Reader { return bytes.NewReader(fixedRandom(41)) }, nil},
	}
	for _, tt := range tests {
		tok, err := Generate(tt.reader())
		if err == nil {
			t.Errorf("%s: got key %v and no error, want an error", tt.name, tok)
		}
		if got := vaultcrux.ErrorKind(err); got != vaultcrux.Internal {
			t.Errorf("%s: kind %v, want %v", tt.name, got, vaultcrux.Internal)
		}
	}
	boom := errors.New("entropy source failed")
	if _, err := Generate(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("failing reader: got error %v, want it to wrap %v", err, boom)
	}
}

func TestParseMalformed(t *testing.T) {
	key := validKey(t)
	id, secret := key[5:21], key[22:]
	replaceAt := func(s string, i int, with string) string { return s[:i] + with + s[i+1:] }
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"prefix only", "vcrx_"},
		{"prefix and id", "vcrx_" + id},
		{"prefix, id and separator", "vcrx_" + id + "_"},
		{"wrong prefix", "vcrk_" + id + "_" + secret},
		{"uppercase prefix", "VCRX_" + id + "_" + secret},
		{"dash after prefix", "vcrx-" + id + "_" + secret},
		{"no prefix", id + "_" + secret},
		{"short by one", key[:len(key)-1]},
		{"long by one", key + "a"},
		{"long by a key", key + key},
		{"id short, secret long", "vcrx_" + id[:15] + "_" + id[15:] + secret},
		{"id long, secret short", "vcrx_" + id + secret[:1] + "_" + secret[1:]},
		{"no separator", "vcrx_" + id + "a" + secret},
		{"separator is a dash", "vcrx_" + id + "-" + secret},
		{"extra underscore in id", replaceAt(key, 10, "_")},
		{"extra underscore in secret", replaceAt(key, 40, "_")},
		{"uppercase id", "vcrx_" + strings.ToUpper(id) + "_" + secret},
		{"uppercase secret", "vcrx_" + id + "_" + strings.ToUpper(secret)},
		{"one uppercase letter", replaceAt(key, 30, "Q")},
		{"digit 0", replaceAt(key, 30, "0")},
		{"digit 1", replaceAt(key, 30, "1")},
		{"digit 8", replaceAt(key, 30, "8")},
		{"digit 9", replaceAt(key, 7, "9")},
		{"padding", replaceAt(key, 73, "=")},
		{"space", replaceAt(key, 30, " ")},
		{"NUL", replaceAt(key, 30, "\x00")},
		{"DEL", replaceAt(key, 30, "\x7f")},
		{"high byte", replaceAt(key, 30, "\xff")},
		{"backtick (before a)", replaceAt(key, 30, "`")},
		{"brace (after z)", replaceAt(key, 30, "{")},
		{"slash", replaceAt(key, 30, "/")},
		{"colon (after 7)", replaceAt(key, 30, ":")},
		{"non-canonical last character b", replaceAt(key, 73, "b")},
		{"non-canonical last character p", replaceAt(key, 73, "p")},
		{"non-canonical last character 7", replaceAt(key, 73, "7")},
		{"leading space", " " + key[:len(key)-1]},
		{"trailing newline", key[:len(key)-1] + "\n"},
		{"bearer scheme", "Bearer " + key},
		{"unicode, longer", replaceAt(key, 30, "é")},
		{"unicode, same length", key[:30] + "é" + key[32:]},
		{"cyrillic a, same length", key[:30] + "а" + key[32:]},
		{"fullwidth underscore", "vcrx_" + id + "＿" + secret[:len(secret)-2]},
		{"invalid UTF-8", key[:30] + "\xc3\x28" + key[32:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name != "empty" && tt.in == key {
				t.Fatalf("test case is the valid key")
			}
			tok, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want an error", tt.in, tok.Reveal())
			}
			if err != ErrMalformed {
				t.Errorf("Parse(%q): got error %v, want ErrMalformed", tt.in, err)
			}
			if got, want := vaultcrux.ErrorKind(err), vaultcrux.Unauthenticated; got != want {
				t.Errorf("kind: got %v, want %v", got, want)
			}
			if got, want := vaultcrux.ErrorMessage(err), "malformed API key"; got != want {
				t.Errorf("message: got %q, want %q", got, want)
			}
			if tok.ID != "" || tok.secret != "" {
				t.Errorf("with an error, got a non-zero Token")
			}
		})
	}
}

// TestParseLastCharacter checks the canonical-encoding rule on every
// character of the alphabet.
func TestParseLastCharacter(t *testing.T) {
	key := validKey(t)
	for _, c := range "abcdefghijklmnopqrstuvwxyz234567" {
		s := key[:73] + string(c)
		_, err := Parse(s)
		if want := c == 'a' || c == 'q'; (err == nil) != want {
			t.Errorf("last character %q: got error %v, want accepted = %v", c, err, want)
		}
	}
}

func TestParseAllocs(t *testing.T) {
	key := validKey(t)
	bad := key[:73] + "b"
	for _, s := range []string{key, bad, ""} {
		if got := testing.AllocsPerRun(100, func() { _, _ = Parse(s) }); got != 0 {
			t.Errorf("Parse(%q) allocates %v times, want 0", s, got)
		}
	}
}

func TestTokenRedacted(t *testing.T) {
	tok, err := Parse(validKey(t))
	if err != nil {
		t.Fatal(err)
	}
	want := "vcrx_" + tok.ID + "_[REDACTED]"
	type holder struct{ Key Token }
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("m", "key", tok, "holder", holder{Key: tok})
	jsonOut, err := json.Marshal(holder{Key: tok})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		got      string
		wantSame bool // got must equal want, not only contain it
	}{
		{"String", tok.String(), true},
		{"GoString", tok.GoString(), true},
		{"LogValue", tok.LogValue().String(), true},
		{"%v", fmt.Sprintf("%v", tok), true},
		{"%+v", fmt.Sprintf("%+v", tok), true},
		{"%#v", fmt.Sprintf("%#v", tok), true},
		{"%s", fmt.Sprintf("%s", tok), true},
		{"%q", fmt.Sprintf("%q", tok), true},
		{"%d", fmt.Sprintf("%d", tok), true},
		{"%x", fmt.Sprintf("%x", tok), true},
		{"%+v of a struct", fmt.Sprintf("%+v", holder{Key: tok}), false},
		{"slog JSON", logged.String(), false},
		{"json.Marshal", string(jsonOut), false},
	}
	for _, tt := range tests {
		if strings.Contains(tt.got, tok.secret) || strings.Contains(tt.got, tok.secret[:10]) {
			t.Errorf("%s: %q shows the secret", tt.name, tt.got)
		}
		if tt.wantSame && tt.got != want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, want)
		}
		if !strings.Contains(tt.got, want) {
			t.Errorf("%s: %q does not contain %q", tt.name, tt.got, want)
		}
	}
	if got, want := string(jsonOut), `{"Key":"`+want+`"}`; got != want {
		t.Errorf("json.Marshal: got %s, want %s", got, want)
	}
}

func TestValidID(t *testing.T) {
	tok, err := Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		tok.ID:              true,
		"aaaaaaaaaaaaaaaa":  true,
		"":                  false,
		"aaaaaaaaaaaaaaa":   false,
		"aaaaaaaaaaaaaaaaa": false,
		"AAAAAAAAAAAAAAAA":  false,
		"aaaaaaaaaaaaaaa1":  false,
		"aaaaaaaaaaaaaaa8":  false,
		"aaaaaaaaaaaaaaa_":  false,
		"../../../etc/pass": false,
	}
	for id, want := range cases {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}
