package apikey

import (
	"strings"
	"testing"
)

// referenceValid is a second, independent statement of the format, built on
// encoding/base32: a key is valid when its parts decode to the right number
// of bytes and encode back to themselves.
func referenceValid(s string) bool {
	rest, ok := strings.CutPrefix(s, "vcrx_")
	if !ok {
		return false
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok {
		return false
	}
	idb, err := encoding.DecodeString(id)
	if err != nil || len(idb) != 10 || encoding.EncodeToString(idb) != id {
		return false
	}
	sb, err := encoding.DecodeString(secret)
	return err == nil && len(sb) == 32 && encoding.EncodeToString(sb) == secret
}

// FuzzParse checks that Parse never panics, accepts exactly what the
// reference accepts, gives back its input from Reveal, and fails only with
// ErrMalformed.
func FuzzParse(f *testing.F) {
	key := validKey(f)
	f.Add(key)
	f.Add("vcrx_aaaaaaaaaaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	f.Add("vcrx_7777777777777777_777777777777777777777777777777777777777777777777777q")
	f.Add(key[:73] + "b")
	f.Add(key[:73] + "\n")
	f.Add(strings.ToUpper(key))
	f.Add(key[:30] + "é" + key[32:])
	f.Add(key + key)
	f.Add("vcrx_")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := Parse(s)
		if got, want := err == nil, referenceValid(s); got != want {
			t.Fatalf("Parse(%q): accepted = %v, reference says %v", s, got, want)
		}
		if err != nil {
			if err != ErrMalformed {
				t.Fatalf("Parse(%q): error %v, want ErrMalformed", s, err)
			}
			return
		}
		if got := tok.Reveal(); got != s {
			t.Fatalf("Parse(%q).Reveal() = %q", s, got)
		}
		if got, want := tok.ID, s[5:21]; got != want {
			t.Fatalf("Parse(%q).ID = %q, want %q", s, got, want)
		}
		if strings.Contains(tok.String(), s[22:]) {
			t.Fatalf("Parse(%q).String() = %q shows the secret", s, tok.String())
		}
	})
}
