package apikey

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vaultcrux/vaultcrux/internal/keyring"
)

var update = flag.Bool("update", false, "rewrite the test vectors in testdata/")

func testPepper(fill byte) keyring.Secret {
	return keyring.NewSecret(bytes.Repeat([]byte{fill}, 32))
}

func newHasher(t testing.TB, pepper keyring.Secret) *Hasher {
	t.Helper()
	h, err := NewHasher(pepper)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func generate(t testing.TB) Token {
	t.Helper()
	tok, err := Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestNewHasherPepperLength(t *testing.T) {
	for _, n := range []int{0, 1, 16, 31} {
		if _, err := NewHasher(keyring.NewSecret(make([]byte, n))); err == nil {
			t.Errorf("pepper of %d bytes: got no error", n)
		}
	}
	for _, n := range []int{32, 64} {
		if _, err := NewHasher(keyring.NewSecret(make([]byte, n))); err != nil {
			t.Errorf("pepper of %d bytes: %v", n, err)
		}
	}
}

// TestHashConstruction checks the hash against the construction that the
// package documentation states, computed here with crypto/hmac directly.
func TestHashConstruction(t *testing.T) {
	pepper := testPepper(0x42)
	tok := generate(t)
	mac := hmac.New(sha256.New, pepper.Bytes())
	mac.Write([]byte("vaultcrux/apikey/v1\x00" + tok.ID + "\x00" + tok.Reveal()[22:]))
	want := mac.Sum(nil)
	if got := newHasher(t, pepper).Hash(tok); !bytes.Equal(got, want) {
		t.Errorf("Hash = %x, want %x", got, want)
	}
}

// vector is the format of testdata/hash_v1.json.
type vector struct {
	Comment string `json:"comment"`
	Pepper  string `json:"pepper"` // hex
	Random  string `json:"random"` // hex: the bytes Generate reads
	Key     string `json:"key"`
	Hash    string `json:"hash"` // hex
}

// TestVector pins the key format and hash construction to a stored vector:
// it fails if either changes. Run with -update to rewrite the vector after
// a deliberate change (which also needs a new domain string).
func TestVector(t *testing.T) {
	path := filepath.Join("testdata", "hash_v1.json")
	pepper := make([]byte, 32)
	for i := range pepper {
		pepper[i] = byte(i)
	}
	random := fixedRandom(42)

	tok, err := Generate(bytes.NewReader(random))
	if err != nil {
		t.Fatal(err)
	}
	got := vector{
		Comment: `HMAC-SHA-256(pepper, "vaultcrux/apikey/v1" || 0x00 || keyid || 0x00 || secret); key from Generate(random)`,
		Pepper:  hex.EncodeToString(pepper),
		Random:  hex.EncodeToString(random),
		Key:     tok.Reveal(),
		Hash:    hex.EncodeToString(newHasher(t, keyring.NewSecret(pepper)).Hash(tok)),
	}
	if *update {
		b, err := json.MarshalIndent(got, "", "\t")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want vector
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if got.Pepper != want.Pepper || got.Random != want.Random {
		t.Fatalf("test inputs differ from %s; run go test -update", path)
	}
	if got.Key != want.Key {
		t.Errorf("key: got %s, want %s", got.Key, want.Key)
	}
	if got.Hash != want.Hash {
		t.Errorf("hash: got %s, want %s", got.Hash, want.Hash)
	}
	// The stored key parses and verifies against the stored hash.
	parsed, err := Parse(want.Key)
	if err != nil {
		t.Fatalf("Parse(stored key): %v", err)
	}
	wantHash, err := hex.DecodeString(want.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if !newHasher(t, keyring.NewSecret(pepper)).Verify(parsed, wantHash) {
		t.Errorf("the stored key does not verify against the stored hash")
	}
}

func TestVerify(t *testing.T) {
	h := newHasher(t, testPepper(1))
	tok := generate(t)
	other := generate(t)
	hash := h.Hash(tok)

	// Same id, different secret: change the last secret character between
	// its two legal values.
	key := tok.Reveal()
	flip := map[byte]string{'a': "q", 'q': "a"}[key[73]]
	wrongSecret, err := Parse(key[:73] + flip)
	if err != nil {
		t.Fatal(err)
	}
	// Other key's id, this key's secret.
	wrongID, err := Parse("vcrx_" + other.ID + key[21:])
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := Parse(key)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		h    *Hasher
		tok  Token
		hash []byte
		want bool
	}{
		{"generated token", h, tok, hash, true},
		{"parsed token", h, parsed, hash, true},
		{"another hasher, same pepper", newHasher(t, testPepper(1)), parsed, hash, true},
		{"wrong secret", h, wrongSecret, hash, false},
		{"wrong id", h, wrongID, hash, false},
		{"another key", h, other, hash, false},
		{"wrong pepper", newHasher(t, testPepper(2)), parsed, hash, false},
		{"longer pepper with the same prefix", newHasher(t, keyring.NewSecret(bytes.Repeat([]byte{1}, 33))), parsed, hash, false},
		{"hash with a flipped bit", h, parsed, flipBit(hash, 255), false},
		{"truncated hash", h, parsed, hash[:31], false},
		{"hash with an extra byte", h, parsed, append(bytes.Clone(hash), 0), false},
		{"empty hash", h, parsed, []byte{}, false},
		{"nil hash", h, parsed, nil, false},
		{"zero Token, its own hash", h, Token{}, h.Hash(Token{}), false},
		{"id only, its own hash", h, Token{ID: tok.ID}, h.Hash(Token{ID: tok.ID}), false},
	}
	for _, tt := range tests {
		if got := tt.h.Verify(tt.tok, tt.hash); got != tt.want {
			t.Errorf("%s: Verify = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func flipBit(b []byte, bit int) []byte {
	b = bytes.Clone(b)
	b[bit/8] ^= 1 << (bit % 8)
	return b
}

func TestHashDeterministic(t *testing.T) {
	h := newHasher(t, testPepper(1))
	tok := generate(t)
	first := h.Hash(tok)
	if len(first) != sha256.Size {
		t.Fatalf("len(Hash) = %d, want %d", len(first), sha256.Size)
	}
	for range 10 {
		if got := h.Hash(tok); !bytes.Equal(got, first) {
			t.Fatalf("Hash changed between calls: %x, then %x", first, got)
		}
	}
	first[0] ^= 0xff // the result is the caller's, not a pooled buffer
	if got := h.Hash(tok); bytes.Equal(got, first) {
		t.Fatalf("modifying a returned hash changed the next one")
	}
}

// TestVerifyConcurrent runs verifications of many keys at once, to let the
// race detector and mixed-up pooled states show themselves.
func TestVerifyConcurrent(t *testing.T) {
	h := newHasher(t, testPepper(7))
	const n = 8
	toks := make([]Token, n)
	hashes := make([][]byte, n)
	for i := range n {
		toks[i] = generate(t)
		hashes[i] = h.Hash(toks[i])
	}
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() {
			for i := range 500 {
				k := (g + i) % n
				if !h.Verify(toks[k], hashes[k]) {
					t.Errorf("goroutine %d: key %d does not verify", g, k)
					return
				}
				if h.Verify(toks[k], hashes[(k+1)%n]) {
					t.Errorf("goroutine %d: key %d verifies against key %d's hash", g, k, (k+1)%n)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestVerifyAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	h := newHasher(t, testPepper(1))
	tok := generate(t)
	hash := h.Hash(tok)
	if got := testing.AllocsPerRun(100, func() { h.Verify(tok, hash) }); got != 0 {
		t.Errorf("Verify allocates %v times, want 0", got)
	}
}

func BenchmarkParse(b *testing.B) {
	key := validKey(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h := newHasher(b, testPepper(1))
	tok := generate(b)
	hash := h.Hash(tok)
	b.ReportAllocs()
	for b.Loop() {
		if !h.Verify(tok, hash) {
			b.Fatal("does not verify")
		}
	}
}

func BenchmarkVerifyParallel(b *testing.B) {
	h := newHasher(b, testPepper(1))
	tok := generate(b)
	hash := h.Hash(tok)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !h.Verify(tok, hash) {
				b.Error("does not verify")
				return
			}
		}
	})
}
