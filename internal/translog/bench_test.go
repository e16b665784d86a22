package translog

import (
	"crypto/ed25519"
	"testing"
)

// BenchmarkAppend measures one Append: the leaf hash, the node hashes of
// the subtrees it completes (about one on average) and the blob.
func BenchmarkAppend(b *testing.B) {
	tr := NewTree()
	leaf := receipt(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.Append(leaf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoot measures Root on a tree of 100 000 records, as a checkpoint
// issuer calls it.
func BenchmarkRoot(b *testing.B) {
	tr, _ := buildStore(b, receipts(100_000))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.Root(); err != nil {
			b.Fatal(err)
		}
	}
}

const benchSize = 100_000

// BenchmarkProveInclusion measures a proof in a log of 100 000 records
// whose blobs are in memory: the cost of the proof itself, without a store.
func BenchmarkProveInclusion(b *testing.B) {
	_, store := buildStore(b, receipts(benchSize))
	records := 0
	read := func(indexes []int64) ([][]byte, error) {
		records += len(indexes)
		out := make([][]byte, len(indexes))
		for i, r := range indexes {
			out[i] = store.blobs[r]
		}
		return out, nil
	}
	b.ReportAllocs()
	i, n := int64(0), 0
	for b.Loop() {
		if _, err := ProveInclusion(i, benchSize, read); err != nil {
			b.Fatal(err)
		}
		i = (i + 7919) % benchSize
		n++
	}
	b.ReportMetric(float64(records)/float64(n), "records/proof")
}

func BenchmarkCheckInclusion(b *testing.B) {
	leaves := receipts(benchSize)
	tr, store := buildStore(b, leaves)
	root, err := tr.Root()
	if err != nil {
		b.Fatal(err)
	}
	const index = 31337
	proof, err := ProveInclusion(index, benchSize, store.read)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckInclusion(proof, benchSize, root, index, leaves[index]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenCheckpoint is dominated by one Ed25519 verification.
func BenchmarkOpenCheckpoint(b *testing.B) {
	s := goldenSigner()
	signed := sign(b, testCheckpoint(b), s)
	keys := map[string]ed25519.PublicKey{testKID: s.Public(), "vaultcrux-signing:v2": newSigner("vaultcrux-signing:v2", "v2").Public()}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := OpenCheckpoint(signed, keys); err != nil {
			b.Fatal(err)
		}
	}
}
