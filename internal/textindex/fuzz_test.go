package textindex

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzTokenize checks that Tokenize never panics, that its terms are
// valid, non-empty and short enough, and that it is idempotent: the terms,
// joined by spaces, tokenize to themselves.
func FuzzTokenize(f *testing.F) {
	for _, s := range []string{
		"", "Hello, World!", "Straße ÉCOLE E\u0301COLE", "Привет мир", "東京タワーに行きました",
		"don't O'Neill's it’s 'x'", "ab\xffcd\xc3", "½ ﷺ ゟ ﬁle Ａｂｃ x²", "\u0301abc 東\uFE00京",
		"connections running studies happily agreed", strings.Repeat("a", 70), "İSTANBUL ǅemal ᾼ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkTerms(t, s, Tokenize(s))
	})
}

// FuzzSplit checks the properties of Split (see checkSplit) on any text
// and options.
func FuzzSplit(f *testing.F) {
	f.Add("One two. Three four five.\n\nSix seven.\n \nEight nine ten eleven twelve. Thirteen fourteen fifteen.", 4, 1, 5)
	f.Add("東京都に行きました。大阪も！", 2, 1, 3)
	f.Add("a\xffb \u0301c d'e f’g\n\n\n(h) \"i.\" j", 2, 0, 2)
	f.Add("  \t\r\n\r\n x  ", 1, 0, 1)
	f.Add(strings.Repeat("word ", 100)+"end.", 0, 0, 0)
	f.Fuzz(func(t *testing.T, s string, target, overlap, maxTokens int) {
		// Small options, so small inputs still cut paragraphs.
		o := ChunkOptions{Target: target % 50, Overlap: overlap % 50, Max: maxTokens % 100}
		checkSplit(t, s, o, Split(s, o))
		o.Overlap = 0
		checkSplit(t, s, o, Split(s, o))
	})
}

// FuzzDecodeTerms checks that DecodeTerms never panics, fails only with
// ErrMalformedTerms, and accepts only what EncodeTerms gives back
// byte for byte.
func FuzzDecodeTerms(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 1})
	f.Add(EncodeTerms([]TermFreq{{Term{1}, 1}, {Term{2}, 300}, {Term{0xff}, 1<<32 - 1}}))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{1, 0x80, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		tfs, err := DecodeTerms(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedTerms) {
				t.Fatalf("DecodeTerms(%x): error %v does not wrap ErrMalformedTerms", b, err)
			}
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("error %q is not valid UTF-8", err)
			}
			return
		}
		if again := EncodeTerms(tfs); !bytes.Equal(again, b) {
			t.Fatalf("DecodeTerms(%x) = %v, which encodes to %x", b, tfs, again)
		}
	})
}
