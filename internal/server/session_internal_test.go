package server

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vaultcrux/vaultcrux/internal/keyring"
)

const testSID = "01JZZZZZZZZZZZZZZZZZZZZZZZ"

// TestCookieValueFormat pins version 1 of the cookie value against an
// independent computation of its MAC.
func TestCookieValueFormat(t *testing.T) {
	secret := bytes.Repeat([]byte{0x5a}, 32)
	c, err := newCookieSigner(keyring.NewSecret(secret))
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("vc_session/v1\x00acme\x00" + testSID))
	want := "v1.acme." + testSID + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	if got := c.value("acme", testSID); got != want {
		t.Errorf("value = %q, want %q", got, want)
	}
	tenant, sid, claimed, ok := c.parse(want)
	if !ok || tenant != "acme" || sid != testSID || claimed != "acme" {
		t.Errorf("parse(value) = %q %q %q %v", tenant, sid, claimed, ok)
	}
	// Another secret, another tenant or another id: no match.
	other, _ := newCookieSigner(keyring.NewSecret(bytes.Repeat([]byte{0x5b}, 32)))
	if _, _, _, ok := other.parse(want); ok {
		t.Error("a cookie verified under another secret")
	}
	mac := want[strings.LastIndex(want, ".")+1:]
	if _, _, claimed, ok := c.parse("v1.globex." + testSID + "." + mac); ok || claimed != "globex" {
		t.Errorf("a cookie moved to another tenant: ok=%v claimed=%q", ok, claimed)
	}
	if _, err := newCookieSigner(keyring.NewSecret(make([]byte, 31))); err == nil {
		t.Error("a 31-byte session secret was accepted")
	}
}

// FuzzParseSessionCookie: parse never panics and accepts exactly the
// values that value produces.
func FuzzParseSessionCookie(f *testing.F) {
	c, err := newCookieSigner(keyring.NewSecret(bytes.Repeat([]byte{1}, 32)))
	if err != nil {
		f.Fatal(err)
	}
	good := c.value("acme", testSID)
	for _, s := range []string{good, good + ".", "v1...", "v1.acme." + testSID + ".", strings.Replace(good, "v1", "v2", 1), "", "...."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tenant, sid, _, ok := c.parse(s)
		if !ok {
			return
		}
		if c.value(tenant, sid) != s {
			t.Fatalf("parse accepted %q, which value(%q, %q) does not produce", s, tenant, sid)
		}
	})
}

func TestFailureBuckets(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := newFailureBuckets(3, 4)
	for i := range 3 {
		if w := b.fail("a", t0); w != 0 {
			t.Fatalf("failure %d waited %v", i+1, w)
		}
	}
	if w := b.wait("a", t0); w != 20*time.Second {
		t.Errorf("wait after 3 of 3 = %v, want 20s", w)
	}
	if w := b.fail("a", t0); w != 20*time.Second {
		t.Errorf("fail over budget = %v, want 20s", w)
	}
	if w := b.wait("a", t0.Add(20*time.Second)); w != 0 {
		t.Errorf("wait after the refill = %v, want 0", w)
	}
	if w := b.wait("never", t0); w != 0 {
		t.Errorf("wait of an unknown key = %v", w)
	}
	// A clock going back refills nothing and breaks nothing.
	if w := b.wait("a", t0.Add(-time.Hour)); w != 0 {
		t.Errorf("wait with an earlier clock = %v", w)
	}
	// Bounded: the least recently failing key is forgotten first.
	for i := range 10 {
		b.fail(fmt.Sprint("k", i), t0)
	}
	if n := b.len(); n != 4 {
		t.Errorf("tracked keys = %d, want the bound 4", n)
	}
	if w := b.wait("a", t0); w != 0 {
		t.Errorf("the oldest key was kept (wait %v)", w)
	}
}

func TestAddrKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":            "192.0.2.1",
		"2001:db8:1:2::1":      "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::9": "2001:db8:1:2::/64",
		"::ffff:192.0.2.1":     "192.0.2.1",
	} {
		if got := addrKey(netip.MustParseAddr(in)); got != want {
			t.Errorf("addrKey(%s) = %q, want %q", in, got, want)
		}
	}
	if got := addrKey(netip.Addr{}); got != "unknown" {
		t.Errorf("addrKey(invalid) = %q", got)
	}
}
