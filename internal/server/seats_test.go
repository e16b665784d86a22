package server_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/apikey"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/tenancy"
	"github.com/vaultcrux/vaultcrux/internal/vctest"
)

// TestOrgRoutesFeatureDisabled walks the route table: with
// FEATURE_TEAM_SEATS off every /v1/org/* route answers 404
// feature_disabled, whoever asks, and nothing is written.
func TestOrgRoutesFeatureDisabled(t *testing.T) {
	e := vctest.New(t)
	owner := e.Tenant("acme")
	n := 0
	for _, rt := range routes(e) {
		if !strings.HasPrefix(rt.Path, "/v1/org/") {
			continue
		}
		n++
		for _, key := range []string{"", owner, "vcrx_garbage"} {
			q := vctest.Request{Method: rt.Method, Path: fillPath(rt.Path), Tenant: "acme", Key: key, Idem: idem()}
			if rt.Body {
				q.Body = map[string]string{"email": "a@example.com", "role": "member", "token": "x"}
			}
			r := e.Do(q)
			wantErr(t, r, 404, "feature_disabled")
			if strings.Contains(string(r.Raw), "acme") {
				t.Errorf("%s: answer names the tenant: %s", rt.Pattern, r.Raw)
			}
		}
	}
	if n != 8 {
		t.Errorf("found %d /v1/org routes, want 8", n)
	}
	if got := countSeats(t, e, "acme"); got != 0 {
		t.Errorf("seats = %d after refused requests, want 0", got)
	}
}

func TestBootstrapOwner(t *testing.T) {
	e := vctest.New(t, seatsOn)
	owner := e.Tenant("acme")
	admin, _ := e.Key("acme", vaultcrux.RoleAdmin)
	post := func(key, email string) *vctest.Response {
		return e.Do(vctest.Request{Method: "POST", Path: "/v1/org/bootstrap-owner", Tenant: "acme", Key: key, Idem: idem(), Body: map[string]string{"email": email}})
	}
	// Only an owner key may claim ownership.
	wantErr(t, post(admin, "a@acme.example"), 403, "forbidden")
	wantErr(t, post(owner, "not an email"), 400, "invalid_request")
	wantErr(t, post(owner, "Ann <ann@acme.example>"), 400, "invalid_request")
	if got := countSeats(t, e, "acme"); got != 0 {
		t.Fatalf("seats = %d after refused bootstraps, want 0", got)
	}

	r := post(owner, "Ann@Acme.example")
	wantOK(t, r, 201)
	var out struct {
		Seat      seatOut `json:"seat"`
		KeyID     string  `json:"keyId"`
		ReceiptID string  `json:"receiptId"`
	}
	r.Into(t, &out)
	ownerKeyID := strings.Split(owner, "_")[1]
	if out.Seat.Role != "owner" || out.Seat.Email != "Ann@Acme.example" || out.KeyID != ownerKeyID || out.ReceiptID == "" || r.Header.Get("x-receipt-id") != out.ReceiptID {
		t.Errorf("bootstrap answer = %s", r.Raw)
	}
	// The calling key now acts as the owner seat, at once.
	var w map[string]string
	who := whoami(e, "acme", owner)
	wantOK(t, who, 200)
	who.Into(t, &w)
	if w["principalId"] != "seat:"+out.Seat.ID || w["role"] != "owner" {
		t.Errorf("whoami after bootstrap = %v, want seat:%s owner", w, out.Seat.ID)
	}
	// The receipt names the seat, the key and a hash of the email, never the email.
	recs := receiptsOf(t, e, "acme", tenancy.KindSeatCreated)
	if len(recs) != 1 {
		t.Fatalf("seat.created receipts = %d, want 1", len(recs))
	}
	d := recs[0]["details"].(map[string]any)
	if d["seatId"] != out.Seat.ID || d["role"] != "owner" || d["keyId"] != ownerKeyID || d["via"] != "bootstrap" || d["emailHash"] != tenancy.EmailHash("ann@acme.example") {
		t.Errorf("seat.created details = %v", d)
	}
	if b, _ := json.Marshal(recs[0]); strings.Contains(strings.ToLower(string(b)), "ann@acme") {
		t.Errorf("receipt holds the email: %s", b)
	}
	// Once there is a seat, never again, whoever asks.
	owner2, _ := e.Key("acme", vaultcrux.RoleOwner)
	wantErr(t, post(owner2, "eve@acme.example"), 409, "conflict")
	if got := countSeats(t, e, "acme"); got != 1 {
		t.Errorf("seats = %d, want 1", got)
	}
}

// TestInviteAndAccept is the happy path and what it leaves behind.
func TestInviteAndAccept(t *testing.T) {
	e := vctest.New(t, seatsOn)
	o := newOrg(t, e, "acme")
	inv := o.invite(t, o.owner, "Bob@Acme.example", "admin")
	if !strings.HasPrefix(inv.Token, "vcinv_") || inv.Role != "admin" || inv.ReceiptID == "" {
		t.Errorf("invite = %+v", inv)
	}
	exp, err := time.Parse(vaultcrux.TimeFormat, inv.ExpiresAt)
	if err != nil || !exp.Equal(e.Clock.Now().Add(7*24*time.Hour)) {
		t.Errorf("expiresAt = %s (%v), want 7 days from now", inv.ExpiresAt, err)
	}
	// The invite and its receipt are durable before the token is shown;
	// the receipt holds neither the token nor its hash nor the email.
	recs := receiptsOf(t, e, "acme", tenancy.KindInviteCreated)
	if len(recs) != 1 || recs[0]["receiptId"] != inv.ReceiptID {
		t.Fatalf("invite.created receipts = %v, want the one of the answer", recs)
	}
	d := recs[0]["details"].(map[string]any)
	if diff := cmp.Diff(map[string]any{"inviteId": inv.InviteID, "role": "admin", "expiresAt": inv.ExpiresAt, "emailHash": tenancy.EmailHash("bob@acme.example")}, d); diff != "" {
		t.Errorf("invite.created details (-want +got):\n%s", diff)
	}
	tokenSecret := strings.TrimPrefix(inv.Token, "vcinv_")
	for _, kind := range []string{tenancy.KindInviteCreated, tenancy.KindInviteAccepted, tenancy.KindSeatCreated} {
		for _, rec := range receiptsOf(t, e, "acme", kind) {
			b, _ := json.Marshal(rec)
			if strings.Contains(string(b), tokenSecret) || strings.Contains(strings.ToLower(string(b)), "bob@acme") {
				t.Errorf("%s receipt leaks the token or the email: %s", kind, b)
			}
		}
	}

	a := o.accept(t, inv.Token)
	if a.Seat.Role != "admin" || a.Seat.Email != "Bob@Acme.example" || a.APIKey.Role != "admin" || a.APIKey.SeatID != a.Seat.ID ||
		!strings.HasPrefix(a.APIKey.Key, "vcrx_"+a.APIKey.ID+"_") || len(a.ReceiptIDs) != 3 || a.ReceiptID != a.ReceiptIDs[0] {
		t.Errorf("accept = %+v", a)
	}
	// The seat's own key works, as the seat, with the invite's role.
	var w map[string]string
	who := whoami(e, "acme", a.APIKey.Key)
	wantOK(t, who, 200)
	who.Into(t, &w)
	if w["principalId"] != "seat:"+a.Seat.ID || w["role"] != "admin" {
		t.Errorf("whoami of the new seat = %v", w)
	}
	acc := receiptsOf(t, e, "acme", tenancy.KindInviteAccepted)
	if len(acc) != 1 || acc[0]["details"].(map[string]any)["seatId"] != a.Seat.ID || acc[0]["details"].(map[string]any)["invitedBy"] != "seat:"+o.seatID {
		t.Errorf("invite.accepted receipts = %v", acc)
	}
	// The history records the creation by the invitee.
	h := o.history(t, a.Seat.ID)
	if len(h) != 1 || h[0].OldRole != "" || h[0].NewRole != vaultcrux.RoleAdmin || h[0].Actor != "seat:"+a.Seat.ID {
		t.Errorf("history = %+v", h)
	}

	// The seat list shows both seats to every role, and pages.
	_, viewer := o.seat(t, "vic@acme.example", "viewer")
	var all []seatOut
	cursor := ""
	for range 5 {
		path := "/v1/org/seats?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := e.Do(vctest.Request{Method: "GET", Path: path, Tenant: "acme", Key: viewer})
		wantOK(t, r, 200)
		var l struct {
			Items      []seatOut `json:"items"`
			NextCursor *string   `json:"nextCursor"`
		}
		r.Into(t, &l)
		all = append(all, l.Items...)
		if l.NextCursor == nil {
			break
		}
		cursor = *l.NextCursor
	}
	if len(all) != 3 || all[0].ID >= all[1].ID || all[1].ID >= all[2].ID {
		t.Errorf("paged seats = %+v, want 3 in id order", all)
	}
	// An active seat's email cannot be invited into a second seat.
	dup := o.invite(t, o.owner, "BOB@acme.example", "member")
	r := e.Do(vctest.Request{Method: "POST", Path: "/v1/org/accept-invite", Tenant: "acme", Body: map[string]string{"token": dup.Token}})
	wantErr(t, r, 409, "conflict")
	if got := countSeats(t, e, "acme"); got != 3 {
		t.Errorf("seats = %d after the refused duplicate, want 3", got)
	}
}

// TestInviteReuse: a token makes one seat, however often and however
// concurrently it is presented.
func TestInviteReuse(t *testing.T) { testInviteReuse(t, vctest.New(t, seatsOn)) }

func testInviteReuse(t *testing.T, e *vctest.Env) {
	o := newOrg(t, e, "acme")
	inv := o.invite(t, o.owner, "bob@acme.example", "member")
	const n = 8
	res := make([]*vctest.Response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res[i] = e.Do(vctest.Request{Method: "POST", Path: "/v1/org/accept-invite", Tenant: "acme", Body: map[string]string{"token": inv.Token}})
		})
	}
	wg.Wait()
	won := 0
	for _, r := range res {
		switch {
		case r.Status == 201:
			won++
		case r.Status == 404 && r.Code() == "not_found" && r.Error.Message == "invite not found or already used":
		default:
			t.Errorf("concurrent accept: %d %s", r.Status, r.Raw)
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent accepts won, want exactly 1", won)
	}
	// Later, the same.
	r := e.Do(vctest.Request{Method: "POST", Path: "/v1/org/accept-invite", Tenant: "acme", Body: map[string]string{"token": inv.Token}})
	wantErr(t, r, 404, "not_found")
	if got := countSeats(t, e, "acme"); got != 2 {
		t.Errorf("seats = %d, want 2 (owner + one accept)", got)
	}
	if got := len(receiptsOf(t, e, "acme", tenancy.KindInviteAccepted)); got != 1 {
		t.Errorf("invite.accepted receipts = %d, want 1", got)
	}
}

func TestInviteExpired(t *testing.T) {
	e := vctest.New(t, seatsOn)
	o := newOrg(t, e, "acme")
	inv := o.invite(t, o.owner, "bob@acme.example", "member")
	e.Clock.Advance(7*24*time.Hour - time.Millisecond)
	early := o.invite(t, o.owner, "carol@acme.example", "member")
	e.Clock.Advance(time.Millisecond) // exactly at expiry: over
	r := e.Do(vctest.Request{Method: "POST", Path: "/v1/org/accept-invite", Tenant: "acme", Body: map[string]string{"token": inv.Token}})
	wantErr(t, r, 404, "not_found")
	if r.Error.Message != "invite expired; ask for a new one" {
		t.Errorf("message = %q", r.Error.Message)
	}
	if got := countSeats(t, e, "acme"); got != 1 {
		t.Errorf("seats = %d, want 1: the expired invite made one", got)
	}
	// A younger invite still works.
	o.accept(t, early.Token)
}

// TestInviteWrongTenant: another tenant's token, presented with this
// tenant's id (or the other way round), is not found — with the same
// answer as a token that never existed — and makes no seat anywhere.
func TestInviteWrongTenant(t *testing.T) {
	e := vctest.New(t, seatsOn)
	a := newOrg(t, e, "acme")
	newOrg(t, e, "globex")
	inv := a.invite(t, a.owner, "bob@acme.example", "admin")
	unknown := "vcinv_" + base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	var msgs []string
	for _, q := range []vctest.Request{
		{Method: "POST", Path: "/v1/org/accept-invite", Tenant: "globex", Body: map[string]string{"token": inv.Token}},
		{Method: "POST", Path: "/v1/org/accept-invite", Tenant: "nosuchtenant", Body: map[string]string{"token": inv.Token}},
		{Method: "POST", Path: "/v1/org/accept-invite", Tenant: "acme", Body: map[string]string{"token": unknown}},
	} {
		r := e.Do(q)
		wantErr(t, r, 404, "not_found")
		msgs = append(msgs, r.Error.Message)
		if strings.Contains(string(r.Raw), "acme") || strings.Contains(string(r.Raw), "admin") {
			t.Errorf("answer to %s hints at the other tenant's invite: %s", q.Tenant, r.Raw)
		}
	}
	if msgs[0] != msgs[1] || msgs[0] != msgs[2] {
		t.Errorf("messages differ, an oracle: %q", msgs)
	}
	if got := countSeats(t, e, "globex") + countSeats(t, e, "acme"); got != 2 {
		t.Errorf("seats = %d, want the two owners only", got)
	}
	// Missing tenant header is a malformed request.
	wantErr(t, e.Do(vctest.Request{Method: "POST", Path: "/v1/org/accept-invite", Body: map[string]string{"token": inv.Token}}), 400, "invalid_request")
	// The token is still good where it belongs.
	a.accept(t, inv.Token)
}

// TestInviteGuessing: tokens carry 256 random bits, only their keyed hash
// is stored, and guesses are refused alike and then rate-limited.
func TestInviteGuessing(t *testing.T) {
	e := vctest.New(t, seatsOn, func(s *vctest.Setup) { s.Config.AuthFailuresPerAddress = 5 })
	o := newOrg(t, e, "acme")
	inv := o.invite(t, o.owner, "bob@acme.example", "member")
	raw, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimPrefix(inv.Token, "vcinv_"))
	if err != nil || len(raw)*8 < 128 {
		t.Fatalf("token carries %d bits (%v), want ≥ 128 (256 by design)", len(raw)*8, err)
	}
	if len(raw) != 32 {
		t.Errorf("token carries %d bytes, want 32", len(raw))
	}
	// Stored: a keyed hash, neither the token nor its plain SHA-256.
	tok, err := apikey.ParseInvite(inv.Token)
	if err != nil {
		t.Fatal(err)
	}
	var stored *vaultcrux.Invite
	err = e.Store.ForTenant("acme").Tx(t.Context(), func(tx store.TenantTx) (err error) {
		stored, err = tx.FindInvite(e.Hasher.HashInvite(tok))
		return err
	})
	if err != nil {
		t.Fatalf("the invite is not stored under the keyed hash of its token: %v", err)
	}
	plain := sha256.Sum256([]byte(inv.Token))
	if stored.ID != inv.InviteID || bytes.Equal(stored.TokenHash, plain[:]) || bytes.Contains(stored.TokenHash, raw) || bytes.Contains(stored.TokenHash, []byte(inv.Token)) {
		t.Errorf("stored token hash %x is not a keyed hash of the token", stored.TokenHash)
	}

	guess := func() string {
		b := make([]byte, 32)
		rand.Read(b)
		return "vcinv_" + base64.RawURLEncoding.EncodeToString(b)
	}
	for i, tok := range []string{guess(), guess(), "vcinv_short", inv.Token[:48] + "x", guess()} {
		r := e.Do(vctest.Request{Method: "POST", Path: "/v1/org/accept-invite", Tenant: "acme", Body: map[string]string{"token": tok}, RemoteAddr: "198.51.100.7:1"})
		wantErr(t, r, 404, "not_found")
		if r.Error.Message != "invite not found or already used" {
			t.Errorf("guess %d: message %q", i, r.Error.Message)
		}
	}
	// The budget of 5 is spent: now even the right token waits.
	r := e.Do(vctest.Request{Method: "POST", Path: "/v1/org/accept-invite", Tenant: "acme", Body: map[string]string{"token": inv.Token}, RemoteAddr: "198.51.100.7:1"})
	wantErr(t, r, 429, "rate_limited")
	if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q", ra)
	}
	if got := countSeats(t, e, "acme"); got != 1 {
		t.Errorf("seats = %d, want 1", got)
	}
	// From elsewhere the invite is still good.
	o.accept(t, inv.Token)
}

// TestLastOwner: the last active owner seat can be neither demoted nor
// revoked, by anyone, itself included.
func TestLastOwner(t *testing.T) { testLastOwner(t, vctest.New(t, seatsOn)) }

func testLastOwner(t *testing.T, e *vctest.Env) {
	o := newOrg(t, e, "acme")
	put := func(key, id, role string) *vctest.Response {
		return e.Do(vctest.Request{Method: "PUT", Path: "/v1/org/seats/" + id, Tenant: "acme", Key: key, Idem: idem(), Body: map[string]string{"role": role}})
	}
	del := func(key, id string) *vctest.Response {
		return e.Do(vctest.Request{Method: "DELETE", Path: "/v1/org/seats/" + id, Tenant: "acme", Key: key, Idem: idem()})
	}
	for _, role := range []string{"admin", "member", "viewer"} {
		r := put(o.owner, o.seatID, role)
		wantErr(t, r, 409, "last_owner")
	}
	wantErr(t, del(o.owner, o.seatID), 409, "last_owner")
	// Another owner key (not a seat) does not count as an owner seat.
	tenantOwner, _ := e.Key("acme", vaultcrux.RoleOwner)
	wantErr(t, del(tenantOwner, o.seatID), 409, "last_owner")
	if s := o.getSeat(t, o.seatID); s.Role != vaultcrux.RoleOwner || s.Revoked() {
		t.Fatalf("last owner seat = %+v", s)
	}
	if h := o.history(t, o.seatID); len(h) != 1 {
		t.Errorf("history has %d entries, want only the creation", len(h))
	}
	if n := len(receiptsOf(t, e, "acme", tenancy.KindSeatRoleChanged)) + len(receiptsOf(t, e, "acme", tenancy.KindSeatRevoked)); n != 0 {
		t.Errorf("%d receipts for refused changes, want 0", n)
	}

	// With a second owner, the first may step down; then the second is last.
	second, secondKey := o.seat(t, "two@acme.example", "owner")
	r := put(o.owner, o.seatID, "admin")
	wantOK(t, r, 200)
	wantErr(t, put(secondKey, second, "member"), 409, "last_owner")
	wantErr(t, del(secondKey, second), 409, "last_owner")
	// The demoted first owner's key now acts as admin: it may not touch the owner.
	wantErr(t, del(o.owner, second), 403, "forbidden")
}

// TestAdminVersusOwner: admins manage seats, but not to or from owner.
func TestAdminVersusOwner(t *testing.T) {
	e := vctest.New(t, seatsOn)
	o := newOrg(t, e, "acme")
	_, adminKey := o.seat(t, "adm@acme.example", "admin")
	memberID, _ := o.seat(t, "mem@acme.example", "member")
	_, memberKey := o.seat(t, "mem2@acme.example", "member")
	ownerID, _ := o.seat(t, "own2@acme.example", "owner")
	otherAdmin, _ := o.seat(t, "adm2@acme.example", "admin")

	cases := []struct {
		name   string
		req    vctest.Request
		status int
		code   string
	}{
		{"admin invites an owner", vctest.Request{Method: "POST", Path: "/v1/org/invite", Body: map[string]string{"email": "x@acme.example", "role": "owner"}}, 403, "forbidden"},
		{"admin promotes a member to owner", vctest.Request{Method: "PUT", Path: "/v1/org/seats/" + memberID, Body: map[string]string{"role": "owner"}}, 403, "forbidden"},
		{"admin demotes an owner", vctest.Request{Method: "PUT", Path: "/v1/org/seats/" + ownerID, Body: map[string]string{"role": "admin"}}, 403, "forbidden"},
		{"admin revokes an owner", vctest.Request{Method: "DELETE", Path: "/v1/org/seats/" + ownerID}, 403, "forbidden"},
		{"admin invites an admin", vctest.Request{Method: "POST", Path: "/v1/org/invite", Body: map[string]string{"email": "y@acme.example", "role": "admin"}}, 201, ""},
		{"admin promotes a member to admin", vctest.Request{Method: "PUT", Path: "/v1/org/seats/" + memberID, Body: map[string]string{"role": "admin"}}, 200, ""},
		{"admin demotes an admin", vctest.Request{Method: "PUT", Path: "/v1/org/seats/" + otherAdmin, Body: map[string]string{"role": "viewer"}}, 200, ""},
		{"admin revokes a viewer", vctest.Request{Method: "DELETE", Path: "/v1/org/seats/" + otherAdmin}, 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := c.req
			q.Tenant, q.Key, q.Idem = "acme", adminKey, idem()
			r := e.Do(q)
			if c.code != "" {
				wantErr(t, r, c.status, c.code)
			} else {
				wantOK(t, r, c.status)
			}
		})
	}
	if s := o.getSeat(t, ownerID); s.Role != vaultcrux.RoleOwner || s.Revoked() {
		t.Errorf("owner seat after the admin's attempts = %+v", s)
	}
	// Members and viewers manage nothing.
	wantErr(t, e.Do(vctest.Request{Method: "POST", Path: "/v1/org/invite", Tenant: "acme", Key: memberKey, Idem: idem(), Body: map[string]string{"email": "z@acme.example", "role": "viewer"}}), 403, "forbidden")
	// An owner may do all of it.
	wantOK(t, e.Do(vctest.Request{Method: "PUT", Path: "/v1/org/seats/" + ownerID, Tenant: "acme", Key: o.owner, Idem: idem(), Body: map[string]string{"role": "admin"}}), 200)
}

// TestRoleChangeIsRecordedAndTakesEffect: a role change is an append-only
// event with a receipt, and the seat's key acts with the new role at once.
func TestRoleChangeIsRecordedAndTakesEffect(t *testing.T) {
	e := vctest.New(t, seatsOn)
	o := newOrg(t, e, "acme")
	id, key := o.seat(t, "bob@acme.example", "admin")
	cookie := connect(t, e, "acme", key)
	// Warm the auth cache with the admin role.
	wantOK(t, e.Do(vctest.Request{Method: "GET", Path: "/v1/org/sessions", Tenant: "acme", Key: key}), 200)

	e.Clock.Advance(time.Minute)
	r := e.Do(vctest.Request{Method: "PUT", Path: "/v1/org/seats/" + id, Tenant: "acme", Key: o.owner, Idem: idem(), Body: map[string]string{"role": "viewer"}})
	wantOK(t, r, 200)
	var out struct {
		Seat      seatOut `json:"seat"`
		OldRole   string  `json:"oldRole"`
		ReceiptID string  `json:"receiptId"`
	}
	r.Into(t, &out)
	if out.Seat.Role != "viewer" || out.OldRole != "admin" || out.ReceiptID == "" || r.Header.Get("x-receipt-id") != out.ReceiptID {
		t.Errorf("change answer = %s", r.Raw)
	}
	// The demotion binds the key and the cookie at once.
	wantErr(t, e.Do(vctest.Request{Method: "GET", Path: "/v1/org/sessions", Tenant: "acme", Key: key}), 403, "forbidden")
	wantErr(t, e.Do(withCookie(vctest.Request{Method: "GET", Path: "/v1/org/sessions"}, cookie)), 403, "forbidden")
	var w map[string]string
	whoamiCookie(e, cookie).Into(t, &w)
	if w["role"] != "viewer" {
		t.Errorf("cookie principal role = %q, want viewer", w["role"])
	}

	h := o.history(t, id)
	if len(h) != 2 {
		t.Fatalf("history = %+v, want creation + change", h)
	}
	want := &vaultcrux.SeatRoleChange{ID: h[1].ID, SeatID: id, OldRole: vaultcrux.RoleAdmin, NewRole: vaultcrux.RoleViewer, Actor: "seat:" + o.seatID, At: e.Clock.Now()}
	if diff := cmp.Diff(want, h[1]); diff != "" {
		t.Errorf("role change (-want +got):\n%s", diff)
	}
	recs := receiptsOf(t, e, "acme", tenancy.KindSeatRoleChanged)
	if len(recs) != 1 || recs[0]["receiptId"] != out.ReceiptID || recs[0]["actor"] != "seat:"+o.seatID {
		t.Fatalf("seat.role_changed receipts = %v", recs)
	}
	if diff := cmp.Diff(map[string]any{"seatId": id, "oldRole": "admin", "newRole": "viewer", "changeId": h[1].ID}, recs[0]["details"]); diff != "" {
		t.Errorf("receipt details (-want +got):\n%s", diff)
	}
	// The same role again changes nothing and issues nothing.
	r = e.Do(vctest.Request{Method: "PUT", Path: "/v1/org/seats/" + id, Tenant: "acme", Key: o.owner, Idem: idem(), Body: map[string]string{"role": "viewer"}})
	wantOK(t, r, 200)
	if r.Header.Get("x-receipt-id") != "" || len(o.history(t, id)) != 2 || len(receiptsOf(t, e, "acme", tenancy.KindSeatRoleChanged)) != 1 {
		t.Errorf("a no-op change was recorded: %s", r.Raw)
	}
	// Bad input.
	wantErr(t, e.Do(vctest.Request{Method: "PUT", Path: "/v1/org/seats/" + id, Tenant: "acme", Key: o.owner, Idem: idem(), Body: map[string]string{"role": "root"}}), 400, "invalid_request")
	wantErr(t, e.Do(vctest.Request{Method: "PUT", Path: "/v1/org/seats/nope", Tenant: "acme", Key: o.owner, Idem: idem(), Body: map[string]string{"role": "member"}}), 404, "not_found")
}

// TestSeatRevocation: revoking a seat revokes its keys and ends its
// sessions at once, with one receipt that counts them and one session
// event per session.
func TestSeatRevocation(t *testing.T) { testSeatRevocation(t, vctest.New(t, seatsOn)) }

func testSeatRevocation(t *testing.T, e *vctest.Env) {
	o := newOrg(t, e, "acme")
	id, key := o.seat(t, "bob@acme.example", "member")
	c1, c2 := connect(t, e, "acme", key), connect(t, e, "acme", key)
	other := connect(t, e, "acme", o.owner)
	wantOK(t, whoami(e, "acme", key), 200) // cached
	wantOK(t, whoamiCookie(e, c1), 200)

	r := e.Do(vctest.Request{Method: "DELETE", Path: "/v1/org/seats/" + id, Tenant: "acme", Key: o.owner, Idem: idem()})
	wantOK(t, r, 200)
	rid := r.Header.Get("x-receipt-id")
	wantErr(t, whoami(e, "acme", key), 401, "unauthenticated")
	for _, c := range []string{c1, c2} {
		wantErr(t, whoamiCookie(e, c), 401, "unauthenticated")
	}
	wantOK(t, whoamiCookie(e, other), 200)
	if s := o.getSeat(t, id); !s.Revoked() {
		t.Error("seat not revoked")
	}
	recs := receiptsOf(t, e, "acme", tenancy.KindSeatRevoked)
	if len(recs) != 1 || recs[0]["receiptId"] != rid {
		t.Fatalf("seat.revoked receipts = %v", recs)
	}
	if diff := cmp.Diff(map[string]any{"seatId": id, "role": "member", "revokedKeys": float64(1), "endedSessions": float64(2)}, recs[0]["details"]); diff != "" {
		t.Errorf("seat.revoked details (-want +got):\n%s", diff)
	}
	revoked := 0
	for _, ev := range sessionEvents(t, e, "acme") {
		if ev.Kind == "revoked" && (ev.SessionID == sessionID(t, c1) || ev.SessionID == sessionID(t, c2)) {
			revoked++
		}
	}
	if revoked != 2 {
		t.Errorf("revoked session events = %d, want 2", revoked)
	}
	// Again: nothing changes, no receipt.
	r = e.Do(vctest.Request{Method: "DELETE", Path: "/v1/org/seats/" + id, Tenant: "acme", Key: o.owner, Idem: idem()})
	wantOK(t, r, 200)
	if r.Header.Get("x-receipt-id") != "" || len(receiptsOf(t, e, "acme", tenancy.KindSeatRevoked)) != 1 {
		t.Errorf("revoking twice issued a receipt: %s", r.Raw)
	}
	// A revoked seat's role cannot change.
	wantErr(t, e.Do(vctest.Request{Method: "PUT", Path: "/v1/org/seats/" + id, Tenant: "acme", Key: o.owner, Idem: idem(), Body: map[string]string{"role": "admin"}}), 404, "not_found")
}

// TestSeatsAreTenantScoped: another tenant's seat ids are not found.
func TestSeatsAreTenantScoped(t *testing.T) {
	e := vctest.New(t, seatsOn)
	a, b := newOrg(t, e, "acme"), newOrg(t, e, "globex")
	id, _ := a.seat(t, "bob@acme.example", "member")
	for _, q := range []vctest.Request{
		{Method: "PUT", Path: "/v1/org/seats/" + id, Body: map[string]string{"role": "admin"}},
		{Method: "DELETE", Path: "/v1/org/seats/" + id},
	} {
		q.Tenant, q.Key, q.Idem = "globex", b.owner, idem()
		r := e.Do(q)
		wantErr(t, r, 404, "not_found")
		if strings.Contains(string(r.Raw), "acme") {
			t.Errorf("answer names the other tenant: %s", r.Raw)
		}
	}
	if s := a.getSeat(t, id); s.Role != vaultcrux.RoleMember || s.Revoked() {
		t.Errorf("acme's seat after globex's attempts = %+v", s)
	}
	var l struct {
		Items []seatOut `json:"items"`
	}
	e.Do(vctest.Request{Method: "GET", Path: "/v1/org/seats", Tenant: "globex", Key: b.owner}).Into(t, &l)
	if len(l.Items) != 1 || l.Items[0].ID != b.seatID {
		t.Errorf("globex lists %+v, want only its owner", l.Items)
	}
}

func TestConcurrentDemotionOfLastTwoOwners(t *testing.T) {
	e := vctest.New(t, seatsOn)
	testConcurrentDemotionOfLastTwoOwners(t, e, vctest.NewWithStore(t, e.Store, seatsOn))
}

// testConcurrentDemotionOfLastTwoOwners: two requests demote the last two
// owner seats at the same moment. Exactly one may succeed, or the tenant
// would be left without an owner seat. In even rounds the two requests go
// to two servers (replicas with their own receipt writers over one store,
// so that the changes commit in two transactions), each with a tenant
// owner key of its own; in odd rounds the two owner seats demote each
// other through one server.
func testConcurrentDemotionOfLastTwoOwners(t *testing.T, e, replica *vctest.Env) {
	for round := range 6 {
		o := newOrg(t, e, fmt.Sprintf("demote%d", round))
		second, secondKey := o.seat(t, "two@x.example", "owner")
		servers := [2]*vctest.Env{e, replica}
		var actors [2]string
		if round%2 == 0 {
			actors[0], _ = e.Key(o.tenant, vaultcrux.RoleOwner)
			// The replica has its own pepper: it verifies only keys it issued.
			_, tok, _, err := replica.Prov.IssueKey(t.Context(), vctest.Operator, vaultcrux.TenantID(o.tenant), "replica owner", vaultcrux.RoleOwner)
			if err != nil {
				t.Fatal(err)
			}
			actors[1] = tok.Reveal()
		} else {
			servers = [2]*vctest.Env{e, e}
			actors = [2]string{secondKey, o.owner}
		}
		targets := [2]string{o.seatID, second}
		res := make([]*vctest.Response, 2)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() {
				res[i] = servers[i].Do(vctest.Request{Method: "PUT", Path: "/v1/org/seats/" + targets[i], Tenant: o.tenant, Key: actors[i], Idem: idem(), Body: map[string]string{"role": "admin"}})
			})
		}
		wg.Wait()
		ok, refused := 0, 0
		for _, r := range res {
			switch {
			case r.Status == 200:
				ok++
			case r.Code() == "last_owner":
				refused++
			case round%2 == 1 && r.Code() == "forbidden": // its own seat was demoted to admin first
				refused++
			default:
				t.Errorf("round %d: unexpected %d %s", round, r.Status, r.Raw)
			}
		}
		if ok != 1 || refused != 1 {
			t.Fatalf("round %d: %d demotions succeeded, %d refused; want exactly one of each", round, ok, refused)
		}
		owners := 0
		for _, id := range targets {
			if o.getSeat(t, id).Role == vaultcrux.RoleOwner {
				owners++
			}
		}
		if owners != 1 {
			t.Errorf("round %d: %d owner seats left, want 1", round, owners)
		}
		if got := len(receiptsOf(t, e, o.tenant, tenancy.KindSeatRoleChanged)); got != 1 {
			t.Errorf("round %d: %d seat.role_changed receipts, want 1", round, got)
		}
	}
}
