package apikey

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/vaultcrux/vaultcrux"
)

// Invite tokens (contract §4) are bearer credentials like keys: whoever
// holds one may join the tenant once, as the seat it names. They live
// here so that one package keeps every credential format and its keyed
// hash.
//
// # Format
//
// An invite token is 49 ASCII characters, vcinv_<secret>:
//
//	vcinv_   fixed prefix, so that people and secret scanners recognise it
//	<secret> 43 characters: 32 random bytes (256 bits) in unpadded base64url
//	         (RFC 4648 §5). Only the canonical spelling is accepted.
//
// # Stored hash, version 1
//
// The server stores only
//
//	HMAC-SHA-256(key = pepper, msg = "vaultcrux/invite/v1" || 0x00 || token)
//
// with token the whole 49-character text and pepper the API key pepper.
// The domain string keeps these hashes apart from key hashes. Invites are
// found by this hash (it is unique across tenants), so a copy of the
// database neither holds a usable token nor allows checking a guess.
const (
	invitePrefix      = "vcinv_"
	inviteSecretBytes = 32
	inviteLen         = len(invitePrefix) + 43 // base64url of 32 bytes, unpadded
	inviteDomain      = "vaultcrux/invite/v1"
)

// ErrMalformedInvite is the error of ParseInvite for any string that is
// not a well-formed token; it echoes nothing of its input.
var ErrMalformedInvite = vaultcrux.E(vaultcrux.Invalid, "malformed invite token")

// InviteToken is an invite token. The zero InviteToken is not a token:
// Hasher.HashInvite returns nil for it. Like Token it is not comparable
// and renders redacted everywhere but Reveal.
type InviteToken struct {
	_    [0]func() // incomparable
	text string
}

// GenerateInvite makes a token from 32 bytes read from rand
// (crypto/rand.Reader outside tests).
func GenerateInvite(rand io.Reader) (t InviteToken, err error) {
	defer vaultcrux.Wrap(&err, "apikey.GenerateInvite")
	var b [inviteSecretBytes]byte
	defer clear(b[:])
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return InviteToken{}, fmt.Errorf("reading random bytes: %w", err)
	}
	return InviteToken{text: invitePrefix + base64.RawURLEncoding.EncodeToString(b[:])}, nil
}

// ParseInvite parses a token as presented by a client: exact prefix and
// length, base64url alphabet, canonical last character.
func ParseInvite(s string) (InviteToken, error) {
	if len(s) != inviteLen || s[:len(invitePrefix)] != invitePrefix {
		return InviteToken{}, ErrMalformedInvite
	}
	var b [inviteSecretBytes + 2]byte
	defer clear(b[:])
	n, err := base64.RawURLEncoding.Strict().Decode(b[:], []byte(s[len(invitePrefix):]))
	if err != nil || n != inviteSecretBytes {
		return InviteToken{}, ErrMalformedInvite
	}
	return InviteToken{text: s}, nil
}

func (t InviteToken) valid() bool { return len(t.text) == inviteLen }

// Reveal returns the token. It exists only for the one response that
// creates the invite: never log, store or return it elsewhere.
func (t InviteToken) Reveal() string { return t.text }

// String returns vcinv_[REDACTED].
func (t InviteToken) String() string { return invitePrefix + redacted }

// GoString returns the redacted token, for %#v.
func (t InviteToken) GoString() string { return t.String() }

// Format writes the redacted token for every verb.
func (t InviteToken) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, t.String()) }

// LogValue makes log/slog record the redacted token.
func (t InviteToken) LogValue() slog.Value { return slog.StringValue(t.String()) }

// MarshalJSON encodes the redacted token as a JSON string.
func (t InviteToken) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }
