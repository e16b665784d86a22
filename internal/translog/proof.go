package translog

import (
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/vaultcrux/vaultcrux"
	"golang.org/x/mod/sumdb/tlog"
)

// errProof is the error of a proof that does not verify.
var errProof = errors.New("proof does not verify")

// ProveInclusion returns the RFC 6962 audit path showing that record index
// is in the log of size records, leaf side first, reading the hashes it
// needs through read.
func ProveInclusion(index, size int64, read BlobReader) (proof []Hash, err error) {
	defer vaultcrux.Wrap(&err, "translog.ProveInclusion")
	if err := checkInclusionArgs(index, size); err != nil {
		return nil, err
	}
	return tlog.ProveRecord(size, index, HashReader(read))
}

// CheckInclusion verifies that proof shows that record index of the log of
// size records with root hash root is receiptHash. A nil error is the only
// success.
//
// size and root must be the pair of one checkpoint the caller has opened.
// The proof binds the root; the size only shapes the path, and a path can
// have the same shape under a neighbouring size, so a size paired with the
// root of another size can verify.
func CheckInclusion(proof []Hash, size int64, root Hash, index int64, receiptHash string) (err error) {
	defer vaultcrux.Wrap(&err, "translog.CheckInclusion")
	if err := checkInclusionArgs(index, size); err != nil {
		return err
	}
	if tlog.CheckRecord(proof, size, root, index, LeafHash(receiptHash)) != nil {
		return errProof
	}
	return nil
}

func checkInclusionArgs(index, size int64) error {
	if err := checkSize(size); err != nil {
		return err
	}
	if index < 0 || index >= size {
		return fmt.Errorf("index %d is not in a log of size %d", index, size)
	}
	return nil
}

// ProveConsistency returns the RFC 6962 consistency proof showing that the
// log of from records is a prefix of the log of to records, reading the
// hashes it needs through read. It needs 0 <= from <= to. The proof is
// empty when from == to, and when from == 0: every log extends the empty
// one.
func ProveConsistency(from, to int64, read BlobReader) (proof []Hash, err error) {
	defer vaultcrux.Wrap(&err, "translog.ProveConsistency")
	if err := checkConsistencyArgs(from, to); err != nil {
		return nil, err
	}
	if from == 0 || from == to {
		return []Hash{}, nil
	}
	return tlog.ProveTree(to, from, HashReader(read))
}

// CheckConsistency verifies that proof shows that the log of from records
// with root fromRoot is a prefix of the log of to records with root toRoot.
// A nil error is the only success. Each size and its root must be the pair
// of one checkpoint the caller has opened, as for CheckInclusion.
//
// For from == 0 the proof must be empty and fromRoot must be the empty-tree
// root; toRoot is then not constrained by the proof (and, when to == 0 too,
// must also be the empty-tree root). For from == to the proof must be empty
// and the roots equal.
func CheckConsistency(proof []Hash, to int64, toRoot Hash, from int64, fromRoot Hash) (err error) {
	defer vaultcrux.Wrap(&err, "translog.CheckConsistency")
	if err := checkConsistencyArgs(from, to); err != nil {
		return err
	}
	if from == 0 {
		if len(proof) != 0 || fromRoot != emptyRoot || (to == 0 && toRoot != emptyRoot) {
			return errProof
		}
		return nil
	}
	if tlog.CheckTree(proof, to, toRoot, from, fromRoot) != nil {
		return errProof
	}
	return nil
}

func checkConsistencyArgs(from, to int64) error {
	if err := checkSize(to); err != nil {
		return err
	}
	if from < 0 || from > to {
		return fmt.Errorf("consistency between sizes %d and %d: need 0 <= from <= to", from, to)
	}
	return nil
}

// EncodeProof returns the proof as the standard base64 (with padding) of
// each hash, as proofpacks and the log API carry it. A nil or empty proof
// gives an empty, non-nil slice.
func EncodeProof(p []Hash) []string {
	s := make([]string, len(p))
	for i, h := range p {
		s[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return s
}

// DecodeProof is the inverse of EncodeProof. It accepts only the canonical
// encoding: each entry is exactly the 44 characters of standard base64,
// with padding, that EncodeProof gives for some hash.
func DecodeProof(s []string) (p []Hash, err error) {
	defer vaultcrux.Wrap(&err, "translog.DecodeProof")
	p = make([]Hash, len(s))
	for i, e := range s {
		h, ok := decodeHash(e)
		if !ok {
			return nil, fmt.Errorf("proof entry %d is not a base64 hash", i)
		}
		p[i] = h
	}
	return p, nil
}

// decodeHash decodes the canonical standard base64 of a hash. Comparing the
// re-encoding with the input refuses every other spelling: stray bits,
// missing padding, line breaks (which the base64 decoder skips).
func decodeHash(s string) (Hash, bool) {
	var buf [hashSize + 1]byte // Decode may touch one byte past 32 for 44 characters
	if len(s) != 44 {
		return Hash{}, false
	}
	n, err := base64.StdEncoding.Decode(buf[:], []byte(s))
	if err != nil || n != hashSize {
		return Hash{}, false
	}
	h := Hash(buf[:hashSize])
	if base64.StdEncoding.EncodeToString(h[:]) != s {
		return Hash{}, false
	}
	return h, true
}
