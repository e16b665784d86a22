package textindex

import (
	"unicode"
	"unicode/utf8"
)

// Piece is one chunk of a document.
type Piece struct {
	Text   string // text[Start:Start+len(Text)], so quotes can be found in it
	Start  int    // byte offset of Text in the document
	Tokens int    // len(Tokenize(Text))
}

// ChunkOptions sizes the pieces of Split, in tokens (Tokenize terms).
type ChunkOptions struct {
	Target  int // paragraphs are packed into a piece up to this many tokens
	Overlap int // tokens a piece repeats from the previous one when a paragraph is cut
	Max     int // a paragraph longer than this is cut; no piece is longer
}

// DefaultChunkOptions suits BM25 over evidence documents: pieces of a few
// paragraphs, small enough that a hit points at a quotable passage.
var DefaultChunkOptions = ChunkOptions{Target: 512, Overlap: 64, Max: 768}

// normalized returns o made usable: the zero ChunkOptions means
// DefaultChunkOptions; otherwise Target is at least 1, Max at least
// Target, and Overlap between 0 and Target/2, so every cut moves forward.
func (o ChunkOptions) normalized() ChunkOptions {
	if o == (ChunkOptions{}) {
		return DefaultChunkOptions
	}
	o.Target = max(o.Target, 1)
	o.Max = max(o.Max, o.Target)
	o.Overlap = min(max(o.Overlap, 0), o.Target/2)
	return o
}

// Split cuts text into pieces for indexing, as the package documentation
// describes under "Chunking". Pieces come in document order; each is a
// trimmed, non-empty substring of text holding at least one token and at
// most o.Max tokens, and together they hold every token of text. Text with
// no tokens yields no pieces.
func Split(text string, o ChunkOptions) []Piece {
	o = o.normalized()
	words, end := scanWords(text)
	if len(words) == 0 {
		return nil
	}
	var pieces []Piece
	emit := func(a, b int) {
		start := words[a].begin
		stop := end
		if b < len(words) {
			stop = words[b].cut
		}
		pieces = append(pieces, Piece{Text: text[start:stop], Start: start, Tokens: b - a})
	}
	cs, ce := -1, -1 // the words of the piece being packed
	for ps := 0; ps < len(words); {
		pe := ps + 1
		for pe < len(words) && !words[pe].para {
			pe++
		}
		switch n := pe - ps; {
		case n <= o.Max:
			if cs >= 0 && ce-cs+n <= o.Target {
				ce = pe
				break
			}
			if cs >= 0 {
				emit(cs, ce)
			}
			cs, ce = ps, pe
		default:
			if cs >= 0 {
				emit(cs, ce)
			}
			a := ps
			for pe-a > o.Target {
				b := cutAt(words, a, o)
				emit(a, b)
				a = b - o.Overlap
			}
			// The paragraph's tail may take the next paragraphs in.
			cs, ce = a, pe
		}
		ps = pe
	}
	emit(cs, ce)
	return pieces
}

// cutAt returns where a piece that starts at word a of a long paragraph
// ends: after the last sentence end that leaves it at most o.Target words
// and more than max(o.Target/2, o.Overlap) words, or else after exactly
// o.Target words. The caller ensures that the paragraph has more than
// o.Target words left.
func cutAt(words []word, a int, o ChunkOptions) int {
	limit := a + o.Target
	for b := limit; b > a+max(o.Target/2, o.Overlap); b-- {
		if words[b].sentence {
			return b
		}
	}
	return limit
}

// word is a token of the text being split, with what Split needs to know
// about the gap before it (from the end of the previous token).
type word struct {
	// begin is where a piece that starts with this word begins: after the
	// first run of white space in the gap, or at the word when the gap
	// has none; for the first word, the first non-space of the text.
	begin int
	// cut is where a piece that ends before this word ends: at the first
	// white space in the gap, or at the word when the gap has none.
	cut      int
	para     bool // the gap holds a blank line
	sentence bool // the gap holds a line break or a sentence end followed by space
}

// scanWords returns the tokens of text and the end of its last non-space
// rune. Words of the scanner that yield no term (marks alone, terms too
// long) count as gap, like punctuation.
func scanWords(text string) ([]word, int) {
	sc := scanner{text: text, countOnly: true}
	var words []word
	prev := 0 // end of the previous token
	for sc.next() {
		if !sc.ok {
			continue
		}
		w := scanGap(text, prev, sc.start)
		if len(words) == 0 {
			w.begin = firstNonSpace(text, 0, sc.start)
			w.para, w.sentence = false, false
		}
		words = append(words, w)
		prev = sc.end
	}
	if len(words) == 0 {
		return nil, 0
	}
	end := prev
	for i := prev; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		if !unicode.IsSpace(r) {
			end = i
		}
	}
	return words, end
}

// scanGap describes text[from:to], the gap before a word at to.
//
// Pieces are cut in a run of white space, trimmed of it: in the first run
// that holds a blank line, else the first that holds a line break, else the
// first run. So the punctuation that ends a paragraph or a line stays with
// it, and a gap without white space is cut at the word.
func scanGap(text string, from, to int) word {
	w := word{begin: to, cut: to}
	best := -1          // class of the chosen run: 0 spaces, 1 line break, 2 blank line
	run, class := -1, 0 // start and class of the current run of white space
	newline := false    // a line break seen, and only white space since
	stop := false       // a sentence-ending mark seen, and only closers since
	for i := from; i <= to; {
		r, size := rune(-1), 0
		if i < to {
			r, size = rune(text[i]), 1
			if r >= utf8.RuneSelf {
				r, size = utf8.DecodeRuneInString(text[i:])
			}
		}
		if r >= 0 && isSpace(r) {
			if run < 0 {
				run, class = i, 0
			}
			if r == '\n' {
				if newline {
					w.para, class = true, 2
				}
				class = max(class, 1)
				newline, w.sentence = true, true
			}
			w.sentence = w.sentence || stop
			i += size
			continue
		}
		if run >= 0 {
			if class > best {
				best, w.cut, w.begin = class, run, i
			}
			run = -1
		}
		if i == to {
			break
		}
		newline = false
		switch r {
		case '.', '!', '?':
			stop = true
		case '。', '！', '？':
			w.sentence = true
		case '"', '\'', ')', ']', '}', '»', '”', '’':
		default:
			stop = false
		}
		i += size
	}
	return w
}

// firstNonSpace returns the offset of the first rune in text[from:to] that
// is not white space, or to.
func firstNonSpace(text string, from, to int) int {
	for i := from; i < to; {
		r, size := rune(text[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(text[i:])
		}
		if !isSpace(r) {
			return i
		}
		i += size
	}
	return to
}

// isSpace is unicode.IsSpace with the common case first.
func isSpace(r rune) bool {
	switch r {
	case ' ', '\n', '\t', '\r':
		return true
	}
	return unicode.IsSpace(r)
}
