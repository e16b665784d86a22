package translog

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// checkpointShape is a necessary condition on an accepted checkpoint text,
// stated apart from the parser.
var checkpointShape = regexp.MustCompile(`\Avaultcrux/tenant/[a-z0-9][a-z0-9_-]{0,62}\n(0|[1-9][0-9]{0,16})\n[A-Za-z0-9+/]{43}=\ntime [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\n\z`)

// FuzzParseCheckpointText checks that the parser never panics, accepts only
// the checkpoint shape, gives back its input from Text byte for byte (one
// spelling per checkpoint), and fails only with ErrCheckpointMalformed.
func FuzzParseCheckpointText(f *testing.F) {
	good := testCheckpoint(f).Text()
	f.Add(good)
	f.Add(Checkpoint{Origin: Origin("0"), Root: emptyRoot}.Text())
	f.Add(bytes.Replace(good, []byte("\n7\n"), []byte("\n07\n"), 1))
	f.Add(bytes.Replace(good, []byte(".789Z"), []byte(".789000Z"), 1))
	f.Add(bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n")))
	f.Add(append(bytes.Clone(good), '\n'))
	f.Add([]byte("vaultcrux/tenant/a\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntime 2025-01-01T00:00:00.000Z\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, text []byte) {
		in := bytes.Clone(text)
		c, err := ParseCheckpointText(text)
		if !bytes.Equal(in, text) {
			t.Fatalf("ParseCheckpointText modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrCheckpointMalformed) {
				t.Fatalf("ParseCheckpointText(%q): %v, want ErrCheckpointMalformed", in, err)
			}
			return
		}
		if !checkpointShape.Match(in) {
			t.Fatalf("ParseCheckpointText accepted %q, which is not of the checkpoint shape", in)
		}
		if got := c.Text(); !bytes.Equal(got, in) {
			t.Fatalf("ParseCheckpointText(%q).Text() = %q", in, got)
		}
		if c.Size < 0 || c.Size > maxSize || (c.Size == 0 && c.Root != emptyRoot) {
			t.Fatalf("ParseCheckpointText(%q) accepted size %d with root %v", in, c.Size, c.Root)
		}
	})
}

// FuzzOpenCheckpoint checks that OpenCheckpoint never panics, fails only
// with one of its two sentinels, and accepts a note only when it carries a
// signature line by the test key that verifies over the note's text, as
// checked here with ed25519 directly.
func FuzzOpenCheckpoint(f *testing.F) {
	s := goldenSigner() // the key of the seeds in testdata/fuzz
	good := sign(f, testCheckpoint(f), s)
	f.Add(good)
	f.Add(bytes.Replace(good, []byte("\n7\n"), []byte("\n8\n"), 1))
	f.Add(append(bytes.Clone(good), good[len(good)-120:]...))
	f.Add(bytes.Replace(good, []byte("— "), []byte("— witness AAAAAAAA\n— "), 1))
	f.Add(good[:bytes.Index(good, []byte("\n\n"))+2])
	f.Add([]byte("hello\n\n— " + testKID + " AAAAAAAAAAAA\n"))
	f.Add([]byte(""))
	pub := s.Public()
	keys := map[string]ed25519.PublicKey{testKID: pub}
	hash := keyHash(testKID, pub)
	f.Fuzz(func(t *testing.T, msg []byte) {
		c, kid, err := OpenCheckpoint(msg, keys)
		if err != nil {
			if !errors.Is(err, ErrCheckpointSignature) && !errors.Is(err, ErrCheckpointMalformed) {
				t.Fatalf("OpenCheckpoint(%q): %v, want one of the sentinels", msg, err)
			}
			return
		}
		if kid != testKID {
			t.Fatalf("OpenCheckpoint(%q): kid %q, want %q", msg, kid, testKID)
		}
		text, sigs, ok := bytes.Cut(msg, []byte("\n\n"))
		if !ok {
			t.Fatalf("OpenCheckpoint accepted %q, which has no signature block", msg)
		}
		text = append(text, '\n')
		if !bytes.Equal(c.Text(), text) {
			t.Fatalf("OpenCheckpoint(%q) = %q, not the signed text", msg, c.Text())
		}
		signed := false
		for line := range strings.Lines(string(sigs)) {
			fields := strings.Fields(line)
			if len(fields) != 3 || fields[0] != "—" || fields[1] != testKID {
				continue
			}
			sig, err := base64.StdEncoding.DecodeString(fields[2])
			if err == nil && len(sig) == 4+ed25519.SignatureSize &&
				binary.BigEndian.Uint32(sig) == hash && ed25519.Verify(pub, text, sig[4:]) {
				signed = true
			}
		}
		if !signed {
			t.Fatalf("OpenCheckpoint accepted %q, which has no valid signature by the key", msg)
		}
	})
}

// FuzzDecodeProof checks that DecodeProof never panics and accepts exactly
// the lists of canonical base64 hashes, which it gives back through
// EncodeProof unchanged. Entries are separated by commas in the input.
func FuzzDecodeProof(f *testing.F) {
	h := LeafHash(receipt(1))
	good := base64.StdEncoding.EncodeToString(h[:])
	f.Add(good)
	f.Add(good + "," + good)
	f.Add(strings.TrimSuffix(good, "="))
	f.Add(good[:42] + nonCanonical(good[42]) + "=")
	f.Add(good[:20] + "\n" + good[21:])
	f.Add(base64.StdEncoding.EncodeToString(make([]byte, 33)))
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		entries := strings.Split(in, ",")
		p, err := DecodeProof(entries)
		want := true
		for _, e := range entries {
			b, err := base64.StdEncoding.DecodeString(e)
			if err != nil || len(b) != hashSize || base64.StdEncoding.EncodeToString(b) != e {
				want = false
			}
		}
		if got := err == nil; got != want {
			t.Fatalf("DecodeProof(%q): accepted = %v (%v), want %v", entries, got, err, want)
		}
		if err != nil {
			return
		}
		if got := EncodeProof(p); strings.Join(got, ",") != in {
			t.Fatalf("EncodeProof(DecodeProof(%q)) = %q", entries, got)
		}
	})
}
