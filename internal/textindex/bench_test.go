package textindex

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// The benchmark corpus: a vocabulary of 50k words drawn with a Zipf law
// (s = 1.1, close to English), chunks of 200–500 tokens.
const benchVocab = 50_000

func benchZipf(seed uint64) *rand.Zipf {
	return rand.NewZipf(rand.New(rand.NewPCG(seed, 1)), 1.1, 1, benchVocab-1)
}

// benchTerm stands in for the hash of word i: Index only needs distinct,
// well-spread Terms, and hashing 35M tokens would dominate setup.
func benchTerm(i uint64) Term {
	var t Term
	binary.LittleEndian.PutUint64(t[:8], splitmix(i))
	binary.LittleEndian.PutUint64(t[8:], splitmix(i^0x9e3779b97f4a7c15))
	return t
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

var benchIndexes struct {
	sync.Mutex
	m map[int]*Index
}

// benchIndex returns an index of n synthetic chunks, built once per size.
func benchIndex(n int) *Index {
	benchIndexes.Lock()
	defer benchIndexes.Unlock()
	if ix := benchIndexes.m[n]; ix != nil {
		return ix
	}
	z := benchZipf(uint64(n))
	r := rand.New(rand.NewPCG(uint64(n), 2))
	ix := NewIndex(DefaultParams)
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	counts := map[uint64]uint32{}
	var tfs []TermFreq
	for c := range n {
		length := 200 + r.IntN(301)
		clear(counts)
		for range length {
			counts[z.Uint64()]++
		}
		tfs = tfs[:0]
		for w, f := range counts {
			tfs = append(tfs, TermFreq{benchTerm(w), f})
		}
		ix.Add(Entry{
			ChunkID:   fmt.Sprintf("chunk-%07d", c),
			DocID:     fmt.Sprintf("doc-%06d", c/8),
			CorpusID:  fmt.Sprintf("corpus-%d", c%4),
			Length:    length,
			CreatedAt: now.Add(-time.Duration(r.Int64N(int64(365 * 24 * time.Hour)))),
			Terms:     tfs,
		})
	}
	if benchIndexes.m == nil {
		benchIndexes.m = map[int]*Index{}
	}
	benchIndexes.m[n] = ix
	return ix
}

// benchQueries returns 3-term queries of words drawn from the corpus law,
// skipping the words of rank below minRank (the stop words a user seldom
// types).
func benchQueries(minRank uint64) [][]Term {
	z := benchZipf(7)
	qs := make([][]Term, 1024)
	for i := range qs {
		var q []Term
		for len(q) < 3 {
			if w := z.Uint64(); w >= minRank {
				q = append(q, benchTerm(w))
			}
		}
		qs[i] = q
	}
	return qs
}

func benchSearch(b *testing.B, minRank uint64) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			ix := benchIndex(n)
			qs := benchQueries(minRank)
			postings := 0
			for _, q := range qs {
				for _, t := range q {
					if l := ix.lists[t]; l != nil {
						postings += len(l.p)
					}
				}
			}
			now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ix.Search(qs[i%len(qs)], 10, Filter{}, DefaultFusion, now)
				i++
			}
			b.ReportMetric(float64(postings)/float64(len(qs)), "postings/query")
		})
	}
}

// BenchmarkSearch ranks 3-term queries of content words (rank 100 and
// beyond: df from a few chunks to about a third of them).
func BenchmarkSearch(b *testing.B) { benchSearch(b, 100) }

// BenchmarkSearchCommonWords draws query words from the whole law, stop
// words included: long posting lists, the worst case.
func BenchmarkSearchCommonWords(b *testing.B) { benchSearch(b, 0) }

func BenchmarkSearchFiltered(b *testing.B) {
	ix := benchIndex(10_000)
	qs := benchQueries(100)
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		f    Filter
	}{
		{"corpus", Filter{CorpusID: "corpus-1"}},
		{"docs", Filter{DocIDs: []string{"doc-000010", "doc-000500", "doc-001000"}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ix.Search(qs[i%len(qs)], 10, tc.f, DefaultFusion, now)
				i++
			}
		})
	}
}

// benchWords are English-like pseudo-words built from syllables, some with
// inflections, ranked for a Zipf draw.
func benchWords() []string {
	syl := []string{"ka", "lo", "mi", "ter", "son", "ra", "vel", "den", "cu", "pro", "stan", "ti", "ble", "or", "an", "sh", "el", "con", "mar", "ex"}
	suf := []string{"", "", "", "s", "ing", "ed", "ly", "ion", "es", "er"}
	r := rand.New(rand.NewPCG(3, 4))
	words := make([]string, benchVocab)
	for i := range words {
		var b strings.Builder
		for range 1 + r.IntN(3) {
			b.WriteString(syl[r.IntN(len(syl))])
		}
		b.WriteString(suf[r.IntN(len(suf))])
		words[i] = b.String()
	}
	return words
}

// benchText returns English-like text of about n tokens: sentences with
// capitals, commas and full stops, paragraphs of 3–8 sentences.
func benchText(seed uint64, n int) string {
	words := benchWords()
	z := benchZipf(seed)
	r := rand.New(rand.NewPCG(seed, 5))
	var b strings.Builder
	sentence, para := 0, 0
	for i := 0; i < n; i++ {
		w := words[z.Uint64()]
		if sentence == 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		b.WriteString(w)
		sentence++
		switch {
		case sentence > 6 && r.IntN(8) == 0:
			sentence = 0
			para++
			if para > 2 && r.IntN(5) == 0 {
				b.WriteString(".\n\n")
				para = 0
			} else {
				b.WriteString(". ")
			}
		case r.IntN(12) == 0:
			b.WriteString(", ")
		default:
			b.WriteString(" ")
		}
	}
	return b.String()
}

func BenchmarkTokenize(b *testing.B) {
	text := benchText(1, 512)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		Tokenize(text)
	}
}

func BenchmarkTokenizeNonLatin(b *testing.B) {
	text := strings.Repeat("Привет, как дела? Съешь же ещё этих мягких французских булок. 東京タワーに行きました。", 20)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		Tokenize(text)
	}
}

// BenchmarkAnalyze measures a 512-token chunk: tokenizing, counting and
// one HMAC per distinct term.
func BenchmarkAnalyze(b *testing.B) {
	h := testHasher(b, 1)
	text := benchText(2, 512)
	_, n := h.Analyze(text)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		h.Analyze(text)
	}
	b.ReportMetric(float64(n), "tokens/chunk")
}

func BenchmarkHasherTerm(b *testing.B) {
	h := testHasher(b, 1)
	b.ReportAllocs()
	for b.Loop() {
		h.Term("connection")
	}
}

func BenchmarkSplit(b *testing.B) {
	text := benchText(3, 200_000) // about 1.3 MB
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		Split(text, DefaultChunkOptions)
	}
}

func BenchmarkEncodeDecodeTerms(b *testing.B) {
	h := testHasher(b, 1)
	tfs, _ := h.Analyze(benchText(4, 512))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeTerms(EncodeTerms(tfs)); err != nil {
			b.Fatal(err)
		}
	}
}
