package keyring

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// testBytes is recognisable in any rendering: as text, hex or decimal.
var testBytes = []byte("sekrit-sekrit-sekrit-sekrit-sekrit")

// assertNoLeak fails if out shows the bytes of testBytes in any of the ways
// fmt and the encoders could render them.
func assertNoLeak(t *testing.T, what, out string) {
	t.Helper()
	leaks := []string{
		"sekrit",
		hex.EncodeToString(testBytes[:6]),
		strings.ToUpper(hex.EncodeToString(testBytes[:6])),
		"115 101 107", // decimal bytes, as %v of a []byte shows them
		"c2VrcmL0",    // base64, as encoding/json shows a []byte
		"c2VrcmI0",
	}
	for _, l := range leaks {
		if strings.Contains(out, l) {
			t.Errorf("%s = %q; it leaks the secret (%q)", what, out, l)
		}
	}
}

func TestSecretFmt(t *testing.T) {
	s := NewSecret(testBytes)
	type exported struct {
		Name string
		Key  Secret
	}
	type unexported struct {
		name string
		key  Secret
	}
	values := map[string]any{
		"Secret":                  s,
		"*Secret":                 &s,
		"struct with Secret":      exported{"pepper", s},
		"*struct with Secret":     &exported{"pepper", s},
		"struct with unexported":  unexported{"pepper", s},
		"*struct with unexported": &unexported{"pepper", s},
		"[]Secret":                []Secret{s, s},
		"map[string]Secret":       map[string]Secret{"k": s},
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%08b", "% x"}
	for name, v := range values {
		for _, verb := range verbs {
			assertNoLeak(t, fmt.Sprintf("Sprintf(%q, %s)", verb, name), fmt.Sprintf(verb, v))
		}
		assertNoLeak(t, "Sprint("+name+")", fmt.Sprint(v))
		assertNoLeak(t, "Sprintln("+name+")", fmt.Sprintln(v))
	}
}

func TestSecretRendersRedacted(t *testing.T) {
	s := NewSecret(testBytes)
	text, err := s.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  string
	}{
		{"%v", fmt.Sprintf("%v", s)},
		{"%+v", fmt.Sprintf("%+v", s)},
		{"%#v", fmt.Sprintf("%#v", s)},
		{"%s", fmt.Sprintf("%s", s)},
		{"%d", fmt.Sprintf("%d", s)},
		{"%x", fmt.Sprintf("%x", s)},
		{"String", s.String()},
		{"GoString", s.GoString()},
		{"LogValue", s.LogValue().String()},
		{"MarshalText", string(text)},
	}
	for _, tt := range tests {
		if want := "[REDACTED]"; tt.got != want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, want)
		}
	}
	type config struct {
		Addr   string
		Pepper Secret
	}
	if got, want := fmt.Sprintf("%+v", config{":80", s}), "{Addr::80 Pepper:[REDACTED]}"; got != want {
		t.Errorf("%%+v of a struct: got %q, want %q", got, want)
	}
}

func TestSecretJSON(t *testing.T) {
	s := NewSecret(testBytes)
	got, err := json.Marshal(struct {
		Name   string
		Pepper Secret
		Ptr    *Secret
		Map    map[string]Secret
	}{"x", s, &s, map[string]Secret{"k": s}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Name":"x","Pepper":"[REDACTED]","Ptr":"[REDACTED]","Map":{"k":"[REDACTED]"}}`
	if string(got) != want {
		t.Errorf("json.Marshal: got %s, want %s", got, want)
	}
}

func TestSecretSlog(t *testing.T) {
	s := NewSecret(testBytes)
	type config struct {
		Addr   string
		Pepper Secret
		pepper Secret
	}
	for _, tt := range []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
	}{
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(tt.new(&buf))
			log.Info("loaded", "pepper", s, slog.Any("ptr", &s), "config", config{":8080", s, s},
				slog.Group("g", "key", s))
			out := buf.String()
			assertNoLeak(t, "log output", out)
			if got, want := strings.Count(out, "[REDACTED]"), 4; got < want {
				t.Errorf("log output %s has %d [REDACTED], want at least %d", out, got, want)
			}
		})
	}
	// The JSON handler renders a LogValuer exactly.
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "pepper", s)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if got, want := rec["pepper"], "[REDACTED]"; got != want {
		t.Errorf("pepper attribute: got %v, want %q", got, want)
	}
}

func TestSecretEqual(t *testing.T) {
	a := NewSecret(testBytes)
	tests := []struct {
		name string
		x, y Secret
		want bool
	}{
		{"same bytes", a, NewSecret(testBytes), true},
		{"itself", a, a, true},
		{"last byte differs", a, NewSecret(append(testBytes[:len(testBytes)-1:len(testBytes)-1], 'X')), false},
		{"first byte differs", a, NewSecret(append([]byte{'X'}, testBytes[1:]...)), false},
		{"prefix", a, NewSecret(testBytes[:len(testBytes)-1]), false},
		{"empty vs set", Secret{}, a, false},
		{"set vs empty", a, Secret{}, false},
		{"zero vs zero", Secret{}, Secret{}, false},
		{"empty vs empty", NewSecret(nil), NewSecret([]byte{}), false},
	}
	for _, tt := range tests {
		if got := tt.x.Equal(tt.y); got != tt.want {
			t.Errorf("%s: Equal = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNewSecretCopies(t *testing.T) {
	b := bytes.Clone(testBytes)
	s := NewSecret(b)
	b[0] = 'X'
	if got := s.Bytes(); !bytes.Equal(got, testBytes) {
		t.Errorf("after changing the input, Bytes() = %q, want %q", got, testBytes)
	}
	out := s.Bytes()
	out[0] = 'Y'
	if got := s.Bytes(); !bytes.Equal(got, testBytes) {
		t.Errorf("after changing a Bytes() result, Bytes() = %q, want %q", got, testBytes)
	}
	if got, want := s.Len(), len(testBytes); got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	var zero Secret
	if got := zero.Len(); got != 0 {
		t.Errorf("zero Secret: Len() = %d, want 0", got)
	}
	if got := zero.Bytes(); len(got) != 0 {
		t.Errorf("zero Secret: Bytes() = %v, want empty", got)
	}
}
