package textindex

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Params are the BM25 parameters.
type Params struct {
	K1 float64 // term-frequency saturation, >= 0
	B  float64 // length normalisation, in [0, 1]
}

// DefaultParams are the usual BM25 parameters.
var DefaultParams = Params{K1: 1.2, B: 0.75}

// Entry is one chunk as the index sees it: ids, metadata and the hashed
// terms of its text (from Analyze or DecodeTerms).
type Entry struct {
	ChunkID, DocID, CorpusID string
	Trust                    string
	Length                   int       // tokens, as Analyze counts them
	CreatedAt                time.Time // for recency
	Terms                    []TermFreq
}

// Filter restricts a search; its zero value restricts nothing.
type Filter struct {
	CorpusID string   // only chunks of this corpus, when not ""
	DocIDs   []string // only chunks of these documents, when not empty
}

// Fusion says how BM25 and recency make the fused score.
type Fusion struct {
	WBM25, WRecency float64
	// HalfLife is the age at which recency is 1/2; when it is not
	// positive, recency is 0 for every chunk.
	HalfLife time.Duration
}

// DefaultFusion ranks mostly by relevance, with newer chunks ahead among
// near equals.
var DefaultFusion = Fusion{WBM25: 0.9, WRecency: 0.1, HalfLife: 30 * 24 * time.Hour}

// Hit is one result of Search.
type Hit struct {
	ChunkID, DocID, CorpusID, Trust string
	BM25, Recency, Fused            float64
}

// Index is an in-memory BM25 index over chunks. It is safe for concurrent
// use: searches share a read lock, Add and RemoveDoc take the write lock.
//
// Chunks live in slots. A posting list holds (slot, tf) pairs in slot
// order; a removed chunk's slot is only marked dead, and its postings stay
// until the dead slots outnumber half the live ones, when compact rebuilds
// every list. Searches skip dead postings and count document frequencies
// over live ones only, so scores are exact at all times.
type Index struct {
	mu    sync.RWMutex
	k1, b float64
	lists map[Term]*postingList

	// Per slot.
	chunkID, docID, trust []string
	corpus                []uint32 // index into corpusName
	length                []float64
	created               []time.Time
	live                  []bool

	byChunk    map[string]uint32   // live chunk id → slot
	byDoc      map[string][]uint32 // doc id → its live slots, increasing
	corpusNum  map[string]uint32
	corpusName []string

	nLive, nDead int
	totalLen     int64 // of live slots

	scratch sync.Pool // of *searchScratch
}

type posting struct{ slot, tf uint32 }

type postingList struct{ p []posting }

// NewIndex returns an empty index that scores with p. A K1 below 0 or a B
// outside [0, 1] (or NaN) is replaced by its DefaultParams value.
func NewIndex(p Params) *Index {
	if !(p.K1 >= 0) || math.IsInf(p.K1, 0) {
		p.K1 = DefaultParams.K1
	}
	if !(p.B >= 0 && p.B <= 1) {
		p.B = DefaultParams.B
	}
	return &Index{
		k1:        p.K1,
		b:         p.B,
		lists:     make(map[Term]*postingList),
		byChunk:   make(map[string]uint32),
		byDoc:     make(map[string][]uint32),
		corpusNum: make(map[string]uint32),
	}
}

// Add indexes e, replacing the chunk with the same ChunkID if there is
// one. Terms need not be sorted: repeated terms are merged and terms of
// frequency 0 ignored. A negative Length counts as 0.
func (ix *Index) Add(e Entry) {
	terms := canonicalTerms(e.Terms)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if old, ok := ix.byChunk[e.ChunkID]; ok {
		ix.kill(old)
		doc := ix.docID[old]
		if rest := deleteSlot(ix.byDoc[doc], old); len(rest) > 0 {
			ix.byDoc[doc] = rest
		} else {
			delete(ix.byDoc, doc)
		}
		ix.clearSlot(old)
	}
	slot := uint32(len(ix.live))
	n := max(e.Length, 0)
	ix.chunkID = append(ix.chunkID, e.ChunkID)
	ix.docID = append(ix.docID, e.DocID)
	ix.trust = append(ix.trust, e.Trust)
	ix.corpus = append(ix.corpus, ix.internCorpus(e.CorpusID))
	ix.length = append(ix.length, float64(n))
	ix.created = append(ix.created, e.CreatedAt)
	ix.live = append(ix.live, true)
	ix.nLive++
	ix.totalLen += int64(n)
	ix.byChunk[e.ChunkID] = slot
	ix.byDoc[e.DocID] = append(ix.byDoc[e.DocID], slot)
	for _, tf := range terms {
		l := ix.lists[tf.Term]
		if l == nil {
			l = new(postingList)
			ix.lists[tf.Term] = l
		}
		l.p = append(l.p, posting{slot, tf.Freq})
	}
	ix.maybeCompact()
}

// RemoveDoc removes every chunk of docID and returns how many there were.
func (ix *Index) RemoveDoc(docID string) int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	slots := ix.byDoc[docID]
	for _, s := range slots {
		ix.kill(s)
		ix.clearSlot(s)
	}
	delete(ix.byDoc, docID)
	ix.maybeCompact()
	return len(slots)
}

// Len returns the number of chunks in the index.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.nLive
}

// kill marks slot dead and takes it out of the counts; the caller updates
// byDoc.
func (ix *Index) kill(slot uint32) {
	ix.live[slot] = false
	ix.nLive--
	ix.nDead++
	ix.totalLen -= int64(ix.length[slot])
	delete(ix.byChunk, ix.chunkID[slot])
}

// clearSlot drops a dead slot's strings so they can be collected.
func (ix *Index) clearSlot(slot uint32) {
	ix.chunkID[slot], ix.docID[slot], ix.trust[slot] = "", "", ""
	ix.created[slot] = time.Time{}
}

func deleteSlot(slots []uint32, slot uint32) []uint32 {
	if i, ok := slices.BinarySearch(slots, slot); ok {
		return slices.Delete(slots, i, i+1)
	}
	return slots
}

func (ix *Index) internCorpus(id string) uint32 {
	c, ok := ix.corpusNum[id]
	if !ok {
		c = uint32(len(ix.corpusName))
		ix.corpusNum[id] = c
		ix.corpusName = append(ix.corpusName, id)
	}
	return c
}

// maybeCompact compacts when dead slots exceed half the live ones. Between
// two compactions at least half the live chunks were removed, so the cost
// of a compaction, linear in the postings, is paid for by the removals.
func (ix *Index) maybeCompact() {
	if 2*ix.nDead > ix.nLive {
		ix.compact()
	}
}

// compact drops dead slots, renumbering live ones in order (so posting
// lists stay sorted), and drops their postings.
func (ix *Index) compact() {
	const gone = math.MaxUint32
	remap := make([]uint32, len(ix.live))
	oldCorpusName := ix.corpusName
	ix.corpusNum = make(map[string]uint32)
	ix.corpusName = nil
	n := 0
	for s, ok := range ix.live {
		if !ok {
			remap[s] = gone
			continue
		}
		remap[s] = uint32(n)
		ix.chunkID[n] = ix.chunkID[s]
		ix.docID[n] = ix.docID[s]
		ix.trust[n] = ix.trust[s]
		ix.corpus[n] = ix.internCorpus(oldCorpusName[ix.corpus[s]])
		ix.length[n] = ix.length[s]
		ix.created[n] = ix.created[s]
		ix.live[n] = true
		n++
	}
	ix.chunkID = slices.Clip(clearTail(ix.chunkID, n))
	ix.docID = slices.Clip(clearTail(ix.docID, n))
	ix.trust = slices.Clip(clearTail(ix.trust, n))
	ix.corpus = ix.corpus[:n]
	ix.length = ix.length[:n]
	ix.created = clearTail(ix.created, n)
	ix.live = ix.live[:n]
	ix.nDead = 0
	for t, l := range ix.lists {
		j := 0
		for _, p := range l.p {
			if s := remap[p.slot]; s != gone {
				l.p[j] = posting{s, p.tf}
				j++
			}
		}
		switch {
		case j == 0:
			delete(ix.lists, t)
		case cap(l.p) > 2*j:
			l.p = slices.Clone(l.p[:j])
		default:
			l.p = l.p[:j]
		}
	}
	for id, s := range ix.byChunk {
		ix.byChunk[id] = remap[s]
	}
	for _, slots := range ix.byDoc {
		for i, s := range slots {
			slots[i] = remap[s]
		}
	}
}

func clearTail[E any](s []E, n int) []E {
	clear(s[n:])
	return s[:n]
}

// canonicalTerms returns tfs if its terms are strictly increasing with
// frequencies of at least 1, and otherwise a sorted copy with repeated
// terms merged and zero frequencies dropped.
func canonicalTerms(tfs []TermFreq) []TermFreq {
	ok := true
	for i, tf := range tfs {
		if tf.Freq == 0 || i > 0 && compareTerms(tfs[i-1].Term, tf.Term) >= 0 {
			ok = false
			break
		}
	}
	if ok {
		return tfs
	}
	out := slices.Clone(tfs)
	slices.SortFunc(out, func(a, b TermFreq) int { return compareTerms(a.Term, b.Term) })
	j := -1
	for _, tf := range out {
		switch {
		case tf.Freq == 0:
		case j >= 0 && out[j].Term == tf.Term:
			out[j].Freq = satAdd(out[j].Freq, tf.Freq)
		default:
			j++
			out[j] = tf
		}
	}
	return out[:j+1]
}

func satAdd(a, b uint32) uint32 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint32
}

// searchScratch is a search's working memory, pooled so a search does not
// allocate per chunk.
type searchScratch struct {
	acc     []float64 // BM25 per slot; 0 when untouched (scores are > 0)
	touched []uint32  // slots with acc != 0
	allowed []uint64  // bitset of slots that pass Filter.DocIDs
	heap    []candidate
	seed    []uint32
	lists   []*postingList
}

type candidate struct {
	fused float64
	slot  uint32
}

const anyCorpus = math.MaxUint32

// Search returns the k best chunks for the query terms q among those that
// pass f, best first, as the package documentation describes under
// "Ranking". Repeated terms in q count once; terms the index does not hold
// add nothing. It returns nil when k <= 0 or nothing matches.
func (ix *Index) Search(q []Term, k int, f Filter, fu Fusion, now time.Time) []Hit {
	if k <= 0 || len(q) == 0 {
		return nil
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.nLive == 0 {
		return nil
	}
	cid := uint32(anyCorpus)
	if f.CorpusID != "" {
		c, ok := ix.corpusNum[f.CorpusID]
		if !ok {
			return nil
		}
		cid = c
	}
	st, _ := ix.scratch.Get().(*searchScratch)
	if st == nil {
		st = new(searchScratch)
	}
	defer ix.scratch.Put(st)
	nslots := len(ix.live)
	if len(st.acc) < nslots {
		st.acc = make([]float64, nslots+nslots/4)
	}

	// The posting lists of the distinct query terms.
	lists := st.lists[:0]
	for i, t := range q {
		if slices.Contains(q[:i], t) {
			continue
		}
		if l := ix.lists[t]; l != nil {
			lists = append(lists, l)
		}
	}
	st.lists = lists
	defer clear(st.lists)
	if len(lists) == 0 {
		return nil
	}

	var allowed []uint64
	if len(f.DocIDs) > 0 {
		words := (nslots + 63) / 64
		if len(st.allowed) < words {
			st.allowed = make([]uint64, words+words/4)
		}
		allowed = st.allowed[:words]
		found := false
		for _, id := range f.DocIDs {
			for _, s := range ix.byDoc[id] {
				allowed[s/64] |= 1 << (s % 64)
				found = true
			}
		}
		defer clear(allowed)
		if !found {
			return nil
		}
	}

	ix.accumulate(st, lists, cid, allowed)
	defer st.reset()
	if len(st.touched) == 0 {
		return nil
	}
	return ix.top(st, k, fu, now)
}

// accumulate adds every query term's BM25 weight into st.acc for the slots
// that pass the filter, noting each slot it first touches.
func (ix *Index) accumulate(st *searchScratch, lists []*postingList, cid uint32, allowed []uint64) {
	n := float64(ix.nLive)
	avg := float64(ix.totalLen) / n
	// tf*(k1+1) / (tf + k1*(1-b+b*len/avg)) = w*tf / (tf + a + c*len);
	// with every length 0 the ratio len/avg is taken as 1.
	a, c := ix.k1*(1-ix.b), ix.k1*ix.b/avg
	if ix.totalLen == 0 {
		a, c = ix.k1, 0
	}
	acc, length, live := st.acc, ix.length, ix.live
	touched := st.touched[:0]
	plain := ix.nDead == 0 && cid == anyCorpus && allowed == nil
	for _, l := range lists {
		df := len(l.p)
		if ix.nDead > 0 {
			df = 0
			for _, p := range l.p {
				if live[p.slot] {
					df++
				}
			}
			if df == 0 {
				continue
			}
		}
		idf := math.Log1p((n - float64(df) + 0.5) / (float64(df) + 0.5))
		w := idf * (ix.k1 + 1)
		if plain {
			for _, p := range l.p {
				tf := float64(p.tf)
				v := acc[p.slot]
				if v == 0 {
					touched = append(touched, p.slot)
				}
				acc[p.slot] = v + w*tf/(tf+a+c*length[p.slot])
			}
			continue
		}
		for _, p := range l.p {
			s := p.slot
			if !live[s] || cid != anyCorpus && ix.corpus[s] != cid || allowed != nil && allowed[s/64]&(1<<(s%64)) == 0 {
				continue
			}
			tf := float64(p.tf)
			v := acc[s]
			if v == 0 {
				touched = append(touched, s)
			}
			acc[s] = v + w*tf/(tf+a+c*length[s])
		}
	}
	st.touched = touched
}

// top selects the k best touched slots by fused score with a bounded heap
// whose root is the worst kept candidate.
//
// Recency is in [0, 1], so WBM25*bm25/best + max(WRecency, 0) bounds a
// chunk's fused score, and a chunk whose bound is below the worst kept
// candidate is passed over without computing its recency. To make that
// cut early, the heap is first seeded with the k chunks of highest BM25.
func (ix *Index) top(st *searchScratch, k int, fu Fusion, now time.Time) []Hit {
	acc, touched := st.acc, st.touched
	k = min(k, len(touched))

	// The k slots of highest BM25, by a heap whose root is the lowest.
	seed := st.seed[:0]
	for _, s := range touched {
		switch v := acc[s]; {
		case len(seed) < k:
			seed = append(seed, s)
			for i := len(seed) - 1; i > 0; {
				p := (i - 1) / 2
				if acc[seed[p]] <= acc[seed[i]] {
					break
				}
				seed[i], seed[p] = seed[p], seed[i]
				i = p
			}
		case v > acc[seed[0]]:
			seed[0] = s
			for i := 0; ; {
				l := 2*i + 1
				if l >= len(seed) {
					break
				}
				if r := l + 1; r < len(seed) && acc[seed[r]] < acc[seed[l]] {
					l = r
				}
				if acc[seed[i]] <= acc[seed[l]] {
					break
				}
				seed[i], seed[l] = seed[l], seed[i]
				i = l
			}
		}
	}
	st.seed = seed
	best := 0.0
	for _, s := range seed {
		best = max(best, acc[s])
	}

	h := st.heap[:0]
	push := func(c candidate) {
		switch {
		case len(h) < k:
			h = append(h, c)
			ix.siftUp(h, len(h)-1)
		case ix.worse(h[0], c):
			h[0] = c
			ix.siftDown(h, 0)
		}
	}
	fused := func(s uint32) float64 {
		return fu.WBM25*(acc[s]/best) + fu.WRecency*recency(ix.created[s], now, fu.HalfLife)
	}
	for _, s := range seed {
		push(candidate{fused(s), s})
		acc[s] = -acc[s] // marks it seen; undone below
	}
	// A chunk can be passed over when its bound is below the worst kept
	// fused score h[0].fused. With WBM25 > 0 that is a floor on its BM25,
	// lowered by a relative 1e-9 so that rounding never passes over a
	// chunk that the exact comparison would keep.
	recBound := max(fu.WRecency, 0)
	floor := func() float64 {
		if len(h) < k || !(fu.WBM25 > 0) {
			return math.Inf(-1)
		}
		f := (h[0].fused - recBound) / fu.WBM25 * best
		return f - math.Abs(f)*1e-9
	}
	cut := floor()
	for _, s := range touched {
		if v := acc[s]; v < 0 || v < cut {
			continue
		}
		push(candidate{fused(s), s})
		cut = floor()
	}
	for _, s := range seed {
		acc[s] = -acc[s]
	}
	st.heap = h

	hits := make([]Hit, len(h))
	for i := len(h) - 1; i >= 0; i-- {
		c := h[0]
		h[0] = h[i]
		ix.siftDown(h[:i], 0)
		s := c.slot
		hits[i] = Hit{
			ChunkID:  ix.chunkID[s],
			DocID:    ix.docID[s],
			CorpusID: ix.corpusName[ix.corpus[s]],
			Trust:    ix.trust[s],
			BM25:     acc[s],
			Recency:  recency(ix.created[s], now, fu.HalfLife),
			Fused:    c.fused,
		}
	}
	return hits
}

// recency is 0.5^(age/halfLife), with age clamped at 0; 0 when halfLife is
// not positive.
func recency(created, now time.Time, halfLife time.Duration) float64 {
	if halfLife <= 0 {
		return 0
	}
	age := max(now.Sub(created), 0)
	return math.Exp2(-float64(age) / float64(halfLife))
}

// worse orders candidates: lower fused first, then greater chunk id.
func (ix *Index) worse(x, y candidate) bool {
	if x.fused != y.fused {
		return x.fused < y.fused
	}
	return ix.chunkID[x.slot] > ix.chunkID[y.slot]
}

func (ix *Index) siftUp(h []candidate, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !ix.worse(h[i], h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (ix *Index) siftDown(h []candidate, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && ix.worse(h[r], h[l]) {
			m = r
		}
		if !ix.worse(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// reset zeroes the touched accumulators for the next search.
func (st *searchScratch) reset() {
	for _, s := range st.touched {
		st.acc[s] = 0
	}
	st.touched = st.touched[:0]
	st.heap = st.heap[:0]
}
