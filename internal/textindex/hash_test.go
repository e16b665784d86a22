package textindex

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// vectors is testdata/terms_v1.json, computed outside Go.
type vectors struct {
	Key   string `json:"key"`
	Terms []struct {
		Term string `json:"term"`
		Hash string `json:"hash"`
	} `json:"terms"`
	Freqs   []uint32 `json:"freqs"`
	Encoded string   `json:"encoded"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/terms_v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testHasher(t testing.TB, seed byte) *Hasher {
	t.Helper()
	h, err := NewHasher(bytes.Repeat([]byte{seed}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestTermVectors(t *testing.T) {
	v := loadVectors(t)
	h, err := NewHasher(mustHex(t, v.Key))
	if err != nil {
		t.Fatal(err)
	}
	for _, tv := range v.Terms {
		got := h.Term(tv.Term)
		if want := mustHex(t, tv.Hash); !bytes.Equal(got[:], want) {
			t.Errorf("Term(%q) = %x, want %x", tv.Term, got, want)
		}
	}
}

func TestNewHasherKeyLength(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewHasher(make([]byte, n)); err == nil {
			t.Errorf("NewHasher(%d bytes) succeeded, want an error", n)
		}
	}
	if _, err := NewHasher(make([]byte, 32)); err != nil {
		t.Errorf("NewHasher(32 bytes) = %v", err)
	}
}

func TestHasherCopiesKey(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	h, err := NewHasher(key)
	if err != nil {
		t.Fatal(err)
	}
	before := h.Term("x")
	clear(key)
	if after := h.Term("x"); after != before {
		t.Fatalf("Term changed after the caller reused its key buffer: %x then %x", before, after)
	}
}

func TestHasherHidesKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xAB}, KeySize)
	h, err := NewHasher(key)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("hasher", "h", h)
	for _, s := range []string{fmt.Sprint(h), fmt.Sprintf("%+v", h), fmt.Sprintf("%#v", h), logged.String()} {
		if strings.Contains(s, "171") || strings.Contains(strings.ToLower(s), "abab") || !strings.Contains(s, "REDACTED") {
			t.Errorf("formatted Hasher = %q: want REDACTED and no key bytes", s)
		}
	}
}

func TestKeysSeparate(t *testing.T) {
	a, b := testHasher(t, 1), testHasher(t, 2)
	if a.Term("connection") == b.Term("connection") {
		t.Fatal("two keys give one Term")
	}
	if a.Term("connection") == a.Term("connections") {
		t.Fatal("two terms give one Term")
	}
}

func TestAnalyze(t *testing.T) {
	h := testHasher(t, 1)
	tfs, n := h.Analyze("The cats and THE cat. Running, runs!")
	if n != 7 {
		t.Errorf("length = %d, want 7", n)
	}
	want := map[Term]uint32{h.Term("the"): 2, h.Term("cat"): 2, h.Term("and"): 1, h.Term("run"): 2}
	got := map[Term]uint32{}
	for i, tf := range tfs {
		got[tf.Term] = tf.Freq
		if i > 0 && compareTerms(tfs[i-1].Term, tf.Term) >= 0 {
			t.Errorf("terms %d and %d out of order", i-1, i)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Analyze frequencies (-want +got):\n%s", diff)
	}
	if tfs, n := h.Analyze(" .,; "); tfs != nil || n != 0 {
		t.Errorf("Analyze of no words = %v, %d; want nil, 0", tfs, n)
	}
}

func TestAnalyzeMatchesTokenize(t *testing.T) {
	h := testHasher(t, 3)
	for _, text := range []string{
		"Straße ÉCOLE Привет 東京タワーに行きました don't ﬁle",
		strings.Repeat("alpha beta gamma beta ", 200),
		"x\xffy\xc3 z",
	} {
		terms := Tokenize(text)
		want := map[Term]uint32{}
		for _, term := range terms {
			want[h.Term(term)]++
		}
		tfs, n := h.Analyze(text)
		got := map[Term]uint32{}
		for _, tf := range tfs {
			got[tf.Term] = tf.Freq
		}
		if n != len(terms) {
			t.Errorf("Analyze(%.20q) length = %d, want %d", text, n, len(terms))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Analyze(%.20q) (-want +got):\n%s", text, diff)
		}
	}
}

func TestQueryTerms(t *testing.T) {
	h := testHasher(t, 1)
	got := h.QueryTerms("Cats cat dog CAT running run")
	want := []Term{h.Term("cat"), h.Term("dog"), h.Term("run")}
	if !slices.Equal(got, want) {
		t.Errorf("QueryTerms = %x, want %x", got, want)
	}
	if got := h.QueryTerms("?!"); got != nil {
		t.Errorf("QueryTerms of no words = %x, want nil", got)
	}
}

func TestHasherConcurrent(t *testing.T) {
	h := testHasher(t, 9)
	text := strings.Repeat("concurrent hashing of many words, words and more words ", 20)
	want, wantN := h.Analyze(text)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				got, n := h.Analyze(text)
				if n != wantN || !slices.Equal(got, want) {
					t.Error("concurrent Analyze differs")
					return
				}
				if q := h.QueryTerms("words hashing"); len(q) != 2 {
					t.Errorf("QueryTerms gave %d terms, want 2", len(q))
					return
				}
			}
		})
	}
	wg.Wait()
}
