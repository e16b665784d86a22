package server

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaultcrux/vaultcrux/internal/apikey"
	"github.com/vaultcrux/vaultcrux/internal/config"
	"github.com/vaultcrux/vaultcrux/internal/envelope"
	"github.com/vaultcrux/vaultcrux/internal/evidence"
	"github.com/vaultcrux/vaultcrux/internal/gate"
	"github.com/vaultcrux/vaultcrux/internal/keyring"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/shield"
	"github.com/vaultcrux/vaultcrux/internal/store/sqlite"
)

func newBareServer(t testing.TB) *Server {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h, err := apikey.NewHasher(keyring.NewSecret(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	// The ledger's writer runs but these tests issue no receipt.
	l := ledger.New(ledger.Config{Store: st, Now: time.Now})
	t.Cleanup(l.Close)
	prov, err := envelope.NewLocal(keyring.NewSecret(make([]byte, 32)), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ev := evidence.New(evidence.Config{Store: st, Ledger: l, Keys: prov})
	g, err := gate.New(gate.Config{Store: st, Ledger: l, Sealer: ev, Flags: shield.Flags{Enabled: true}, Builtin: gate.BuiltinTools()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Config: &cfg, Store: st, Ledger: l, Hasher: h, Evidence: ev, Gate: g, SessionSecret: keyring.NewSecret(make([]byte, 32))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// FuzzCheckJSON: the body validator never panics, and whatever it accepts
// is one valid JSON object without duplicate keys that decodes cleanly.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"label":"a","role":"member"}`, `{"tenantId":"acme","label":"x"}`,
		`{"a":{"b":[1,2,{"c":null}]},"d":true}`, `{"a":1,"a":2}`, `{"a":1,"A":2}`,
		`[1]`, `"s"`, `{"a":1}{}`, `{"a":`, "{\"a\":\"\xff\"}", `{"tenantId":{"x":1}}`,
		`{"a":[{"a":1,"a":2}]}`, ` {"x":1} `, `{"\u0061":1,"a":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		info, err := checkJSON(body)
		if err != nil {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("accepted %q, which is not one JSON object: %v", body, err)
		}
		if len(m) != len(info.keys) {
			t.Fatalf("accepted %q with %d distinct keys but saw %d", body, len(m), len(info.keys))
		}
		if raw, ok := m["tenantId"]; ok {
			var s string
			if json.Unmarshal(raw, &s) != nil || info.tenantID == nil || *info.tenantID != s {
				t.Fatalf("tenantId %s reported as %v", raw, info.tenantID)
			}
		} else if info.tenantID != nil {
			t.Fatalf("reported tenantId %q absent from %q", *info.tenantID, body)
		}
	})
}

// FuzzDecode: the strict decoder, after checkJSON, never panics and never
// accepts a body with a top-level key the request type does not declare.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"label":"a"}`, `{"label":"a","role":"owner","tenantId":"t"}`, `{"Label":"a"}`, `{"label":1}`, `{"x":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		info, err := checkJSON(body)
		if err != nil {
			return
		}
		var v createKeyRequest
		if err := decode(body, info.keys, &v); err != nil {
			return
		}
		for _, k := range info.keys {
			if k != "label" && k != "role" && k != "tenantId" {
				t.Fatalf("decode accepted unknown key %q in %q", k, body)
			}
		}
	})
}

// FuzzPageParams: the list parameters from the URL never panic, and an
// accepted cursor round-trips through encodeCursor.
func FuzzPageParams(f *testing.F) {
	for _, s := range []string{"", "limit=10", "limit=0", "limit=501", "cursor=" + encodeCursor("abc"), "cursor=!!", "cursor=YzE", "limit=1&cursor=" + encodeCursor("")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		r := httptest.NewRequest("GET", "/v1/keys", nil)
		r.URL.RawQuery = query
		limit, after, err := pageParams(r)
		if err != nil {
			return
		}
		if limit < 1 || limit > 500 {
			t.Fatalf("limit %d accepted from %q", limit, query)
		}
		if c := r.URL.Query().Get("cursor"); c != "" && encodeCursor(after) != c {
			t.Fatalf("cursor %q decoded to %q, which encodes as %q", c, after, encodeCursor(after))
		}
	})
}

// FuzzClientIP: forwarded-for parsing never panics, and the client it
// names is the peer or an address that appears in the header and is not a
// trusted proxy.
func FuzzClientIP(f *testing.F) {
	for _, s := range []string{"", "100.64.0.1", "1.2.3.4, 10.0.0.9", "::ffff:1.2.3.4", "garbage", "1.2.3.4,,5.6.7.8", "[::1]", "fd7a:115c:a1e0::1, 10.1.1.1"} {
		f.Add("10.0.0.5:1234", s)
		f.Add("192.0.2.7:80", s)
	}
	s := &Server{cfg: &config.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("x-forwarded-for", xff)
		got := s.clientIP(r)
		peer := addrOf(remote)
		if got == peer {
			return
		}
		if !s.trusted(peer) {
			t.Fatalf("untrusted peer %q: client %v from its header %q", remote, got, xff)
		}
		if s.trusted(got) {
			t.Fatalf("client %v is a trusted proxy (header %q)", got, xff)
		}
		for _, part := range strings.Split(xff, ",") {
			if a, err := netip.ParseAddr(strings.TrimSpace(part)); err == nil && a.Unmap() == got {
				return
			}
		}
		t.Fatalf("client %v does not appear in %q", got, xff)
	})
}
