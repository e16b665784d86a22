package textindex

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestTokenize(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"empty", "", nil},
		{"no words", " \t\n.,;:!?()[]{}-—–…", nil},
		{"case", "Hello WORLD", []string{"hello", "world"}},
		{"sharp s is lower-cased, not folded", "Straße STRASSE", []string{"straße", "strass"}},
		{"precomposed accent", "ÉCOLE", []string{"école"}},
		{"decomposed accent composes", "E\u0301COLE", []string{"école"}},
		{"accented words are not stemmed", "écoles", []string{"écoles"}},
		{"cyrillic", "Привет, МИР!", []string{"привет", "мир"}},
		{"greek", "ΚΑΛΗΜΕΡΑ κόσμε", []string{"καλημερα", "κόσμε"}},
		{"han and hiragana one by one, katakana runs", "東京タワーに行きました", []string{"東", "京", "タワー", "に", "行", "き", "ま", "し", "た"}},
		{"han next to latin", "abc東xyz", []string{"abc", "東", "xyz"}},
		{"hangul words", "안녕하세요 세계", []string{"안녕하세요", "세계"}},
		{"mixed scripts in one word", "abcДЕФ", []string{"abcдеф"}},
		{"digits", "Version 2.0.1 of 1990s COVID19 ٣", []string{"version", "2", "0", "1", "of", "1990s", "covid19", "٣"}},
		{"punctuation", "well-known e-mail (test)!", []string{"well", "known", "e", "mail", "test"}},
		{"apostrophe inside a word", "don't O'Neill's it’s", []string{"dont", "oneill", "its"}},
		{"apostrophes at the edges", "'quoted' rock''n 'n'", []string{"quot", "rock", "n", "n"}},
		{"apostrophe before ideograph", "a'東", []string{"a", "東"}},
		{"invalid UTF-8 separates", "ab\xffcd\xc3", []string{"ab", "cd"}},
		{"invalid UTF-8 only", "\xe2\x80\xff\xfe", nil},
		{"replacement character separates", "ab\uFFFDcd", []string{"ab", "cd"}},
		{"compatibility forms", "ﬁle Ａｂｃ x²", []string{"file", "abc", "x"}},
		{"marks leading a word are dropped", "\u0301abc", []string{"abc"}},
		{"variation selector stays with its ideograph", "東\uFE00京", []string{"東\uFE00", "京"}},
		{"splitting compatibility letters separate", "½ ﷺ ゟ", nil},
		{"stemming", "Connections running CREATED studies", []string{"connection", "run", "creat", "study"}},
		{"short words untouched", "is as us was has its bus yes sing", []string{"is", "as", "us", "was", "has", "its", "bus", "yes", "sing"}},
		{"64 bytes kept", strings.Repeat("a", 64), []string{strings.Repeat("a", 64)}},
		{"65 bytes dropped", strings.Repeat("a", 65) + " ok", []string{"ok"}},
		{"length counts before stemming", strings.Repeat("a", 62) + "ing", nil},
		{"64 bytes stemmed", strings.Repeat("a", 61) + "ing", []string{strings.Repeat("a", 61)}},
		{"apostrophes do not count", strings.Repeat("a", 32) + "'" + strings.Repeat("b", 32), []string{strings.Repeat("a", 32) + strings.Repeat("b", 32)}},
		{"long runs of suffixes are dropped, not stemmed", strings.Repeat("ing", 1000), nil},
		{"64 bytes of non-ASCII kept", strings.Repeat("é", 32), []string{strings.Repeat("é", 32)}},
		{"66 bytes of non-ASCII dropped", strings.Repeat("é", 33), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Tokenize(tt.text)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Tokenize(%q) mismatch (-want +got):\n%s", tt.text, diff)
			}
			checkTerms(t, tt.text, got)
		})
	}
}

// checkTerms asserts what holds of every Tokenize result: terms are valid
// UTF-8, non-empty, at most MaxTermBytes, and tokenizing them again gives
// them back.
func checkTerms(t *testing.T, text string, terms []string) {
	t.Helper()
	for _, term := range terms {
		if term == "" || len(term) > MaxTermBytes || !utf8.ValidString(term) {
			t.Fatalf("Tokenize(%q) has term %q (%d bytes)", text, term, len(term))
		}
	}
	joined := strings.Join(terms, " ")
	if again := Tokenize(joined); !slicesEqual(again, terms) {
		t.Fatalf("Tokenize(%q) = %q, but Tokenize of those joined = %q", text, terms, again)
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func stemString(w string) string { return string(stem([]byte(w))) }

func TestStem(t *testing.T) {
	tests := []struct{ word, want string }{
		{"connections", "connection"},
		{"connection", "connection"},
		{"running", "run"},
		{"runs", "run"},
		{"run", "run"},
		{"classes", "class"},
		{"studies", "study"},
		{"ties", "tie"},
		{"boxes", "box"},
		{"status", "status"},
		{"analysis", "analysis"},
		{"agreed", "agree"},
		{"speed", "speed"},
		{"studied", "study"},
		{"stopped", "stop"},
		{"hoped", "hope"},
		{"hopped", "hop"},
		{"falling", "fall"},
		{"missing", "miss"},
		{"fixing", "fix"},
		{"making", "make"},
		{"crying", "cry"},
		{"happily", "happy"},
		{"quickly", "quick"},
		{"create", "creat"},
		{"added", "add"},
	}
	for _, tt := range tests {
		if got := stemString(tt.word); got != tt.want {
			t.Errorf("stem(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}

func TestStemFamiliesMeet(t *testing.T) {
	families := [][]string{
		{"connection", "connections"},
		{"run", "runs", "running"},
		{"create", "creates", "created", "creating"},
		{"study", "studies", "studied", "studying"},
		{"hope", "hopes", "hoped", "hoping"},
		{"make", "makes", "making"},
		{"stop", "stops", "stopped", "stopping"},
		{"agree", "agrees", "agreed"},
		{"box", "boxes"},
		{"class", "classes"},
		{"quick", "quickly"},
		{"happy", "happily"},
		{"cause", "causes", "caused", "causing"},
		{"include", "includes", "included", "including"},
		{"write", "writes"},
		{"user", "users", "user's"},
	}
	for _, fam := range families {
		want := Tokenize(fam[0])
		for _, w := range fam[1:] {
			if got := Tokenize(w); !slicesEqual(got, want) {
				t.Errorf("Tokenize(%q) = %q, want %q like Tokenize(%q)", w, got, want, fam[0])
			}
		}
	}
}

func TestStemLeavesShortWords(t *testing.T) {
	for _, w := range []string{"a", "is", "as", "us", "go", "was", "has", "its", "bus", "yes", "the", "red", "bed", "fly", "sing", "king", "thing", "bring", "ink", "only", "early", "this", "less", "need", "make"} {
		if got := stemString(w); got != w {
			t.Errorf("stem(%q) = %q, want it unchanged", w, got)
		}
	}
}

// TestStemIdempotent checks stem(stem(w)) == stem(w) on every lower-case
// ASCII word of up to four letters and on suffixed forms of a word list.
func TestStemIdempotent(t *testing.T) {
	var words []string
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		if prefix != "" {
			words = append(words, prefix)
		}
		if n == 0 {
			return
		}
		for c := 'a'; c <= 'z'; c++ {
			gen(prefix+string(c), n-1)
		}
	}
	gen("", 4)
	bases := []string{"run", "hop", "stop", "create", "study", "fly", "box", "class", "agree", "see", "speed", "happy", "make", "fall", "buzz", "tie", "free", "eye", "access", "process", "analysis"}
	for _, b := range bases {
		for _, suf := range []string{"", "s", "es", "ies", "ed", "ied", "eed", "ing", "ings", "ly", "ily", "edly", "ingly", "e", "ness", "sses"} {
			words = append(words, b+suf)
		}
	}
	for _, w := range words {
		once := stemString(w)
		if twice := stemString(once); twice != once {
			t.Errorf("stem(%q) = %q but stem(%q) = %q", w, once, once, twice)
		}
		if len(once) == 0 {
			t.Errorf("stem(%q) is empty", w)
		}
	}
}

func TestTokenizeSharesNoScratch(t *testing.T) {
	// Terms built in the scanner's buffer must be copied out: the buffer
	// is reused for the next word.
	got := Tokenize("RUNNING JUMPING Walking")
	want := []string{"run", "jump", "walk"}
	if !slicesEqual(got, want) {
		t.Fatalf("Tokenize = %q, want %q", got, want)
	}
}
