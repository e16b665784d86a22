package apikey

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/vaultcrux/vaultcrux/internal/keyring"
)

func TestInviteTokenFormat(t *testing.T) {
	seen := map[string]bool{}
	for range 64 {
		tok, err := GenerateInvite(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s := tok.Reveal()
		if len(s) != 49 || !strings.HasPrefix(s, "vcinv_") {
			t.Fatalf("token %q: want vcinv_ and 49 characters", s)
		}
		raw, err := base64.RawURLEncoding.Strict().DecodeString(s[6:])
		if err != nil || len(raw) != 32 {
			t.Fatalf("token secret decodes to %d bytes (%v), want 32 (256 bits)", len(raw), err)
		}
		if seen[s] {
			t.Fatalf("token %q generated twice", s)
		}
		seen[s] = true
		back, err := ParseInvite(s)
		if err != nil || back.Reveal() != s {
			t.Fatalf("ParseInvite(GenerateInvite()) = %v, %v", back, err)
		}
	}
	// The secret is exactly the 32 bytes read from rand.
	want := bytes.Repeat([]byte{0xfb}, 32)
	tok, err := GenerateInvite(bytes.NewReader(want))
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Reveal(); got != "vcinv_"+base64.RawURLEncoding.EncodeToString(want) {
		t.Errorf("GenerateInvite(0xfb…) = %q", got)
	}
	if _, err := GenerateInvite(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Error("GenerateInvite accepted a short read")
	}
}

func TestParseInviteRejects(t *testing.T) {
	good := "vcinv_" + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	if _, err := ParseInvite(good); err != nil {
		t.Fatalf("ParseInvite(good): %v", err)
	}
	for name, s := range map[string]string{
		"empty":               "",
		"prefix only":         "vcinv_",
		"other prefix":        "vcinx_" + good[6:],
		"uppercase prefix":    "VCINV_" + good[6:],
		"short":               good[:48],
		"long":                good + "A",
		"padded":              good + "=",
		"standard alphabet":   good[:10] + "+" + good[11:],
		"non-canonical tail":  good[:48] + "d", // the last character's two low bits must be zero
		"whitespace":          " " + good[1:],
		"api key":             "vcrx_aaaaaaaaaaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"multibyte character": good[:20] + "é" + good[22:],
	} {
		if _, err := ParseInvite(s); err != ErrMalformedInvite {
			t.Errorf("%s: ParseInvite = %v, want ErrMalformedInvite", name, err)
		}
	}
}

func TestInviteTokenRedacted(t *testing.T) {
	tok, err := GenerateInvite(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret := tok.Reveal()[6:]
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "token", tok)
	j, _ := json.Marshal(struct{ T InviteToken }{tok})
	for _, s := range []string{
		fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s %q %x %d", tok, tok, tok, tok, tok, tok, tok),
		logged.String(), string(j),
	} {
		if strings.Contains(s, secret) {
			t.Errorf("rendering shows the token: %s", s)
		}
	}
}

func TestHashInvite(t *testing.T) {
	pepper := bytes.Repeat([]byte{0x42}, 32)
	h, err := NewHasher(keyring.NewSecret(pepper))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ParseInvite("vcinv_" + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	// An independent statement of the construction.
	mac := hmac.New(sha256.New, pepper)
	mac.Write([]byte("vaultcrux/invite/v1\x00" + tok.Reveal()))
	if got, want := h.HashInvite(tok), mac.Sum(nil); !bytes.Equal(got, want) {
		t.Errorf("HashInvite = %x, want %x", got, want)
	}
	// Keyed: another pepper gives another hash; another token too.
	h2, _ := NewHasher(keyring.NewSecret(bytes.Repeat([]byte{0x43}, 32)))
	if bytes.Equal(h.HashInvite(tok), h2.HashInvite(tok)) {
		t.Error("hash does not depend on the pepper")
	}
	other, _ := GenerateInvite(rand.Reader)
	if bytes.Equal(h.HashInvite(tok), h.HashInvite(other)) {
		t.Error("two tokens hash alike")
	}
	// Not the hash of an API key with the same bytes: the domains differ.
	if bytes.Contains(h.HashInvite(tok), []byte(tok.Reveal())) {
		t.Error("the hash contains the token")
	}
	if got := h.HashInvite(InviteToken{}); got != nil {
		t.Errorf("HashInvite(zero) = %x, want nil", got)
	}
}

// FuzzParseInvite: ParseInvite never panics, accepts exactly the strings
// that are the prefix plus the canonical unpadded base64url of 32 bytes,
// and gives back its input.
func FuzzParseInvite(f *testing.F) {
	good := "vcinv_" + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xa5}, 32))
	for _, s := range []string{good, good[:48] + "B", good + "=", "vcinv_", "", good[:30] + "/" + good[31:]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseInvite(s)
		rest, ok := strings.CutPrefix(s, "vcinv_")
		raw, derr := base64.RawURLEncoding.DecodeString(rest)
		want := ok && derr == nil && len(raw) == 32 && base64.RawURLEncoding.EncodeToString(raw) == rest
		if (err == nil) != want {
			t.Fatalf("ParseInvite(%q) err = %v, reference valid = %v", s, err, want)
		}
		if err != nil && err != ErrMalformedInvite {
			t.Fatalf("ParseInvite(%q) err = %v, want ErrMalformedInvite", s, err)
		}
		if err == nil && tok.Reveal() != s {
			t.Fatalf("ParseInvite(%q).Reveal() = %q", s, tok.Reveal())
		}
	})
}
