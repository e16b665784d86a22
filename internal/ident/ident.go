// Package ident makes and checks the opaque ids of vaultcrux objects
// (receipts, decisions, documents, sessions…): ULIDs.
//
// An id is 128 bits — a 48-bit count of milliseconds since the Unix epoch,
// big-endian, then 80 random bits — written as 26 characters of Crockford's
// base32 (0-9 A-Z without I L O U), most significant first.
//
// Invariants:
//
//   - New produces, and Valid accepts, only the canonical spelling:
//     uppercase, no Crockford aliases (i, l, o), first character '0'..'7'
//     (26 characters hold 130 bits; the top two are zero). One id has one
//     spelling, so ids compare and index as plain strings.
//   - Byte-wise order of ids is the order of their times, to the
//     millisecond; ids of the same millisecond order at random. There is no
//     per-process counter: ids from many replicas mix safely, and 80 random
//     bits per millisecond make a collision negligible.
//   - Time and randomness are the caller's (a clock and crypto/rand.Reader
//     outside tests); New fails rather than panics when either is unusable.
package ident

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/vaultcrux/vaultcrux"
)

// Len is the length of an id.
const Len = 26

// alphabet is Crockford's base32 in canonical (uppercase) form.
const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// maxMillis is the last millisecond a 48-bit timestamp holds (in 10889).
const maxMillis = 1<<48 - 1

// New returns a new id for time now, with 10 random bytes read from rand.
// It fails if rand does and if now is before 1970 or after year 10889.
func New(now time.Time, rand io.Reader) (id string, err error) {
	defer vaultcrux.Wrap(&err, "ident.New")
	ms := now.UnixMilli()
	if ms < 0 || ms > maxMillis {
		return "", fmt.Errorf("time %s is outside the range of an id", now.UTC().Format(time.RFC3339))
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(ms)<<16) // b[0:6]; b[6:8] are random below
	if _, err := io.ReadFull(rand, b[6:]); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return encode(&b), nil
}

// encode writes the 128-bit big-endian number in b in base32, five bits per
// character from the least significant end.
func encode(b *[16]byte) string {
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	var out [Len]byte
	for i := Len - 1; i >= 0; i-- {
		out[i] = alphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// Valid reports whether s is an id in canonical form. Use it on ids taken
// from URLs and bodies before they go anywhere else.
func Valid(s string) bool {
	if len(s) != Len || s[0] > '7' {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
		case 'A' <= c && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U':
		default:
			return false
		}
	}
	return true
}
