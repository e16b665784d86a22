package translog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/note"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testSigner is a Signer over an in-memory Ed25519 key.
type testSigner struct {
	kid  string
	priv ed25519.PrivateKey
}

func (s testSigner) KID() string               { return s.kid }
func (s testSigner) Public() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }
func (s testSigner) Sign(msg []byte) ([]byte, error) {
	return ed25519.Sign(s.priv, msg), nil
}

// newSigner makes a signer from a seed derived from name.
func newSigner(kid, name string) testSigner {
	seed := sha256.Sum256([]byte("translog test key " + name))
	return testSigner{kid, ed25519.NewKeyFromSeed(seed[:])}
}

// funcSigner lets a test choose each method's result.
type funcSigner struct {
	kid  string
	pub  ed25519.PublicKey
	sign func([]byte) ([]byte, error)
}

func (s funcSigner) KID() string                     { return s.kid }
func (s funcSigner) Public() ed25519.PublicKey       { return s.pub }
func (s funcSigner) Sign(msg []byte) ([]byte, error) { return s.sign(msg) }

const testKID = "vaultcrux-signing:v1"

// goldenSigner is the key of testdata/checkpoint.golden: seed 00 01 … 1f.
func goldenSigner() testSigner {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	return testSigner{testKID, ed25519.NewKeyFromSeed(seed)}
}

var testTime = time.Date(2025, 6, 1, 12, 34, 56, 789_000_000, time.UTC)

func testCheckpoint(t testing.TB) Checkpoint {
	t.Helper()
	tr, _ := buildStore(t, receipts(7))
	root, err := tr.Root()
	if err != nil {
		t.Fatal(err)
	}
	return Checkpoint{Origin: Origin("acme-prod"), Size: 7, Root: root, Time: testTime}
}

func sign(t testing.TB, c Checkpoint, s Signer) []byte {
	t.Helper()
	b, err := SignCheckpoint(c, s)
	if err != nil {
		t.Fatalf("SignCheckpoint: %v", err)
	}
	return b
}

func TestCheckpointText(t *testing.T) {
	root := Hash{0: 0xfb, 31: 0x01}
	tests := []struct {
		name string
		c    Checkpoint
		text string
		back Checkpoint // what ParseCheckpointText gives back
	}{
		{
			name: "plain",
			c:    Checkpoint{Origin: "vaultcrux/tenant/acme", Size: 12345, Root: root, Time: testTime},
			text: "vaultcrux/tenant/acme\n12345\n+wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=\ntime 2025-06-01T12:34:56.789Z\n",
		},
		{
			name: "empty log",
			c:    Checkpoint{Origin: "vaultcrux/tenant/0", Size: 0, Root: emptyRoot, Time: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)},
			text: "vaultcrux/tenant/0\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\ntime 2000-01-01T00:00:00.000Z\n",
		},
		{
			name: "largest size",
			c:    Checkpoint{Origin: Origin("a_b-c"), Size: 1 << 56, Root: root, Time: testTime},
			text: "vaultcrux/tenant/a_b-c\n72057594037927936\n+wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=\ntime 2025-06-01T12:34:56.789Z\n",
		},
		{
			name: "time below a millisecond is truncated",
			c:    Checkpoint{Origin: Origin("acme"), Size: 1, Root: root, Time: testTime.Add(999_999)},
			text: "vaultcrux/tenant/acme\n1\n+wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=\ntime 2025-06-01T12:34:56.789Z\n",
			back: Checkpoint{Origin: Origin("acme"), Size: 1, Root: root, Time: testTime},
		},
		{
			name: "time in another zone is written in UTC",
			c:    Checkpoint{Origin: Origin("acme"), Size: 1, Root: root, Time: testTime.In(time.FixedZone("x", -7*3600))},
			text: "vaultcrux/tenant/acme\n1\n+wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=\ntime 2025-06-01T12:34:56.789Z\n",
			back: Checkpoint{Origin: Origin("acme"), Size: 1, Root: root, Time: testTime},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.c.Text()
			if got := string(text); got != tt.text {
				t.Fatalf("Text() = %q, want %q", got, tt.text)
			}
			got, err := ParseCheckpointText(text)
			if err != nil {
				t.Fatalf("ParseCheckpointText: %v", err)
			}
			want := tt.c
			if !tt.back.Time.IsZero() {
				want = tt.back
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("ParseCheckpointText(Text()) (-want +got):\n%s", diff)
			}
			if got.Time.Location() != time.UTC {
				t.Errorf("parsed time in %v, want UTC", got.Time.Location())
			}
			if again := got.Text(); !bytes.Equal(again, text) {
				t.Errorf("Text() of the parsed checkpoint = %q, want %q", again, text)
			}
		})
	}
}

func TestParseCheckpointTextRejects(t *testing.T) {
	good := string(testCheckpoint(t).Text())
	lines := strings.SplitAfter(good, "\n")[:4]
	with := func(i int, line string) string {
		l := append([]string(nil), lines...)
		l[i] = line
		return strings.Join(l, "")
	}
	root := strings.TrimSuffix(lines[2], "\n")
	tests := []struct {
		name, text string
	}{
		{"empty", ""},
		{"no final newline", strings.TrimSuffix(good, "\n")},
		{"CRLF", strings.ReplaceAll(good, "\n", "\r\n")},
		{"three lines", strings.Join(lines[:3], "")},
		{"extra line", good + "extra\n"},
		{"trailing blank line", good + "\n"},
		{"leading blank line", "\n" + good},
		{"text after the last newline", good + "x"},
		{"empty origin", with(0, "\n")},
		{"origin without tenant", with(0, "vaultcrux/tenant/\n")},
		{"other origin", with(0, "example.com/log\n")},
		{"origin with space", with(0, "vaultcrux/tenant/acme prod\n")},
		{"origin with trailing space", with(0, "vaultcrux/tenant/acme \n")},
		{"origin with tab", with(0, "vaultcrux/tenant/acme\t\n")},
		{"origin upper case", with(0, "vaultcrux/tenant/ACME\n")},
		{"origin with plus", with(0, "vaultcrux/tenant/a+b\n")},
		{"origin non-ASCII", with(0, "vaultcrux/tenant/acmé\n")},
		{"origin invalid UTF-8", with(0, "vaultcrux/tenant/\xff\n")},
		{"origin NUL", with(0, "vaultcrux/tenant/a\x00\n")},
		{"tenant too long", with(0, "vaultcrux/tenant/"+strings.Repeat("a", 64)+"\n")},
		{"size empty", with(1, "\n")},
		{"size leading zero", with(1, "07\n")},
		{"size zero twice", with(1, "00\n")},
		{"size plus sign", with(1, "+7\n")},
		{"size negative", with(1, "-7\n")},
		{"size minus zero", with(1, "-0\n")},
		{"size with space", with(1, " 7\n")},
		{"size hex", with(1, "0x7\n")},
		{"size underscore", with(1, "1_0\n")},
		{"size above 2^56", with(1, "72057594037927937\n")},
		{"size overflows int64", with(1, "9223372036854775808\n")},
		{"size 0 with another root", with(1, "0\n")},
		{"root empty", with(2, "\n")},
		{"root unpadded", with(2, strings.TrimSuffix(root, "=")+"\n")},
		{"root stray bits", with(2, root[:42]+nonCanonical(root[42])+"=\n")},
		{"root 31 bytes", with(2, base64.StdEncoding.EncodeToString(make([]byte, 31))+"\n")},
		{"root 33 bytes", with(2, base64.StdEncoding.EncodeToString(make([]byte, 33))+"\n")},
		{"root URL alphabet", with(2, base64.URLEncoding.EncodeToString([]byte(strings.Repeat("\xfb\xff", 16)))+"\n")},
		{"root hex", with(2, strings.Repeat("00", 32)+"\n")},
		{"root with space", with(2, " "+root+"\n")},
		{"time missing", with(3, "2025-06-01T12:34:56.789Z\n")},
		{"time key upper case", with(3, "Time 2025-06-01T12:34:56.789Z\n")},
		{"time two spaces", with(3, "time  2025-06-01T12:34:56.789Z\n")},
		{"time without milliseconds", with(3, "time 2025-06-01T12:34:56Z\n")},
		{"time with microseconds", with(3, "time 2025-06-01T12:34:56.789000Z\n")},
		{"time with centiseconds", with(3, "time 2025-06-01T12:34:56.78Z\n")},
		{"time with offset", with(3, "time 2025-06-01T12:34:56.789+00:00\n")},
		{"time lower-case z", with(3, "time 2025-06-01T12:34:56.789z\n")},
		{"time lower-case t", with(3, "time 2025-06-01t12:34:56.789Z\n")},
		{"time with space separator", with(3, "time 2025-06-01 12:34:56.789Z\n")},
		{"time comma", with(3, "time 2025-06-01T12:34:56,789Z\n")},
		{"time February 30", with(3, "time 2025-02-30T12:34:56.789Z\n")},
		{"time hour 24", with(3, "time 2025-06-01T24:00:00.000Z\n")},
		{"time leap second", with(3, "time 2016-12-31T23:59:60.000Z\n")},
		{"time five-digit year", with(3, "time 12025-06-01T12:34:56.789Z\n")},
		{"time negative year", with(3, "time -0001-06-01T12:34:56.789Z\n")},
		{"time trailing space", with(3, "time 2025-06-01T12:34:56.789Z \n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCheckpointText([]byte(tt.text))
			if err == nil {
				t.Fatalf("ParseCheckpointText(%q) = %+v, want an error", tt.text, c)
			}
			if !errors.Is(err, ErrCheckpointMalformed) {
				t.Fatalf("ParseCheckpointText(%q): %v, want ErrCheckpointMalformed", tt.text, err)
			}
		})
	}
}

// TestKeyHash checks our note.Signer against sumdb/note's own verifier: the
// key hash we sign with is the one note computes for VerifierKey, and a
// signed checkpoint opens with nothing but note's code.
func TestKeyHash(t *testing.T) {
	for _, kid := range []string{testKID, "vaultcrux-signing:v3", "k", "ключ:v1"} {
		s := newSigner(kid, kid)
		vkey, err := VerifierKey(kid, s.Public())
		if err != nil {
			t.Fatalf("VerifierKey(%q): %v", kid, err)
		}
		want, err := note.NewEd25519VerifierKey(kid, s.Public())
		if err != nil {
			t.Fatal(err)
		}
		if vkey != want {
			t.Errorf("VerifierKey(%q) = %q, want %q", kid, vkey, want)
		}
		if got, want := vkey, kid+"+"; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "+"+base64.StdEncoding.EncodeToString(append([]byte{1}, s.Public()...))) {
			t.Errorf("VerifierKey(%q) = %q, want %q<hash>+base64(0x01||pub)", kid, got, want)
		}
		v, err := note.NewVerifier(vkey)
		if err != nil {
			t.Fatalf("note.NewVerifier(%q): %v", vkey, err)
		}
		ns, err := newNoteSigner(s)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ns.KeyHash(), v.KeyHash(); got != want {
			t.Errorf("kid %q: KeyHash() = %08x, want note's %08x", kid, got, want)
		}
		if got, want := ns.Name(), v.Name(); got != want {
			t.Errorf("Name() = %q, want %q", got, want)
		}

		c := testCheckpoint(t)
		n, err := note.Open(sign(t, c, s), note.VerifierList(v))
		if err != nil {
			t.Fatalf("kid %q: note.Open: %v", kid, err)
		}
		if got, want := n.Text, string(c.Text()); got != want {
			t.Errorf("note text = %q, want %q", got, want)
		}
	}
}

func TestVerifierKeyRejects(t *testing.T) {
	pub := newSigner(testKID, "a").Public()
	tests := []struct {
		name string
		kid  string
		pub  ed25519.PublicKey
	}{
		{"empty kid", "", pub},
		{"kid with space", "vaultcrux signing:v1", pub},
		{"kid with plus", "vaultcrux+signing:v1", pub},
		{"kid with newline", "vaultcrux-signing:v1\n", pub},
		{"kid invalid UTF-8", "vaultcrux-signing:\xff", pub},
		{"short key", testKID, pub[:31]},
		{"long key", testKID, append(pub, 0)},
		{"no key", testKID, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := VerifierKey(tt.kid, tt.pub); err == nil {
				t.Errorf("VerifierKey(%q, %d bytes) = %q, want an error", tt.kid, len(tt.pub), got)
			}
			s := funcSigner{tt.kid, tt.pub, func([]byte) ([]byte, error) { return make([]byte, 64), nil }}
			if _, err := SignCheckpoint(testCheckpoint(t), s); err == nil {
				t.Errorf("SignCheckpoint with kid %q, %d-byte key succeeded, want an error", tt.kid, len(tt.pub))
			}
			if _, _, err := OpenCheckpoint([]byte("x"), map[string]ed25519.PublicKey{tt.kid: tt.pub}); err == nil ||
				errors.Is(err, ErrCheckpointSignature) || errors.Is(err, ErrCheckpointMalformed) {
				t.Errorf("OpenCheckpoint with key %q: %v, want a key error", tt.kid, err)
			}
		})
	}
}

// TestCheckpointGolden pins the checkpoint format, the tree hashing and the
// note signature to a stored signed checkpoint. Ed25519 signing is
// deterministic, so the bytes are stable. Run with -update after a
// deliberate change of format.
func TestCheckpointGolden(t *testing.T) {
	path := filepath.Join("testdata", "checkpoint.golden")
	s := goldenSigner()
	c := testCheckpoint(t)
	got := sign(t, c, s)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("signed checkpoint:\n%s\nwant (%s):\n%s", got, path, want)
	}
	// The stored checkpoint opens under the key and gives c back.
	opened, kid, err := OpenCheckpoint(want, map[string]ed25519.PublicKey{testKID: s.Public()})
	if err != nil {
		t.Fatalf("OpenCheckpoint(%s): %v", path, err)
	}
	if kid != testKID {
		t.Errorf("OpenCheckpoint: kid %q, want %q", kid, testKID)
	}
	if diff := cmp.Diff(c, opened); diff != "" {
		t.Errorf("OpenCheckpoint(%s) (-want +got):\n%s", path, diff)
	}
}

func TestOpenCheckpoint(t *testing.T) {
	s := newSigner(testKID, "current")
	other := newSigner(testKID, "other")
	c := testCheckpoint(t)
	signed := string(sign(t, c, s))
	text, sigLine, _ := strings.Cut(signed, "\n\n")
	lines := strings.SplitAfter(text+"\n", "\n")[:4]
	with := func(i int, line string) string {
		l := append([]string(nil), lines...)
		l[i] = line
		return strings.Join(l, "") + "\n" + sigLine
	}
	keys := map[string]ed25519.PublicKey{testKID: s.Public()}

	// A well-formed note, validly signed, whose text is not a checkpoint.
	notCheckpoint, err := note.Sign(&note.Note{Text: "hello\n"}, mustNoteSigner(t, s))
	if err != nil {
		t.Fatal(err)
	}
	// The checkpoint cosigned by an unknown key, and by two known keys.
	cosigned, err := note.Sign(&note.Note{Text: string(c.Text())}, mustNoteSigner(t, newSigner("witness", "w")), mustNoteSigner(t, s))
	if err != nil {
		t.Fatal(err)
	}
	rotated := newSigner("vaultcrux-signing:v2", "v2")
	twoKnown, err := note.Sign(&note.Note{Text: string(c.Text())}, mustNoteSigner(t, rotated), mustNoteSigner(t, s))
	if err != nil {
		t.Fatal(err)
	}
	// A signature by the right kid and hash that is wrong.
	sigB64 := strings.TrimSuffix(strings.Fields(sigLine)[2], "\n")
	raw, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		t.Fatal(err)
	}
	raw[10] ^= 1
	badSig := text + "\n\n— " + testKID + " " + base64.StdEncoding.EncodeToString(raw) + "\n"
	shortSig := text + "\n\n— " + testKID + " " + base64.StdEncoding.EncodeToString(raw[:40]) + "\n"

	tests := []struct {
		name    string
		signed  string
		keys    map[string]ed25519.PublicKey
		wantErr error  // nil: success
		wantKID string // on success
	}{
		{"good", signed, keys, nil, testKID},
		{"cosigned by an unknown key", string(cosigned), keys, nil, testKID},
		{"signed by two known keys", string(twoKnown), map[string]ed25519.PublicKey{testKID: s.Public(), rotated.kid: rotated.Public()}, nil, rotated.kid},
		{"wrong key under the kid", signed, map[string]ed25519.PublicKey{testKID: other.Public()}, ErrCheckpointSignature, ""},
		{"key under another kid", signed, map[string]ed25519.PublicKey{"vaultcrux-signing:v2": s.Public()}, ErrCheckpointSignature, ""},
		{"no keys", signed, nil, ErrCheckpointSignature, ""},
		{"modified origin", with(0, "vaultcrux/tenant/acme-dev\n"), keys, ErrCheckpointSignature, ""},
		{"modified size", with(1, "8\n"), keys, ErrCheckpointSignature, ""},
		{"modified root", with(2, emptyRoot.String()+"\n"), keys, ErrCheckpointSignature, ""},
		{"modified time", with(3, "time 2025-06-01T12:34:56.790Z\n"), keys, ErrCheckpointSignature, ""},
		{"extra line in the text", text + "\nextra\n\n" + sigLine, keys, ErrCheckpointSignature, ""},
		{"bad signature", badSig, keys, ErrCheckpointSignature, ""},
		{"short signature", shortSig, keys, ErrCheckpointSignature, ""},
		{"signature line removed", text + "\n\n", keys, ErrCheckpointSignature, ""},
		{"signature block removed", text + "\n", keys, ErrCheckpointSignature, ""},
		{"extra line after the signature", signed + "extra\n", keys, ErrCheckpointMalformed, ""},
		{"signature without final newline", strings.TrimSuffix(signed, "\n"), keys, ErrCheckpointMalformed, ""},
		{"no blank line", text + "\n" + sigLine, keys, ErrCheckpointMalformed, ""},
		{"CRLF", strings.ReplaceAll(signed, "\n", "\r\n"), keys, ErrCheckpointMalformed, ""},
		{"signed text not a checkpoint", string(notCheckpoint), keys, ErrCheckpointMalformed, ""},
		{"empty", "", keys, ErrCheckpointMalformed, ""},
		{"over 64 KiB", strings.Repeat("— x AAAAAAAA\n", 64<<10/13+1), keys, ErrCheckpointMalformed, ""},
		{"over 64 KiB, well signed", text + "\n\n" + strings.Repeat(sigLine, 64<<10/len(sigLine)+1), keys, ErrCheckpointMalformed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, kid, err := OpenCheckpoint([]byte(tt.signed), tt.keys)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("OpenCheckpoint: error %v, want %v", err, tt.wantErr)
				}
				if other := otherSentinel(tt.wantErr); errors.Is(err, other) {
					t.Fatalf("OpenCheckpoint: error %v wraps %v too", err, other)
				}
				return
			}
			if err != nil {
				t.Fatalf("OpenCheckpoint: %v", err)
			}
			if kid != tt.wantKID {
				t.Errorf("kid = %q, want %q", kid, tt.wantKID)
			}
			if diff := cmp.Diff(c, got); diff != "" {
				t.Errorf("checkpoint (-want +got):\n%s", diff)
			}
		})
	}
}

func otherSentinel(err error) error {
	if err == ErrCheckpointSignature {
		return ErrCheckpointMalformed
	}
	return ErrCheckpointSignature
}

func mustNoteSigner(t *testing.T, s Signer) note.Signer {
	t.Helper()
	ns, err := newNoteSigner(s)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func TestSignCheckpointRejects(t *testing.T) {
	s := newSigner(testKID, "current")
	good := testCheckpoint(t)
	signErr := errors.New("signer offline")
	tests := []struct {
		name string
		c    Checkpoint
		s    Signer
		is   error
	}{
		{"bad origin", Checkpoint{Origin: "acme", Size: good.Size, Root: good.Root, Time: good.Time}, s, ErrCheckpointMalformed},
		{"empty origin", Checkpoint{Size: good.Size, Root: good.Root, Time: good.Time}, s, ErrCheckpointMalformed},
		{"negative size", Checkpoint{Origin: good.Origin, Size: -1, Root: good.Root, Time: good.Time}, s, ErrCheckpointMalformed},
		{"size 0 with a root", Checkpoint{Origin: good.Origin, Size: 0, Root: good.Root, Time: good.Time}, s, ErrCheckpointMalformed},
		{"year 10000", Checkpoint{Origin: good.Origin, Size: good.Size, Root: good.Root, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, s, ErrCheckpointMalformed},
		{"public key of another key", good, funcSigner{testKID, newSigner(testKID, "other").Public(), s.Sign}, ErrCheckpointSignature},
		{"signer fails", good, funcSigner{testKID, s.Public(), func([]byte) ([]byte, error) { return nil, signErr }}, signErr},
		{"short signature", good, funcSigner{testKID, s.Public(), func(m []byte) ([]byte, error) { b, _ := s.Sign(m); return b[:63], nil }}, nil},
		{"long signature", good, funcSigner{testKID, s.Public(), func(m []byte) ([]byte, error) { b, _ := s.Sign(m); return append(b, 0), nil }}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SignCheckpoint(tt.c, tt.s)
			if err == nil {
				t.Fatalf("SignCheckpoint = %q, want an error", got)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("SignCheckpoint: %v, want it to wrap %v", err, tt.is)
			}
		})
	}
}
