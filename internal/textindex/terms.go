package textindex

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// termsVersion is the first byte of an encoded term list.
const termsVersion = 0x01

// ErrMalformedTerms is the error, wrapped with details, of DecodeTerms.
var ErrMalformedTerms = errors.New("malformed term list")

// minTermFreqLen is the shortest encoding of one TermFreq: a term and a
// one-byte frequency.
const minTermFreqLen = len(Term{}) + 1

// EncodeTerms returns the storage form of a chunk's term list:
//
//	0x01 || uvarint(count) || count × (term (16 bytes) || uvarint(freq))
//
// tfs must be as Analyze returns it: terms strictly increasing, each
// frequency at least 1. EncodeTerms panics otherwise, since bytes that
// DecodeTerms would refuse must never reach storage.
func EncodeTerms(tfs []TermFreq) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(tfs)*(len(Term{})+2))
	b = append(b, termsVersion)
	b = binary.AppendUvarint(b, uint64(len(tfs)))
	for i, tf := range tfs {
		if tf.Freq == 0 {
			panic(fmt.Sprintf("textindex.EncodeTerms: term %d has frequency 0", i))
		}
		if i > 0 && compareTerms(tfs[i-1].Term, tf.Term) >= 0 {
			panic(fmt.Sprintf("textindex.EncodeTerms: term %d is not greater than term %d", i, i-1))
		}
		b = append(b, tf.Term[:]...)
		b = binary.AppendUvarint(b, uint64(tf.Freq))
	}
	return b
}

// DecodeTerms parses what EncodeTerms returns. It accepts exactly the
// encodings EncodeTerms produces (minimal varints, terms strictly
// increasing, frequencies from 1 to 2^32-1, nothing after the last term),
// so decoding and encoding again gives the input back. Errors wrap
// ErrMalformedTerms. Its allocation is bounded by len(b).
func DecodeTerms(b []byte) ([]TermFreq, error) {
	if len(b) == 0 {
		return nil, malformed("empty input")
	}
	if b[0] != termsVersion {
		return nil, malformed("unknown version 0x%02x", b[0])
	}
	count, n, err := uvarint(b[1:])
	if err != nil {
		return nil, malformed("count: %v", err)
	}
	rest := b[1+n:]
	if count > uint64(len(rest)/minTermFreqLen) {
		return nil, malformed("count %d does not fit in %d bytes", count, len(rest))
	}
	var tfs []TermFreq
	if count > 0 {
		tfs = make([]TermFreq, count)
	}
	for i := range tfs {
		if len(rest) < len(Term{}) {
			return nil, malformed("term %d: truncated", i)
		}
		tf := &tfs[i]
		copy(tf.Term[:], rest)
		rest = rest[len(Term{}):]
		if i > 0 && compareTerms(tfs[i-1].Term, tf.Term) >= 0 {
			return nil, malformed("term %d is not greater than term %d", i, i-1)
		}
		freq, n, err := uvarint(rest)
		if err != nil {
			return nil, malformed("term %d: frequency: %v", i, err)
		}
		if freq == 0 || freq > math.MaxUint32 {
			return nil, malformed("term %d: frequency %d out of range", i, freq)
		}
		tf.Freq = uint32(freq)
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return nil, malformed("%d trailing bytes", len(rest))
	}
	return tfs, nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("textindex.DecodeTerms: %w: %s", ErrMalformedTerms, fmt.Sprintf(format, args...))
}

// uvarint decodes a minimal uvarint from the start of b.
func uvarint(b []byte) (uint64, int, error) {
	v, n := binary.Uvarint(b)
	switch {
	case n == 0:
		return 0, 0, errors.New("truncated varint")
	case n < 0:
		return 0, 0, errors.New("varint overflows 64 bits")
	case n != uvarintLen(v):
		return 0, 0, errors.New("non-minimal varint")
	}
	return v, n, nil
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}
