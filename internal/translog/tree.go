package translog

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"github.com/vaultcrux/vaultcrux"
	"golang.org/x/mod/sumdb/tlog"
)

// Hash is a SHA-256 hash of the log: a leaf, an interior node or a root.
type Hash = tlog.Hash

const hashSize = tlog.HashSize

// maxSize is the largest tree size the package accepts. Real logs stay far
// below it; tlog's arithmetic breaks far above it (see the package doc).
const maxSize int64 = 1 << 56

// maxStoredIndex is one past the largest stored-hash index of a tree of
// maxSize records.
var maxStoredIndex = tlog.StoredHashCount(maxSize)

// emptyRoot is the root of the tree with no records: SHA-256 of nothing.
var emptyRoot = Hash(sha256.Sum256(nil))

// LeafHash returns the leaf hash of the record whose data is receiptHash:
// SHA-256(0x00 || receiptHash).
func LeafHash(receiptHash string) Hash {
	return tlog.RecordHash([]byte(receiptHash))
}

// BlobReader returns the stored-hash blobs of the given record indexes, one
// per index, in the order given (see "Storage shape" in the package doc).
// HashReader passes distinct indexes in increasing order. A record that is
// not stored is an error, never a nil blob.
type BlobReader func(indexes []int64) ([][]byte, error)

// HashReader adapts a BlobReader to tlog.HashReader. Each ReadHashes call
// makes at most one BlobReader call, for the distinct records that hold the
// requested hashes, and checks that every blob has exactly the length its
// record index implies.
func HashReader(read BlobReader) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]Hash, error) {
		return readHashes(read, indexes)
	})
}

// blobLen is the length of the blob of record i: its leaf hash and one hash
// per subtree it completes, one for each trailing one bit of i.
func blobLen(i int64) int {
	return hashSize * (1 + bits.TrailingZeros64(uint64(i)+1))
}

func readHashes(read BlobReader, indexes []int64) ([]Hash, error) {
	if len(indexes) == 0 {
		return []Hash{}, nil
	}
	type location struct {
		record int64
		offset int
	}
	locs := make([]location, len(indexes))
	records := make([]int64, len(indexes))
	for i, idx := range indexes {
		if idx < 0 || idx >= maxStoredIndex {
			return nil, fmt.Errorf("stored hash index %d out of range", idx)
		}
		level, n := tlog.SplitStoredHashIndex(idx)
		r := (n+1)<<level - 1
		locs[i] = location{r, level * hashSize}
		records[i] = r
	}
	slices.Sort(records)
	records = slices.Compact(records)

	blobs, err := read(records)
	if err != nil {
		return nil, err
	}
	if len(blobs) != len(records) {
		return nil, fmt.Errorf("read %d records, got %d blobs", len(records), len(blobs))
	}
	for i, b := range blobs {
		if got, want := len(b), blobLen(records[i]); got != want {
			return nil, fmt.Errorf("blob of record %d has %d bytes, want %d", records[i], got, want)
		}
	}
	hashes := make([]Hash, len(indexes))
	for i, l := range locs {
		j, _ := slices.BinarySearch(records, l.record)
		copy(hashes[i][:], blobs[j][l.offset:])
	}
	return hashes, nil
}

// Tree is the right frontier of a log: the size and the roots of the
// perfect subtrees that make up the tree, one per one bit of the size,
// largest (leftmost) first. These are exactly the stored hashes that the
// root and the next append need, at most log2(size)+1 of them, so Append
// and Root read nothing.
//
// The zero Tree is the empty log. A Tree is not safe for concurrent use.
// Append changes the Tree before the caller has stored the blob it returns:
// append to a Clone and keep it only once the blob is stored.
type Tree struct {
	size  int64
	nodes frontier
}

// frontier is the list of subtree roots of a Tree. It is the tlog.HashReader
// that Tree hands to tlog, which asks it only for frontier hashes.
type frontier []node

type node struct {
	index int64 // tlog stored-hash index
	hash  Hash
}

// ReadHashes implements tlog.HashReader.
func (f *frontier) ReadHashes(indexes []int64) ([]Hash, error) {
	hashes := make([]Hash, len(indexes))
next:
	for i, idx := range indexes {
		// Appends ask for the smallest subtrees: search from the right.
		for j := len(*f) - 1; j >= 0; j-- {
			if (*f)[j].index == idx {
				hashes[i] = (*f)[j].hash
				continue next
			}
		}
		return nil, fmt.Errorf("stored hash %d is not on the frontier", idx)
	}
	return hashes, nil
}

// frontierIndexes returns the stored-hash indexes of the frontier of a tree
// of size records, largest subtree first: the order of tlog.TreeHash.
func frontierIndexes(size int64) []int64 {
	idx := make([]int64, 0, bits.OnesCount64(uint64(size)))
	var lo int64
	for level := 62; level >= 0; level-- {
		if size&(1<<level) != 0 {
			idx = append(idx, tlog.StoredHashIndex(level, lo>>level))
			lo += 1 << level
		}
	}
	return idx
}

// NewTree returns the empty log.
func NewTree() *Tree { return new(Tree) }

// LoadTree returns the Tree of the log of size records whose blobs read
// returns, reading only the frontier: at most one BlobReader call, for at
// most log2(size)+1 records. It checks the blobs' lengths but cannot check
// their content; compare Root with the latest checkpoint for that.
func LoadTree(size int64, read BlobReader) (t *Tree, err error) {
	defer vaultcrux.Wrap(&err, "translog.LoadTree")
	if err := checkSize(size); err != nil {
		return nil, err
	}
	indexes := frontierIndexes(size)
	hashes, err := readHashes(read, indexes)
	if err != nil {
		return nil, err
	}
	nodes := make(frontier, len(indexes))
	for i := range indexes {
		nodes[i] = node{indexes[i], hashes[i]}
	}
	return &Tree{size: size, nodes: nodes}, nil
}

func checkSize(size int64) error {
	if size < 0 || size > maxSize {
		return fmt.Errorf("tree size %d out of range [0, %d]", size, maxSize)
	}
	return nil
}

// Size returns the number of records in the log.
func (t *Tree) Size() int64 { return t.size }

// Root returns the root hash of the log. The root of the empty log is
// SHA-256 of the empty string (RFC 6962 §2.1; tlog.TreeHash(0, …) returns
// the same), so a checkpoint of size 0 commits to that value.
func (t *Tree) Root() (h Hash, err error) {
	defer vaultcrux.Wrap(&err, "translog.Tree.Root")
	return tlog.TreeHash(t.size, &t.nodes)
}

// Append adds the record receiptHash at index Size() and returns its blob,
// which the caller stores under that index: 32*k bytes, the hashes
// tlog.StoredHashes gives for the record. The subtrees the record completes
// leave the frontier, replaced by the one subtree they merge into.
func (t *Tree) Append(receiptHash string) (blob []byte, err error) {
	defer vaultcrux.Wrap(&err, "translog.Tree.Append")
	if t.size >= maxSize {
		return nil, errors.New("log is full")
	}
	hashes, err := tlog.StoredHashes(t.size, []byte(receiptHash), &t.nodes)
	if err != nil {
		return nil, err
	}
	// hashes[0] is the leaf; hashes[l] is the root of the level-l subtree
	// that ends at this record. The merged subtrees are the last m nodes.
	m := len(hashes) - 1
	if m > len(t.nodes) {
		return nil, fmt.Errorf("record %d completes %d subtrees but the frontier has %d", t.size, m, len(t.nodes))
	}
	blob = make([]byte, 0, len(hashes)*hashSize)
	for _, h := range hashes {
		blob = append(blob, h[:]...)
	}
	t.nodes = append(t.nodes[:len(t.nodes)-m], node{tlog.StoredHashIndex(m, t.size>>m), hashes[m]})
	t.size++
	return blob, nil
}

// Clone returns an independent copy of t.
func (t *Tree) Clone() *Tree {
	return &Tree{size: t.size, nodes: slices.Clone(t.nodes)}
}
