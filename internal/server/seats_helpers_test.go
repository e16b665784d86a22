package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/vctest"
)

// seatsOn turns FEATURE_TEAM_SEATS on.
func seatsOn(s *vctest.Setup) { s.Config.FeatureTeamSeats = true }

var idemSeq atomic.Int64

// idem returns a fresh idempotency key.
func idem() string { return fmt.Sprintf("idem-%d", idemSeq.Add(1)) }

type seatOut struct {
	ID        string  `json:"id"`
	Email     string  `json:"email"`
	Role      string  `json:"role"`
	CreatedAt string  `json:"createdAt"`
	RevokedAt *string `json:"revokedAt"`
}

type inviteOut struct {
	InviteID  string `json:"inviteId"`
	Token     string `json:"token"`
	Email     string `json:"email"`
	Role      string `json:"role"`
	ExpiresAt string `json:"expiresAt"`
	ReceiptID string `json:"receiptId"`
}

type acceptOut struct {
	Seat   seatOut `json:"seat"`
	APIKey struct {
		ID     string `json:"id"`
		Key    string `json:"key"`
		Role   string `json:"role"`
		SeatID string `json:"seatId"`
	} `json:"apiKey"`
	ReceiptID  string   `json:"receiptId"`
	ReceiptIDs []string `json:"receiptIds"`
}

type sessionOut struct {
	Authenticated bool   `json:"authenticated"`
	TenantID      string `json:"tenantId"`
	Role          string `json:"role"`
	ExpiresAt     string `json:"expiresAt"`
}

// org is a tenant with team seats: its tenant owner key has claimed the
// owner seat.
type org struct {
	e      *vctest.Env
	tenant string
	owner  string // the owner seat's key (the tenant's first key)
	seatID string // the owner seat
}

func newOrg(t *testing.T, e *vctest.Env, tenant string) *org {
	t.Helper()
	key := e.Tenant(tenant)
	r := e.Do(vctest.Request{Method: "POST", Path: "/v1/org/bootstrap-owner", Tenant: tenant, Key: key, Idem: idem(),
		Body: map[string]string{"email": "owner@" + tenant + ".example"}})
	wantOK(t, r, 201)
	var out struct {
		Seat seatOut `json:"seat"`
	}
	r.Into(t, &out)
	return &org{e: e, tenant: tenant, owner: key, seatID: out.Seat.ID}
}

// invite invites email as role with actor's key.
func (o *org) invite(t *testing.T, actor, email, role string) inviteOut {
	t.Helper()
	r := o.e.Do(vctest.Request{Method: "POST", Path: "/v1/org/invite", Tenant: o.tenant, Key: actor, Idem: idem(),
		Body: map[string]string{"email": email, "role": role}})
	wantOK(t, r, 201)
	var inv inviteOut
	r.Into(t, &inv)
	return inv
}

func (o *org) accept(t *testing.T, token string) acceptOut {
	t.Helper()
	r := o.e.Do(vctest.Request{Method: "POST", Path: "/v1/org/accept-invite", Tenant: o.tenant, Body: map[string]string{"token": token}})
	wantOK(t, r, 201)
	var a acceptOut
	r.Into(t, &a)
	return a
}

// seat makes a seat of role through invite and accept, and returns its
// id and its key.
func (o *org) seat(t *testing.T, email, role string) (id, key string) {
	t.Helper()
	a := o.accept(t, o.invite(t, o.owner, email, role).Token)
	return a.Seat.ID, a.APIKey.Key
}

func (o *org) getSeat(t *testing.T, id string) *vaultcrux.Seat {
	t.Helper()
	var s *vaultcrux.Seat
	err := o.e.Store.ForTenant(vaultcrux.TenantID(o.tenant)).Tx(context.Background(), func(tx store.TenantTx) (err error) {
		s, err = tx.GetSeat(id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (o *org) history(t *testing.T, id string) []*vaultcrux.SeatRoleChange {
	t.Helper()
	var h []*vaultcrux.SeatRoleChange
	err := o.e.Store.ForTenant(vaultcrux.TenantID(o.tenant)).Tx(context.Background(), func(tx store.TenantTx) (err error) {
		h, err = tx.SeatRoleHistory(id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func countSeats(t *testing.T, e *vctest.Env, tenant string) int {
	t.Helper()
	var n int
	err := e.Store.ForTenant(vaultcrux.TenantID(tenant)).Tx(context.Background(), func(tx store.TenantTx) (err error) {
		n, err = tx.CountSeats()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// receiptsOf returns the receipt documents of kind in tenant, oldest first.
func receiptsOf(t *testing.T, e *vctest.Env, tenant, kind string) []map[string]any {
	t.Helper()
	var recs []*store.ReceiptRecord
	err := e.Store.ForTenant(vaultcrux.TenantID(tenant)).Tx(context.Background(), func(tx store.TenantTx) (err error) {
		recs, err = tx.ListReceipts(store.ReceiptFilter{Kind: kind, BeforeIndex: -1, Limit: 1000})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for i := len(recs) - 1; i >= 0; i-- {
		var m map[string]any
		if err := json.Unmarshal(recs[i].Body, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func sessionEvents(t *testing.T, e *vctest.Env, tenant string) []*vaultcrux.SessionEvent {
	t.Helper()
	var evs []*vaultcrux.SessionEvent
	err := e.Store.ForTenant(vaultcrux.TenantID(tenant)).Tx(context.Background(), func(tx store.TenantTx) (err error) {
		evs, err = tx.ListSessionEvents("", 1000)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// eventKinds lists the kinds of tenant's session events, oldest first,
// each with its detail when it has one: "expired(idle timeout)".
func eventKinds(t *testing.T, e *vctest.Env, tenant string) []string {
	t.Helper()
	evs := sessionEvents(t, e, tenant)
	out := make([]string, 0, len(evs))
	for i := len(evs) - 1; i >= 0; i-- {
		k := evs[i].Kind
		if evs[i].Detail != "" {
			k += "(" + evs[i].Detail + ")"
		}
		out = append(out, k)
	}
	return out
}

func getSession(t *testing.T, e *vctest.Env, tenant, id string) *vaultcrux.Session {
	t.Helper()
	var s *vaultcrux.Session
	err := e.Store.ForTenant(vaultcrux.TenantID(tenant)).Tx(context.Background(), func(tx store.TenantTx) (err error) {
		s, err = tx.GetSession(id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// connect signs in with key and returns the Cookie header value.
func connect(t *testing.T, e *vctest.Env, tenant, key string) string {
	t.Helper()
	r := e.Do(vctest.Request{Method: "POST", Path: "/frontdoor/auth/connect", Body: map[string]string{"tenantId": tenant, "apiKey": key}})
	wantOK(t, r, 200)
	c := setCookie(t, r)
	if c.Value == "" || c.MaxAge <= 0 {
		t.Fatalf("connect set cookie %+v, want a value and a positive Max-Age", c)
	}
	return c.Name + "=" + c.Value
}

// setCookie parses the response's one Set-Cookie header.
func setCookie(t *testing.T, r *vctest.Response) *http.Cookie {
	t.Helper()
	vals := r.Header.Values("Set-Cookie")
	if len(vals) != 1 {
		t.Fatalf("Set-Cookie headers = %q, want one", vals)
	}
	c, err := http.ParseSetCookie(vals[0])
	if err != nil {
		t.Fatalf("Set-Cookie %q: %v", vals[0], err)
	}
	if c.Name != "vc_session" {
		t.Fatalf("cookie name %q, want vc_session", c.Name)
	}
	return c
}

// wantCleared asserts that r removes the session cookie.
func wantCleared(t *testing.T, r *vctest.Response) {
	t.Helper()
	c := setCookie(t, r)
	if c.Value != "" || c.MaxAge >= 0 {
		t.Errorf("Set-Cookie %q does not clear the cookie", r.Header.Get("Set-Cookie"))
	}
}

// withCookie makes q a browser request carrying cookie, from this site's
// own pages (Sec-Fetch-Site: same-origin).
func withCookie(q vctest.Request, cookie string) vctest.Request {
	h := map[string]string{"Cookie": cookie, "Sec-Fetch-Site": "same-origin"}
	for k, v := range q.Header {
		h[k] = v
	}
	q.Header = h
	return q
}

// sessionID is the session id inside a cookie "vc_session=v1.<tenant>.<id>.<mac>".
func sessionID(t *testing.T, cookie string) string {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(cookie, "vc_session="), ".")
	if len(parts) != 4 {
		t.Fatalf("cookie %q is not v1.<tenant>.<id>.<mac>", cookie)
	}
	return parts[2]
}

func whoami(e *vctest.Env, tenant, key string) *vctest.Response {
	return e.Do(vctest.Request{Method: "GET", Path: "/v1/auth/whoami", Tenant: tenant, Key: key})
}

func whoamiCookie(e *vctest.Env, cookie string) *vctest.Response {
	return e.Do(withCookie(vctest.Request{Method: "GET", Path: "/v1/auth/whoami"}, cookie))
}

// lockedLog collects log output written from several goroutines.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
