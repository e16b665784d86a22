package keyring

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSigningKey(t *testing.T) {
	seed := NewSecret(bytes.Repeat([]byte{7}, 32))
	k, err := NewSigningKey(seed, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k.KID(), "vaultcrux-signing:v3"; got != want {
		t.Errorf("KID = %q, want %q", got, want)
	}
	pub, err := SigningPublicKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.Public(), pub) {
		t.Error("Public differs from SigningPublicKey of the same seed")
	}
	msg := []byte("blake3:00")
	sig, err := k.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(pub, msg, sig) {
		t.Error("signature does not verify")
	}
	p := k.Public()
	p[0] ^= 1
	if bytes.Equal(k.Public(), p) {
		t.Error("Public returned the key's own slice")
	}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k)} {
		if strings.Contains(s, fmt.Sprint(k.priv[:4])) || !strings.Contains(s, "vaultcrux-signing:v3") {
			t.Errorf("rendering %q shows private bytes or no kid", s)
		}
	}
	if _, err := NewSigningKey(NewSecret(make([]byte, 31)), 1); err == nil {
		t.Error("31-byte seed accepted")
	}
	if _, err := NewSigningKey(seed, 0); err == nil {
		t.Error("version 0 accepted")
	}
}

func TestSigningSeedFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "signing.key")
	s1, created, err := LoadOrCreateSigningSeed(path, bytes.NewReader(bytes.Repeat([]byte{1}, 64)))
	if err != nil || !created {
		t.Fatalf("LoadOrCreateSigningSeed = created %v, %v; want created", created, err)
	}
	s2, created, err := LoadOrCreateSigningSeed(path, bytes.NewReader(bytes.Repeat([]byte{2}, 64)))
	if err != nil || created || !s1.Equal(s2) {
		t.Fatalf("second load: created %v, equal %v, %v; want the same seed", created, s1.Equal(s2), err)
	}
	s3, err := ReplaceSigningSeed(path, bytes.NewReader(bytes.Repeat([]byte{3}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	if s3.Equal(s1) {
		t.Fatal("replaced seed equals the old one")
	}
	s4, err := ReadSigningSeed(path)
	if err != nil || !s4.Equal(s3) {
		t.Fatalf("ReadSigningSeed after replace: equal %v, %v", s4.Equal(s3), err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode %04o, want 0600", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d entries after replace, want 1 (no temporary left)", len(entries))
	}
	// A 48-byte secret is a valid secret file but not a signing seed.
	long := filepath.Join(dir, "long.key")
	if err := os.WriteFile(long, encodeSecretFile(make([]byte, 48)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSigningSeed(long); err == nil {
		t.Error("48-byte seed accepted")
	}
	if _, _, err := LoadOrCreateSigningSeed(long, nil); err == nil {
		t.Error("48-byte seed accepted by LoadOrCreateSigningSeed")
	}
}
