package server_test

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/tenancy"
	"github.com/vaultcrux/vaultcrux/internal/vctest"
)

// TestFrontdoorSession is the life of a browser session: connect sets a
// strict cookie, the cookie authenticates /v1/*, session reports it,
// logout ends it.
func TestFrontdoorSession(t *testing.T) {
	e := vctest.New(t)
	key := e.Tenant("acme")
	keyID := strings.Split(key, "_")[1]
	r := e.Do(vctest.Request{Method: "POST", Path: "/frontdoor/auth/connect", Body: map[string]string{"tenantId": "acme", "apiKey": key},
		Header: map[string]string{"User-Agent": "Firefox/140 " + strings.Repeat("x", 400)}})
	wantOK(t, r, 200)
	var s sessionOut
	r.Into(t, &s)
	exp := e.Clock.Now().Add(12 * time.Hour)
	if diff := cmp.Diff(sessionOut{Authenticated: true, TenantID: "acme", Role: "owner", ExpiresAt: vaultcrux.FormatTime(exp)}, s); diff != "" {
		t.Errorf("connect (-want +got):\n%s", diff)
	}
	raw := r.Header.Get("Set-Cookie")
	for _, attr := range []string{"HttpOnly", "Secure", "SameSite=Strict", "Path=/", "Max-Age=43200"} {
		if !strings.Contains(raw, attr) {
			t.Errorf("Set-Cookie %q lacks %s", raw, attr)
		}
	}
	if strings.Contains(raw, "Domain=") {
		t.Errorf("Set-Cookie %q names a domain: the cookie must be host-only", raw)
	}
	cookie := setCookie(t, r).Name + "=" + setCookie(t, r).Value
	sid := sessionID(t, cookie)
	// The row: tenant, key, role, expiry, idle timeout, address, user agent (cut).
	row := getSession(t, e, "acme", sid)
	if row.KeyID != keyID || row.Role != vaultcrux.RoleOwner || !row.ExpiresAt.Equal(exp) || row.IdleTimeout != 30*time.Minute ||
		row.IP != "192.0.2.1" || len(row.UserAgent) > 260 || !strings.HasPrefix(row.UserAgent, "Firefox/140") || row.RevokedAt != nil {
		t.Errorf("session row = %+v", row)
	}
	// Never the key or the cookie in the access log, nor in the row.
	if strings.Contains(row.UserAgent+row.IP, key) {
		t.Error("session row holds the key")
	}

	// The cookie authenticates /v1/* as the key, without x-tenant-id.
	who := whoamiCookie(e, cookie)
	wantOK(t, who, 200)
	var w map[string]string
	who.Into(t, &w)
	if w["tenantId"] != "acme" || w["principalId"] != "key:"+keyID || w["role"] != "owner" {
		t.Errorf("whoami by cookie = %v", w)
	}
	// …and with a matching x-tenant-id too.
	wantOK(t, e.Do(withCookie(vctest.Request{Method: "GET", Path: "/v1/auth/whoami", Tenant: "acme"}, cookie)), 200)
	// Cookie-authenticated mutations work from the site's own pages.
	wantOK(t, e.Do(withCookie(vctest.Request{Method: "POST", Path: "/v1/keys", Idem: idem(), Body: map[string]string{"label": "from the console"}}, cookie)), 201)

	r = e.Do(withCookie(vctest.Request{Method: "GET", Path: "/frontdoor/auth/session"}, cookie))
	wantOK(t, r, 200)
	r.Into(t, &s)
	if !s.Authenticated || s.TenantID != "acme" || s.Role != "owner" || s.ExpiresAt != vaultcrux.FormatTime(exp) {
		t.Errorf("session = %+v", s)
	}
	r = e.Do(vctest.Request{Method: "GET", Path: "/frontdoor/auth/session"})
	wantOK(t, r, 200)
	r.Into(t, &s)
	if s.Authenticated || r.Header.Get("Set-Cookie") != "" {
		t.Errorf("session without a cookie = %s (Set-Cookie %q)", r.Raw, r.Header.Get("Set-Cookie"))
	}

	e.Clock.Advance(time.Minute) // session events order by time
	r = e.Do(withCookie(vctest.Request{Method: "POST", Path: "/frontdoor/auth/logout"}, cookie))
	wantOK(t, r, 200)
	wantCleared(t, r)
	if getSession(t, e, "acme", sid).RevokedAt == nil {
		t.Error("logout left the session row live")
	}
	// Logging out again (or without a cookie) is fine.
	wantOK(t, e.Do(withCookie(vctest.Request{Method: "POST", Path: "/frontdoor/auth/logout"}, cookie)), 200)
	wantOK(t, e.Do(vctest.Request{Method: "POST", Path: "/frontdoor/auth/logout"}), 200)
	if diff := cmp.Diff([]string{"connect", "logout"}, eventKinds(t, e, "acme")); diff != "" {
		t.Errorf("session events (-want +got):\n%s", diff)
	}
}

func TestDevInsecureCookie(t *testing.T) {
	e := vctest.New(t, func(s *vctest.Setup) { s.Config.DevInsecureCookie = true; s.Config.SessionTTL = time.Hour })
	key := e.Tenant("acme")
	r := e.Do(vctest.Request{Method: "POST", Path: "/frontdoor/auth/connect", Body: map[string]string{"tenantId": "acme", "apiKey": key}})
	wantOK(t, r, 200)
	raw := r.Header.Get("Set-Cookie")
	if strings.Contains(raw, "Secure") || !strings.Contains(raw, "HttpOnly") || !strings.Contains(raw, "SameSite=Strict") || !strings.Contains(raw, "Max-Age=3600") {
		t.Errorf("dev cookie = %q, want HttpOnly, SameSite=Strict, Max-Age=3600 and no Secure", raw)
	}
}

// TestConnectFailures: a bad key is 401 and a "failed" event; a key of
// another tenant is 403 tenant_mismatch, logged; neither makes a session.
func TestConnectFailures(t *testing.T) {
	e := vctest.New(t)
	keyA := e.Tenant("acme")
	keyB := e.Tenant("globex")
	revoked, revokedID := e.Key("acme", vaultcrux.RoleMember)
	if _, _, err := e.Prov.RevokeKey(t.Context(), vctest.Operator, "acme", revokedID, false); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name         string
		body         any
		status       int
		code         string
		failedEvents map[string]int // tenant → "failed" events written
	}{
		{"wrong secret", map[string]string{"tenantId": "acme", "apiKey": keyA[:len(keyA)-4] + "aaaa"}, 401, "unauthenticated", map[string]int{"acme": 1}},
		{"garbage key", map[string]string{"tenantId": "acme", "apiKey": "hunter2"}, 401, "unauthenticated", map[string]int{"acme": 1}},
		{"revoked key", map[string]string{"tenantId": "acme", "apiKey": revoked}, 401, "unauthenticated", map[string]int{"acme": 1}},
		{"another tenant's key", map[string]string{"tenantId": "acme", "apiKey": keyB}, 403, "tenant_mismatch", map[string]int{"globex": 1}},
		{"unknown tenant", map[string]string{"tenantId": "nobody", "apiKey": keyA}, 403, "tenant_mismatch", map[string]int{"acme": 1}},
		{"malformed tenant", map[string]string{"tenantId": "Not A Tenant", "apiKey": keyA}, 400, "invalid_request", nil},
		{"unknown field", map[string]string{"tenantId": "acme", "apiKey": keyA, "role": "owner"}, 400, "invalid_request", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := map[string]int{"acme": len(sessionEvents(t, e, "acme")), "globex": len(sessionEvents(t, e, "globex"))}
			r := e.Do(vctest.Request{Method: "POST", Path: "/frontdoor/auth/connect", Body: c.body})
			wantErr(t, r, c.status, c.code)
			if r.Header.Get("Set-Cookie") != "" {
				t.Errorf("a refused connect set a cookie: %q", r.Header.Get("Set-Cookie"))
			}
			for _, tenant := range []string{"acme", "globex"} {
				evs := sessionEvents(t, e, tenant)
				if got := len(evs) - before[tenant]; got != c.failedEvents[tenant] {
					t.Errorf("%s: %d new session events, want %d", tenant, got, c.failedEvents[tenant])
				}
				for _, ev := range evs[:len(evs)-before[tenant]] {
					if ev.Kind != "failed" || ev.SessionID != "" || ev.IP != "192.0.2.1" || strings.Contains(ev.Detail, keyA) || strings.Contains(ev.Detail, keyB) {
						t.Errorf("%s event = %+v", tenant, ev)
					}
				}
			}
			if strings.Contains(string(r.Raw), "globex") {
				t.Errorf("answer names the other tenant: %s", r.Raw)
			}
		})
	}
}

// TestCookieTamperedMAC: any change to the cookie fails its MAC: 401, the
// cookie cleared, nothing read as another session, and the failure counted.
func TestCookieTamperedMAC(t *testing.T) {
	// Budgets out of the way: this test makes many failures on purpose
	// (TestRateLimit… covers the budgets).
	e := vctest.New(t, func(s *vctest.Setup) { s.Config.AuthFailuresPerAddress, s.Config.AuthFailuresPerTenant = 1000, 1000 })
	e.Tenant("acme")
	member, _ := e.Key("acme", vaultcrux.RoleMember)
	cookie := connect(t, e, "acme", member)
	other := connect(t, e, "acme", member)
	parts := strings.Split(strings.TrimPrefix(cookie, "vc_session="), ".")
	flip := func(s string) string {
		b := []byte(s)
		if b[len(b)/2] == 'A' {
			b[len(b)/2] = 'B'
		} else {
			b[len(b)/2] = 'A'
		}
		return string(b)
	}
	otherSID := sessionID(t, other)
	for name, value := range map[string]string{
		"flipped mac":            strings.Join([]string{parts[0], parts[1], parts[2], flip(parts[3])}, "."),
		"another session's id":   strings.Join([]string{parts[0], parts[1], otherSID, parts[3]}, "."),
		"another tenant named":   strings.Join([]string{parts[0], "globex", parts[2], parts[3]}, "."),
		"other version":          strings.Join([]string{"v2", parts[1], parts[2], parts[3]}, "."),
		"mac dropped":            strings.Join(parts[:3], "."),
		"mac truncated":          strings.Join([]string{parts[0], parts[1], parts[2], parts[3][:20]}, "."),
		"session id only":        parts[2],
		"empty":                  "",
		"brief's format, no mac": parts[2] + "." + parts[3],
	} {
		t.Run(name, func(t *testing.T) {
			for _, q := range []vctest.Request{
				{Method: "GET", Path: "/v1/auth/whoami"},
				{Method: "POST", Path: "/v1/keys", Idem: idem(), Body: map[string]string{"label": "x"}},
			} {
				r := e.Do(withCookie(q, "vc_session="+value))
				wantErr(t, r, 401, "unauthenticated")
				wantCleared(t, r)
			}
			r := e.Do(withCookie(vctest.Request{Method: "GET", Path: "/frontdoor/auth/session"}, "vc_session="+value))
			wantOK(t, r, 200)
			var s sessionOut
			r.Into(t, &s)
			if s.Authenticated {
				t.Errorf("session with a tampered cookie = %s", r.Raw)
			}
		})
	}
	// Two cookies (one planted from a sibling domain): neither is trusted.
	r := e.Do(withCookie(vctest.Request{Method: "GET", Path: "/v1/auth/whoami"}, cookie+"; "+other))
	wantErr(t, r, 401, "unauthenticated")
	// The genuine cookies are untouched.
	wantOK(t, whoamiCookie(e, cookie), 200)
	wantOK(t, whoamiCookie(e, other), 200)
	if m := e.Do(vctest.Request{Method: "GET", Path: "/metrics", Key: member}); !strings.Contains(string(m.Raw), `vaultcrux_auth_failures_total{credential="session_cookie"}`) {
		t.Error("metrics do not count the forged cookies")
	}
}

// TestCookieOtherTenant: a genuine cookie of one tenant, sent with another
// tenant's x-tenant-id (or body tenantId), is 403 tenant_mismatch, and
// nothing is read or written.
func TestCookieOtherTenant(t *testing.T) {
	e := vctest.New(t)
	e.Tenant("acme")
	keyB := e.Tenant("globex")
	cookieB := connect(t, e, "globex", keyB)
	before := countKeys(t, e, "acme") + countKeys(t, e, "globex")
	for _, q := range []vctest.Request{
		{Method: "GET", Path: "/v1/keys", Tenant: "acme"},
		{Method: "POST", Path: "/v1/keys", Tenant: "acme", Idem: idem(), Body: map[string]string{"label": "evil"}},
		{Method: "POST", Path: "/v1/keys", Idem: idem(), Body: map[string]string{"label": "evil", "tenantId": "acme"}},
	} {
		r := e.Do(withCookie(q, cookieB))
		wantErr(t, r, 403, "tenant_mismatch")
		if strings.Contains(string(r.Raw), "globex") || strings.Contains(string(r.Raw), "acme") {
			t.Errorf("answer names a tenant: %s", r.Raw)
		}
	}
	if after := countKeys(t, e, "acme") + countKeys(t, e, "globex"); after != before {
		t.Errorf("keys %d → %d: a refused request wrote", before, after)
	}
	// The cookie still works for its own tenant.
	wantOK(t, e.Do(withCookie(vctest.Request{Method: "GET", Path: "/v1/keys", Tenant: "globex"}, cookieB)), 200)
}

// TestCookieExpired: at its absolute expiry a session stops, is revoked,
// and one "expired" event is recorded however often it is presented.
func TestCookieExpired(t *testing.T) {
	e := vctest.New(t, func(s *vctest.Setup) { s.Config.SessionTTL = time.Hour; s.Config.SessionIdleTimeout = time.Hour })
	key := e.Tenant("acme")
	cookie := connect(t, e, "acme", key)
	// Keep it busy so that idleness is not what ends it.
	for range 5 {
		e.Clock.Advance(11*time.Minute + 59*time.Second)
		wantOK(t, whoamiCookie(e, cookie), 200)
	}
	e.Clock.Advance(time.Hour - 5*(11*time.Minute+59*time.Second))
	r := whoamiCookie(e, cookie)
	wantErr(t, r, 401, "unauthenticated")
	if r.Error.Message != "session expired; sign in again" {
		t.Errorf("first refusal message = %q", r.Error.Message)
	}
	wantCleared(t, r)
	for range 2 {
		wantErr(t, whoamiCookie(e, cookie), 401, "unauthenticated")
	}
	if row := getSession(t, e, "acme", sessionID(t, cookie)); row.RevokedAt == nil || !row.RevokedAt.Equal(e.Clock.Now()) {
		t.Errorf("expired session row = %+v, want revoked now", row)
	}
	if diff := cmp.Diff([]string{"connect", "expired(absolute expiry)"}, eventKinds(t, e, "acme")); diff != "" {
		t.Errorf("session events (-want +got):\n%s", diff)
	}
}

// TestCookieIdleExpired: a session unused for its idle timeout ends, even
// though its absolute expiry is far; use within the timeout keeps it.
func TestCookieIdleExpired(t *testing.T) {
	e := vctest.New(t)
	key := e.Tenant("acme")
	busy, idle := connect(t, e, "acme", key), connect(t, e, "acme", key)
	e.Clock.Advance(20 * time.Minute)
	wantOK(t, whoamiCookie(e, busy), 200)
	// Polling the session route does not count as use.
	r := e.Do(withCookie(vctest.Request{Method: "GET", Path: "/frontdoor/auth/session"}, idle))
	var s sessionOut
	r.Into(t, &s)
	if !s.Authenticated {
		t.Fatalf("session after 20 idle minutes = %s, want authenticated", r.Raw)
	}
	e.Clock.Advance(15 * time.Minute)
	r = whoamiCookie(e, idle) // 35 minutes idle, limit 30
	wantErr(t, r, 401, "unauthenticated")
	if r.Error.Message != "session expired; sign in again" {
		t.Errorf("message = %q", r.Error.Message)
	}
	wantCleared(t, r)
	wantOK(t, whoamiCookie(e, busy), 200)
	if diff := cmp.Diff([]string{"connect", "connect", "expired(idle timeout)"}, eventKinds(t, e, "acme")); diff != "" {
		t.Errorf("session events (-want +got):\n%s", diff)
	}
	// The session route now says signed out and clears the cookie.
	r = e.Do(withCookie(vctest.Request{Method: "GET", Path: "/frontdoor/auth/session"}, idle))
	wantOK(t, r, 200)
	wantCleared(t, r)
}

// TestSessionTouchCoalesced: last_seen_at is written at most every 30 s.
func TestSessionTouchCoalesced(t *testing.T) {
	e := vctest.New(t)
	key := e.Tenant("acme")
	cookie := connect(t, e, "acme", key)
	sid := sessionID(t, cookie)
	start := e.Clock.Now()
	e.Clock.Advance(10 * time.Second)
	wantOK(t, whoamiCookie(e, cookie), 200)
	if got := getSession(t, e, "acme", sid).LastSeenAt; !got.Equal(start) {
		t.Errorf("last_seen_at after 10 s = %v, want unchanged %v", got, start)
	}
	e.Clock.Advance(25 * time.Second)
	wantOK(t, whoamiCookie(e, cookie), 200)
	if got := getSession(t, e, "acme", sid).LastSeenAt; !got.Equal(e.Clock.Now()) {
		t.Errorf("last_seen_at after 35 s = %v, want %v", got, e.Clock.Now())
	}
}

// TestCookieRevoked: a session ended by an owner or admin (DELETE
// /v1/org/sessions/:id), by revoking its key, or by revoking its seat,
// authenticates nothing more.
func TestCookieRevoked(t *testing.T) { testCookieRevoked(t, vctest.New(t, seatsOn)) }

func testCookieRevoked(t *testing.T, e *vctest.Env) {
	o := newOrg(t, e, "acme")
	seatID, seatKey := o.seat(t, "bob@acme.example", "member")
	byAdmin := connect(t, e, "acme", seatKey)
	bySeat := connect(t, e, "acme", seatKey)
	tenantKey, tenantKeyID := e.Key("acme", vaultcrux.RoleViewer)
	byKey := connect(t, e, "acme", tenantKey)
	for _, c := range []string{byAdmin, bySeat, byKey} {
		wantOK(t, whoamiCookie(e, c), 200)
	}

	r := e.Do(vctest.Request{Method: "DELETE", Path: "/v1/org/sessions/" + sessionID(t, byAdmin), Tenant: "acme", Key: o.owner, Idem: idem()})
	wantOK(t, r, 200)
	if r.Header.Get("x-receipt-id") == "" || len(receiptsOf(t, e, "acme", tenancy.KindSessionRevoked)) != 1 {
		t.Errorf("ending a session issued no receipt: %s", r.Raw)
	}
	wantErr(t, whoamiCookie(e, byAdmin), 401, "unauthenticated")
	wantOK(t, whoamiCookie(e, bySeat), 200)

	wantOK(t, e.Do(vctest.Request{Method: "DELETE", Path: "/v1/keys/" + tenantKeyID, Tenant: "acme", Key: o.owner, Idem: idem()}), 200)
	r = whoamiCookie(e, byKey)
	wantErr(t, r, 401, "unauthenticated")
	if r.Error.Message != "session ended; sign in again" {
		t.Errorf("message = %q", r.Error.Message)
	}
	if getSession(t, e, "acme", sessionID(t, byKey)).RevokedAt == nil {
		t.Error("revoking the key left its session row live")
	}

	wantOK(t, e.Do(vctest.Request{Method: "DELETE", Path: "/v1/org/seats/" + seatID, Tenant: "acme", Key: o.owner, Idem: idem()}), 200)
	wantErr(t, whoamiCookie(e, bySeat), 401, "unauthenticated")

	var revoked int
	for _, k := range eventKinds(t, e, "acme") {
		if strings.HasPrefix(k, "revoked(") {
			revoked++
		}
	}
	if revoked != 3 {
		t.Errorf("revoked events = %d (%v), want 3", revoked, eventKinds(t, e, "acme"))
	}
}

// TestCookieReplayAfterLogout: a cookie captured before logout is worth
// nothing after it, on every route.
func TestCookieReplayAfterLogout(t *testing.T) {
	e := vctest.New(t, seatsOn)
	o := newOrg(t, e, "acme")
	cookie := connect(t, e, "acme", o.owner)
	wantOK(t, e.Do(withCookie(vctest.Request{Method: "POST", Path: "/frontdoor/auth/logout"}, cookie)), 200)
	before := countKeys(t, e, "acme")
	for _, q := range []vctest.Request{
		{Method: "GET", Path: "/v1/auth/whoami"},
		{Method: "GET", Path: "/v1/org/seats"},
		{Method: "POST", Path: "/v1/keys", Idem: idem(), Body: map[string]string{"label": "replayed"}},
		{Method: "POST", Path: "/v1/org/invite", Idem: idem(), Body: map[string]string{"email": "x@acme.example", "role": "owner"}},
	} {
		r := e.Do(withCookie(q, cookie))
		wantErr(t, r, 401, "unauthenticated")
		if r.Error.Message != "session ended; sign in again" {
			t.Errorf("%s %s: message %q", q.Method, q.Path, r.Error.Message)
		}
	}
	if countKeys(t, e, "acme") != before || len(receiptsOf(t, e, "acme", tenancy.KindInviteCreated)) != 0 {
		t.Error("a replayed cookie wrote")
	}
	r := e.Do(withCookie(vctest.Request{Method: "GET", Path: "/frontdoor/auth/session"}, cookie))
	var s sessionOut
	r.Into(t, &s)
	if s.Authenticated {
		t.Errorf("session after logout = %s", r.Raw)
	}
}

// TestCookieCrossSitePost: a cross-site request carrying a valid cookie
// is refused 403 before it does anything; an API key request is not
// subject to the check.
func TestCookieCrossSitePost(t *testing.T) { testCookieCrossSitePost(t, vctest.New(t, seatsOn)) }

func testCookieCrossSitePost(t *testing.T, e *vctest.Env) {
	o := newOrg(t, e, "acme")
	cookie := connect(t, e, "acme", o.owner)
	before := countKeys(t, e, "acme")
	crossSite := []map[string]string{
		{"Cookie": cookie, "Sec-Fetch-Site": "cross-site"},
		{"Cookie": cookie, "Sec-Fetch-Site": "same-site"},
		{"Cookie": cookie, "Origin": "https://evil.example"},
	}
	for i, h := range crossSite {
		for _, q := range []vctest.Request{
			{Method: "POST", Path: "/v1/keys", Idem: idem(), Body: map[string]string{"label": "csrf"}},
			{Method: "DELETE", Path: "/v1/org/seats/" + o.seatID, Idem: idem()},
			{Method: "PUT", Path: "/v1/org/seats/" + o.seatID, Idem: idem(), Body: map[string]string{"role": "admin"}},
			{Method: "POST", Path: "/frontdoor/auth/logout"},
			{Method: "POST", Path: "/frontdoor/auth/connect", Body: map[string]string{"tenantId": "acme", "apiKey": o.owner}},
		} {
			q.Header = h
			r := e.Do(q)
			wantErr(t, r, 403, "forbidden")
			if !strings.Contains(r.Error.Message, "cross-origin") {
				t.Errorf("case %d %s %s: message %q", i, q.Method, q.Path, r.Error.Message)
			}
		}
		// Safe methods pass: a cross-site GET cannot carry a SameSite=Strict
		// cookie anyway, and it changes nothing.
		wantOK(t, e.Do(vctest.Request{Method: "GET", Path: "/v1/auth/whoami", Header: h}), 200)
	}
	if countKeys(t, e, "acme") != before || o.getSeat(t, o.seatID).Role != vaultcrux.RoleOwner {
		t.Error("a cross-site request wrote")
	}
	if getSession(t, e, "acme", sessionID(t, cookie)).RevokedAt != nil {
		t.Error("a cross-site logout ended the session")
	}
	// Same origin by Origin header (no Sec-Fetch-Site) is accepted.
	wantOK(t, e.Do(vctest.Request{Method: "POST", Path: "/v1/keys", Idem: idem(), Body: map[string]string{"label": "ok"},
		Header: map[string]string{"Cookie": cookie, "Origin": "http://example.com"}}), 201)
	// An API key request with cross-site headers is not a browser's cookie request.
	wantOK(t, e.Do(vctest.Request{Method: "POST", Path: "/v1/keys", Tenant: "acme", Key: o.owner, Idem: idem(), Body: map[string]string{"label": "api"},
		Header: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}}), 201)
}

// TestOrgSessions: owners and admins list live sessions and end them.
func TestOrgSessions(t *testing.T) { testOrgSessions(t, vctest.New(t, seatsOn)) }

func testOrgSessions(t *testing.T, e *vctest.Env) {
	o := newOrg(t, e, "acme")
	_, adminKey := o.seat(t, "adm@acme.example", "admin")
	_, memberKey := o.seat(t, "mem@acme.example", "member")
	mine := connect(t, e, "acme", adminKey)
	ownerCookie := connect(t, e, "acme", o.owner)
	memberCookie := connect(t, e, "acme", memberKey)
	stale := connect(t, e, "acme", memberKey)
	// stale goes idle; the others are used.
	e.Clock.Advance(20 * time.Minute)
	for _, c := range []string{mine, ownerCookie, memberCookie} {
		wantOK(t, whoamiCookie(e, c), 200)
	}
	e.Clock.Advance(15 * time.Minute)

	list := func(cookie string) []map[string]any {
		t.Helper()
		r := e.Do(withCookie(vctest.Request{Method: "GET", Path: "/v1/org/sessions"}, cookie))
		wantOK(t, r, 200)
		var l struct {
			Items []map[string]any `json:"items"`
		}
		r.Into(t, &l)
		return l.Items
	}
	items := list(mine)
	var ids []string
	for _, it := range items {
		ids = append(ids, it["id"].(string))
		if (it["id"] == sessionID(t, mine)) != (it["current"] == true) {
			t.Errorf("item %v: current flag wrong", it)
		}
		if it["ip"] != "192.0.2.1" || it["keyId"] == "" {
			t.Errorf("item %v", it)
		}
	}
	want := []string{sessionID(t, mine), sessionID(t, ownerCookie), sessionID(t, memberCookie)}
	slices.Sort(want)
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("listed sessions (-want +got):\n%s", diff)
	}
	if slices.Contains(ids, sessionID(t, stale)) {
		t.Error("an idle-expired session is listed as active")
	}
	wantErr(t, e.Do(withCookie(vctest.Request{Method: "GET", Path: "/v1/org/sessions"}, memberCookie)), 403, "forbidden")

	// An admin may not end an owner's session, but may end a member's.
	wantErr(t, e.Do(withCookie(vctest.Request{Method: "DELETE", Path: "/v1/org/sessions/" + sessionID(t, ownerCookie), Idem: idem()}, mine)), 403, "forbidden")
	r := e.Do(withCookie(vctest.Request{Method: "DELETE", Path: "/v1/org/sessions/" + sessionID(t, memberCookie), Idem: idem()}, mine))
	wantOK(t, r, 200)
	recs := receiptsOf(t, e, "acme", tenancy.KindSessionRevoked)
	if len(recs) != 1 || recs[0]["receiptId"] != r.Header.Get("x-receipt-id") || recs[0]["details"].(map[string]any)["sessionId"] != sessionID(t, memberCookie) {
		t.Errorf("session.revoked receipts = %v", recs)
	}
	wantErr(t, whoamiCookie(e, memberCookie), 401, "unauthenticated")
	wantOK(t, whoamiCookie(e, ownerCookie), 200)
	// Ending one's own session signs the browser out.
	r = e.Do(withCookie(vctest.Request{Method: "DELETE", Path: "/v1/org/sessions/" + sessionID(t, mine), Idem: idem()}, mine))
	wantOK(t, r, 200)
	wantCleared(t, r)
	// Unknown, malformed and other tenants' ids are not found.
	keyB := e.Tenant("globex")
	cookieB := connect(t, e, "globex", keyB)
	for _, id := range []string{"00000000000000000000000000", "nope", sessionID(t, cookieB)} {
		wantErr(t, e.Do(vctest.Request{Method: "DELETE", Path: "/v1/org/sessions/" + id, Tenant: "acme", Key: o.owner, Idem: idem()}), 404, "not_found")
	}
	wantOK(t, whoamiCookie(e, cookieB), 200)
}

// TestSessionCookieNotInLogs: the access log never holds the cookie, the
// key or the invite token.
func TestSessionCookieNotInLogs(t *testing.T) {
	logs := &lockedLog{}
	e := vctest.New(t, seatsOn, func(s *vctest.Setup) { s.Logger = slog.New(slog.NewJSONHandler(logs, nil)) })
	o := newOrg(t, e, "acme")
	inv := o.invite(t, o.owner, "bob@acme.example", "member")
	a := o.accept(t, inv.Token)
	cookie := connect(t, e, "acme", a.APIKey.Key)
	wantOK(t, whoamiCookie(e, cookie), 200)
	e.Do(withCookie(vctest.Request{Method: "GET", Path: "/v1/auth/whoami"}, cookie+"x"))
	out := logs.String()
	mac := cookie[strings.LastIndex(cookie, ".")+1:]
	for name, secret := range map[string]string{"cookie mac": mac, "owner key": o.owner, "seat key": a.APIKey.Key, "invite token": inv.Token} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds the %s", name)
		}
	}
	if !strings.Contains(out, `"principal":"seat:`+a.Seat.ID+`"`) {
		t.Errorf("the access log does not name the cookie's principal:\n%s", out)
	}
}
