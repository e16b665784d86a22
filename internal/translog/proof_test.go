package translog

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testLog is a log built by Tree, with its blobs and the root at every size.
type testLog struct {
	leaves []string
	store  *blobStore
	roots  []Hash // roots[n] is the root of the first n records
}

func newTestLog(t *testing.T, leaves []string) *testLog {
	t.Helper()
	l := &testLog{leaves: leaves, store: new(blobStore)}
	tr := NewTree()
	for i := 0; ; i++ {
		root, err := tr.Root()
		if err != nil {
			t.Fatal(err)
		}
		l.roots = append(l.roots, root)
		if i == len(leaves) {
			return l
		}
		blob, err := tr.Append(leaves[i])
		if err != nil {
			t.Fatal(err)
		}
		l.store.blobs = append(l.store.blobs, blob)
	}
}

func (l *testLog) proveInclusion(t *testing.T, index, size int64) []Hash {
	t.Helper()
	p, err := ProveInclusion(index, size, l.store.read)
	if err != nil {
		t.Fatalf("ProveInclusion(%d, %d): %v", index, size, err)
	}
	return p
}

func (l *testLog) proveConsistency(t *testing.T, from, to int64) []Hash {
	t.Helper()
	p, err := ProveConsistency(from, to, l.store.read)
	if err != nil {
		t.Fatalf("ProveConsistency(%d, %d): %v", from, to, err)
	}
	return p
}

var proofSizes = []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129}

func TestInclusion(t *testing.T) {
	l := newTestLog(t, receipts(129))
	for _, size := range proofSizes {
		for i := range size {
			p := l.proveInclusion(t, i, size)
			if want := rfcPath(int(i), l.leaves[:size]); !slices.Equal(p, want) {
				t.Fatalf("ProveInclusion(%d, %d) = %v, want the RFC 6962 path %v", i, size, p, want)
			}
			if err := CheckInclusion(p, size, l.roots[size], i, l.leaves[i]); err != nil {
				t.Fatalf("CheckInclusion(index %d, size %d): %v", i, size, err)
			}
		}
	}
}

// TestInclusionTampered checks that CheckInclusion fails for every way of
// presenting a receipt that is not at that place in that tree.
func TestInclusionTampered(t *testing.T) {
	l := newTestLog(t, receipts(38))
	for _, size := range []int64{2, 3, 5, 8, 13, 16, 17, 31, 37} {
		// The verifier trusts (size, root); everything else is the prover's.
		root := l.roots[size]
		for i := range size {
			leaf := l.leaves[i]
			proof := l.proveInclusion(t, i, size)

			// Logs that differ from the real one by one dropped or one
			// inserted entry, just before or at i.
			dropped := newTestLog(t, slices.Delete(slices.Clone(l.leaves[:size]), int(i/2), int(i/2)+1))
			inserted := newTestLog(t, slices.Insert(slices.Clone(l.leaves[:size]), int(i), "blake3:forged"))

			type attempt struct {
				name  string
				proof []Hash
				size  int64
				index int64
				leaf  string
			}
			attempts := []attempt{
				{"wrong index", proof, size, (i + 1) % size, leaf},
				{"wrong leaf", proof, size, i, l.leaves[(i+1)%size]},
				{"leaf with a trailing newline", proof, size, i, leaf + "\n"},
				{"truncated proof", proof[:len(proof)-1], size, i, leaf},
				{"extra proof entry", append(slices.Clone(proof), root), size, i, leaf},
				{"proof from a different size", nil, size, i, leaf},
				{"proof for a larger tree under its size", nil, size + 1, i, leaf},
				{"empty proof", []Hash{}, size, i, leaf},
			}
			attempts[5].proof = l.proveInclusion(t, i, size+1)
			attempts[6].proof = attempts[5].proof
			if i > 0 {
				// The dropped entry is before i: the receipt moved to i-1.
				attempts = append(attempts,
					attempt{"log with an entry dropped", dropped.proveInclusion(t, i-1, size-1), size, i - 1, leaf},
					attempt{"log with an entry dropped, claimed index", dropped.proveInclusion(t, i-1, size-1), size - 1, i - 1, leaf},
				)
			}
			attempts = append(attempts,
				attempt{"log with an entry inserted", inserted.proveInclusion(t, i+1, size+1), size + 1, i + 1, leaf},
				attempt{"log with an entry inserted, old size", inserted.proveInclusion(t, i, size), size, i, "blake3:forged"},
			)
			for j := range proof {
				for _, bit := range []int{0, 7, 255} {
					p := slices.Clone(proof)
					p[j][bit/8] ^= 1 << (bit % 8)
					attempts = append(attempts, attempt{"flipped proof bit", p, size, i, leaf})
				}
			}
			for _, a := range attempts {
				if err := CheckInclusion(a.proof, a.size, root, a.index, a.leaf); err == nil {
					t.Errorf("size %d, index %d: %s: CheckInclusion accepted", size, i, a.name)
				}
			}
		}
	}
}

func TestInclusionArgs(t *testing.T) {
	l := newTestLog(t, receipts(4))
	tests := []struct {
		name        string
		index, size int64
	}{
		{"index = size", 4, 4},
		{"negative index", -1, 4},
		{"empty log", 0, 0},
		{"negative size", 0, -1},
		{"size above the bound", 0, maxSize + 1},
		// tlog's proof check never returns for sizes above 2^62.
		{"size 2^62+1", 0, 1<<62 + 1},
		{"largest int64", 0, 1<<63 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ProveInclusion(tt.index, tt.size, l.store.read); err == nil {
				t.Errorf("ProveInclusion(%d, %d) succeeded, want an error", tt.index, tt.size)
			}
			if err := CheckInclusion(make([]Hash, 62), tt.size, l.roots[4], tt.index, l.leaves[0]); err == nil {
				t.Errorf("CheckInclusion(size %d, index %d) succeeded, want an error", tt.size, tt.index)
			}
		})
	}
}

func TestConsistency(t *testing.T) {
	const n = 40
	l := newTestLog(t, receipts(n))
	for to := int64(0); to <= n; to++ {
		for from := int64(0); from <= to; from++ {
			p := l.proveConsistency(t, from, to)
			var want []Hash
			if from > 0 {
				want = rfcConsistency(int(from), l.leaves[:to])
			}
			if diff := cmp.Diff(want, p, cmp.Comparer(func(a, b []Hash) bool { return slices.Equal(a, b) })); diff != "" {
				t.Fatalf("ProveConsistency(%d, %d), want the RFC 6962 proof (-want +got):\n%s", from, to, diff)
			}
			if err := CheckConsistency(p, to, l.roots[to], from, l.roots[from]); err != nil {
				t.Fatalf("CheckConsistency(from %d, to %d): %v", from, to, err)
			}
		}
	}
}

// TestConsistencyRewrittenHistory: a log whose entry k was rewritten cannot
// show that it extends any checkpoint taken after entry k was logged, and
// still can for earlier ones, where the history is the same.
func TestConsistencyRewrittenHistory(t *testing.T) {
	const n = 40
	honest := newTestLog(t, receipts(n))
	for _, k := range []int{0, 1, 2, 7, 8, 20, 39} {
		leaves := receipts(n)
		leaves[k] = "blake3:rewritten"
		forged := newTestLog(t, leaves)
		for to := int64(1); to <= n; to++ {
			for from := int64(1); from <= to; from++ {
				p := forged.proveConsistency(t, from, to)
				err := CheckConsistency(p, to, forged.roots[to], from, honest.roots[from])
				if from > int64(k) && err == nil {
					t.Errorf("entry %d rewritten: CheckConsistency(from %d, to %d) accepted the forged log", k, from, to)
				}
				if from <= int64(k) && err != nil {
					t.Errorf("entry %d rewritten: CheckConsistency(from %d, to %d) = %v, want success (same history)", k, from, to, err)
				}
				// The honest proof does not carry the forged root either.
				if to > int64(k) {
					if err := CheckConsistency(honest.proveConsistency(t, from, to), to, forged.roots[to], from, honest.roots[from]); err == nil {
						t.Errorf("entry %d rewritten: honest proof (%d, %d) accepted for the forged root", k, from, to)
					}
				}
			}
		}
	}
}

func TestConsistencyTampered(t *testing.T) {
	const n = 20
	l := newTestLog(t, receipts(n))
	empty := l.roots[0]
	for to := int64(1); to <= n; to++ {
		for from := int64(1); from <= to; from++ {
			p := l.proveConsistency(t, from, to)
			type attempt struct {
				name     string
				proof    []Hash
				to       int64
				toRoot   Hash
				from     int64
				fromRoot Hash
			}
			attempts := []attempt{
				{"wrong old root", p, to, l.roots[to], from, l.roots[from-1]},
				{"wrong new root", p, to, l.roots[to-1], from, l.roots[from]},
				{"extra entry", append(slices.Clone(p), l.roots[1]), to, l.roots[to], from, l.roots[from]},
			}
			// A proof between two checkpoints is no proof between others.
			// (A size paired with the root of another size is not such a
			// checkpoint: the proof binds the root, and the size only as
			// far as it shapes the path, so that can verify. Callers take
			// size and root together from one signed checkpoint.)
			if from < to {
				attempts = append(attempts, attempt{"other old checkpoint", p, to, l.roots[to], from + 1, l.roots[from+1]})
			}
			if to < n {
				attempts = append(attempts, attempt{"other new checkpoint", p, to + 1, l.roots[to+1], from, l.roots[from]})
			}
			if len(p) > 0 {
				attempts = append(attempts, attempt{"dropped entry", p[:len(p)-1], to, l.roots[to], from, l.roots[from]})
			}
			for j := range p {
				q := slices.Clone(p)
				q[j][31] ^= 0x80
				attempts = append(attempts, attempt{"flipped bit", q, to, l.roots[to], from, l.roots[from]})
			}
			for _, a := range attempts {
				if err := CheckConsistency(a.proof, a.to, a.toRoot, a.from, a.fromRoot); err == nil {
					t.Errorf("from %d to %d: %s: CheckConsistency accepted", from, to, a.name)
				}
			}
		}
	}

	// From the empty log.
	tests := []struct {
		name     string
		proof    []Hash
		to       int64
		toRoot   Hash
		fromRoot Hash
		ok       bool
	}{
		{"empty to empty", nil, 0, empty, empty, true},
		{"empty to 5", nil, 5, l.roots[5], empty, true},
		{"empty to empty, wrong new root", nil, 0, l.roots[1], empty, false},
		{"old root not the empty root", nil, 5, l.roots[5], l.roots[1], false},
		{"non-empty proof", []Hash{l.roots[1]}, 5, l.roots[5], empty, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckConsistency(tt.proof, tt.to, tt.toRoot, 0, tt.fromRoot)
			if got := err == nil; got != tt.ok {
				t.Fatalf("CheckConsistency(to %d, from 0) = %v, want success %v", tt.to, err, tt.ok)
			}
		})
	}
}

func TestConsistencyArgs(t *testing.T) {
	l := newTestLog(t, receipts(4))
	tests := []struct {
		name     string
		from, to int64
	}{
		{"from > to", 3, 2},
		{"negative from", -1, 2},
		{"negative to", 0, -1},
		{"to above the bound", 1, maxSize + 1},
		{"to 2^62+1", 1, 1<<62 + 1},
		{"to beyond the stored log", 2, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ProveConsistency(tt.from, tt.to, l.store.read); err == nil {
				t.Errorf("ProveConsistency(%d, %d) succeeded, want an error", tt.from, tt.to)
			}
		})
	}
	for _, tt := range tests[:5] {
		t.Run("check "+tt.name, func(t *testing.T) {
			if err := CheckConsistency(make([]Hash, 3), tt.to, l.roots[3], tt.from, l.roots[2]); err == nil {
				t.Errorf("CheckConsistency(to %d, from %d) succeeded, want an error", tt.to, tt.from)
			}
		})
	}
}

func TestProofEncoding(t *testing.T) {
	l := newTestLog(t, receipts(100))
	p := l.proveInclusion(t, 42, 100)
	s := EncodeProof(p)
	for i, e := range s {
		if want := base64.StdEncoding.EncodeToString(p[i][:]); e != want {
			t.Fatalf("EncodeProof[%d] = %q, want %q", i, e, want)
		}
	}
	back, err := DecodeProof(s)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back, p) {
		t.Fatalf("DecodeProof(EncodeProof(p)) = %v, want %v", back, p)
	}
	if got := EncodeProof(nil); got == nil || len(got) != 0 {
		t.Errorf("EncodeProof(nil) = %#v, want an empty non-nil slice", got)
	}
	if got, err := DecodeProof([]string{}); err != nil || len(got) != 0 {
		t.Errorf("DecodeProof([]) = %v, %v; want an empty proof", got, err)
	}

	good := s[0]
	bad := []struct {
		name, entry string
	}{
		{"empty", ""},
		{"unpadded", strings.TrimSuffix(good, "=")},
		{"31 bytes", base64.StdEncoding.EncodeToString(make([]byte, 31))},
		{"33 bytes", base64.StdEncoding.EncodeToString(make([]byte, 33))},
		{"stray bits", good[:42] + nonCanonical(good[42]) + "="},
		{"URL alphabet", base64.URLEncoding.EncodeToString([]byte(strings.Repeat("\xfb\xff", 16)))},
		{"trailing newline", good + "\n"},
		{"inner newline", good[:20] + "\n" + good[21:]},
		{"leading space", " " + good[1:]},
		{"hex", "0000000000000000000000000000000000000000000000000000000000000000"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := DecodeProof([]string{good, tt.entry}); err == nil {
				t.Fatalf("DecodeProof(%q) = %v, want an error", tt.entry, got)
			}
		})
	}
}

// nonCanonical returns the character that has the same top four bits as the
// base64 character c but other low bits, which a 32-byte hash must not set.
func nonCanonical(c byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.IndexByte(alphabet, c)
	return string(alphabet[i^1])
}
