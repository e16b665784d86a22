// Package apikey owns the format of vaultcrux API keys and the code that
// decides whether a presented key is genuine: generation, parsing, hashing
// and constant-time verification. Nothing else in vaultcrux looks inside a
// key. Seat invite tokens, bearer credentials of the same kind, are here
// too (invite.go), hashed under the same pepper in their own domain.
//
// # Format
//
// A key is 74 ASCII characters, vcrx_<keyid>_<secret>:
//
//	vcrx_    fixed prefix, so that people and secret scanners recognise a key
//	<keyid>  16 characters: 10 random bytes (80 bits) in lowercase base32,
//	         the RFC 4648 alphabet a-z 2-7, no padding. Not secret: it is
//	         stored in clear, shown in key lists and logs, and finds the
//	         key's record.
//	_
//	<secret> 52 characters: 32 random bytes (256 bits) in lowercase base32,
//	         no padding. 52 characters hold 260 bits; the last character
//	         carries one bit of the secret and four zero bits, so it is 'a'
//	         or 'q'.
//
// # Stored hash, version 1
//
// The server stores the keyid and
//
//	HMAC-SHA-256(key = pepper,
//	             msg = "vaultcrux/apikey/v1" || 0x00 || keyid || 0x00 || secret)
//
// where keyid and secret are their ASCII text as they appear in the key and
// the pepper is a server secret of at least 32 bytes kept outside the
// database (see internal/keyring). The domain string names the construction
// and its version; a different construction gets a different string. The
// keyid inside the MAC binds each hash to its own record, so the secret of
// one key does not verify under another key's id. Because the hash is keyed,
// a copy of the database alone does not even allow checking a guess.
//
// # Invariants
//
//   - Parse accepts exactly the strings Generate can produce, and nothing
//     else: one spelling per key.
//   - The secret leaves a Token only through Reveal (for the one response
//     that creates the key) and through Hasher. Every other rendering of a
//     Token — fmt with any verb, log/slog, encoding/json — shows
//     vcrx_<keyid>_[REDACTED].
//   - Parse and Verify take time that does not depend on the secret's
//     content. Parse's errors are one user-safe value, ErrMalformed, that
//     never echoes its input.
package apikey

import (
	"crypto/subtle"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/bits"

	"github.com/vaultcrux/vaultcrux"
)

const (
	prefix      = "vcrx_"
	idBytes     = 10
	secretBytes = 32
	idLen       = 16 // base32 length of idBytes
	secretLen   = 52 // base32 length of secretBytes, unpadded
	keyLen      = len(prefix) + idLen + 1 + secretLen

	redacted = "[REDACTED]"
)

// encoding is RFC 4648 base32 with the alphabet lowercased and no padding.
var encoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ErrMalformed is the error of Parse for any string that is not a well-formed
// key. It says nothing about what is wrong, so that it echoes no part of the
// input and is no oracle. Its kind is Unauthenticated.
var ErrMalformed = vaultcrux.E(vaultcrux.Unauthenticated, "malformed API key")

// Token is an API key: its id and its secret. The zero Token is not a key:
// it verifies against nothing. Tokens come from Generate or Parse.
//
// Token is not comparable with ==, which would compare secrets in variable
// time; compare keys only through Hasher.Verify. fmt cannot call the methods
// of an unexported struct field, so a Token held in one is printed field by
// field: keep Tokens out of structs that get printed or logged whole.
type Token struct {
	_ [0]func() // incomparable

	ID     string // the <keyid>: not secret
	secret string
}

// Generate makes a new key from 42 bytes read from rand: the first 10 make
// the keyid, the next 32 the secret. rand is crypto/rand.Reader outside of
// tests.
func Generate(rand io.Reader) (t Token, err error) {
	defer vaultcrux.Wrap(&err, "apikey.Generate")
	var b [idBytes + secretBytes]byte
	defer clear(b[:])
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return Token{}, fmt.Errorf("reading random bytes: %w", err)
	}
	return Token{ID: encoding.EncodeToString(b[:idBytes]), secret: encoding.EncodeToString(b[idBytes:])}, nil
}

// Parse parses a key as presented by a client. It is strict: the prefix,
// the lengths, the positions of the two underscores, the lowercase base32
// alphabet and the canonical last character of the secret are all checked;
// no whitespace or case folding is forgiven. It does not allocate: the Token
// refers to s.
//
// Parse checks every character whatever it finds, without branching on the
// secret's characters, so its time depends on the length of s and on the
// fixed parts of the format only.
func Parse(s string) (Token, error) {
	if len(s) != keyLen || s[:len(prefix)] != prefix || s[len(prefix)+idLen] != '_' {
		return Token{}, ErrMalformed
	}
	id := s[len(prefix) : len(prefix)+idLen]
	secret := s[len(prefix)+idLen+1:]
	bad := 0
	for i := range len(id) {
		bad |= notBase32(id[i])
	}
	for i := range len(secret) {
		bad |= notBase32(secret[i])
	}
	// Only 'a' (index 0) and 'q' (index 16) leave the four unused low bits
	// zero; accepting others would give a key several spellings.
	last := secret[secretLen-1]
	bad |= 1 ^ (subtle.ConstantTimeByteEq(last, 'a') | subtle.ConstantTimeByteEq(last, 'q'))
	if bad != 0 {
		return Token{}, ErrMalformed
	}
	return Token{ID: id, secret: secret}, nil
}

// ValidID reports whether id has the shape of a key id (the <keyid> part),
// so that junk taken from a URL never reaches the store.
func ValidID(id string) bool {
	if len(id) != idLen {
		return false
	}
	bad := 0
	for i := range len(id) {
		bad |= notBase32(id[i])
	}
	return bad == 0
}

// notBase32 returns 0 if c is in the alphabet a-z 2-7 and 1 if it is not,
// without a branch that depends on c.
func notBase32(c byte) int {
	x := int(c)
	return 1 ^ (inRange(x, 'a', 'z') | inRange(x, '2', '7'))
}

// inRange returns 1 if lo ≤ x ≤ hi and 0 otherwise, for x, lo, hi in
// [0, 255]: (x-lo)|(hi-x) is negative exactly when x is outside, and its
// sign bit is the answer.
func inRange(x, lo, hi int) int {
	return int(uint((x-lo)|(hi-x))>>(bits.UintSize-1)) ^ 1
}

// valid reports whether t has the shape of a key from Generate or Parse.
func (t Token) valid() bool { return len(t.ID) == idLen && len(t.secret) == secretLen }

// Reveal returns the whole key, secret included. It exists only for the one
// response that creates the key: never log, store or return it elsewhere.
func (t Token) Reveal() string { return prefix + t.ID + "_" + t.secret }

// String returns the key with its secret redacted: vcrx_<keyid>_[REDACTED].
func (t Token) String() string { return prefix + t.ID + "_" + redacted }

// GoString returns the redacted key, for %#v.
func (t Token) GoString() string { return t.String() }

// Format writes the redacted key for every verb. Without it, verbs that fmt
// does not route through String (%d, %t, …) would print the fields.
func (t Token) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, t.String()) }

// LogValue makes log/slog record the redacted key.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// MarshalJSON encodes the redacted key as a JSON string.
func (t Token) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }
