// Package envelope is the evidence plane's envelope encryption (contract
// §5): content is sealed with AES-256-GCM under a random data key (DEK),
// and the DEK is wrapped by the tenant's key-encryption key (KEK), which
// only the key provider can use.
//
// Formats (docs/design.md, "Evidence plane"):
//
//   - Sealed content: one byte format version (1), a 12-byte random
//     nonce, then the GCM ciphertext and tag.
//   - A wrapped key: the string "vc1:<kekid>:v<n>:<base64url(nonce||ct)>",
//     so that whoever holds it knows which KEK version unwraps it.
//
// Every seal binds additional data built by AAD from typed, length-prefixed
// parts (tenant, document, version, chunk …): a ciphertext moved to another
// tenant, document, version or position fails to open.
package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// KeySize is the size of every key here: AES-256.
const KeySize = 32

const (
	sealVersion = 1
	nonceSize   = 12
	tagSize     = 16
	// wrapPrefix starts every wrapped key.
	wrapPrefix = "vc1"
	// maxKEKID bounds a key id inside a wrapped key.
	maxKEKID = 128
)

// ErrOpen is returned for every ciphertext that does not open: wrong key,
// wrong additional data, tampering, truncation. It says nothing more, on
// purpose.
var ErrOpen = errors.New("envelope: ciphertext does not open")

// ErrFormat is returned for a wrapped key or sealed blob that is not in
// the format at all.
var ErrFormat = errors.New("envelope: malformed ciphertext")

// AAD builds additional authenticated data from parts: a domain string,
// then each part as a uvarint length and its bytes, so that no two part
// lists encode alike.
func AAD(parts ...string) []byte {
	n := len("vaultcrux/aad/v1")
	for _, p := range parts {
		n += binary.MaxVarintLen64 + len(p)
	}
	b := make([]byte, 0, n)
	b = append(b, "vaultcrux/aad/v1"...)
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

func gcm(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("envelope: key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts plaintext under key with additional data aad.
func Seal(key, aad, plaintext []byte, rand io.Reader) ([]byte, error) {
	a, err := gcm(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+tagSize)
	out[0] = sealVersion
	if _, err := io.ReadFull(rand, out[1:]); err != nil {
		return nil, fmt.Errorf("envelope: nonce: %w", err)
	}
	return a.Seal(out, out[1:], plaintext, aad), nil
}

// Open decrypts what Seal made.
func Open(key, aad, sealed []byte) ([]byte, error) {
	if len(sealed) < 1+nonceSize+tagSize || sealed[0] != sealVersion {
		return nil, ErrFormat
	}
	a, err := gcm(key)
	if err != nil {
		return nil, err
	}
	pt, err := a.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// NewKey returns a fresh random key.
func NewKey(rand io.Reader) ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := io.ReadFull(rand, k); err != nil {
		return nil, fmt.Errorf("envelope: key: %w", err)
	}
	return k, nil
}

// Wrapped is a parsed wrapped key.
type Wrapped struct {
	KEKID   string
	Version int
	Sealed  []byte
}

// Wrap seals key under kek (id kekID, version) and formats the result.
func Wrap(kek []byte, kekID string, version int, key, aad []byte, rand io.Reader) (string, error) {
	if !validKEKID(kekID) || version < 1 {
		return "", fmt.Errorf("envelope: invalid key id %q or version %d", kekID, version)
	}
	sealed, err := Seal(kek, wrapAAD(kekID, version, aad), key, rand)
	if err != nil {
		return "", err
	}
	return wrapPrefix + ":" + kekID + ":v" + strconv.Itoa(version) + ":" + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// wrapAAD binds the key id and version in the header to the ciphertext,
// so that a rewritten header does not open.
func wrapAAD(kekID string, version int, aad []byte) []byte {
	return append(AAD("wrap", kekID, strconv.Itoa(version)), aad...)
}

// ParseWrapped parses a wrapped key without opening it.
func ParseWrapped(s string) (Wrapped, error) {
	rest, ok := strings.CutPrefix(s, wrapPrefix+":")
	if !ok {
		return Wrapped{}, ErrFormat
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return Wrapped{}, ErrFormat
	}
	head, body := rest[:i], rest[i+1:]
	j := strings.LastIndexByte(head, ':')
	if j < 0 {
		return Wrapped{}, ErrFormat
	}
	id, ver := head[:j], head[j+1:]
	if !validKEKID(id) || len(ver) < 2 || ver[0] != 'v' || len(ver) > 10 {
		return Wrapped{}, ErrFormat
	}
	n, err := strconv.Atoi(ver[1:])
	if err != nil || n < 1 || strconv.Itoa(n) != ver[1:] {
		return Wrapped{}, ErrFormat
	}
	// The decoder skips \r and \n; a wrapped key has exactly one form.
	if strings.ContainsAny(body, "\r\n") {
		return Wrapped{}, ErrFormat
	}
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil || len(sealed) < 1+nonceSize+tagSize || sealed[0] != sealVersion {
		return Wrapped{}, ErrFormat
	}
	return Wrapped{KEKID: id, Version: n, Sealed: sealed}, nil
}

// Unwrap opens a wrapped key made by Wrap under kek, which must be the
// KEK kekID at version.
func Unwrap(kek []byte, kekID string, version int, wrapped string, aad []byte) ([]byte, error) {
	w, err := ParseWrapped(wrapped)
	if err != nil {
		return nil, err
	}
	if w.KEKID != kekID || w.Version != version {
		return nil, fmt.Errorf("envelope: key wrapped by %s:v%d, not %s:v%d: %w", w.KEKID, w.Version, kekID, version, ErrOpen)
	}
	key, err := Open(kek, wrapAAD(kekID, version, aad), w.Sealed)
	if err != nil {
		return nil, err
	}
	if len(key) != KeySize {
		return nil, ErrOpen
	}
	return key, nil
}

// validKEKID accepts 1..128 characters of a-z A-Z 0-9 and ._- (no colon:
// the format's separator).
func validKEKID(id string) bool {
	if len(id) == 0 || len(id) > maxKEKID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
