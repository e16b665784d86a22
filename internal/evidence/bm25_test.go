package evidence_test

import (
	"context"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/evidence"
	"github.com/vaultcrux/vaultcrux/internal/textindex"
	"github.com/vaultcrux/vaultcrux/internal/vctest"
)

// TestRetrieveMatchesReferenceBM25 ingests documents through the API and
// checks /v1/retrieve's ranking and BM25 scores against a plain BM25
// computed here over the plaintext (k1 1.2, b 0.75, Lucene's idf), with
// recency weighted 0 so the ranking is BM25's alone.
func TestRetrieveMatchesReferenceBM25(t *testing.T) {
	env := vctest.New(t)
	a := newClient(env, "acme")
	r := mrand.New(mrand.NewPCG(7, 11))
	vocab := []string{"alder", "birch", "cedar", "dogwood", "elm", "fir", "ginkgo", "hazel", "ironwood", "juniper",
		"kapok", "larch", "maple", "nutmeg", "oak", "pine", "quince", "rowan", "spruce", "teak"}
	texts := map[string]string{} // chunk id → text
	for i := range 60 {
		n := 3 + r.IntN(25)
		words := make([]string, n)
		for j := range words {
			// Skewed: low indexes are common, high ones rare.
			words[j] = vocab[int(math.Floor(float64(len(vocab))*r.Float64()*r.Float64()))]
		}
		id := fmt.Sprintf("doc%02d", i)
		content := strings.Join(words, " ")
		texts[id+"#0"] = content
		a.ingest(doc(id, content))
	}
	env.Drain()
	fusion := textindex.Fusion{WBM25: 1}
	s := evidence.New(evidence.Config{Store: env.Store, Ledger: env.Ledger, Keys: env.Provider, Now: env.Clock.Now, Fusion: &fusion})
	p := vaultcrux.Principal{Tenant: "acme", ID: "key:ref"}

	// The reference index, over plaintext.
	type refDoc struct {
		id  string
		tf  map[string]int
		len int
	}
	var docs []refDoc
	df := map[string]int{}
	total := 0
	for id, text := range texts {
		terms := textindex.Tokenize(text)
		d := refDoc{id: id, tf: map[string]int{}, len: len(terms)}
		for _, term := range terms {
			d.tf[term]++
		}
		for term := range d.tf {
			df[term]++
		}
		total += len(terms)
		docs = append(docs, d)
	}
	N, avg := float64(len(docs)), float64(total)/float64(len(docs))
	reference := func(query string, k int, only map[string]bool) []struct {
		id    string
		score float64
	} {
		qs := map[string]bool{}
		for _, term := range textindex.Tokenize(query) {
			qs[term] = true
		}
		var out []struct {
			id    string
			score float64
		}
		for _, d := range docs {
			if only != nil && !only[strings.TrimSuffix(d.id, "#0")] {
				continue
			}
			score, hit := 0.0, false
			for term := range qs {
				tf := float64(d.tf[term])
				if tf == 0 {
					continue
				}
				hit = true
				idf := math.Log(1 + (N-float64(df[term])+0.5)/(float64(df[term])+0.5))
				score += idf * tf * 2.2 / (tf + 1.2*(1-0.75+0.75*float64(d.len)/avg))
			}
			if hit {
				out = append(out, struct {
					id    string
					score float64
				}{d.id, score})
			}
		}
		sort.Slice(out, func(i, j int) bool {
			if out[i].score != out[j].score {
				return out[i].score > out[j].score
			}
			return out[i].id < out[j].id
		})
		return out
	}

	checked := 0
	for i := range 40 {
		query := vocab[r.IntN(len(vocab))] + " " + vocab[r.IntN(len(vocab))]
		if i%3 == 0 {
			query += " " + vocab[r.IntN(len(vocab))] + "s" // plural: stemmed to the same term
		}
		k := 1 + r.IntN(10)
		var only map[string]bool
		var filter *evidence.RetrieveFilter
		if i%4 == 0 {
			only = map[string]bool{}
			filter = &evidence.RetrieveFilter{}
			for range 15 {
				id := fmt.Sprintf("doc%02d", r.IntN(60))
				if !only[id] {
					only[id] = true
					filter.DocIDs = append(filter.DocIDs, id)
				}
			}
		}
		got, err := s.Retrieve(context.Background(), p, &evidence.RetrieveRequest{Query: query, TopK: &k, Filters: filter})
		if err != nil {
			t.Fatal(err)
		}
		all := reference(query, k, only)
		want := all[:min(k, len(all))]
		// Equal BM25 scores may rank in either order (the index breaks ties
		// by its internal chunk number, which follows ingest order): a tie
		// is satisfied by any chunk of the reference with that exact score.
		tied := func(id string, score float64) bool {
			for _, a := range all {
				if a.id == id && math.Abs(a.score-score) <= 1e-9*math.Max(1, score) {
					return true
				}
			}
			return false
		}
		seen := map[string]bool{}
		if len(got.Results) != len(want) {
			t.Fatalf("%q k=%d: %d results, reference %d", query, k, len(got.Results), len(want))
		}
		for j, w := range want {
			g := got.Results[j]
			if seen[g.ChunkID] {
				t.Fatalf("%q k=%d rank %d: %s returned twice", query, k, j, g.ChunkID)
			}
			seen[g.ChunkID] = true
			if (g.ChunkID != w.id && !tied(g.ChunkID, w.score)) || math.Abs(g.Scores.BM25-w.score) > 1e-9*math.Max(1, w.score) {
				t.Fatalf("%q k=%d rank %d: got %s %.12f, reference %s %.12f", query, k, j, g.ChunkID, g.Scores.BM25, w.id, w.score)
			}
			if g.Text != texts[g.ChunkID] {
				t.Fatalf("%s: text %q, want %q", g.ChunkID, g.Text, texts[g.ChunkID])
			}
		}
		checked += len(want)
	}
	if checked < 100 {
		t.Fatalf("only %d ranked results compared", checked)
	}
}
