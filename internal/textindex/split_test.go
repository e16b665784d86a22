package textindex

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplitExamples(t *testing.T) {
	tests := []struct {
		name string
		text string
		o    ChunkOptions
		want []Piece
	}{
		{"empty", "", DefaultChunkOptions, nil},
		{"no tokens", " \n\n ... — !? \xff ", DefaultChunkOptions, nil},
		{"trimmed", "  Hello, world!  \n", DefaultChunkOptions, []Piece{{"Hello, world!", 2, 2}}},
		{"zero options mean the defaults", "one two", ChunkOptions{}, []Piece{{"one two", 0, 2}}},
		{
			"paragraphs packed up to Target",
			"a b\n\nc d\n\ne f g",
			ChunkOptions{Target: 4, Overlap: 1, Max: 5},
			[]Piece{{"a b\n\nc d", 0, 4}, {"e f g", 10, 3}},
		},
		{
			"a paragraph up to Max stays whole",
			"a b c d",
			ChunkOptions{Target: 2, Overlap: 1, Max: 5},
			[]Piece{{"a b c d", 0, 4}},
		},
		{
			"long paragraph cut at words, with overlap",
			"a b c d e f g h",
			ChunkOptions{Target: 4, Overlap: 2, Max: 4},
			[]Piece{{"a b c d", 0, 4}, {"c d e f", 4, 4}, {"e f g h", 8, 4}},
		},
		{
			"long paragraph cut at a sentence end",
			"A b c. D e f g h.",
			ChunkOptions{Target: 4, Overlap: 0, Max: 4},
			[]Piece{{"A b c.", 0, 3}, {"D e f g", 7, 4}, {"h.", 15, 1}},
		},
		{
			"a piece keeps the punctuation that ends it",
			`He said "stop." Then left.`,
			ChunkOptions{Target: 3, Overlap: 0, Max: 3},
			[]Piece{{`He said "stop."`, 0, 3}, {"Then left.", 16, 2}},
		},
		{
			"mixed: whole, packed, cut",
			"One two. Three four five.\n\nSix seven.\n \nEight nine ten eleven twelve. Thirteen fourteen fifteen.",
			ChunkOptions{Target: 4, Overlap: 1, Max: 5},
			[]Piece{
				{"One two. Three four five.", 0, 5},
				{"Six seven.", 27, 2},
				{"Eight nine ten eleven", 40, 4},
				{"eleven twelve. Thirteen fourteen", 55, 4},
				{"fourteen fifteen.", 79, 2},
			},
		},
		{
			"the tail of a cut paragraph takes the next one in",
			"a b c d e\n\nf",
			ChunkOptions{Target: 4, Overlap: 1, Max: 4},
			[]Piece{{"a b c d", 0, 4}, {"d e\n\nf", 6, 3}},
		},
		{
			"but only within Target",
			"a b c d e\n\nf",
			ChunkOptions{Target: 3, Overlap: 1, Max: 3},
			[]Piece{{"a b c", 0, 3}, {"c d e", 4, 3}, {"f", 11, 1}},
		},
		{
			"punctuation stays with its paragraph",
			"One two !\n\n(Three)",
			ChunkOptions{Target: 2, Overlap: 1, Max: 2},
			[]Piece{{"One two !", 0, 2}, {"(Three)", 11, 1}},
		},
		{
			"a line break is a better cut than a space",
			"a b -\n- c d",
			ChunkOptions{Target: 2, Overlap: 0, Max: 2},
			[]Piece{{"a b -", 0, 2}, {"- c d", 6, 2}},
		},
		{
			"ideographs without spaces",
			"東京都",
			ChunkOptions{Target: 2, Overlap: 0, Max: 2},
			[]Piece{{"東京", 0, 2}, {"都", 6, 1}},
		},
		{
			"options forced sane",
			"a b c",
			ChunkOptions{Overlap: 5},
			[]Piece{{"a", 0, 1}, {"b", 2, 1}, {"c", 4, 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Split(tt.text, tt.o)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Split(%q, %+v) (-want +got):\n%s", tt.text, tt.o, diff)
			}
			checkSplit(t, tt.text, tt.o, got)
		})
	}
}

// wordyParagraphs counts the paragraphs of s that hold a token (a
// paragraph of punctuation only is packed along with its neighbour).
func wordyParagraphs(s string) int {
	n := 0
	for _, p := range blankLine.Split(s, -1) {
		if len(Tokenize(p)) > 0 {
			n++
		}
	}
	return n
}

var blankLine = regexp.MustCompile(`\n[\t\v\f\r \x{85}\x{A0}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{1680}]*\n`)

// checkSplit asserts the properties every Split result has, using
// Tokenize only to count.
func checkSplit(t *testing.T, text string, o ChunkOptions, pieces []Piece) {
	t.Helper()
	n := o.normalized()
	total := len(Tokenize(text))
	if total == 0 {
		if pieces != nil {
			t.Fatalf("Split(%q) = %v for a text without tokens", text, pieces)
		}
		return
	}
	covered := 0
	prevEnd := 0
	for i, p := range pieces {
		end := p.Start + len(p.Text)
		if p.Start < 0 || end > len(text) || text[p.Start:end] != p.Text {
			t.Fatalf("piece %d (%q at %d) is not the text there", i, p.Text, p.Start)
		}
		if p.Text == "" || strings.TrimSpace(p.Text) != p.Text {
			t.Fatalf("piece %d %q is empty or not trimmed", i, p.Text)
		}
		if got := len(Tokenize(p.Text)); got != p.Tokens {
			t.Fatalf("piece %d %q: Tokens = %d, Tokenize gives %d", i, p.Text, p.Tokens, got)
		}
		if p.Tokens < 1 || p.Tokens > n.Max {
			t.Fatalf("piece %d has %d tokens, want 1..%d", i, p.Tokens, n.Max)
		}
		if p.Tokens > n.Target && wordyParagraphs(p.Text) > 1 {
			t.Fatalf("piece %d packs paragraphs past Target: %d > %d tokens", i, p.Tokens, n.Target)
		}
		if i == 0 {
			if lead := Tokenize(text[:p.Start]); len(lead) != 0 {
				t.Fatalf("tokens %q before the first piece", lead)
			}
			covered += p.Tokens
			prevEnd = end
			continue
		}
		prev := pieces[i-1]
		if p.Start <= prev.Start || end <= prevEnd {
			t.Fatalf("piece %d [%d,%d) does not move past piece %d [%d,%d)", i, p.Start, end, i-1, prev.Start, prevEnd)
		}
		if p.Start < prevEnd {
			// Overlap: only inside a paragraph, and exactly n.Overlap tokens.
			shared := text[p.Start:prevEnd]
			if got := len(Tokenize(shared)); got != n.Overlap {
				t.Fatalf("pieces %d and %d share %q: %d tokens, want %d", i-1, i, shared, got, n.Overlap)
			}
			if blankLine.MatchString(shared) {
				t.Fatalf("pieces %d and %d overlap across a paragraph break", i-1, i)
			}
			covered += p.Tokens - n.Overlap
		} else {
			gap := text[prevEnd:p.Start]
			if toks := Tokenize(gap); len(toks) != 0 {
				t.Fatalf("tokens %q between pieces %d and %d", toks, i-1, i)
			}
			if n.Overlap > 0 && !blankLine.MatchString(gap) {
				t.Fatalf("pieces %d and %d neither overlap nor meet at a paragraph break: gap %q", i-1, i, gap)
			}
			covered += p.Tokens
		}
		prevEnd = end
	}
	if tail := Tokenize(text[prevEnd:]); len(tail) != 0 {
		t.Fatalf("tokens %q after the last piece", tail)
	}
	if covered != total {
		t.Fatalf("pieces cover %d tokens, text has %d", covered, total)
	}
	if again := Split(text, o); !cmp.Equal(again, pieces) {
		t.Fatalf("Split is not deterministic")
	}
	// Cut without overlap, the pieces' terms are the text's terms.
	if n.Overlap == 0 {
		var terms []string
		for _, p := range pieces {
			terms = append(terms, Tokenize(p.Text)...)
		}
		if want := Tokenize(text); !slicesEqual(terms, want) {
			t.Fatalf("terms of the pieces differ from the terms of the text")
		}
	}
}

var asciiToken = regexp.MustCompile(`[A-Za-z0-9]+`)

// genDoc makes a document of paragraphs of sentences of ASCII words, some
// paragraphs far longer than any Max used, with varied white space and
// punctuation.
func genDoc(r *rand.Rand) string {
	words := []string{"evidence", "vault", "the", "a", "of", "Chain", "custody", "hash", "running", "runs", "seal", "2024", "x7", "quoted", "Report", "key", "index", "records", "was", "signed"}
	var b strings.Builder
	if r.IntN(3) == 0 {
		b.WriteString(" \n\t")
	}
	paras := 1 + r.IntN(8)
	for p := range paras {
		if p > 0 {
			b.WriteString([]string{"\n\n", "\n  \n", "\r\n\r\n", "\n\n\n", "\n\t\n"}[r.IntN(5)])
		}
		sentences := 1 + r.IntN(6)
		if r.IntN(4) == 0 {
			sentences = 20 + r.IntN(60) // a long paragraph
		}
		for s := range sentences {
			if s > 0 {
				b.WriteString([]string{" ", "  ", "\n", " "}[r.IntN(4)])
			}
			if r.IntN(8) == 0 {
				b.WriteString("(")
			}
			nw := 1 + r.IntN(15)
			for w := range nw {
				if w > 0 {
					b.WriteString([]string{" ", " ", " ", ", ", " - ", "\t", "/"}[r.IntN(7)])
				}
				b.WriteString(words[r.IntN(len(words))])
			}
			b.WriteString([]string{".", ".", "!", "?", ".\"", ")", ";", ""}[r.IntN(8)])
		}
	}
	if r.IntN(3) == 0 {
		b.WriteString("\n \n")
	}
	return b.String()
}

func TestSplitProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 7))
	options := []ChunkOptions{DefaultChunkOptions, {Target: 20, Overlap: 5, Max: 30}, {Target: 8, Overlap: 0, Max: 8}, {Target: 3, Overlap: 1, Max: 6}}
	overlaps, cuts := 0, 0
	for i := range 400 {
		text := genDoc(r)
		o := options[i%len(options)]
		if i%5 == 4 {
			t := 1 + r.IntN(40)
			o = ChunkOptions{Target: t, Overlap: r.IntN(t + 2), Max: t + r.IntN(40)}
		}
		pieces := Split(text, o)
		checkSplit(t, text, o, pieces)

		// Every token, found by a regexp (the documents are plain ASCII
		// with no apostrophes), lies inside a piece, and no piece edge
		// falls inside a token.
		for _, loc := range asciiToken.FindAllStringIndex(text, -1) {
			inside := false
			for _, p := range pieces {
				s, e := p.Start, p.Start+len(p.Text)
				if s <= loc[0] && loc[1] <= e {
					inside = true
				}
				if loc[0] < s && s < loc[1] || loc[0] < e && e < loc[1] {
					t.Fatalf("doc %d: piece [%d,%d) cuts token %q", i, s, e, text[loc[0]:loc[1]])
				}
			}
			if !inside {
				t.Fatalf("doc %d: token %q at %d is in no piece", i, text[loc[0]:loc[1]], loc[0])
			}
		}
		for j := 1; j < len(pieces); j++ {
			if pieces[j].Start < pieces[j-1].Start+len(pieces[j-1].Text) {
				overlaps++
			}
		}
		cuts += len(pieces)
	}
	// The generator must exercise long paragraphs, or the overlap checks
	// above checked nothing.
	if overlaps < 100 {
		t.Fatalf("only %d overlapping piece pairs in %d pieces; the generator is too tame", overlaps, cuts)
	}
}
