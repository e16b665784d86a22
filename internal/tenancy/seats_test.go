package tenancy_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/apikey"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/store/postgres"
	"github.com/vaultcrux/vaultcrux/internal/store/postgres/pgtest"
	"github.com/vaultcrux/vaultcrux/internal/tenancy"
	"github.com/vaultcrux/vaultcrux/internal/vctest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// backends runs fn over SQLite and over PostgreSQL (as an ordinary role,
// row-level security in force).
func backends(t *testing.T, fn func(t *testing.T, e *vctest.Env)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, vctest.New(t)) })
	t.Run("postgres", func(t *testing.T) {
		db, err := postgres.Open(context.Background(), pgtest.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		fn(t, vctest.NewWithStore(t, db))
	})
}

// team creates tenant with an owner seat made by bootstrap (returned as
// its principal) and a second owner seat made by invite.
func team(t *testing.T, e *vctest.Env, tenant string) (owner vaultcrux.Principal, first, second *vaultcrux.Seat) {
	t.Helper()
	ctx := context.Background()
	_, k, _, _, err := e.Prov.CreateTenant(ctx, vctest.Operator, vaultcrux.TenantID(tenant), "")
	if err != nil {
		t.Fatal(err)
	}
	owner = vaultcrux.Principal{Tenant: vaultcrux.TenantID(tenant), ID: "key:" + k.ID, KeyID: k.ID, Role: vaultcrux.RoleOwner}
	if first, _, err = e.Prov.BootstrapOwner(ctx, owner, "one@"+tenant+".example"); err != nil {
		t.Fatal(err)
	}
	owner.ID, owner.SeatID = "seat:"+first.ID, first.ID
	_, tok, _, err := e.Prov.Invite(ctx, owner, "two@"+tenant+".example", vaultcrux.RoleOwner, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.Prov.AcceptInvite(ctx, vaultcrux.TenantID(tenant), tok.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	return owner, first, a.Seat
}

func seatRole(t *testing.T, e *vctest.Env, tenant, id string) vaultcrux.Role {
	t.Helper()
	var s *vaultcrux.Seat
	err := e.Store.ForTenant(vaultcrux.TenantID(tenant)).Tx(context.Background(), func(tx store.TenantTx) (err error) {
		s, err = tx.GetSeat(id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s.Role
}

// TestConcurrentDemotionOfLastTwoOwners: two provisioners with their own
// receipt writers (two replicas) demote the last two owner seats at once.
// Exactly one succeeds; the other is LastOwner; one owner seat is left,
// with one role change and one receipt.
func TestConcurrentDemotionOfLastTwoOwners(t *testing.T) {
	backends(t, func(t *testing.T, e *vctest.Env) {
		replica := vctest.NewWithStore(t, e.Store)
		for round := range 8 {
			tenant := fmt.Sprintf("race%d", round)
			actor, a, b := team(t, e, tenant)
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for i, p := range []*tenancy.Provisioner{e.Prov, replica.Prov} {
				target := []string{a.ID, b.ID}[i]
				wg.Go(func() { _, _, _, errs[i] = p.ChangeSeatRole(context.Background(), actor, target, vaultcrux.RoleAdmin) })
			}
			wg.Wait()
			ok, last := 0, 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case vaultcrux.ErrorKind(err) == vaultcrux.LastOwner:
					last++
				default:
					t.Errorf("round %d: %v", round, err)
				}
			}
			if ok != 1 || last != 1 {
				t.Fatalf("round %d: %d succeeded, %d last_owner (%v); want one each", round, ok, last, errs)
			}
			owners := 0
			for _, id := range []string{a.ID, b.ID} {
				if seatRole(t, e, tenant, id) == vaultcrux.RoleOwner {
					owners++
				}
			}
			if owners != 1 {
				t.Errorf("round %d: %d owner seats left, want 1", round, owners)
			}
			if got := countReceipts(t, e, tenant, tenancy.KindSeatRoleChanged); got != 1 {
				t.Errorf("round %d: %d role-change receipts, want 1", round, got)
			}
		}
	})
}

// TestConcurrentRevocationOfLastTwoOwners: the same for revocation.
func TestConcurrentRevocationOfLastTwoOwners(t *testing.T) {
	backends(t, func(t *testing.T, e *vctest.Env) {
		replica := vctest.NewWithStore(t, e.Store)
		for round := range 4 {
			tenant := fmt.Sprintf("rev%d", round)
			actor, a, b := team(t, e, tenant)
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for i, p := range []*tenancy.Provisioner{e.Prov, replica.Prov} {
				target := []string{a.ID, b.ID}[i]
				wg.Go(func() { _, _, errs[i] = p.RevokeSeat(context.Background(), actor, target) })
			}
			wg.Wait()
			if (errs[0] == nil) == (errs[1] == nil) {
				t.Fatalf("round %d: errors %v; want exactly one revocation", round, errs)
			}
			for _, err := range errs {
				if err != nil && vaultcrux.ErrorKind(err) != vaultcrux.LastOwner {
					t.Errorf("round %d: %v, want last_owner", round, err)
				}
			}
		}
	})
}

// TestRevokeSeatCountsWhatItEnds: the receipt counts the seat's live keys
// and sessions, each ended session gets a "revoked" event, and what was
// already over is left as it was.
func TestRevokeSeatCountsWhatItEnds(t *testing.T) {
	backends(t, func(t *testing.T, e *vctest.Env) {
		ctx := context.Background()
		actor, _, seat := team(t, e, "acme")
		ts := e.Store.ForTenant("acme")
		now := e.Clock.Now().UTC().Truncate(time.Millisecond)
		var keys []*vaultcrux.APIKey
		err := ts.Tx(ctx, func(tx store.TenantTx) (err error) {
			keys, err = tx.ListAPIKeys("", 100)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var seatKey string
		for _, k := range keys {
			if k.SeatID == seat.ID {
				seatKey = k.ID
			}
		}
		old := &vaultcrux.APIKey{ID: "oldkeyoldkeyoldk", Tenant: "acme", Label: "old", Role: vaultcrux.RoleOwner, SeatID: seat.ID, Hash: make([]byte, 32), CreatedAt: now, RevokedAt: &now}
		sess := func(id string, mut func(*vaultcrux.Session)) *vaultcrux.Session {
			s := &vaultcrux.Session{ID: id, Tenant: "acme", KeyID: seatKey, SeatID: seat.ID, Role: vaultcrux.RoleOwner, CreatedAt: now,
				ExpiresAt: now.Add(time.Hour), IdleTimeout: time.Minute, LastSeenAt: now, IP: "192.0.2.1", UserAgent: "t"}
			if mut != nil {
				mut(s)
			}
			return s
		}
		live1, live2 := sess("01JLIVE0000000000000000001", nil), sess("01JLIVE0000000000000000002", func(s *vaultcrux.Session) { s.SeatID = "" })
		ended := sess("01JENDED000000000000000001", func(s *vaultcrux.Session) { s.RevokedAt = &now })
		expired := sess("01JEXPRD000000000000000001", func(s *vaultcrux.Session) { s.ExpiresAt = now })
		err = ts.Tx(ctx, func(tx store.TenantTx) error {
			if err := tx.CreateAPIKey(old); err != nil {
				return err
			}
			for _, s := range []*vaultcrux.Session{live1, live2, ended, expired} {
				if err := tx.CreateSession(s); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got, rid, err := e.Prov.RevokeSeat(ctx, actor, seat.ID)
		if err != nil || !got.Revoked() || rid == "" {
			t.Fatalf("RevokeSeat = %+v, %q, %v", got, rid, err)
		}
		d := details(t, e, "acme", tenancy.KindSeatRevoked, 0)
		if diff := cmp.Diff(map[string]any{"seatId": seat.ID, "role": "owner", "revokedKeys": float64(1), "endedSessions": float64(2)}, d); diff != "" {
			t.Errorf("seat.revoked details (-want +got):\n%s", diff)
		}
		var evs []*vaultcrux.SessionEvent
		err = ts.Tx(ctx, func(tx store.TenantTx) (err error) {
			evs, err = tx.ListSessionEvents("", 100)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var revoked []string
		for _, ev := range evs {
			if ev.Kind == "revoked" {
				revoked = append(revoked, ev.SessionID)
				if ev.Detail != "seat revoked by "+actor.ID {
					t.Errorf("event detail = %q", ev.Detail)
				}
			}
		}
		slices.Sort(revoked)
		if diff := cmp.Diff([]string{live1.ID, live2.ID}, revoked); diff != "" {
			t.Errorf("revoked events (-want +got):\n%s", diff)
		}
	})
}

// TestInviteStoresOnlyKeyedHash: the invite row holds the keyed hash of
// the token and the receipt holds neither; the token parses and carries
// 256 bits.
func TestInviteStoresOnlyKeyedHash(t *testing.T) {
	e := vctest.New(t)
	owner, _, _ := team(t, e, "acme")
	inv, tok, rid, err := e.Prov.Invite(context.Background(), owner, "Carol@Acme.example", vaultcrux.RoleViewer, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.Reveal(), "vcinv_") || len(tok.Reveal()) != 49 {
		t.Errorf("token %q", tok.Reveal())
	}
	if got := e.Hasher.HashInvite(tok); string(got) != string(inv.TokenHash) {
		t.Errorf("stored hash is not HashInvite(token)")
	}
	plain := sha256.Sum256([]byte(tok.Reveal()))
	if string(inv.TokenHash) == string(plain[:]) {
		t.Error("stored hash is the unkeyed SHA-256 of the token")
	}
	if !inv.ExpiresAt.Equal(inv.CreatedAt.Add(48 * time.Hour)) {
		t.Errorf("expiry %v, created %v", inv.ExpiresAt, inv.CreatedAt)
	}
	body := receiptBody(t, e, "acme", rid)
	for _, secret := range []string{tok.Reveal(), hex.EncodeToString(inv.TokenHash), "carol@acme", "Carol@Acme"} {
		if strings.Contains(body, secret) {
			t.Errorf("invite.created receipt holds %q", secret)
		}
	}
	if want := tenancy.EmailHash("carol@acme.example"); !strings.Contains(body, want) {
		t.Errorf("receipt lacks emailHash %s: %s", want, body)
	}
	// Malformed and unknown tokens are one answer.
	for _, bad := range []string{"", "vcinv_", tok.Reveal()[:48] + "!", "vcinv_" + strings.Repeat("A", 43)} {
		_, err := e.Prov.AcceptInvite(context.Background(), "acme", bad)
		if vaultcrux.ErrorKind(err) != vaultcrux.NotFound || vaultcrux.ErrorMessage(err) != "invite not found or already used" {
			t.Errorf("AcceptInvite(%q) = %v", bad, err)
		}
	}
	if _, err := apikey.ParseInvite(tok.Reveal()); err != nil {
		t.Error(err)
	}
}

// TestRevokeKeyEndsSessions: revoking an API key ends the frontdoor
// sessions opened with it, each with a "revoked" event.
func TestRevokeKeyEndsSessions(t *testing.T) {
	backends(t, func(t *testing.T, e *vctest.Env) {
		ctx := context.Background()
		e.Tenant("acme")
		_, id := e.Key("acme", vaultcrux.RoleMember)
		now := e.Clock.Now().UTC().Truncate(time.Millisecond)
		s := &vaultcrux.Session{ID: "01JSESS0000000000000000001", Tenant: "acme", KeyID: id, Role: vaultcrux.RoleMember, CreatedAt: now,
			ExpiresAt: now.Add(time.Hour), IdleTimeout: time.Minute, LastSeenAt: now, IP: "192.0.2.1", UserAgent: "t"}
		ts := e.Store.ForTenant("acme")
		if err := ts.Tx(ctx, func(tx store.TenantTx) error { return tx.CreateSession(s) }); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.Prov.RevokeKey(ctx, vctest.Operator, "acme", id, false); err != nil {
			t.Fatal(err)
		}
		var got *vaultcrux.Session
		var evs []*vaultcrux.SessionEvent
		err := ts.Tx(ctx, func(tx store.TenantTx) (err error) {
			if got, err = tx.GetSession(s.ID); err != nil {
				return err
			}
			evs, err = tx.ListSessionEvents("", 10)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got.RevokedAt == nil {
			t.Error("session of the revoked key is live")
		}
		if len(evs) != 1 || evs[0].Kind != "revoked" || evs[0].SessionID != s.ID || evs[0].Detail != "API key revoked by operator:test" {
			t.Errorf("events = %+v", evs)
		}
	})
}

func TestEmailHash(t *testing.T) {
	sum := sha256.Sum256([]byte("ann@example.com"))
	if got, want := tenancy.EmailHash("Ann@Example.COM"), "sha256:"+hex.EncodeToString(sum[:]); got != want {
		t.Errorf("EmailHash = %s, want %s", got, want)
	}
}

func TestEmailValidation(t *testing.T) {
	e := vctest.New(t)
	owner, _, _ := team(t, e, "acme")
	for _, bad := range []string{"", "ann", "ann@", "@example.com", "Ann <ann@example.com>", "<ann@example.com>", "ann@example.com ", " ann@example.com",
		"ann\n@example.com", "a b@example.com", strings.Repeat("a", 250) + "@x.io"} {
		_, _, _, err := e.Prov.Invite(context.Background(), owner, bad, vaultcrux.RoleMember, time.Hour)
		if vaultcrux.ErrorKind(err) != vaultcrux.Invalid {
			t.Errorf("Invite(%q) = %v, want invalid", bad, err)
		}
	}
	for _, good := range []string{"ann@example.com", "Ann.Lee+vc@sub.example.co.uk", "x@localhost"} {
		if _, _, _, err := e.Prov.Invite(context.Background(), owner, good, vaultcrux.RoleMember, time.Hour); err != nil {
			t.Errorf("Invite(%q) = %v", good, err)
		}
	}
}

func countReceipts(t *testing.T, e *vctest.Env, tenant, kind string) int {
	t.Helper()
	var recs []*store.ReceiptRecord
	err := e.Store.ForTenant(vaultcrux.TenantID(tenant)).Tx(context.Background(), func(tx store.TenantTx) (err error) {
		recs, err = tx.ListReceipts(store.ReceiptFilter{Kind: kind, BeforeIndex: -1, Limit: 1000})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

// details returns the details of the i-th newest receipt of kind.
func details(t *testing.T, e *vctest.Env, tenant, kind string, i int) map[string]any {
	t.Helper()
	var recs []*store.ReceiptRecord
	err := e.Store.ForTenant(vaultcrux.TenantID(tenant)).Tx(context.Background(), func(tx store.TenantTx) (err error) {
		recs, err = tx.ListReceipts(store.ReceiptFilter{Kind: kind, BeforeIndex: -1, Limit: 1000})
		return err
	})
	if err != nil || len(recs) <= i {
		t.Fatalf("receipts of %s: %d (%v)", kind, len(recs), err)
	}
	var doc struct {
		Details map[string]any `json:"details"`
	}
	if err := json.Unmarshal(recs[i].Body, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Details
}

func receiptBody(t *testing.T, e *vctest.Env, tenant, id string) string {
	t.Helper()
	var rec *store.ReceiptRecord
	err := e.Store.ForTenant(vaultcrux.TenantID(tenant)).Tx(context.Background(), func(tx store.TenantTx) (err error) {
		rec, err = tx.GetReceipt(id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(rec.Body)
}
