package translog

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// receipt is the receiptHash of synthetic receipt i.
func receipt(i int) string { return fmt.Sprintf("blake3:%064x", i) }

// refLog is the straightforward use of tlog that Tree must match: every
// stored hash kept in one slice, in stored-hash index order, and the blobs
// cut from tlog.StoredHashes.
type refLog struct {
	hashes []Hash
	blobs  [][]byte
}

func (l *refLog) ReadHashes(indexes []int64) ([]Hash, error) {
	out := make([]Hash, len(indexes))
	for i, idx := range indexes {
		if idx < 0 || idx >= int64(len(l.hashes)) {
			return nil, fmt.Errorf("refLog: no stored hash %d", idx)
		}
		out[i] = l.hashes[idx]
	}
	return out, nil
}

func (l *refLog) append(t testing.TB, data string) {
	t.Helper()
	n := int64(len(l.blobs))
	hs, err := tlog.StoredHashes(n, []byte(data), l)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := int64(len(l.hashes)), tlog.StoredHashIndex(0, n); got != want {
		t.Fatalf("refLog: record %d starts at stored index %d, want %d", n, got, want)
	}
	l.hashes = append(l.hashes, hs...)
	var blob []byte
	for _, h := range hs {
		blob = append(blob, h[:]...)
	}
	l.blobs = append(l.blobs, blob)
}

func (l *refLog) root(t testing.TB, n int64) Hash {
	t.Helper()
	h, err := tlog.TreeHash(n, l)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func newRefLog(t testing.TB, leaves []string) *refLog {
	t.Helper()
	l := new(refLog)
	for _, s := range leaves {
		l.append(t, s)
	}
	return l
}

func receipts(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = receipt(i)
	}
	return s
}

// blobStore is an in-memory store of blobs, indexed by record, that counts
// the reads made of it.
type blobStore struct {
	blobs   [][]byte
	calls   int
	records []int64 // every record read, in order
}

func (s *blobStore) read(indexes []int64) ([][]byte, error) {
	s.calls++
	out := make([][]byte, len(indexes))
	for i, r := range indexes {
		if r < 0 || r >= int64(len(s.blobs)) {
			return nil, fmt.Errorf("blobStore: no record %d", r)
		}
		out[i] = bytes.Clone(s.blobs[r])
	}
	s.records = append(s.records, indexes...)
	return out, nil
}

// buildStore appends leaves to a new Tree and keeps the blobs.
func buildStore(t testing.TB, leaves []string) (*Tree, *blobStore) {
	t.Helper()
	tr := NewTree()
	s := new(blobStore)
	for _, l := range leaves {
		b, err := tr.Append(l)
		if err != nil {
			t.Fatal(err)
		}
		s.blobs = append(s.blobs, b)
	}
	return tr, s
}

// The RFC 6962 §2.1 definitions, written from the RFC and independent of
// tlog: a wrong use of tlog (other prefix bytes, another split, leaves that
// are not the receiptHash bytes) makes the two disagree.

func rfcLeaf(d string) Hash {
	return sha256.Sum256(append([]byte{0x00}, d...))
}

func rfcNode(l, r Hash) Hash {
	b := append([]byte{0x01}, l[:]...)
	return sha256.Sum256(append(b, r[:]...))
}

// rfcSplit is the largest power of two smaller than n (n > 1).
func rfcSplit(n int) int {
	k := 1
	for k*2 < n {
		k *= 2
	}
	return k
}

// rfcMTH is MTH(D[n]).
func rfcMTH(d []string) Hash {
	switch len(d) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return rfcLeaf(d[0])
	}
	k := rfcSplit(len(d))
	return rfcNode(rfcMTH(d[:k]), rfcMTH(d[k:]))
}

// rfcPath is PATH(m, D[n]), the audit path of leaf m.
func rfcPath(m int, d []string) []Hash {
	if len(d) <= 1 {
		return nil
	}
	k := rfcSplit(len(d))
	if m < k {
		return append(rfcPath(m, d[:k]), rfcMTH(d[k:]))
	}
	return append(rfcPath(m-k, d[k:]), rfcMTH(d[:k]))
}

// rfcConsistency is PROOF(m, D[n]) for 0 < m <= n.
func rfcConsistency(m int, d []string) []Hash {
	var sub func(m int, d []string, b bool) []Hash
	sub = func(m int, d []string, b bool) []Hash {
		n := len(d)
		if m == n {
			if b {
				return nil
			}
			return []Hash{rfcMTH(d)}
		}
		k := rfcSplit(n)
		if m <= k {
			return append(sub(m, d[:k], b), rfcMTH(d[k:]))
		}
		return append(sub(m-k, d[k:], false), rfcMTH(d[:k]))
	}
	return sub(m, d, true)
}
