package translog

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/bits"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/tlog"
)

// checkFrontier checks the frontier's shape: one node per one bit of the
// size (so at most log2(size)+1 nodes), holding the stored hashes that
// tlog.TreeHash would read, with the values the reference log holds.
func checkFrontier(t *testing.T, tr *Tree, ref *refLog) {
	t.Helper()
	n := tr.Size()
	if got, max := len(tr.nodes), bits.Len64(uint64(n)); got > max {
		t.Fatalf("size %d: frontier has %d nodes, want at most log2(n)+1 = %d", n, got, max)
	}
	var got, want []int64
	for _, nd := range tr.nodes {
		got = append(got, nd.index)
		if nd.hash != ref.hashes[nd.index] {
			t.Fatalf("size %d: frontier hash at index %d differs from the reference", n, nd.index)
		}
	}
	for lo := int64(0); lo < n; {
		level := bits.Len64(uint64(n-lo)) - 1
		want = append(want, tlog.StoredHashIndex(level, lo>>level))
		lo += 1 << level
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("size %d: frontier indexes (-want +got):\n%s", n, diff)
	}
}

func TestTreeMatchesTlog(t *testing.T) {
	const n = 4097
	tr := NewTree()
	ref := new(refLog)
	for i := range n + 1 {
		size := int64(i)
		if got, want := tr.Size(), size; got != want {
			t.Fatalf("Size() = %d, want %d", got, want)
		}
		root, err := tr.Root()
		if err != nil {
			t.Fatalf("size %d: Root: %v", size, err)
		}
		if want := ref.root(t, size); root != want {
			t.Fatalf("size %d: Root() = %v, want %v", size, root, want)
		}
		checkFrontier(t, tr, ref)
		if i == n {
			break
		}
		blob, err := tr.Append(receipt(i))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		ref.append(t, receipt(i))
		if got, want := blob, ref.blobs[i]; !bytes.Equal(got, want) {
			t.Fatalf("record %d: blob = %x, want %x", i, got, want)
		}
		if got, want := len(blob), blobLen(int64(i)); got != want {
			t.Fatalf("record %d: len(blob) = %d, want %d", i, got, want)
		}
	}
}

func TestEmptyRoot(t *testing.T) {
	want := sha256.Sum256(nil)
	if got, _ := tlog.TreeHash(0, nil); got != want {
		t.Fatalf("tlog.TreeHash(0) = %x, want SHA-256(\"\") %x", got, want)
	}
	for name, tr := range map[string]*Tree{"NewTree": NewTree(), "zero Tree": new(Tree)} {
		got, err := tr.Root()
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: Root() = %x, want %x", name, got, want)
		}
	}
}

// TestRFC6962Reference compares Tree with the recursive MTH of RFC 6962
// computed in the test.
func TestRFC6962Reference(t *testing.T) {
	leaves := receipts(70)
	tr := NewTree()
	for n := 1; n <= len(leaves); n++ {
		if _, err := tr.Append(leaves[n-1]); err != nil {
			t.Fatal(err)
		}
		got, err := tr.Root()
		if err != nil {
			t.Fatal(err)
		}
		if want := rfcMTH(leaves[:n]); got != want {
			t.Fatalf("size %d: Root() = %v, want RFC 6962 MTH %v", n, got, want)
		}
	}
	if got, want := LeafHash(leaves[3]), rfcLeaf(leaves[3]); got != want {
		t.Errorf("LeafHash = %v, want %v", got, want)
	}
}

// TestRFC6962Vectors pins the hashing to the published RFC 6962 test
// vectors (certificate-transparency's reference Merkle tree tests).
func TestRFC6962Vectors(t *testing.T) {
	leaves := []string{
		"",
		"\x00",
		"\x10",
		"\x20\x21",
		"\x30\x31",
		"\x40\x41\x42\x43",
		"\x50\x51\x52\x53\x54\x55\x56\x57",
		"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
	}
	roots := []string{
		"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
		"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
		"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
		"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
		"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
		"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	}
	tr := NewTree()
	for i, l := range leaves {
		if _, err := tr.Append(l); err != nil {
			t.Fatal(err)
		}
		got, err := tr.Root()
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(got[:]); got != roots[i] {
			t.Errorf("size %d: root %s, want %s", i+1, got, roots[i])
		}
	}
}

func TestLoadTree(t *testing.T) {
	const n, more = 300, 40
	leaves := receipts(n + more)
	ref := newRefLog(t, leaves)
	_, store := buildStore(t, leaves[:n]) // the blobs as Tree wrote them
	for size := int64(0); size <= n; size++ {
		store.calls, store.records = 0, nil
		tr, err := LoadTree(size, store.read)
		if err != nil {
			t.Fatalf("LoadTree(%d): %v", size, err)
		}
		wantCalls := 1
		if size == 0 {
			wantCalls = 0
		}
		if store.calls != wantCalls {
			t.Fatalf("LoadTree(%d) made %d reads, want %d", size, store.calls, wantCalls)
		}
		if got, want := len(store.records), bits.OnesCount64(uint64(size)); got != want {
			t.Fatalf("LoadTree(%d) read %d records, want %d (the frontier)", size, got, want)
		}
		if got := tr.Size(); got != size {
			t.Fatalf("LoadTree(%d).Size() = %d", size, got)
		}
		checkFrontier(t, tr, ref)
		// It continues exactly as the tree that was never stored.
		for i := size; i < size+more; i++ {
			blob, err := tr.Append(leaves[i])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(blob, ref.blobs[i]) {
				t.Fatalf("LoadTree(%d), append %d: blob differs from the reference", size, i)
			}
			root, err := tr.Root()
			if err != nil {
				t.Fatal(err)
			}
			if want := ref.root(t, i+1); root != want {
				t.Fatalf("LoadTree(%d), size %d: root %v, want %v", size, i+1, root, want)
			}
		}
	}
}

func TestLoadTreeErrors(t *testing.T) {
	ref := newRefLog(t, receipts(8))
	readErr := errors.New("disk on fire")
	tests := []struct {
		name string
		size int64
		read BlobReader
		is   error // when set, errors.Is(err, is) must hold
	}{
		{"negative size", -1, (&blobStore{blobs: ref.blobs}).read, nil},
		{"size above the bound", maxSize + 1, (&blobStore{blobs: ref.blobs}).read, nil},
		{"missing record", 9, (&blobStore{blobs: ref.blobs}).read, nil},
		{"read error", 7, func([]int64) ([][]byte, error) { return nil, readErr }, readErr},
		{"too few blobs", 7, func(ix []int64) ([][]byte, error) {
			b, err := (&blobStore{blobs: ref.blobs}).read(ix)
			return b[1:], err
		}, nil},
		{"short blob", 7, func(ix []int64) ([][]byte, error) {
			b, err := (&blobStore{blobs: ref.blobs}).read(ix)
			b[0] = b[0][:len(b[0])-1]
			return b, err
		}, nil},
		{"long blob", 7, func(ix []int64) ([][]byte, error) {
			b, err := (&blobStore{blobs: ref.blobs}).read(ix)
			b[0] = append(b[0], make([]byte, hashSize)...)
			return b, err
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := LoadTree(tt.size, tt.read)
			if err == nil {
				t.Fatalf("LoadTree(%d) = size %d, want an error", tt.size, tr.Size())
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("LoadTree(%d): %v, want it to wrap %v", tt.size, err, tt.is)
			}
		})
	}
}

func TestClone(t *testing.T) {
	leaves := receipts(80)
	ref := newRefLog(t, leaves)
	for size := range 65 {
		tr, _ := buildStore(t, leaves[:size])
		c := tr.Clone()
		// Grow the original with other records: the clone must not see them,
		// even where the original rewrites its frontier in place.
		for i := range 5 {
			if _, err := tr.Append("other" + receipt(i)); err != nil {
				t.Fatal(err)
			}
		}
		if got := c.Size(); got != int64(size) {
			t.Fatalf("clone at %d: Size() = %d after appends to the original", size, got)
		}
		checkFrontier(t, c, ref)
		for i := size; i < size+10; i++ {
			blob, err := c.Append(leaves[i])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(blob, ref.blobs[i]) {
				t.Fatalf("clone at %d, append %d: blob differs from the reference", size, i)
			}
		}
		root, err := c.Root()
		if err != nil {
			t.Fatal(err)
		}
		if want := ref.root(t, int64(size+10)); root != want {
			t.Fatalf("clone at %d: root %v, want %v", size, root, want)
		}
		// And the original did not see the clone's appends.
		root, err = tr.Root()
		if err != nil {
			t.Fatal(err)
		}
		other := append(slices.Clone(leaves[:size]), "other"+receipt(0), "other"+receipt(1), "other"+receipt(2), "other"+receipt(3), "other"+receipt(4))
		if want := rfcMTH(other); root != want {
			t.Fatalf("original at %d+5: root %v, want %v", size, root, want)
		}
	}
}

func TestAppendFull(t *testing.T) {
	tr, err := LoadTree(maxSize, func(ix []int64) ([][]byte, error) {
		b := make([][]byte, len(ix))
		for i, r := range ix {
			b[i] = make([]byte, blobLen(r))
		}
		return b, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c := tr.Clone()
	if _, err := tr.Append(receipt(0)); err == nil {
		t.Fatalf("Append at size 2^56 succeeded, want an error")
	}
	if diff := cmp.Diff(c, tr, cmp.AllowUnexported(Tree{}, node{})); diff != "" {
		t.Fatalf("a failed Append changed the tree (-before +after):\n%s", diff)
	}
}

func TestHashReader(t *testing.T) {
	ref := newRefLog(t, receipts(20))
	// Record 15 completes subtrees of levels 1, 2 and 3: its blob holds four
	// hashes, which one read must serve.
	idx := []int64{
		tlog.StoredHashIndex(3, 1),
		tlog.StoredHashIndex(0, 15),
		tlog.StoredHashIndex(2, 3),
		tlog.StoredHashIndex(0, 2),
		tlog.StoredHashIndex(1, 7),
		tlog.StoredHashIndex(0, 15),
	}
	store := &blobStore{blobs: ref.blobs}
	got, err := HashReader(store.read).ReadHashes(idx)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ref.ReadHashes(idx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("ReadHashes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{2, 15}, store.records); diff != "" || store.calls != 1 {
		t.Fatalf("ReadHashes made %d reads of records %v, want one read of [2 15]", store.calls, store.records)
	}

	// Every stored hash of the log, in one call.
	all := make([]int64, len(ref.hashes))
	for i := range all {
		all[i] = int64(i)
	}
	store = &blobStore{blobs: ref.blobs}
	got, err = HashReader(store.read).ReadHashes(all)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ref.hashes, got); diff != "" || store.calls != 1 {
		t.Fatalf("ReadHashes(all) in %d reads (-want +got):\n%s", store.calls, diff)
	}

	// No indexes, no read.
	store = &blobStore{blobs: ref.blobs}
	if got, err := HashReader(store.read).ReadHashes(nil); err != nil || len(got) != 0 || store.calls != 0 {
		t.Fatalf("ReadHashes(nil) = %v, %v after %d reads; want nothing, no read", got, err, store.calls)
	}

	for _, bad := range []int64{-1, maxStoredIndex, 1<<63 - 1} {
		if _, err := HashReader(store.read).ReadHashes([]int64{bad}); err == nil {
			t.Errorf("ReadHashes([%d]) succeeded, want an error", bad)
		}
	}
}
