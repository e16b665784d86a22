package textindex

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxTermBytes is the length, in bytes of UTF-8, of the longest term that
// Tokenize keeps. Longer runs (hashes, base64, URLs run together) are noise
// to a keyword search and are dropped.
const MaxTermBytes = 64

// Tokenize returns the terms of text in order, as the package
// documentation describes: words are found on the raw text, each word is
// NFKC-normalised and lower-cased, leading combining marks are dropped, a
// word then longer than MaxTermBytes is dropped, and an all-ASCII-letter
// word is stemmed. Tokenize never fails: invalid UTF-8 separates words. Tokenizing
// the terms again, joined by spaces, gives the same terms. A returned term
// may share memory with text.
func Tokenize(text string) []string {
	var terms []string
	sc := scanner{text: text}
	for sc.next() {
		if !sc.ok {
			continue
		}
		if terms == nil {
			terms = make([]string, 0, len(text)/6+1)
		}
		terms = append(terms, sc.termString())
	}
	return terms
}

// scanner walks text word by word. After next reports true, [start, end) is
// the word's span in text; ok reports whether it yields a term, which is
// then term.
//
// A word's span depends only on the runes inside it and on the one rune
// after it, and every word starts at a rune that is a word start in any
// context. So cutting text between two words (Split does) leaves every word
// and its term unchanged.
type scanner struct {
	text       string
	pos        int
	start, end int
	ok         bool
	term       []byte
	// countOnly lets next skip building the term when it only has to tell
	// whether there is one.
	countOnly bool
	raw       []byte
}

// next advances to the next word; it reports false at the end of text.
func (sc *scanner) next() bool {
	text := sc.text
	i := sc.pos
	// Find a word start.
	var r rune
	size := 0
	for i < len(text) {
		if c := text[i]; c < utf8.RuneSelf {
			if asciiWord[c] {
				r, size = rune(c), 1
				break
			}
			i++
			continue
		}
		r, size = utf8.DecodeRuneInString(text[i:])
		if isWordRune(r, text[i:i+size]) {
			break
		}
		i += size
	}
	if i >= len(text) {
		sc.pos = i
		return false
	}
	sc.start = i
	han := r >= utf8.RuneSelf && isHanLike(r)
	nonASCII := r >= utf8.RuneSelf
	apostrophes := false
	i += size
	for i < len(text) {
		c := text[i]
		if c < utf8.RuneSelf {
			if han {
				break
			}
			if asciiWord[c] {
				i++
				continue
			}
			if c == '\'' && i+1 < len(text) && continuesAfterApostrophe(text[i+1:]) {
				apostrophes = true
				i++
				continue
			}
			break
		}
		r, size = utf8.DecodeRuneInString(text[i:])
		if !isWordRune(r, text[i:i+size]) {
			if r == '\u2019' && !han && continuesAfterApostrophe(text[i+size:]) {
				apostrophes, nonASCII = true, true
				i += size
				continue
			}
			break
		}
		if !unicode.IsMark(r) && (han || isHanLike(r)) {
			break // an ideograph or kana is a word of its own
		}
		nonASCII = true
		i += size
	}
	sc.end, sc.pos = i, i
	sc.makeTerm(nonASCII, apostrophes)
	return true
}

// continuesAfterApostrophe reports whether an apostrophe followed by rest
// sits inside a word ("don't", "O'Neill", "it’s"): rest must start with a
// letter or digit that is not an ideograph or kana.
func continuesAfterApostrophe(rest string) bool {
	if rest == "" {
		return false
	}
	if c := rest[0]; c < utf8.RuneSelf {
		return asciiWord[c]
	}
	r, size := utf8.DecodeRuneInString(rest)
	return isWordRune(r, rest[:size]) && !unicode.IsMark(r) && !isHanLike(r)
}

// makeTerm builds the term of text[sc.start:sc.end].
func (sc *scanner) makeTerm(nonASCII, apostrophes bool) {
	word := sc.text[sc.start:sc.end]
	if !nonASCII {
		n := len(word)
		if apostrophes {
			for i := 0; i < len(word); i++ {
				if word[i] == '\'' {
					n--
				}
			}
		}
		// Length is checked before stemming: it bounds the stemmer's work,
		// and a long run of letters is not a word however it ends.
		if n > MaxTermBytes || sc.countOnly {
			sc.ok = n <= MaxTermBytes
			return
		}
		b := sc.term[:0]
		letters := true
		for i := 0; i < len(word); i++ {
			c := word[i]
			switch {
			case c == '\'':
				continue
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			case '0' <= c && c <= '9':
				letters = false
			}
			b = append(b, c)
		}
		if letters {
			b = stem(b)
		}
		sc.term, sc.ok = b, true
		return
	}
	sc.term = sc.normalize(word, apostrophes)
	sc.ok = len(sc.term) > 0
}

// normalize returns the term of a word that holds non-ASCII runes.
func (sc *scanner) normalize(word string, apostrophes bool) []byte {
	raw := sc.raw[:0]
	if apostrophes {
		for _, r := range word {
			if r != '\'' && r != '\u2019' {
				raw = utf8.AppendRune(raw, r)
			}
		}
	} else {
		raw = append(raw, word...)
	}
	// Lower-casing can undo NFKC (rarely); repeat until both hold. Two
	// rounds settle every case seen; the bound only guards termination.
	out := sc.term[:0]
	settled := norm.NFKC.IsNormal(raw) && isLower(raw)
	for range 4 {
		if settled {
			break
		}
		out = norm.NFKC.Append(out[:0], raw...)
		lower := raw[:0]
		for _, r := range string(out) {
			lower = utf8.AppendRune(lower, unicode.ToLower(r))
		}
		raw, out = lower, out[:0]
		settled = norm.NFKC.IsNormal(raw)
	}
	// Keep letters, digits and marks, dropping marks that lead. What NFKC
	// makes of word runes is word runes, so this only guards the
	// one-term-per-word rule that Split relies on.
	out = out[:0]
	letters := true // ASCII letters only
	for _, r := range string(raw) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if r >= utf8.RuneSelf || !('a' <= r && r <= 'z') {
				letters = false
			}
		case unicode.IsMark(r):
			if len(out) == 0 {
				continue
			}
			letters = false
		default:
			continue
		}
		out = utf8.AppendRune(out, r)
	}
	sc.raw = raw
	if len(out) > MaxTermBytes {
		return out[:0]
	}
	if letters && len(out) > 0 {
		out = stem(out)
	}
	return out
}

func isLower(b []byte) bool {
	for _, r := range string(b) {
		if unicode.ToLower(r) != r {
			return false
		}
	}
	return true
}

// termString returns the current term as a string, sharing text's memory
// when the term is spelled there as it stands.
func (sc *scanner) termString() string {
	if n := len(sc.term); sc.start+n <= len(sc.text) && sc.text[sc.start:sc.start+n] == string(sc.term) {
		return sc.text[sc.start : sc.start+n]
	}
	return string(sc.term)
}

// asciiWord marks the ASCII letters and digits.
var asciiWord = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
	}
	return t
}()

// isWordRune reports whether r, spelled s in the text, may be part of a
// word: a letter, a decimal digit or a combining mark, whose compatibility
// decomposition (what NFKC makes of it) is made of such runes only and
// keeps it in its class (ideograph or kana, or not). A rune that NFKC
// would split into words (U+FDFA, "½") or turn into kana ("ゟ") is a
// separator, so a word yields at most one term.
func isWordRune(r rune, s string) bool {
	if r < utf8.RuneSelf {
		return asciiWord[r]
	}
	if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) {
		return false
	}
	d := norm.NFKC.PropertiesString(s).Decomposition()
	if len(d) == 0 {
		return true
	}
	han := isHanLike(r)
	base := 0
	for _, dr := range string(d) {
		if unicode.IsMark(dr) {
			continue
		}
		if !unicode.IsLetter(dr) && !unicode.IsDigit(dr) || isHanLike(dr) != han {
			return false
		}
		base++
	}
	return !han || base == 1
}

// isHanLike reports whether r is an ideograph or a hiragana letter: scripts
// written without spaces, where each such letter is a term of its own.
func isHanLike(r rune) bool {
	return r >= 0x3040 && (unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r))
}
