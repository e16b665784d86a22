package envelope

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/vaultcrux/vaultcrux/internal/keyring"
)

func key(t testing.TB, b byte) []byte {
	t.Helper()
	return bytes.Repeat([]byte{b}, KeySize)
}

func TestSealOpen(t *testing.T) {
	k := key(t, 1)
	aad := AAD("doc", "t1", "d1", "1")
	pt := []byte("the quick zorblefrax")
	ct, err := Seal(k, aad, pt, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, []byte("zorblefrax")) {
		t.Fatal("plaintext visible in ciphertext")
	}
	if len(ct) != 1+nonceSize+len(pt)+tagSize || ct[0] != 1 {
		t.Fatalf("sealed layout: len %d first byte %d", len(ct), ct[0])
	}
	got, err := Open(k, aad, ct)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// Every single-bit flip fails, with ErrOpen or ErrFormat (the version byte).
	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x01
		if _, err := Open(k, aad, bad); !errors.Is(err, ErrOpen) && !errors.Is(err, ErrFormat) {
			t.Fatalf("flip at %d: err %v", i, err)
		}
	}
	for name, c := range map[string]struct {
		key, aad, ct []byte
		want         error
	}{
		"other key":       {key(t, 2), aad, ct, ErrOpen},
		"other document":  {k, AAD("doc", "t1", "d2", "1"), ct, ErrOpen},
		"other tenant":    {k, AAD("doc", "t2", "d1", "1"), ct, ErrOpen},
		"other version":   {k, AAD("doc", "t1", "d1", "2"), ct, ErrOpen},
		"regrouped parts": {k, AAD("doc", "t1d1", "", "1"), ct, ErrOpen},
		"truncated":       {k, aad, ct[:len(ct)-1], ErrOpen},
		"too short":       {k, aad, ct[:1+nonceSize+tagSize-1], ErrFormat},
		"empty":           {k, aad, nil, ErrFormat},
	} {
		if _, err := Open(c.key, c.aad, c.ct); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", name, err, c.want)
		}
	}
	if _, err := Seal(k[:16], aad, pt, rand.Reader); err == nil {
		t.Error("Seal accepted a 16-byte key")
	}
}

func TestAADUnambiguous(t *testing.T) {
	seen := map[string][]string{}
	for _, parts := range [][]string{{"ab", "c"}, {"a", "bc"}, {"abc"}, {"abc", ""}, {"", "abc"}, {}} {
		k := string(AAD(parts...))
		if prev, ok := seen[k]; ok {
			t.Fatalf("AAD(%q) == AAD(%q)", parts, prev)
		}
		seen[k] = parts
	}
}

func TestWrapUnwrap(t *testing.T) {
	kek, dek := key(t, 3), key(t, 4)
	aad := AAD("dek", "t1", "d1", "1")
	w, err := Wrap(kek, "vaultcrux-tenant-t1", 2, dek, aad, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(w, "vc1:vaultcrux-tenant-t1:v2:") {
		t.Fatalf("wrapped = %q", w)
	}
	p, err := ParseWrapped(w)
	if err != nil || p.KEKID != "vaultcrux-tenant-t1" || p.Version != 2 {
		t.Fatalf("ParseWrapped = %+v, %v", p, err)
	}
	got, err := Unwrap(kek, "vaultcrux-tenant-t1", 2, w, aad)
	if err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("Unwrap = %x, %v", got, err)
	}
	// The header is bound: relabelling the version or key id fails even
	// when the caller is told the relabelled values.
	relabelled := strings.Replace(w, ":v2:", ":v3:", 1)
	if _, err := Unwrap(kek, "vaultcrux-tenant-t1", 3, relabelled, aad); !errors.Is(err, ErrOpen) {
		t.Errorf("relabelled version: %v", err)
	}
	other := strings.Replace(w, "tenant-t1", "tenant-t2", 1)
	if _, err := Unwrap(kek, "vaultcrux-tenant-t2", 2, other, aad); !errors.Is(err, ErrOpen) {
		t.Errorf("relabelled key id: %v", err)
	}
	if _, err := Unwrap(kek, "vaultcrux-tenant-t1", 1, w, aad); !errors.Is(err, ErrOpen) {
		t.Errorf("asked for another version: %v", err)
	}
	if _, err := Unwrap(kek, "vaultcrux-tenant-t1", 2, w, AAD("dek", "t1", "d1", "2")); !errors.Is(err, ErrOpen) {
		t.Errorf("other aad: %v", err)
	}
}

func TestParseWrappedRejects(t *testing.T) {
	good, err := Wrap(key(t, 5), "k", 1, key(t, 6), nil, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	body := good[len("vc1:k:v1:"):]
	for _, s := range []string{
		"", "vc1", "vc1:", "vc2:k:v1:" + body, "vc1:k:1:" + body, "vc1:k:v0:" + body, "vc1:k:v01:" + body,
		"vc1:k:v-1:" + body, "vc1::v1:" + body, "vc1:k:v1:", "vc1:k:v1:" + body + "=", "vc1:k:v1:" + body[:10],
		"vc1:k/x:v1:" + body, "vc1:k:v99999999999:" + body, "vc1:k:v1:" + strings.ReplaceAll(body, "A", "+"),
	} {
		if _, err := ParseWrapped(s); !errors.Is(err, ErrFormat) {
			t.Errorf("ParseWrapped(%q) err %v, want ErrFormat", s, err)
		}
	}
}

func TestLocalProvider(t *testing.T) {
	ctx := context.Background()
	l, err := NewLocal(keyring.NewSecret(key(t, 7)), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := l.NewKEK(ctx, "t1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "vc1:vaultcrux-master:v1:") {
		t.Fatalf("stored = %q", stored)
	}
	k, err := l.KEK(ctx, "t1", 1, stored)
	if err != nil || k.ID() != "vaultcrux-tenant-t1" || k.Version() != 1 {
		t.Fatalf("KEK = %v, %v", k, err)
	}
	w, err := k.Wrap(key(t, 8), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.Unwrap(w, []byte("aad")); err != nil || !bytes.Equal(got, key(t, 8)) {
		t.Fatalf("Unwrap = %x, %v", got, err)
	}
	// A stored KEK is bound to its tenant and version.
	if _, err := l.KEK(ctx, "t2", 1, stored); !errors.Is(err, ErrOpen) {
		t.Errorf("other tenant: %v", err)
	}
	if _, err := l.KEK(ctx, "t1", 2, stored); !errors.Is(err, ErrOpen) {
		t.Errorf("other version: %v", err)
	}
	// Another master key opens nothing; a destroyed (erased) KEK is refused.
	l2, _ := NewLocal(keyring.NewSecret(key(t, 9)), rand.Reader)
	if _, err := l2.KEK(ctx, "t1", 1, stored); !errors.Is(err, ErrOpen) {
		t.Errorf("other master: %v", err)
	}
	if _, err := l.KEK(ctx, "t1", 1, ""); err == nil {
		t.Error("erased KEK accepted")
	}
	if _, err := NewLocal(keyring.NewSecret(key(t, 1)[:31]), rand.Reader); err == nil {
		t.Error("31-byte master accepted")
	}
}

func FuzzParseWrapped(f *testing.F) {
	// A fixed nonce: every fuzz worker must compute the same seed.
	w, _ := Wrap(bytes.Repeat([]byte{1}, KeySize), "vaultcrux-tenant-a", 3, bytes.Repeat([]byte{2}, KeySize), nil, bytes.NewReader(make([]byte, nonceSize)))
	f.Add(w)
	f.Add("vc1:a:v1:AAAA")
	f.Add("vc1:::")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseWrapped(s)
		if err != nil {
			return
		}
		if !validKEKID(p.KEKID) || p.Version < 1 || p.Sealed[0] != sealVersion {
			t.Fatalf("accepted %q as %+v", s, p)
		}
		// What parses is exactly what Wrap would have written.
		re := wrapPrefix + ":" + p.KEKID + ":v" + itoa(p.Version) + ":" + b64(p.Sealed)
		if re != s {
			t.Fatalf("non-canonical %q accepted (canonical %q)", s, re)
		}
		if _, err := Unwrap(bytes.Repeat([]byte{1}, KeySize), p.KEKID, p.Version, s, nil); err == nil && s != w {
			t.Fatalf("forged wrapped key %q opened", s)
		}
	})
}

func FuzzOpen(f *testing.F) {
	k := bytes.Repeat([]byte{1}, KeySize)
	ct, _ := Seal(k, nil, []byte("hello"), bytes.NewReader(make([]byte, nonceSize)))
	f.Add(ct)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := Open(k, nil, b)
		if err == nil && !bytes.Equal(b, ct) {
			t.Fatalf("forged ciphertext opened to %q", pt)
		}
	})
}
