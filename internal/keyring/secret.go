package keyring

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
)

// MinSecretLen is the least number of bytes a Secret is accepted with when
// it is read from a file or created: 256 bits, the strength of the HMAC-
// SHA-256 constructions the secrets key.
const MinSecretLen = 32

// redacted is what every rendering of a Secret shows.
const redacted = "[REDACTED]"

// Secret holds secret key material. Its zero value is the empty secret.
//
// A Secret never shows its bytes: fmt (every verb, %#v included), log/slog,
// encoding/json and encoding.TextMarshaler users all see "[REDACTED]". It is
// not comparable with ==; use Equal, which runs in constant time.
//
// Copies of a Secret share its bytes, which are immutable.
type Secret struct {
	_ [0]func() // makes Secret incomparable: == on secrets does not compile

	// The bytes are a string, which nothing can modify, behind a pointer
	// to a non-composite type: fmt cannot call the methods of an
	// unexported struct field, and it shows such a pointer as an address,
	// so a struct holding a Secret in an unexported field prints no secret
	// bytes with any verb either.
	p *string
}

func (s Secret) str() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// NewSecret returns a Secret holding a copy of b; later changes to b do not
// affect it.
func NewSecret(b []byte) Secret {
	str := string(b)
	return Secret{p: &str}
}

// Len returns the length of the secret in bytes. The length is not secret.
func (s Secret) Len() int { return len(s.str()) }

// Bytes returns a copy of the secret bytes. It exists only for keyed
// primitives (HMAC, key derivation): never log the result, store it, or
// return it to a caller.
func (s Secret) Bytes() []byte { return []byte(s.str()) }

// Equal reports whether s and other hold the same bytes, in time that
// depends on their lengths but not on their contents. The empty secret
// equals nothing, not even another empty secret, so that a secret that was
// never set cannot match one that was never sent.
func (s Secret) Equal(other Secret) bool {
	a, b := s.str(), other.str()
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// String returns "[REDACTED]".
func (Secret) String() string { return redacted }

// GoString returns "[REDACTED]", for %#v.
func (Secret) GoString() string { return redacted }

// Format writes "[REDACTED]" for every verb. Without it, verbs that fmt does
// not route through String (%d, %x on the struct's fields, …) would print
// the bytes.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue makes log/slog record "[REDACTED]".
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON encodes the secret as the JSON string "[REDACTED]".
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "[REDACTED]", for encoders that use
// encoding.TextMarshaler (map keys, XML, slog's text handler).
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
