package textindex

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// refIndex is a second statement of the ranking in the package
// documentation: plaintext terms, maps, and the formulas written out, with
// nothing shared with Index.
type refIndex struct {
	p      Params
	chunks map[string]*refChunk
}

type refChunk struct {
	id, doc, corpus, trust string
	terms                  map[string]int
	length                 int
	created                time.Time
}

func newRef(p Params) *refIndex { return &refIndex{p: p, chunks: map[string]*refChunk{}} }

func (r *refIndex) add(c *refChunk) { r.chunks[c.id] = c }

func (r *refIndex) removeDoc(doc string) int {
	n := 0
	for id, c := range r.chunks {
		if c.doc == doc {
			delete(r.chunks, id)
			n++
		}
	}
	return n
}

func (r *refIndex) search(query string, k int, f Filter, fu Fusion, now time.Time) []Hit {
	var q []string
	for _, t := range Tokenize(query) {
		if !slices.Contains(q, t) {
			q = append(q, t)
		}
	}
	N := float64(len(r.chunks))
	sum := 0.0
	df := map[string]float64{}
	for _, c := range r.chunks {
		sum += float64(c.length)
		for t := range c.terms {
			df[t]++
		}
	}
	avg := sum / N
	var hits []Hit
	for _, c := range r.chunks {
		if f.CorpusID != "" && c.corpus != f.CorpusID || len(f.DocIDs) > 0 && !slices.Contains(f.DocIDs, c.doc) {
			continue
		}
		score, matched := 0.0, false
		for _, t := range q {
			tf := float64(c.terms[t])
			if tf == 0 {
				continue
			}
			matched = true
			idf := math.Log(1 + (N-df[t]+0.5)/(df[t]+0.5))
			score += idf * tf * (r.p.K1 + 1) / (tf + r.p.K1*(1-r.p.B+r.p.B*float64(c.length)/avg))
		}
		if !matched {
			continue
		}
		rec := 0.0
		if fu.HalfLife > 0 {
			age := now.Sub(c.created)
			if age < 0 {
				age = 0
			}
			rec = math.Pow(0.5, age.Seconds()/fu.HalfLife.Seconds())
		}
		hits = append(hits, Hit{ChunkID: c.id, DocID: c.doc, CorpusID: c.corpus, Trust: c.trust, BM25: score, Recency: rec})
	}
	best := 0.0
	for _, h := range hits {
		best = max(best, h.BM25)
	}
	for i := range hits {
		hits[i].Fused = fu.WBM25*hits[i].BM25/best + fu.WRecency*hits[i].Recency
	}
	slices.SortFunc(hits, func(a, b Hit) int {
		if c := cmp.Compare(b.Fused, a.Fused); c != 0 {
			return c
		}
		return strings.Compare(a.ChunkID, b.ChunkID)
	})
	if len(hits) > k {
		hits = hits[:k]
	}
	if len(hits) == 0 || k <= 0 {
		return nil
	}
	return hits
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) || a == b
}

// compareHits checks got against the reference: the same number of hits,
// each with the reference's scores and metadata for its chunk, and in the
// reference's order except where two chunks' fused scores are equal to
// within rounding (the sums are taken in different orders).
func compareHits(t *testing.T, ctx string, got, want []Hit, all map[string]Hit) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d hits, want %d\ngot  %v\nwant %v", ctx, len(got), len(want), ids(got), ids(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		ref, ok := all[g.ChunkID]
		if !ok {
			t.Fatalf("%s: hit %d is %q, which the reference does not score", ctx, i, g.ChunkID)
		}
		if g.DocID != ref.DocID || g.CorpusID != ref.CorpusID || g.Trust != ref.Trust {
			t.Fatalf("%s: hit %d metadata %+v, want %+v", ctx, i, g, ref)
		}
		if !near(g.BM25, ref.BM25) || !near(g.Recency, ref.Recency) || !near(g.Fused, ref.Fused) {
			t.Fatalf("%s: hit %d %q scores %v/%v/%v, want %v/%v/%v", ctx, i, g.ChunkID, g.BM25, g.Recency, g.Fused, ref.BM25, ref.Recency, ref.Fused)
		}
		if g.ChunkID != w.ChunkID && !near(g.Fused, w.Fused) {
			t.Fatalf("%s: hit %d is %q (fused %v), want %q (fused %v)", ctx, i, g.ChunkID, g.Fused, w.ChunkID, w.Fused)
		}
	}
}

func ids(hits []Hit) []string {
	var s []string
	for _, h := range hits {
		s = append(s, fmt.Sprintf("%s:%.6f", h.ChunkID, h.Fused))
	}
	return s
}

// world drives an Index and a refIndex through the same random operations.
type world struct {
	t     *testing.T
	r     *rand.Rand
	h     *Hasher
	ix    *Index
	ref   *refIndex
	now   time.Time
	vocab []string
	next  int
}

func newWorld(t *testing.T, seed uint64, p Params) *world {
	vocab := make([]string, 80)
	for i := range vocab {
		// Letters only, stable under stemming, so the reference sees the
		// words as typed; Tokenize is still what both sides use.
		vocab[i] = fmt.Sprintf("w%c%c", 'a'+i%26, 'a'+i/26)
	}
	return &world{
		t: t, r: rand.New(rand.NewPCG(seed, 99)), h: testHasher(t, 5),
		ix: NewIndex(p), ref: newRef(p),
		now:   time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
		vocab: vocab,
	}
}

// word draws a word with a skewed distribution, so some terms are common.
func (w *world) word() string {
	i := int(float64(len(w.vocab)) * math.Pow(w.r.Float64(), 2.5))
	return w.vocab[i]
}

func (w *world) text() string {
	n := 1 + w.r.IntN(40)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = w.word()
	}
	return strings.Join(parts, " ")
}

func (w *world) add(id string) {
	text := w.text()
	doc := fmt.Sprintf("doc%d", w.r.IntN(25))
	corpus := fmt.Sprintf("corpus%d", w.r.IntN(3))
	trust := []string{"high", "low", ""}[w.r.IntN(3)]
	created := w.now.Add(time.Duration(w.r.Int64N(int64(200*24*time.Hour))) - 10*24*time.Hour)
	terms, length := w.h.Analyze(text)
	w.ix.Add(Entry{ChunkID: id, DocID: doc, CorpusID: corpus, Trust: trust, Length: length, CreatedAt: created, Terms: terms})
	counts := map[string]int{}
	for _, term := range Tokenize(text) {
		counts[term]++
	}
	w.ref.add(&refChunk{id: id, doc: doc, corpus: corpus, trust: trust, terms: counts, length: len(Tokenize(text)), created: created})
}

func (w *world) step() {
	switch op := w.r.IntN(10); {
	case op < 6 || len(w.ref.chunks) == 0:
		w.next++
		w.add(fmt.Sprintf("c%04d", w.next))
	case op < 8:
		// Replace an existing chunk, often moving it to another document.
		w.add(fmt.Sprintf("c%04d", 1+w.r.IntN(w.next)))
	default:
		doc := fmt.Sprintf("doc%d", w.r.IntN(27)) // doc25, doc26 never exist
		if got, want := w.ix.RemoveDoc(doc), w.ref.removeDoc(doc); got != want {
			w.t.Fatalf("RemoveDoc(%s) = %d, want %d", doc, got, want)
		}
	}
	if got, want := w.ix.Len(), len(w.ref.chunks); got != want {
		w.t.Fatalf("Len = %d, want %d", got, want)
	}
}

func (w *world) check(ctx string) {
	w.t.Helper()
	fusions := []Fusion{
		DefaultFusion,
		{WBM25: 1},
		{WBM25: 0.5, WRecency: 0.5, HalfLife: 7 * 24 * time.Hour},
		{WBM25: 0.2, WRecency: 0.8, HalfLife: time.Hour},
		{WBM25: 1, WRecency: -0.3, HalfLife: 48 * time.Hour},
	}
	for range 12 {
		nq := 1 + w.r.IntN(4)
		words := make([]string, nq)
		for i := range words {
			words[i] = w.word()
			if w.r.IntN(6) == 0 {
				words[i] = "absent" + words[i]
			}
		}
		if w.r.IntN(5) == 0 {
			words = append(words, words[0]) // a repeated term counts once
		}
		query := strings.Join(words, " ")
		var f Filter
		switch w.r.IntN(4) {
		case 1:
			f.CorpusID = fmt.Sprintf("corpus%d", w.r.IntN(4))
		case 2:
			for range 1 + w.r.IntN(4) {
				f.DocIDs = append(f.DocIDs, fmt.Sprintf("doc%d", w.r.IntN(27)))
			}
		case 3:
			f.CorpusID = fmt.Sprintf("corpus%d", w.r.IntN(3))
			f.DocIDs = []string{fmt.Sprintf("doc%d", w.r.IntN(25)), fmt.Sprintf("doc%d", w.r.IntN(25))}
		}
		fu := fusions[w.r.IntN(len(fusions))]
		k := []int{1, 3, 10, 1000}[w.r.IntN(4)]
		want := w.ref.search(query, k, f, fu, w.now)
		all := map[string]Hit{}
		for _, h := range w.ref.search(query, math.MaxInt, f, fu, w.now) {
			all[h.ChunkID] = h
		}
		got := w.ix.Search(w.h.QueryTerms(query), k, f, fu, w.now)
		compareHits(w.t, fmt.Sprintf("%s: query %q k=%d filter %+v fusion %+v", ctx, query, k, f, fu), got, want, all)
	}
}

func TestSearchMatchesReference(t *testing.T) {
	for seed := range uint64(6) {
		p := DefaultParams
		switch seed {
		case 4:
			p = Params{K1: 2, B: 0.3}
		case 5:
			p = Params{K1: 0.5, B: 1}
		}
		w := newWorld(t, seed, p)
		for i := range 600 {
			w.step()
			if i%25 == 24 {
				w.check(fmt.Sprintf("seed %d step %d", seed, i))
			}
		}
	}
}

// TestSearchAfterRemovals removes most of a corpus, with compactions on
// the way, and checks the scores at every stage: df and N must count live
// chunks only.
func TestSearchAfterRemovals(t *testing.T) {
	w := newWorld(t, 77, DefaultParams)
	for range 400 {
		w.next++
		w.add(fmt.Sprintf("c%04d", w.next))
	}
	w.check("full")
	for d := range 25 {
		doc := fmt.Sprintf("doc%d", d)
		if got, want := w.ix.RemoveDoc(doc), w.ref.removeDoc(doc); got != want {
			t.Fatalf("RemoveDoc(%s) = %d, want %d", doc, got, want)
		}
		if len(w.ref.chunks) > 0 {
			w.check(fmt.Sprintf("after removing %s", doc))
		}
	}
	if n := w.ix.Len(); n != 0 {
		t.Fatalf("Len = %d after removing every document", n)
	}
	if hits := w.ix.Search(w.h.QueryTerms(strings.Join(w.vocab, " ")), 10, Filter{}, DefaultFusion, w.now); hits != nil {
		t.Fatalf("empty index found %v", hits)
	}
	// Reuse after emptying.
	w.add("again")
	w.check("re-added")
}

func TestSearchReplace(t *testing.T) {
	h := testHasher(t, 1)
	ix := NewIndex(DefaultParams)
	now := time.Now()
	add := func(id, doc, text string) {
		tfs, n := h.Analyze(text)
		ix.Add(Entry{ChunkID: id, DocID: doc, CorpusID: "c", Length: n, CreatedAt: now, Terms: tfs})
	}
	add("1", "d1", "alpha beta")
	add("2", "d1", "gamma")
	add("1", "d2", "gamma delta") // replaces chunk 1, moving it to d2
	if n := ix.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
	if hits := ix.Search(h.QueryTerms("alpha"), 10, Filter{}, DefaultFusion, now); hits != nil {
		t.Fatalf("replaced text still found: %v", hits)
	}
	hits := ix.Search(h.QueryTerms("delta"), 10, Filter{}, DefaultFusion, now)
	if len(hits) != 1 || hits[0].ChunkID != "1" || hits[0].DocID != "d2" {
		t.Fatalf("hits = %+v, want chunk 1 of d2", hits)
	}
	if n := ix.RemoveDoc("d1"); n != 1 {
		t.Fatalf("RemoveDoc(d1) = %d, want 1 (chunk 1 moved away)", n)
	}
	if n := ix.RemoveDoc("d1"); n != 0 {
		t.Fatalf("RemoveDoc(d1) again = %d, want 0", n)
	}
	if n := ix.RemoveDoc("d2"); n != 1 {
		t.Fatalf("RemoveDoc(d2) = %d, want 1", n)
	}
}

func TestSearchEdgeCases(t *testing.T) {
	h := testHasher(t, 1)
	ix := NewIndex(DefaultParams)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	q := h.QueryTerms("alpha")
	if hits := ix.Search(q, 10, Filter{}, DefaultFusion, now); hits != nil {
		t.Errorf("empty index: %v", hits)
	}
	for i, text := range []string{"alpha beta", "alpha alpha gamma", "beta"} {
		tfs, n := h.Analyze(text)
		ix.Add(Entry{ChunkID: fmt.Sprint(i), DocID: fmt.Sprint("d", i), CorpusID: "c", Length: n, CreatedAt: now, Terms: tfs})
	}
	tests := []struct {
		name string
		q    []Term
		k    int
		f    Filter
		want []string
	}{
		{"k zero", q, 0, Filter{}, nil},
		{"k negative", q, -1, Filter{}, nil},
		{"no terms", nil, 10, Filter{}, nil},
		{"unknown term", h.QueryTerms("zeta"), 10, Filter{}, nil},
		{"unknown corpus", q, 10, Filter{CorpusID: "nope"}, nil},
		{"unknown docs", q, 10, Filter{DocIDs: []string{"nope"}}, nil},
		{"empty DocIDs restrict nothing", q, 10, Filter{DocIDs: []string{}}, []string{"1", "0"}},
		{"match", q, 10, Filter{}, []string{"1", "0"}},
		{"k caps", q, 1, Filter{}, []string{"1"}},
		{"repeated terms count once", []Term{q[0], q[0], q[0]}, 10, Filter{}, []string{"1", "0"}},
		{"doc filter", q, 10, Filter{DocIDs: []string{"d0", "d2"}}, []string{"0"}},
	}
	for _, tt := range tests {
		hits := ix.Search(tt.q, tt.k, tt.f, DefaultFusion, now)
		var got []string
		for _, h := range hits {
			got = append(got, h.ChunkID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: hits %v, want %v", tt.name, got, tt.want)
		}
	}
	// Repeated query terms score as one.
	once := ix.Search(q, 10, Filter{}, DefaultFusion, now)
	thrice := ix.Search([]Term{q[0], q[0], q[0]}, 10, Filter{}, DefaultFusion, now)
	if !slices.Equal(once, thrice) {
		t.Errorf("repeated terms: %v, want %v", thrice, once)
	}
}

func TestSearchTiesByChunkID(t *testing.T) {
	h := testHasher(t, 1)
	ix := NewIndex(DefaultParams)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tfs, n := h.Analyze("same text")
	for _, id := range []string{"m", "b", "z", "a", "k"} {
		ix.Add(Entry{ChunkID: id, DocID: id, Length: n, CreatedAt: now, Terms: tfs})
	}
	var got []string
	for _, h := range ix.Search(h.QueryTerms("text"), 3, Filter{}, DefaultFusion, now) {
		got = append(got, h.ChunkID)
	}
	if want := []string{"a", "b", "k"}; !slices.Equal(got, want) {
		t.Errorf("tied hits %v, want %v", got, want)
	}
}

func TestAddCanonicalizesTerms(t *testing.T) {
	a, b := Term{1}, Term{2}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	messy := NewIndex(DefaultParams)
	messy.Add(Entry{ChunkID: "x", Length: 5, CreatedAt: now, Terms: []TermFreq{{b, 1}, {a, 2}, {b, 2}, {Term{3}, 0}}})
	messy.Add(Entry{ChunkID: "y", Length: 4, CreatedAt: now, Terms: []TermFreq{{a, 1}}})
	clean := NewIndex(DefaultParams)
	clean.Add(Entry{ChunkID: "x", Length: 5, CreatedAt: now, Terms: []TermFreq{{a, 2}, {b, 3}}})
	clean.Add(Entry{ChunkID: "y", Length: 4, CreatedAt: now, Terms: []TermFreq{{a, 1}}})
	for _, q := range [][]Term{{a}, {b}, {a, b}, {Term{3}}} {
		got := messy.Search(q, 10, Filter{}, DefaultFusion, now)
		want := clean.Search(q, 10, Filter{}, DefaultFusion, now)
		if !slices.Equal(got, want) {
			t.Errorf("query %x: %+v, want %+v", q, got, want)
		}
	}
}

func TestNewIndexParams(t *testing.T) {
	for _, p := range []Params{{K1: -1, B: 0.5}, {K1: math.NaN(), B: 0.5}, {K1: math.Inf(1), B: 0.5}, {K1: 1, B: 2}, {K1: 1, B: -0.1}, {K1: 1, B: math.NaN()}} {
		ix := NewIndex(p)
		want := p
		if !(p.K1 >= 0) || math.IsInf(p.K1, 0) {
			want.K1 = DefaultParams.K1
		}
		if !(p.B >= 0 && p.B <= 1) {
			want.B = DefaultParams.B
		}
		if ix.k1 != want.K1 || ix.b != want.B {
			t.Errorf("NewIndex(%+v) uses k1=%v b=%v, want %+v", p, ix.k1, ix.b, want)
		}
	}
}

// TestKeysDoNotMix builds an index under one key and queries it under
// another: the hashes must not meet.
func TestKeysDoNotMix(t *testing.T) {
	a, b := testHasher(t, 1), testHasher(t, 2)
	ix := NewIndex(DefaultParams)
	now := time.Now()
	texts := []string{"evidence chain of custody", "the vault seals evidence", "custody transfer record"}
	for i, text := range texts {
		tfs, n := a.Analyze(text)
		ix.Add(Entry{ChunkID: fmt.Sprint(i), Length: n, CreatedAt: now, Terms: tfs})
	}
	for _, query := range append(texts, "evidence", "custody") {
		if hits := ix.Search(b.QueryTerms(query), 10, Filter{}, DefaultFusion, now); hits != nil {
			t.Errorf("query %q under another key found %v", query, ids(hits))
		}
		if hits := ix.Search(a.QueryTerms(query), 10, Filter{}, DefaultFusion, now); len(hits) == 0 {
			t.Errorf("query %q under the index key found nothing", query)
		}
	}
}

func TestIndexConcurrent(t *testing.T) {
	w := newWorld(t, 5, DefaultParams)
	for range 200 {
		w.next++
		w.add(fmt.Sprintf("c%04d", w.next))
	}
	h := w.h
	queries := []string{"waa wba", "wca", "wab wbb wcc", "wda waa"}
	var texts []string
	for range 100 {
		texts = append(texts, w.text())
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				hits := w.ix.Search(h.QueryTerms(queries[(g+i)%len(queries)]), 5, Filter{}, DefaultFusion, w.now)
				for j := 1; j < len(hits); j++ {
					if hits[j].Fused > hits[j-1].Fused {
						t.Error("hits out of order")
						return
					}
				}
			}
		})
	}
	wg.Go(func() {
		for i, text := range texts {
			tfs, n := h.Analyze(text)
			w.ix.Add(Entry{ChunkID: fmt.Sprintf("n%d", i), DocID: "new", Length: n, CreatedAt: w.now, Terms: tfs})
			if i%10 == 9 {
				w.ix.RemoveDoc(fmt.Sprintf("doc%d", i/10))
			}
		}
	})
	wg.Wait()
	// Bring the reference to the same state and compare.
	for i, text := range texts {
		counts := map[string]int{}
		for _, term := range Tokenize(text) {
			counts[term]++
		}
		w.ref.add(&refChunk{id: fmt.Sprintf("n%d", i), doc: "new", corpus: "", terms: counts, length: len(Tokenize(text)), created: w.now})
		if i%10 == 9 {
			w.ref.removeDoc(fmt.Sprintf("doc%d", i/10))
		}
	}
	w.check("after concurrent writes")
}
