package textindex

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"
	"log/slog"
	"slices"
	"sync"
)

// termDomain separates term hashes from every other use of the key; the
// version names this construction.
const termDomain = "vaultcrux/index/v1\x00"

// KeySize is the length of a Hasher key in bytes.
const KeySize = 32

// Term is the keyed hash of a term: the first 16 bytes of
// HMAC-SHA-256(key, "vaultcrux/index/v1\x00" || term). Only Terms, never
// terms, may be stored or sent.
type Term [16]byte

func compareTerms(a, b Term) int { return bytes.Compare(a[:], b[:]) }

// TermFreq is a term with its frequency in one chunk.
type TermFreq struct {
	Term Term
	Freq uint32
}

// Hasher turns text into Terms under one index key. It is safe for
// concurrent use. Its String, GoString and LogValue never show the key.
type Hasher struct {
	// Keying HMAC costs two SHA-256 blocks and allocations; pooled
	// states, keyed once and Reset per term, cost neither.
	pool sync.Pool // of *hashState
}

type hashState struct {
	mac hash.Hash
	msg []byte
	sum [sha256.Size]byte
	sc  scanner
	// Analyze's scratch: the distinct terms of a text, with counts.
	seen   map[string]int
	counts []TermFreq
	terms  []string
}

// NewHasher returns a Hasher keyed with key, which must be KeySize bytes:
// the tenant's index key, kept by the caller's key custody.
func NewHasher(key []byte) (*Hasher, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("textindex.NewHasher: key is %d bytes, want %d", len(key), KeySize)
	}
	key = bytes.Clone(key)
	h := new(Hasher)
	h.pool.New = func() any {
		return &hashState{
			mac:  hmac.New(sha256.New, key),
			msg:  make([]byte, 0, len(termDomain)+MaxTermBytes),
			seen: make(map[string]int),
		}
	}
	return h, nil
}

func (h *Hasher) String() string       { return "textindex.Hasher{key:REDACTED}" }
func (h *Hasher) GoString() string     { return h.String() }
func (h *Hasher) LogValue() slog.Value { return slog.StringValue(h.String()) }

// Term returns the hash of term, taken as it is: pass a Tokenize term.
func (h *Hasher) Term(term string) Term {
	st := h.pool.Get().(*hashState)
	defer h.put(st)
	return st.hash(term)
}

func (st *hashState) hash(term string) Term {
	st.msg = append(append(st.msg[:0], termDomain...), term...)
	st.mac.Reset()
	st.mac.Write(st.msg)
	return Term(st.mac.Sum(st.sum[:0]))
}

// Analyze tokenizes text and returns the hashes of its terms with their
// frequencies, sorted by Term (the form EncodeTerms stores), and the
// number of terms in text (the chunk length BM25 uses).
func (h *Hasher) Analyze(text string) (tfs []TermFreq, length int) {
	st := h.pool.Get().(*hashState)
	defer h.put(st)
	st.sc = scanner{text: text, term: st.sc.term, raw: st.sc.raw}
	for st.sc.next() {
		if !st.sc.ok {
			continue
		}
		length++
		if i, ok := st.seen[string(st.sc.term)]; ok {
			st.counts[i].Freq++
			continue
		}
		t := st.sc.termString()
		st.seen[t] = len(st.counts)
		st.counts = append(st.counts, TermFreq{Freq: 1})
		st.terms = append(st.terms, t)
	}
	if length == 0 {
		return nil, 0
	}
	for i, t := range st.terms {
		st.counts[i].Term = st.hash(t)
	}
	tfs = slices.Clone(st.counts)
	slices.SortFunc(tfs, func(a, b TermFreq) int { return compareTerms(a.Term, b.Term) })
	// Two terms with one hash (a 2^-128 event) become one, keeping Terms
	// strictly increasing.
	j := 0
	for i := 1; i < len(tfs); i++ {
		if tfs[i].Term == tfs[j].Term {
			tfs[j].Freq += tfs[i].Freq
			continue
		}
		j++
		tfs[j] = tfs[i]
	}
	return tfs[:j+1], length
}

// QueryTerms tokenizes query and returns the hashes of its distinct terms
// in the order they first appear.
func (h *Hasher) QueryTerms(query string) []Term {
	st := h.pool.Get().(*hashState)
	defer h.put(st)
	var q []Term
	st.sc = scanner{text: query, term: st.sc.term, raw: st.sc.raw}
	for st.sc.next() {
		if !st.sc.ok {
			continue
		}
		if _, ok := st.seen[string(st.sc.term)]; ok {
			continue
		}
		t := st.sc.termString()
		st.seen[t] = 0
		q = append(q, st.hash(t))
	}
	return q
}

// put clears what st holds of the caller's text and returns it to the
// pool.
func (h *Hasher) put(st *hashState) {
	clear(st.seen)
	clear(st.terms)
	st.terms, st.counts = st.terms[:0], st.counts[:0]
	clear(st.msg)
	clear(st.sc.term[:cap(st.sc.term)])
	clear(st.sc.raw[:cap(st.sc.raw)])
	st.sc = scanner{term: st.sc.term[:0], raw: st.sc.raw[:0]}
	h.pool.Put(st)
}
