package server_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaultcrux/vaultcrux/internal/vctest"
)

// TestRateLimitPerAddress: once an address has spent its budget of failed
// attempts, every authentication attempt from it is 429 with retry-after
// — a valid key included — until the budget refills; other addresses are
// not affected.
func TestRateLimitPerAddress(t *testing.T) {
	e := vctest.New(t, seatsOn, func(s *vctest.Setup) { s.Config.AuthFailuresPerAddress = 5 })
	key := e.Tenant("acme")
	cookie := connect(t, e, "acme", key)
	bad := key[:len(key)-4] + "aaaa"
	const attacker = "203.0.113.9:4000"
	from := func(addr, k string) *vctest.Response {
		return e.Do(vctest.Request{Method: "GET", Path: "/v1/auth/whoami", Tenant: "acme", Key: k, RemoteAddr: addr})
	}
	for i := range 5 {
		if r := from(attacker, bad); r.Status != 401 {
			t.Fatalf("failure %d: %d %s, want 401", i+1, r.Status, r.Raw)
		}
	}
	r := from(attacker, key)
	wantErr(t, r, 429, "rate_limited")
	retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || retry != 12 { // 5 a minute: one every 12 s
		t.Errorf("Retry-After = %q, want 12", r.Header.Get("Retry-After"))
	}
	// Every way in is closed for that address: cookie, connect, invite
	// accept, the frontdoor session probe, the ops routes.
	for _, q := range []vctest.Request{
		withCookie(vctest.Request{Method: "GET", Path: "/v1/auth/whoami"}, cookie),
		{Method: "POST", Path: "/frontdoor/auth/connect", Body: map[string]string{"tenantId": "acme", "apiKey": key}},
		{Method: "POST", Path: "/v1/org/accept-invite", Tenant: "acme", Body: map[string]string{"token": "vcinv_x"}},
		withCookie(vctest.Request{Method: "GET", Path: "/frontdoor/auth/session"}, cookie),
		{Method: "GET", Path: "/metrics", Key: key},
	} {
		q.RemoteAddr = attacker
		wantErr(t, e.Do(q), 429, "rate_limited")
	}
	// Its neighbours are served.
	wantOK(t, from("203.0.113.10:4000", key), 200)
	if r := from("203.0.113.10:4000", bad); r.Status != 401 {
		t.Errorf("a neighbour's failure: %d, want 401", r.Status)
	}
	// The budget refills: after retry-after one more attempt is allowed.
	e.Clock.Advance(time.Duration(retry) * time.Second)
	wantOK(t, from(attacker, key), 200)
	if r := from(attacker, bad); r.Status != 401 {
		t.Errorf("failure after the refill: %d, want 401", r.Status)
	}
	wantErr(t, from(attacker, key), 429, "rate_limited")
	// Signing out gains nothing: a genuine cookie is ended even from a
	// blocked address.
	r = e.Do(withCookie(vctest.Request{Method: "POST", Path: "/frontdoor/auth/logout", RemoteAddr: attacker}, cookie))
	wantOK(t, r, 200)
	wantCleared(t, r)
	if getSession(t, e, "acme", sessionID(t, cookie)).RevokedAt == nil {
		t.Error("logout from a blocked address left the session live")
	}
	m := e.Do(vctest.Request{Method: "GET", Path: "/metrics", Key: key})
	if !strings.Contains(string(m.Raw), `vaultcrux_auth_rate_limited_total{scope="address"}`) {
		t.Error("metrics do not count rate-limited attempts")
	}
}

// TestRateLimitIPv6Prefix: the addresses of one IPv6 /64 share a budget.
func TestRateLimitIPv6Prefix(t *testing.T) {
	e := vctest.New(t, func(s *vctest.Setup) { s.Config.AuthFailuresPerAddress = 3 })
	key := e.Tenant("acme")
	for i := range 3 {
		r := e.Do(vctest.Request{Method: "GET", Path: "/v1/auth/whoami", Tenant: "acme", Key: "vcrx_nope", RemoteAddr: fmt.Sprintf("[2001:db8:1:2::%x]:1", i+1)})
		wantErr(t, r, 401, "unauthenticated")
	}
	wantErr(t, e.Do(vctest.Request{Method: "GET", Path: "/v1/auth/whoami", Tenant: "acme", Key: key, RemoteAddr: "[2001:db8:1:2:ffff::1]:1"}), 429, "rate_limited")
	wantOK(t, e.Do(vctest.Request{Method: "GET", Path: "/v1/auth/whoami", Tenant: "acme", Key: key, RemoteAddr: "[2001:db8:1:3::1]:1"}), 200)
}

// TestRateLimitPerTenantDoesNotLockOut: failures spread over many
// addresses spend the tenant's budget; further failures are then 429, but
// valid credentials of the tenant are still served, and other tenants are
// not affected.
func TestRateLimitPerTenantDoesNotLockOut(t *testing.T) {
	e := vctest.New(t, func(s *vctest.Setup) { s.Config.AuthFailuresPerTenant = 10 })
	key := e.Tenant("acme")
	keyB := e.Tenant("globex")
	cookie := connect(t, e, "acme", key)
	addr := func(i int) string { return fmt.Sprintf("198.51.100.%d:1", i) }
	bad := key[:len(key)-4] + "aaaa"
	for i := range 10 {
		q := vctest.Request{Method: "GET", Path: "/v1/auth/whoami", Tenant: "acme", Key: bad, RemoteAddr: addr(i)}
		if i%2 == 1 { // forged cookies naming the tenant count too
			q = withCookie(vctest.Request{Method: "GET", Path: "/v1/auth/whoami", RemoteAddr: addr(i)}, "vc_session=v1.acme.00000000000000000000000000.AAAA")
		}
		wantErr(t, e.Do(q), 401, "unauthenticated")
	}
	// The tenant's budget is spent: a further failure, from a fresh
	// address, is 429 …
	r := e.Do(vctest.Request{Method: "GET", Path: "/v1/auth/whoami", Tenant: "acme", Key: bad, RemoteAddr: addr(50)})
	wantErr(t, r, 429, "rate_limited")
	if r.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	r = e.Do(vctest.Request{Method: "POST", Path: "/frontdoor/auth/connect", Body: map[string]string{"tenantId": "acme", "apiKey": bad}, RemoteAddr: addr(51)})
	wantErr(t, r, 429, "rate_limited")
	// … but the tenant's own credentials still work, from anywhere,
	// including addresses that failed before.
	for _, a := range []string{addr(60), addr(0)} {
		wantOK(t, e.Do(vctest.Request{Method: "GET", Path: "/v1/auth/whoami", Tenant: "acme", Key: key, RemoteAddr: a}), 200)
		wantOK(t, e.Do(withCookie(vctest.Request{Method: "GET", Path: "/v1/auth/whoami", RemoteAddr: a}, cookie)), 200)
		wantOK(t, e.Do(vctest.Request{Method: "POST", Path: "/frontdoor/auth/connect", Body: map[string]string{"tenantId": "acme", "apiKey": key}, RemoteAddr: a}), 200)
	}
	// Another tenant's budget is its own.
	wantErr(t, e.Do(vctest.Request{Method: "GET", Path: "/v1/auth/whoami", Tenant: "globex", Key: keyB[:len(keyB)-4] + "aaaa", RemoteAddr: addr(70)}), 401, "unauthenticated")
	wantOK(t, e.Do(vctest.Request{Method: "GET", Path: "/v1/auth/whoami", Tenant: "globex", Key: keyB, RemoteAddr: addr(70)}), 200)
	// Failed sign-ins are recorded while the budget lasts, not beyond it:
	// an attacker cannot fill the activity table.
	failed := 0
	for _, ev := range sessionEvents(t, e, "acme") {
		if ev.Kind == "failed" {
			failed++
		}
	}
	if failed != 5 { // the five forged cookies; the over-budget connect is not recorded
		t.Errorf("failed events = %d, want 5", failed)
	}
}
