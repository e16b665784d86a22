package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/store/sqlite"
	"github.com/vaultcrux/vaultcrux/internal/vctest"
)

type keyOut struct {
	ID         string  `json:"id"`
	Key        string  `json:"key"`
	Label      string  `json:"label"`
	Role       string  `json:"role"`
	CreatedAt  string  `json:"createdAt"`
	RevokedAt  *string `json:"revokedAt"`
	LastUsedAt *string `json:"lastUsedAt"`
}

type keyList struct {
	Items      []keyOut `json:"items"`
	NextCursor *string  `json:"nextCursor"`
}

func wantErr(t *testing.T, r *vctest.Response, status int, code string) {
	t.Helper()
	if r.Status != status || r.Code() != code {
		t.Fatalf("got %d %q (%s), want %d %q", r.Status, r.Code(), r.Raw, status, code)
	}
	if r.OK || r.Error.RequestID == "" || r.Error.RequestID != r.Header.Get("x-request-id") {
		t.Errorf("error envelope: ok=%v requestId=%q header=%q", r.OK, r.Error.RequestID, r.Header.Get("x-request-id"))
	}
}

func wantOK(t *testing.T, r *vctest.Response, status int) {
	t.Helper()
	if r.Status != status || !r.OK {
		t.Fatalf("got %d (%s), want %d ok", r.Status, r.Raw, status)
	}
}

func countKeys(t *testing.T, e *vctest.Env, tenant string) int {
	t.Helper()
	var n int
	err := e.Store.ForTenant(vaultcrux.TenantID(tenant)).Tx(context.Background(), func(tx store.TenantTx) error {
		ks, err := tx.ListAPIKeys("", 1000)
		n = len(ks)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestTenantIsolation(t *testing.T) { testTenantIsolation(t, vctest.New(t)) }

func testTenantIsolation(t *testing.T, e *vctest.Env) {
	keyA := e.Tenant("acme")
	keyB := e.Tenant("globex")

	// An object of A: a key id.
	created := e.Do(vctest.Request{Method: "POST", Path: "/v1/keys", Tenant: "acme", Key: keyA, Idem: "i1", Body: map[string]string{"label": "ci"}})
	wantOK(t, created, 201)
	var k keyOut
	created.Into(t, &k)
	revokedKey, revokedID := e.Key("acme", vaultcrux.RoleOwner)
	wantOK(t, e.Do(vctest.Request{Method: "DELETE", Path: "/v1/keys/" + revokedID, Tenant: "acme", Key: keyA, Idem: "rv"}), 200)

	cases := []struct {
		name   string
		req    vctest.Request
		status int
		code   string
	}{
		{"A's key with B's tenant header", vctest.Request{Method: "GET", Path: "/v1/keys", Tenant: "globex", Key: keyA}, 403, "tenant_mismatch"},
		{"A's key with a made-up tenant", vctest.Request{Method: "GET", Path: "/v1/keys", Tenant: "nobody", Key: keyA}, 403, "tenant_mismatch"},
		{"A's key with B's header on a mutation", vctest.Request{Method: "POST", Path: "/v1/keys", Tenant: "globex", Key: keyA, Idem: "x", Body: map[string]string{"label": "evil"}}, 403, "tenant_mismatch"},
		{"body tenantId differs from header", vctest.Request{Method: "POST", Path: "/v1/keys", Tenant: "acme", Key: keyA, Idem: "x2", Body: map[string]string{"label": "evil", "tenantId": "globex"}}, 403, "tenant_mismatch"},
		{"B revokes A's key id", vctest.Request{Method: "DELETE", Path: "/v1/keys/" + k.ID, Tenant: "globex", Key: keyB, Idem: "x3"}, 404, "not_found"},
		{"no key", vctest.Request{Method: "GET", Path: "/v1/keys", Tenant: "acme"}, 401, "unauthenticated"},
		{"garbage key", vctest.Request{Method: "GET", Path: "/v1/keys", Tenant: "acme", Key: "vcrx_garbage"}, 401, "unauthenticated"},
		{"well-formed unknown key", vctest.Request{Method: "GET", Path: "/v1/keys", Tenant: "acme", Key: "vcrx_aaaaaaaaaaaaaaaa_" + strings.Repeat("b", 52)}, 401, "unauthenticated"},
		{"right id, wrong secret", vctest.Request{Method: "GET", Path: "/v1/keys", Tenant: "acme", Key: keyA[:len(keyA)-4] + "aaaa"}, 401, "unauthenticated"},
		{"revoked key", vctest.Request{Method: "GET", Path: "/v1/keys", Tenant: "acme", Key: revokedKey}, 401, "unauthenticated"},
		{"no tenant header", vctest.Request{Method: "GET", Path: "/v1/keys", Key: keyA}, 401, "unauthenticated"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := countKeys(t, e, "acme") + countKeys(t, e, "globex")
			r := e.Do(c.req)
			wantErr(t, r, c.status, c.code)
			if after := countKeys(t, e, "acme") + countKeys(t, e, "globex"); after != before {
				t.Errorf("keys %d → %d: a refused request wrote", before, after)
			}
			if strings.Contains(string(r.Raw), "globex") || strings.Contains(string(r.Raw), "acme") {
				t.Errorf("response names a tenant: %s", r.Raw)
			}
		})
	}

	// A's key still exists and still works for A: the 404 was a wall, not a deletion.
	r := e.Do(vctest.Request{Method: "GET", Path: "/v1/keys", Tenant: "acme", Key: keyA})
	wantOK(t, r, 200)
	var l keyList
	r.Into(t, &l)
	found := false
	for _, it := range l.Items {
		if it.ID == k.ID && it.RevokedAt == nil {
			found = true
		}
	}
	if !found {
		t.Errorf("A's key %s missing or revoked after B's attempt: %+v", k.ID, l.Items)
	}
	// B sees none of A's keys.
	r = e.Do(vctest.Request{Method: "GET", Path: "/v1/keys", Tenant: "globex", Key: keyB})
	wantOK(t, r, 200)
	r.Into(t, &l)
	if len(l.Items) != 1 {
		t.Errorf("B lists %d keys, want only its own 1: %+v", len(l.Items), l.Items)
	}
}

func TestIdempotency(t *testing.T) { testIdempotency(t, vctest.New(t)) }

func testIdempotency(t *testing.T, e *vctest.Env) {
	key := e.Tenant("acme")
	post := func(idem string, body any) *vctest.Response {
		return e.Do(vctest.Request{Method: "POST", Path: "/v1/keys", Tenant: "acme", Key: key, Idem: idem, Body: body})
	}

	t.Run("missing key", func(t *testing.T) {
		wantErr(t, post("", map[string]string{"label": "a"}), 428, "idempotency_key_required")
		wantErr(t, e.Do(vctest.Request{Method: "DELETE", Path: "/v1/keys/aaaaaaaaaaaaaaaa", Tenant: "acme", Key: key}), 428, "idempotency_key_required")
	})
	t.Run("replay", func(t *testing.T) {
		before := countKeys(t, e, "acme")
		first := post("k-replay", map[string]string{"label": "a"})
		wantOK(t, first, 201)
		if first.Header.Get("idempotent-replay") != "" {
			t.Errorf("first response marked as replay")
		}
		second := post("k-replay", map[string]string{"label": "a"})
		if second.Status != first.Status || string(second.Raw) != string(first.Raw) {
			t.Errorf("replay = %d %s, want %d %s", second.Status, second.Raw, first.Status, first.Raw)
		}
		if got := second.Header.Get("idempotent-replay"); got != "true" {
			t.Errorf("idempotent-replay = %q, want true", got)
		}
		if got := countKeys(t, e, "acme"); got != before+1 {
			t.Errorf("keys = %d, want %d (one write)", got, before+1)
		}
	})
	t.Run("other body", func(t *testing.T) {
		wantOK(t, post("k-other", map[string]string{"label": "a"}), 201)
		before := countKeys(t, e, "acme")
		wantErr(t, post("k-other", map[string]string{"label": "b"}), 409, "idempotency_key_reused")
		if got := countKeys(t, e, "acme"); got != before {
			t.Errorf("keys = %d, want %d", got, before)
		}
	})
	t.Run("same key on another path", func(t *testing.T) {
		_, id1 := e.Key("acme", vaultcrux.RoleMember)
		_, id2 := e.Key("acme", vaultcrux.RoleMember)
		wantOK(t, e.Do(vctest.Request{Method: "DELETE", Path: "/v1/keys/" + id1, Tenant: "acme", Key: key, Idem: "del"}), 200)
		wantErr(t, e.Do(vctest.Request{Method: "DELETE", Path: "/v1/keys/" + id2, Tenant: "acme", Key: key, Idem: "del"}), 409, "idempotency_key_reused")
	})
	t.Run("refused requests keep no record", func(t *testing.T) {
		wantErr(t, post("k-bad", `{"label":`), 400, "invalid_request")
		wantOK(t, post("k-bad", map[string]string{"label": "fixed"}), 201)
	})
	t.Run("errors are replayed too", func(t *testing.T) {
		first := post("k-err", map[string]string{"label": "a", "role": "emperor"})
		wantErr(t, first, 400, "invalid_request")
		second := post("k-err", map[string]string{"label": "a", "role": "emperor"})
		if second.Header.Get("idempotent-replay") != "true" || string(second.Raw) != string(first.Raw) {
			t.Errorf("4xx replay = %s (replay %q), want %s", second.Raw, second.Header.Get("idempotent-replay"), first.Raw)
		}
	})
	t.Run("expires after 24h", func(t *testing.T) {
		wantOK(t, post("k-exp", map[string]string{"label": "a"}), 201)
		e.Clock.Advance(24*time.Hour + time.Second)
		r := post("k-exp", map[string]string{"label": "a"})
		wantOK(t, r, 201)
		if r.Header.Get("idempotent-replay") != "" {
			t.Errorf("expired key replayed")
		}
	})
	t.Run("scoped per tenant", func(t *testing.T) {
		keyB := e.Tenant("globex")
		wantOK(t, post("k-shared", map[string]string{"label": "a"}), 201)
		r := e.Do(vctest.Request{Method: "POST", Path: "/v1/keys", Tenant: "globex", Key: keyB, Idem: "k-shared", Body: map[string]string{"label": "a"}})
		wantOK(t, r, 201)
		if r.Header.Get("idempotent-replay") != "" {
			t.Errorf("tenant B got a replay of tenant A's response: %s", r.Raw)
		}
	})
	t.Run("concurrent duplicates", func(t *testing.T) {
		before := countKeys(t, e, "acme")
		const n = 16
		var wg sync.WaitGroup
		results := make([]*vctest.Response, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = post("k-conc", map[string]string{"label": "conc"})
			}()
		}
		wg.Wait()
		created, other := 0, 0
		for _, r := range results {
			switch {
			case r.Status == 201 && r.Header.Get("idempotent-replay") == "":
				created++
			case r.Status == 201 || r.Code() == "conflict":
				other++
			default:
				t.Errorf("unexpected answer %d %s", r.Status, r.Raw)
			}
		}
		if created != 1 || created+other != n {
			t.Errorf("created=%d replays/in-progress=%d, want exactly 1 and %d", created, other, n-1)
		}
		if got := countKeys(t, e, "acme"); got != before+1 {
			t.Errorf("keys = %d, want %d: concurrent duplicates wrote %d times", got, before+1, got-before)
		}
	})
}

func TestRequestValidation(t *testing.T) {
	e := vctest.New(t, func(s *vctest.Setup) { s.Config.BodyLimit = 4096 })
	key := e.Tenant("acme")
	cases := []struct {
		name   string
		body   any
		ctype  string
		status int
		code   string
	}{
		{"malformed", `{"label":`, "", 400, "invalid_request"},
		{"not an object", `["label"]`, "", 400, "invalid_request"},
		{"trailing data", `{"label":"a"}{"label":"b"}`, "", 400, "invalid_request"},
		{"unknown field", `{"label":"a","admin":true}`, "", 400, "invalid_request"},
		{"field in other case", `{"Label":"a"}`, "", 400, "invalid_request"},
		{"duplicate key", `{"label":"a","label":"b"}`, "", 400, "invalid_request"},
		{"duplicate key by case", `{"label":"a","LABEL":"b"}`, "", 400, "invalid_request"},
		{"tenantId in other case", `{"label":"a","TenantId":"globex"}`, "", 400, "invalid_request"},
		{"wrong type", `{"label":5}`, "", 400, "invalid_request"},
		{"invalid utf-8", "{\"label\":\"\xff\"}", "", 400, "invalid_request"},
		{"too deep", strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40), "", 400, "invalid_request"},
		{"empty", "", "", 400, "invalid_request"},
		{"wrong content type", `{"label":"a"}`, "text/plain", 400, "invalid_request"},
		{"oversized", `{"label":"` + strings.Repeat("a", 5000) + `"}`, "", 413, "payload_too_large"},
		{"bad role", `{"label":"a","role":"root"}`, "", 400, "invalid_request"},
		{"control char label", `{"label":"a\u0007"}`, "", 400, "invalid_request"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := countKeys(t, e, "acme")
			q := vctest.Request{Method: "POST", Path: "/v1/keys", Tenant: "acme", Key: key, Idem: fmt.Sprint("v", i), Body: c.body}
			if c.ctype != "" {
				q.Header = map[string]string{"content-type": c.ctype}
			}
			r := e.Do(q)
			wantErr(t, r, c.status, c.code)
			if countKeys(t, e, "acme") != before {
				t.Errorf("a refused body wrote")
			}
			if strings.Contains(r.Error.Message, "json:") || strings.Contains(r.Error.Message, "sql") {
				t.Errorf("message leaks internals: %q", r.Error.Message)
			}
		})
	}
	t.Run("body on a bodiless route", func(t *testing.T) {
		r := e.Do(vctest.Request{Method: "GET", Path: "/v1/keys", Tenant: "acme", Key: key, Body: `{"x":1}`})
		wantErr(t, r, 400, "invalid_request")
	})
	t.Run("bad agent id", func(t *testing.T) {
		r := e.Do(vctest.Request{Method: "GET", Path: "/v1/auth/whoami", Tenant: "acme", Key: key, Header: map[string]string{"x-agent-id": "a b"}})
		wantErr(t, r, 400, "invalid_request")
	})
	t.Run("bad idempotency key", func(t *testing.T) {
		r := e.Do(vctest.Request{Method: "POST", Path: "/v1/keys", Tenant: "acme", Key: key, Idem: strings.Repeat("x", 300), Body: map[string]string{"label": "a"}})
		wantErr(t, r, 400, "invalid_request")
	})
	t.Run("unknown route", func(t *testing.T) {
		wantErr(t, e.Do(vctest.Request{Method: "GET", Path: "/v1/nope"}), 404, "not_found")
		wantErr(t, e.Do(vctest.Request{Method: "PATCH", Path: "/v1/keys", Tenant: "acme", Key: key}), 404, "not_found")
	})
}

func TestKeys(t *testing.T) { testKeys(t, vctest.New(t)) }

func testKeys(t *testing.T, e *vctest.Env) {
	owner := e.Tenant("acme")

	r := e.Do(vctest.Request{Method: "POST", Path: "/v1/keys", Tenant: "acme", Key: owner, Idem: "c1", Body: map[string]string{"label": "agent one"}})
	wantOK(t, r, 201)
	var k keyOut
	r.Into(t, &k)
	if k.Role != "member" || k.Label != "agent one" || !strings.HasPrefix(k.Key, "vcrx_"+k.ID+"_") || len(k.Key) != 74 {
		t.Errorf("created key = %+v; want role member, label, key vcrx_<id>_<secret>", k)
	}
	if _, err := time.Parse(vaultcrux.TimeFormat, k.CreatedAt); err != nil {
		t.Errorf("createdAt %q is not RFC 3339 ms UTC: %v", k.CreatedAt, err)
	}

	// The new member key works, and may not manage keys.
	who := e.Do(vctest.Request{Method: "GET", Path: "/v1/auth/whoami", Tenant: "acme", Key: k.Key, Header: map[string]string{"x-agent-id": "planner-7"}})
	wantOK(t, who, 200)
	var w map[string]string
	who.Into(t, &w)
	if diff := cmp.Diff(map[string]string{"tenantId": "acme", "principalId": "key:" + k.ID, "keyId": k.ID, "role": "member", "agentId": "planner-7"}, w); diff != "" {
		t.Errorf("whoami (-want +got):\n%s", diff)
	}
	for _, q := range []vctest.Request{
		{Method: "GET", Path: "/v1/keys", Tenant: "acme", Key: k.Key},
		{Method: "POST", Path: "/v1/keys", Tenant: "acme", Key: k.Key, Idem: "m1", Body: map[string]string{"label": "x"}},
		{Method: "DELETE", Path: "/v1/keys/" + k.ID, Tenant: "acme", Key: k.Key, Idem: "m2"},
	} {
		wantErr(t, e.Do(q), 403, "forbidden")
	}

	// The list shows no secret and no hash, and pages.
	for range 3 {
		e.Key("acme", vaultcrux.RoleViewer)
	}
	var all []keyOut
	cursor := ""
	for page := 0; ; page++ {
		path := "/v1/keys?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := e.Do(vctest.Request{Method: "GET", Path: path, Tenant: "acme", Key: owner})
		wantOK(t, r, 200)
		if strings.Contains(string(r.Raw), "vcrx_") || strings.Contains(strings.ToLower(string(r.Raw)), "hash") {
			t.Fatalf("key list leaks secrets: %s", r.Raw)
		}
		var l keyList
		r.Into(t, &l)
		all = append(all, l.Items...)
		if l.NextCursor == nil {
			break
		}
		cursor = *l.NextCursor
		if page > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if len(all) != 5 {
		t.Errorf("paged through %d keys, want 5", len(all))
	}
	wantErr(t, e.Do(vctest.Request{Method: "GET", Path: "/v1/keys?limit=501", Tenant: "acme", Key: owner}), 400, "invalid_request")
	wantErr(t, e.Do(vctest.Request{Method: "GET", Path: "/v1/keys?cursor=!!", Tenant: "acme", Key: owner}), 400, "invalid_request")

	// Revocation takes effect at once, is idempotent in effect, and the
	// last owner key cannot be revoked over the API.
	wantOK(t, e.Do(vctest.Request{Method: "DELETE", Path: "/v1/keys/" + k.ID, Tenant: "acme", Key: owner, Idem: "r1"}), 200)
	r = e.Do(vctest.Request{Method: "GET", Path: "/v1/auth/whoami", Tenant: "acme", Key: k.Key})
	wantErr(t, r, 401, "unauthenticated")
	if r.Error.Message != "API key revoked" {
		t.Errorf("message = %q", r.Error.Message)
	}
	ownerID := strings.Split(owner, "_")[1]
	wantErr(t, e.Do(vctest.Request{Method: "DELETE", Path: "/v1/keys/" + ownerID, Tenant: "acme", Key: owner, Idem: "r2"}), 409, "last_owner")
	wantErr(t, e.Do(vctest.Request{Method: "DELETE", Path: "/v1/keys/not-a-key-id", Tenant: "acme", Key: owner, Idem: "r3"}), 404, "not_found")
}

func TestRevocationElsewhereSeenWithinTTL(t *testing.T) {
	e := vctest.New(t)
	owner := e.Tenant("acme")
	member, id := e.Key("acme", vaultcrux.RoleMember)
	who := vctest.Request{Method: "GET", Path: "/v1/auth/whoami", Tenant: "acme", Key: member}
	wantOK(t, e.Do(who), 200)
	// Another process (the CLI) revokes the key in the store directly.
	if _, _, err := e.Prov.RevokeKey(context.Background(), vctest.Operator, "acme", id, false); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(e.Config.AuthCacheTTL)
	wantErr(t, e.Do(who), 401, "unauthenticated")
	wantOK(t, e.Do(vctest.Request{Method: "GET", Path: "/v1/auth/whoami", Tenant: "acme", Key: owner}), 200)
}

func TestLastUsed(t *testing.T) {
	e := vctest.New(t)
	owner := e.Tenant("acme")
	_, id := e.Key("acme", vaultcrux.RoleViewer)
	list := func() map[string]keyOut {
		r := e.Do(vctest.Request{Method: "GET", Path: "/v1/keys", Tenant: "acme", Key: owner})
		var l keyList
		r.Into(t, &l)
		m := map[string]keyOut{}
		for _, k := range l.Items {
			m[k.ID] = k
		}
		return m
	}
	wantOK(t, e.Do(vctest.Request{Method: "GET", Path: "/v1/auth/whoami", Tenant: "acme", Key: owner}), 200)
	e.Server.FlushLastUsed(context.Background())
	ownerID := strings.Split(owner, "_")[1]
	got := list()
	if got[ownerID].LastUsedAt == nil || *got[ownerID].LastUsedAt != vaultcrux.FormatTime(e.Clock.Now()) {
		t.Errorf("owner lastUsedAt = %v, want %s", got[ownerID].LastUsedAt, vaultcrux.FormatTime(e.Clock.Now()))
	}
	if got[id].LastUsedAt != nil {
		t.Errorf("unused key has lastUsedAt %v", *got[id].LastUsedAt)
	}
}

func TestOps(t *testing.T) {
	e := vctest.New(t)
	key := e.Tenant("acme")
	for _, path := range []string{"/metrics", "/build-info"} {
		t.Run(path, func(t *testing.T) {
			wantErr(t, e.Do(vctest.Request{Method: "GET", Path: path}), 403, "forbidden")
			wantErr(t, e.Do(vctest.Request{Method: "GET", Path: path, RemoteAddr: "127.0.0.1:5000"}), 403, "forbidden")
			wantErr(t, e.Do(vctest.Request{Method: "GET", Path: path, Key: "vcrx_nope"}), 401, "unauthenticated")
			wantErr(t, e.Do(vctest.Request{Method: "GET", Path: path, Key: key, Tenant: "globex"}), 403, "tenant_mismatch")
			// A forged X-Forwarded-For from an untrusted peer is ignored.
			wantErr(t, e.Do(vctest.Request{Method: "GET", Path: path, Header: map[string]string{"x-forwarded-for": "100.64.0.7"}}), 403, "forbidden")
			for _, q := range []vctest.Request{
				{Method: "GET", Path: path, Key: key},
				{Method: "GET", Path: path, RemoteAddr: "100.101.102.103:999"},
				{Method: "GET", Path: path, RemoteAddr: "[fd7a:115c:a1e0::53]:999"},
			} {
				if r := e.Do(q); r.Status != 200 {
					t.Errorf("%+v: got %d %s, want 200", q, r.Status, r.Raw)
				}
			}
		})
	}
	r := e.Do(vctest.Request{Method: "GET", Path: "/build-info", Key: key})
	var bi vaultcrux.BuildInfo
	r.Into(t, &bi)
	if bi.Service != "vaultcrux" || bi.Version != "test" || bi.Commit != "abc123" {
		t.Errorf("build-info = %+v", bi)
	}
	m := e.Do(vctest.Request{Method: "GET", Path: "/metrics", Key: key})
	for _, want := range []string{`vaultcrux_http_requests_total{code="403",route="GET /metrics"}`, "vaultcrux_http_request_duration_seconds_bucket", "vaultcrux_http_in_flight_requests 1", "go_goroutines"} {
		if !strings.Contains(string(m.Raw), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, path := range []string{"/healthz", "/livez"} {
		wantOK(t, e.Do(vctest.Request{Method: "GET", Path: path}), 200)
	}
}

func TestTrustedProxy(t *testing.T) {
	e := vctest.New(t, func(s *vctest.Setup) { s.Config.TrustedProxies = mustPrefixes("10.0.0.0/8") })
	via := func(xff string) int {
		return e.Do(vctest.Request{Method: "GET", Path: "/build-info", RemoteAddr: "10.1.2.3:80", Header: map[string]string{"x-forwarded-for": xff}}).Status
	}
	if got := via("100.64.1.1"); got != 200 {
		t.Errorf("allowlisted client via trusted proxy: %d, want 200", got)
	}
	if got := via("100.64.1.1, 198.51.100.9"); got != 403 {
		t.Errorf("right-most untrusted hop is the client (198.51.100.9): %d, want 403", got)
	}
	if got := via("198.51.100.9, 10.9.9.9"); got != 403 {
		t.Errorf("trusted hops are skipped: %d, want 403", got)
	}
	if got := via("garbage"); got != 403 {
		t.Errorf("garbled chain: %d, want 403", got)
	}
}

func TestReadyz(t *testing.T) {
	st := vctest.Open(t)
	e := vctest.NewWithStore(t, st)
	r := e.Do(vctest.Request{Method: "GET", Path: "/readyz"})
	wantOK(t, r, 200)
	var ok struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	r.Into(t, &ok)
	if diff := cmp.Diff(map[string]string{"store": "ok", "migrations": "ok", "keys": "ok"}, ok.Checks); diff != "" || ok.Status != "ready" {
		t.Errorf("ready checks (-want +got):\n%s", diff)
	}

	st.Close() // the store becomes unreachable
	r = e.Do(vctest.Request{Method: "GET", Path: "/readyz"})
	wantErr(t, r, 503, "not_ready")
	if r.Error.Checks["store"] != "unreachable" || r.Error.Checks["keys"] != "ok" {
		t.Errorf("checks = %v, want store unreachable, keys ok", r.Error.Checks)
	}
	if strings.Contains(string(r.Raw), "/") && strings.Contains(string(r.Raw), ".db") {
		t.Errorf("readyz leaks a path: %s", r.Raw)
	}
	// Liveness does not depend on the store.
	wantOK(t, e.Do(vctest.Request{Method: "GET", Path: "/livez"}), 200)
}

func TestRequestID(t *testing.T) {
	e := vctest.New(t)
	r := e.Do(vctest.Request{Method: "GET", Path: "/healthz", Header: map[string]string{"x-request-id": "trace-123.abc"}})
	if got := r.Header.Get("x-request-id"); got != "trace-123.abc" {
		t.Errorf("sane request id not echoed: %q", got)
	}
	r = e.Do(vctest.Request{Method: "GET", Path: "/healthz", Header: map[string]string{"x-request-id": "<script>"}})
	if got := r.Header.Get("x-request-id"); got == "<script>" || len(got) != 26 {
		t.Errorf("unsafe request id: got %q, want a fresh 26-char id", got)
	}
}

func TestErrorEnvelopeJSON(t *testing.T) {
	e := vctest.New(t)
	r := e.Do(vctest.Request{Method: "GET", Path: "/v1/keys", Tenant: "acme"})
	var raw struct {
		OK    *bool          `json:"ok"`
		Error map[string]any `json:"error"`
	}
	if err := json.Unmarshal(r.Raw, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.OK == nil || *raw.OK || len(raw.Error) != 4 || raw.Error["type"] != "authentication" || raw.Error["code"] != "unauthenticated" {
		t.Errorf("error envelope = %s", r.Raw)
	}
	if r.Header.Get("content-type") != "application/json" || r.Header.Get("cache-control") != "no-store" {
		t.Errorf("headers = %v", r.Header)
	}
}

func TestConcurrentLastOwnerRevocation(t *testing.T) {
	testConcurrentLastOwnerRevocation(t, vctest.New(t))
}

// Two owner keys revoke each other at the same moment: exactly one may
// succeed, or the tenant would be left with no owner key.
func testConcurrentLastOwnerRevocation(t *testing.T, e *vctest.Env) {
	for round := range 5 {
		tenant := fmt.Sprintf("t%d", round)
		k1 := e.Tenant(tenant)
		k2, _ := e.Key(tenant, vaultcrux.RoleOwner)
		id := func(k string) string { return strings.Split(k, "_")[1] }
		var wg sync.WaitGroup
		res := make([]*vctest.Response, 2)
		for i, pair := range [][2]string{{k1, id(k2)}, {k2, id(k1)}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i] = e.Do(vctest.Request{Method: "DELETE", Path: "/v1/keys/" + pair[1], Tenant: tenant, Key: pair[0], Idem: fmt.Sprint("x", i)})
			}()
		}
		wg.Wait()
		ok, lastOwner, unauth := 0, 0, 0
		for _, r := range res {
			switch {
			case r.Status == 200:
				ok++
			case r.Code() == "last_owner":
				lastOwner++
			case r.Code() == "unauthenticated": // its own key was revoked first
				unauth++
			default:
				t.Errorf("round %d: unexpected %d %s", round, r.Status, r.Raw)
			}
		}
		if ok != 1 || lastOwner+unauth != 1 {
			t.Fatalf("round %d: %d revocations succeeded (%d last_owner, %d unauthenticated); want exactly 1", round, ok, lastOwner, unauth)
		}
	}
}

// TestIdempotentKeyReplayIsSealed: the stored copy of POST /v1/keys's
// answer, kept for replay, does not hold the new key in the clear, and
// the replay still shows it.
func TestIdempotentKeyReplayIsSealed(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := vctest.NewWithStore(t, st)
	owner := e.Tenant("acme")
	q := vctest.Request{Method: "POST", Path: "/v1/keys", Tenant: "acme", Key: owner, Idem: "sealed-1", Body: map[string]string{"label": "agent"}}
	first := e.Do(q)
	wantOK(t, first, 201)
	var created struct {
		Key string `json:"key"`
	}
	first.Into(t, &created)
	if created.Key == "" {
		t.Fatal("no key in the answer")
	}
	again := e.Do(q)
	if again.Header.Get("idempotent-replay") != "true" || string(again.Raw) != string(first.Raw) {
		t.Fatalf("replay: %v %s", again.Header, again.Raw)
	}
	var files int
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(created.Key)) || bytes.Contains(b, []byte(created.Key[len(created.Key)-20:])) {
			t.Errorf("%s holds the new API key", p)
		}
		return nil
	})
	if files == 0 {
		t.Fatal("no database files scanned")
	}
}
