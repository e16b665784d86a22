// Package storetest is the conformance suite of store.Store. Every backend
// runs Run against real databases; a behaviour that callers rely on is
// pinned here once rather than in each backend's tests.
package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// Run runs the suite. open must return a new, empty, unmigrated store each
// time it is called and close it through t.Cleanup. Subtests run in
// parallel, each on its own store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	s := &suite{open: open}
	groups := []struct {
		name  string
		tests []test
	}{
		{"Tenants", s.tenantTests()},
		{"APIKeys", s.apiKeyTests()},
		{"Idempotency", s.idempotencyTests()},
		{"Tx", s.txTests()},
		{"Migrations", s.migrationTests()},
		{"Time", s.timeTests()},
		{"SigningKeys", s.signingKeyTests()},
		{"Batch", s.batchTests()},
		{"Log", s.logTests()},
		{"Receipts", s.receiptTests()},
		{"Attestations", s.attestationTests()},
		{"Checkpoints", s.checkpointTests()},
		{"Seats", s.seatTests()},
		{"Invites", s.inviteTests()},
		{"Sessions", s.sessionTests()},
		{"SessionEvents", s.sessionEventTests()},
		{"Evidence", s.evidenceTests()},
		{"Shield", s.shieldTests()},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tt := range g.tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					tt.fn(t)
				})
			}
		})
	}
}

type test struct {
	name string
	fn   func(t *testing.T)
}

type suite struct {
	open func(t *testing.T) store.Store
}

// fresh returns a migrated store with tenants "acme" and "bravo".
func (s *suite) fresh(t *testing.T) store.Store {
	t.Helper()
	st := s.open(t)
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	sysTx(t, st, func(tx store.SystemTx) error {
		for _, id := range []string{acme, bravo} {
			if err := tx.CreateTenant(tenant(id), nil); err != nil {
				return err
			}
		}
		return nil
	})
	return st
}

const (
	acme  = "acme"
	bravo = "bravo"
)

// t0 has a whole number of milliseconds, so it survives a round trip.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 250_000_000, time.UTC)

var errBoom = errors.New("boom")

func tenant(id string) *vaultcrux.Tenant {
	return &vaultcrux.Tenant{ID: vaultcrux.TenantID(id), Name: "Tenant " + id, CreatedAt: t0}
}

func apiKey(tenant, id string, role vaultcrux.Role) *vaultcrux.APIKey {
	return &vaultcrux.APIKey{
		ID:        id,
		Tenant:    vaultcrux.TenantID(tenant),
		Label:     "label of " + id,
		Role:      role,
		Hash:      []byte("hash of " + id),
		CreatedAt: t0,
	}
}

func ptr[T any](v T) *T { return &v }

func sysTx(t *testing.T, st store.Store, fn func(store.SystemTx) error) {
	t.Helper()
	if err := st.Tx(t.Context(), fn); err != nil {
		t.Fatalf("system Tx: %v", err)
	}
}

func tenTx(t *testing.T, st store.Store, id string, fn func(store.TenantTx) error) {
	t.Helper()
	if err := st.ForTenant(vaultcrux.TenantID(id)).Tx(t.Context(), fn); err != nil {
		t.Fatalf("tenant Tx(%s): %v", id, err)
	}
}

func createKeys(t *testing.T, st store.Store, keys ...*vaultcrux.APIKey) {
	t.Helper()
	for _, k := range keys {
		tenTx(t, st, string(k.Tenant), func(tx store.TenantTx) error { return tx.CreateAPIKey(k) })
	}
}

func getKey(t *testing.T, st store.Store, tenant, id string) *vaultcrux.APIKey {
	t.Helper()
	var k *vaultcrux.APIKey
	tenTx(t, st, tenant, func(tx store.TenantTx) (err error) {
		k, err = tx.GetAPIKey(id)
		return err
	})
	return k
}

// checkKind fails unless err is classified as want. A user-safe message
// must not mention the given strings (another tenant's id, say).
func checkKind(t *testing.T, what string, err error, want vaultcrux.Kind, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: err = nil, want kind %v", what, want)
	}
	if got := vaultcrux.ErrorKind(err); got != want {
		t.Fatalf("%s: kind = %v (%v), want %v", what, got, err, want)
	}
	msg := vaultcrux.ErrorMessage(err)
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Errorf("%s: message %q mentions %q", what, msg, s)
		}
	}
}

func (s *suite) tenantTests() []test {
	return []test{
		{"CreateGet", func(t *testing.T) {
			st := s.fresh(t)
			want := &vaultcrux.Tenant{ID: "charlie_1", Name: "Charlie", CreatedAt: t0}
			sysTx(t, st, func(tx store.SystemTx) error { return tx.CreateTenant(want, nil) })
			var got *vaultcrux.Tenant
			sysTx(t, st, func(tx store.SystemTx) (err error) {
				got, err = tx.GetTenant("charlie_1")
				return err
			})
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GetTenant (-want +got):\n%s", diff)
			}
		}},
		{"CreateWithFirstKey", func(t *testing.T) {
			st := s.fresh(t)
			k := apiKey("delta", "deltakey", vaultcrux.RoleOwner)
			sysTx(t, st, func(tx store.SystemTx) error { return tx.CreateTenant(tenant("delta"), k) })
			var got *vaultcrux.APIKey
			tenTx(t, st, "delta", func(tx store.TenantTx) (err error) {
				got, err = tx.GetAPIKey("deltakey")
				return err
			})
			if diff := cmp.Diff(k, got); diff != "" {
				t.Errorf("first key (-want +got):\n%s", diff)
			}
			// A first key that cannot be stored undoes the tenant too.
			tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.CreateAPIKey(apiKey(acme, "takenid", vaultcrux.RoleOwner)) })
			err := st.Tx(t.Context(), func(tx store.SystemTx) error {
				return tx.CreateTenant(tenant("echo"), apiKey("echo", "takenid", vaultcrux.RoleOwner))
			})
			checkKind(t, "CreateTenant(first key id taken)", err, vaultcrux.Conflict)
			err = st.Tx(t.Context(), func(tx store.SystemTx) error {
				_, err := tx.GetTenant("echo")
				return err
			})
			checkKind(t, "GetTenant(echo) after the failed create", err, vaultcrux.NotFound)
		}},
		{"CreateDuplicate", func(t *testing.T) {
			st := s.fresh(t)
			dup := &vaultcrux.Tenant{ID: acme, Name: "Other", CreatedAt: t0.Add(time.Hour)}
			err := st.Tx(t.Context(), func(tx store.SystemTx) error { return tx.CreateTenant(dup, nil) })
			checkKind(t, "CreateTenant(duplicate)", err, vaultcrux.Conflict)
			var got *vaultcrux.Tenant
			sysTx(t, st, func(tx store.SystemTx) (err error) {
				got, err = tx.GetTenant(acme)
				return err
			})
			if diff := cmp.Diff(tenant(acme), got); diff != "" {
				t.Errorf("tenant after duplicate create (-want +got):\n%s", diff)
			}
		}},
		{"CreateInvalidID", func(t *testing.T) {
			st := s.fresh(t)
			for _, id := range []string{"", "Acme", "-acme", "a b", "a/b", strings.Repeat("a", 64)} {
				err := st.Tx(t.Context(), func(tx store.SystemTx) error { return tx.CreateTenant(tenant(id), nil) })
				checkKind(t, fmt.Sprintf("CreateTenant(%q)", id), err, vaultcrux.Invalid)
			}
		}},
		{"GetMissing", func(t *testing.T) {
			st := s.fresh(t)
			err := st.Tx(t.Context(), func(tx store.SystemTx) error {
				_, err := tx.GetTenant("nobody")
				return err
			})
			checkKind(t, "GetTenant(missing)", err, vaultcrux.NotFound)
		}},
		{"List", func(t *testing.T) {
			st := s.open(t)
			if err := st.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			list := func() []*vaultcrux.Tenant {
				var got []*vaultcrux.Tenant
				sysTx(t, st, func(tx store.SystemTx) (err error) {
					got, err = tx.ListTenants()
					return err
				})
				return got
			}
			if got := list(); len(got) != 0 {
				t.Errorf("ListTenants on empty store = %v, want none", got)
			}
			for _, id := range []string{"c", "a", "b-2", "b"} {
				sysTx(t, st, func(tx store.SystemTx) error { return tx.CreateTenant(tenant(id), nil) })
			}
			want := []*vaultcrux.Tenant{tenant("a"), tenant("b"), tenant("b-2"), tenant("c")}
			if diff := cmp.Diff(want, list()); diff != "" {
				t.Errorf("ListTenants (-want +got):\n%s", diff)
			}
		}},
	}
}

func (s *suite) apiKeyTests() []test {
	return []test{
		{"CreateGet", func(t *testing.T) {
			st := s.fresh(t)
			want := apiKey(acme, "k1", vaultcrux.RoleAdmin)
			want.RevokedAt = ptr(t0.Add(time.Minute))
			want.LastUsedAt = ptr(t0.Add(time.Second))
			plain := apiKey(acme, "k2", vaultcrux.RoleViewer)
			createKeys(t, st, want, plain)
			if diff := cmp.Diff(want, getKey(t, st, acme, "k1")); diff != "" {
				t.Errorf("GetAPIKey(k1) (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(plain, getKey(t, st, acme, "k2")); diff != "" {
				t.Errorf("GetAPIKey(k2) (-want +got):\n%s", diff)
			}
		}},
		{"CreateDuplicateID", func(t *testing.T) {
			st := s.fresh(t)
			orig := apiKey(acme, "k1", vaultcrux.RoleOwner)
			createKeys(t, st, orig)
			for _, tenant := range []string{acme, bravo} {
				dup := apiKey(tenant, "k1", vaultcrux.RoleMember)
				dup.Hash = []byte("other hash")
				err := st.ForTenant(vaultcrux.TenantID(tenant)).Tx(t.Context(), func(tx store.TenantTx) error {
					return tx.CreateAPIKey(dup)
				})
				checkKind(t, "CreateAPIKey(duplicate id) in "+tenant, err, vaultcrux.Conflict, acme)
			}
			if diff := cmp.Diff(orig, getKey(t, st, acme, "k1")); diff != "" {
				t.Errorf("key after duplicate creates (-want +got):\n%s", diff)
			}
		}},
		{"CreateTenantMismatch", func(t *testing.T) {
			st := s.fresh(t)
			err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
				return tx.CreateAPIKey(apiKey(bravo, "k1", vaultcrux.RoleOwner))
			})
			checkKind(t, "CreateAPIKey(other tenant's record)", err, vaultcrux.Internal)
			err = st.Tx(t.Context(), func(tx store.SystemTx) error {
				_, err := tx.LookupAPIKey("k1")
				return err
			})
			checkKind(t, "LookupAPIKey after refused create", err, vaultcrux.NotFound)
		}},
		{"CreateInvalidRole", func(t *testing.T) {
			st := s.fresh(t)
			err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
				return tx.CreateAPIKey(apiKey(acme, "k1", "root"))
			})
			checkKind(t, "CreateAPIKey(role root)", err, vaultcrux.Invalid)
		}},
		{"CreateMissingTenant", func(t *testing.T) {
			st := s.fresh(t)
			err := st.ForTenant("ghost").Tx(t.Context(), func(tx store.TenantTx) error {
				return tx.CreateAPIKey(apiKey("ghost", "k1", vaultcrux.RoleOwner))
			})
			checkKind(t, "CreateAPIKey(tenant missing)", err, vaultcrux.NotFound)
		}},
		{"InvalidTenantHandle", func(t *testing.T) {
			st := s.fresh(t)
			called := false
			err := st.ForTenant("Not Valid").Tx(t.Context(), func(tx store.TenantTx) error {
				called = true
				return nil
			})
			checkKind(t, "Tx on invalid tenant id", err, vaultcrux.Internal)
			if called {
				t.Error("fn ran for an invalid tenant id")
			}
		}},
		{"List", func(t *testing.T) {
			st := s.fresh(t)
			var want []*vaultcrux.APIKey
			for _, id := range []string{"k3", "k1", "k5", "K0", "k2", "k4"} {
				createKeys(t, st, apiKey(acme, id, vaultcrux.RoleMember))
			}
			for _, id := range []string{"K0", "k1", "k2", "k3", "k4", "k5"} { // bytewise order
				want = append(want, apiKey(acme, id, vaultcrux.RoleMember))
			}
			createKeys(t, st, apiKey(bravo, "k0", vaultcrux.RoleMember), apiKey(bravo, "k6", vaultcrux.RoleMember))

			pages := []struct {
				after string
				limit int
				want  []*vaultcrux.APIKey
			}{
				{"", 4, want[:4]},
				{"k3", 4, want[4:]},
				{"", 10, want},
				{"k2", 1, want[3:4]},
				{"k5", 4, nil},
				{"k22", 2, want[3:5]}, // a cursor need not exist
			}
			for _, p := range pages {
				var got []*vaultcrux.APIKey
				tenTx(t, st, acme, func(tx store.TenantTx) (err error) {
					got, err = tx.ListAPIKeys(p.after, p.limit)
					return err
				})
				if diff := cmp.Diff(p.want, got); diff != "" {
					t.Errorf("ListAPIKeys(%q, %d) (-want +got):\n%s", p.after, p.limit, diff)
				}
			}
			err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
				_, err := tx.ListAPIKeys("", 0)
				return err
			})
			checkKind(t, "ListAPIKeys(limit 0)", err, vaultcrux.Invalid)
		}},
		{"Revoke", func(t *testing.T) {
			st := s.fresh(t)
			createKeys(t, st, apiKey(acme, "k1", vaultcrux.RoleMember))
			want := apiKey(acme, "k1", vaultcrux.RoleMember)
			want.RevokedAt = ptr(t0.Add(time.Hour))
			for i, at := range []time.Time{t0.Add(time.Hour), t0.Add(2 * time.Hour)} {
				var got *vaultcrux.APIKey
				tenTx(t, st, acme, func(tx store.TenantTx) (err error) {
					got, err = tx.RevokeAPIKey("k1", at)
					return err
				})
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("RevokeAPIKey #%d (-want +got):\n%s", i+1, diff)
				}
			}
			if diff := cmp.Diff(want, getKey(t, st, acme, "k1")); diff != "" {
				t.Errorf("GetAPIKey after revoking twice (-want +got):\n%s", diff)
			}
			err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
				_, err := tx.RevokeAPIKey("nope", t0)
				return err
			})
			checkKind(t, "RevokeAPIKey(missing)", err, vaultcrux.NotFound)
		}},
		{"CrossTenant", func(t *testing.T) {
			st := s.fresh(t)
			want := apiKey(acme, "acme-key", vaultcrux.RoleOwner)
			createKeys(t, st, want)
			b := st.ForTenant(bravo)
			err := b.Tx(t.Context(), func(tx store.TenantTx) error {
				_, err := tx.GetAPIKey("acme-key")
				return err
			})
			checkKind(t, "bravo GetAPIKey(acme's key)", err, vaultcrux.NotFound, acme)
			err = b.Tx(t.Context(), func(tx store.TenantTx) error {
				_, err := tx.RevokeAPIKey("acme-key", t0)
				return err
			})
			checkKind(t, "bravo RevokeAPIKey(acme's key)", err, vaultcrux.NotFound, acme)
			var list []*vaultcrux.APIKey
			var owners int
			tenTx(t, st, bravo, func(tx store.TenantTx) (err error) {
				if list, err = tx.ListAPIKeys("", 100); err != nil {
					return err
				}
				owners, err = tx.LockActiveOwnerKeys()
				return err
			})
			if len(list) != 0 || owners != 0 {
				t.Errorf("bravo sees %d keys and %d owners, want 0 and 0", len(list), owners)
			}
			if diff := cmp.Diff(want, getKey(t, st, acme, "acme-key")); diff != "" {
				t.Errorf("acme's key after bravo's attempts (-want +got):\n%s", diff)
			}
		}},
		{"Lookup", func(t *testing.T) {
			st := s.fresh(t)
			ka, kb := apiKey(acme, "ka", vaultcrux.RoleOwner), apiKey(bravo, "kb", vaultcrux.RoleViewer)
			kb.RevokedAt = ptr(t0)
			createKeys(t, st, ka, kb)
			for _, want := range []*vaultcrux.APIKey{ka, kb} {
				var got *vaultcrux.APIKey
				sysTx(t, st, func(tx store.SystemTx) (err error) {
					got, err = tx.LookupAPIKey(want.ID)
					return err
				})
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("LookupAPIKey(%s) (-want +got):\n%s", want.ID, diff)
				}
			}
			err := st.Tx(t.Context(), func(tx store.SystemTx) error {
				_, err := tx.LookupAPIKey("nope")
				return err
			})
			checkKind(t, "LookupAPIKey(missing)", err, vaultcrux.NotFound)
		}},
		{"Touch", func(t *testing.T) {
			st := s.fresh(t)
			createKeys(t, st, apiKey(acme, "ka", vaultcrux.RoleOwner), apiKey(bravo, "kb", vaultcrux.RoleOwner))
			steps := []struct {
				name   string
				touch  map[string]time.Time
				wantKA *time.Time
				wantKB *time.Time
			}{
				{"first use", map[string]time.Time{"ka": t0.Add(time.Minute), "kb": t0, "ghost": t0}, ptr(t0.Add(time.Minute)), ptr(t0)},
				{"older time ignored", map[string]time.Time{"ka": t0}, ptr(t0.Add(time.Minute)), ptr(t0)},
				{"newer time kept", map[string]time.Time{"kb": t0.Add(time.Hour)}, ptr(t0.Add(time.Minute)), ptr(t0.Add(time.Hour))},
				{"empty", nil, ptr(t0.Add(time.Minute)), ptr(t0.Add(time.Hour))},
			}
			for _, step := range steps {
				sysTx(t, st, func(tx store.SystemTx) error { return tx.TouchAPIKeys(step.touch) })
				if diff := cmp.Diff(step.wantKA, getKey(t, st, acme, "ka").LastUsedAt); diff != "" {
					t.Errorf("%s: ka.LastUsedAt (-want +got):\n%s", step.name, diff)
				}
				if diff := cmp.Diff(step.wantKB, getKey(t, st, bravo, "kb").LastUsedAt); diff != "" {
					t.Errorf("%s: kb.LastUsedAt (-want +got):\n%s", step.name, diff)
				}
			}
		}},
		{"LockActiveOwnerKeys", func(t *testing.T) {
			st := s.fresh(t)
			revoked := apiKey(acme, "o2", vaultcrux.RoleOwner)
			revoked.RevokedAt = ptr(t0)
			createKeys(t, st,
				apiKey(acme, "o1", vaultcrux.RoleOwner), revoked,
				apiKey(acme, "o3", vaultcrux.RoleOwner), apiKey(acme, "a1", vaultcrux.RoleAdmin),
				apiKey(bravo, "o4", vaultcrux.RoleOwner))
			for tenant, want := range map[string]int{acme: 2, bravo: 1} {
				var got int
				tenTx(t, st, tenant, func(tx store.TenantTx) (err error) {
					got, err = tx.LockActiveOwnerKeys()
					return err
				})
				if got != want {
					t.Errorf("%s: LockActiveOwnerKeys = %d, want %d", tenant, got, want)
				}
			}
		}},
		{"LockActiveOwnerKeysConcurrent", func(t *testing.T) {
			// Two owners each revoke their own key unless it is the last
			// active one. However the transactions interleave, exactly one
			// revocation must go through; each round adds a new owner next
			// to the survivor of the previous one.
			st := s.fresh(t)
			errLast := errors.New("last owner")
			survivor := "o0"
			createKeys(t, st, apiKey(acme, survivor, vaultcrux.RoleOwner))
			for round := 1; round <= 10; round++ {
				added := fmt.Sprintf("o%d", round)
				createKeys(t, st, apiKey(acme, added, vaultcrux.RoleOwner))
				ids := []string{survivor, added}
				errs := make([]error, len(ids))
				var wg sync.WaitGroup
				for i, id := range ids {
					wg.Go(func() {
						errs[i] = st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
							active, err := tx.LockActiveOwnerKeys()
							if err != nil {
								return err
							}
							if active <= 1 {
								return errLast
							}
							_, err = tx.RevokeAPIKey(id, t0)
							return err
						})
					})
				}
				wg.Wait()
				switch {
				case errs[0] == nil && errors.Is(errs[1], errLast):
					survivor = added
				case errors.Is(errs[0], errLast) && errs[1] == nil:
				default:
					t.Fatalf("round %d: revocations returned %v, %v; want one nil and one last-owner error", round, errs[0], errs[1])
				}
			}
			var active int
			tenTx(t, st, acme, func(tx store.TenantTx) (err error) {
				active, err = tx.LockActiveOwnerKeys()
				return err
			})
			if active != 1 {
				t.Errorf("active owners = %d, want 1", active)
			}
		}},
	}
}

var scope = store.IdempotencyScope{Method: "POST", Route: "/v1/keys", Key: "idem-1"}

func pending(sc store.IdempotencyScope, hash string, created time.Time) *store.IdempotencyRecord {
	return &store.IdempotencyRecord{
		Scope:       sc,
		RequestHash: []byte(hash),
		CreatedAt:   created,
		ExpiresAt:   created.Add(24 * time.Hour),
	}
}

type claimResult struct {
	Existing *store.IdempotencyRecord
	Claimed  bool
}

func claim(t *testing.T, st store.Store, tenant string, rec *store.IdempotencyRecord, now, staleBefore time.Time) claimResult {
	t.Helper()
	var r claimResult
	tenTx(t, st, tenant, func(tx store.TenantTx) (err error) {
		r.Existing, r.Claimed, err = tx.ClaimIdempotency(rec, now, staleBefore)
		return err
	})
	return r
}

func finish(t *testing.T, st store.Store, tenant string, claimed *store.IdempotencyRecord, resp *store.IdempotencyResponse) {
	t.Helper()
	tenTx(t, st, tenant, func(tx store.TenantTx) error { return tx.FinishIdempotency(claimed, resp) })
}

func checkClaim(t *testing.T, what string, got, want claimResult) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

func (s *suite) idempotencyTests() []test {
	// The usual window: a minute after the claim, nothing is stale yet.
	now, stale := t0.Add(time.Minute), t0.Add(-5*time.Minute)
	resp := &store.IdempotencyResponse{
		Status: 201,
		Header: map[string]string{"content-type": "application/json", "x-receipt-id": "r1"},
		Body:   []byte(`{"ok":true}`),
	}
	return []test{
		{"ClaimThenPending", func(t *testing.T) {
			st := s.fresh(t)
			first := pending(scope, "h1", t0)
			checkClaim(t, "first claim", claim(t, st, acme, first, t0, stale), claimResult{Claimed: true})
			checkClaim(t, "second claim", claim(t, st, acme, pending(scope, "h2", now), now, stale),
				claimResult{Existing: first})
		}},
		{"FinishThenReplay", func(t *testing.T) {
			st := s.fresh(t)
			claim(t, st, acme, pending(scope, "h1", t0), t0, stale)
			finish(t, st, acme, pending(scope, "h1", t0), resp)
			want := pending(scope, "h1", t0)
			want.Response = resp
			checkClaim(t, "claim after finish", claim(t, st, acme, pending(scope, "h2", now), now, stale),
				claimResult{Existing: want})
		}},
		{"FinishEmptyResponse", func(t *testing.T) {
			st := s.fresh(t)
			claim(t, st, acme, pending(scope, "h1", t0), t0, stale)
			finish(t, st, acme, pending(scope, "h1", t0), &store.IdempotencyResponse{Status: 204})
			want := pending(scope, "h1", t0)
			want.Response = &store.IdempotencyResponse{Status: 204}
			checkClaim(t, "claim after empty finish", claim(t, st, acme, pending(scope, "h1", now), now, stale),
				claimResult{Existing: want})
		}},
		{"FinishNotPending", func(t *testing.T) {
			st := s.fresh(t)
			finishErr := func() error {
				return st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
					return tx.FinishIdempotency(pending(scope, "h1", t0), resp)
				})
			}
			checkKind(t, "FinishIdempotency(no record)", finishErr(), vaultcrux.NotFound)
			claim(t, st, acme, pending(scope, "h1", t0), t0, stale)
			finish(t, st, acme, pending(scope, "h1", t0), resp)
			checkKind(t, "FinishIdempotency(finished)", finishErr(), vaultcrux.NotFound)
		}},
		{"Release", func(t *testing.T) {
			st := s.fresh(t)
			release := func(claimed *store.IdempotencyRecord) {
				tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.ReleaseIdempotency(claimed) })
			}
			release(pending(scope, "h1", t0)) // nothing to release is fine
			claim(t, st, acme, pending(scope, "h1", t0), t0, stale)
			release(pending(scope, "h1", t0))
			checkClaim(t, "claim after release", claim(t, st, acme, pending(scope, "h2", now), now, stale),
				claimResult{Claimed: true})
			finish(t, st, acme, pending(scope, "h2", now), resp)
			release(pending(scope, "h2", now)) // a finished record is kept
			want := pending(scope, "h2", now)
			want.Response = resp
			checkClaim(t, "claim after releasing a finished record",
				claim(t, st, acme, pending(scope, "h3", now), now, stale), claimResult{Existing: want})
		}},
		{"Expired", func(t *testing.T) {
			st := s.fresh(t)
			claim(t, st, acme, pending(scope, "h1", t0), t0, stale)
			finish(t, st, acme, pending(scope, "h1", t0), resp)
			expiry := t0.Add(24 * time.Hour)
			old := pending(scope, "h1", t0)
			old.Response = resp
			checkClaim(t, "claim just before expiry",
				claim(t, st, acme, pending(scope, "h2", expiry), expiry.Add(-time.Millisecond), stale),
				claimResult{Existing: old})
			next := pending(scope, "h2", expiry)
			checkClaim(t, "claim at expiry", claim(t, st, acme, next, expiry, stale), claimResult{Claimed: true})
			checkClaim(t, "claim after replacement",
				claim(t, st, acme, pending(scope, "h3", expiry), expiry, expiry.Add(-time.Minute)),
				claimResult{Existing: next})
		}},
		{"StalePending", func(t *testing.T) {
			st := s.fresh(t)
			first := pending(scope, "h1", t0)
			claim(t, st, acme, first, t0, stale)
			later := t0.Add(10 * time.Minute)
			checkClaim(t, "claim when staleBefore equals created",
				claim(t, st, acme, pending(scope, "h2", later), later, t0), claimResult{Existing: first})
			next := pending(scope, "h2", later)
			checkClaim(t, "claim after the pending record went stale",
				claim(t, st, acme, next, later, t0.Add(time.Millisecond)), claimResult{Claimed: true})
			checkClaim(t, "claim after stale replacement",
				claim(t, st, acme, pending(scope, "h3", later), later, t0.Add(time.Millisecond)),
				claimResult{Existing: next})
		}},
		{"StaleTakeoverFencesTheOldClaim", func(t *testing.T) {
			// A request that outlived the stale window must not finish or
			// release the claim of the request that took its key over.
			st := s.fresh(t)
			first := pending(scope, "h1", t0)
			claim(t, st, acme, first, t0, stale)
			later := t0.Add(20 * time.Minute)
			next := pending(scope, "h1", later)
			checkClaim(t, "takeover", claim(t, st, acme, next, later, later.Add(-10*time.Minute)), claimResult{Claimed: true})
			err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error { return tx.FinishIdempotency(first, resp) })
			checkKind(t, "FinishIdempotency(superseded claim)", err, vaultcrux.NotFound)
			tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.ReleaseIdempotency(first) })
			checkClaim(t, "after the old claim's finish and release",
				claim(t, st, acme, pending(scope, "h1", later), later, stale), claimResult{Existing: next})
			finish(t, st, acme, next, resp)
			want := pending(scope, "h1", later)
			want.Response = resp
			checkClaim(t, "after the new claim's finish",
				claim(t, st, acme, pending(scope, "h1", later), later, stale), claimResult{Existing: want})
		}},
		{"OldFinishedKept", func(t *testing.T) {
			st := s.fresh(t)
			claim(t, st, acme, pending(scope, "h1", t0), t0, stale)
			finish(t, st, acme, pending(scope, "h1", t0), resp)
			later := t0.Add(time.Hour)
			want := pending(scope, "h1", t0)
			want.Response = resp
			checkClaim(t, "claim with a finished record older than staleBefore",
				claim(t, st, acme, pending(scope, "h2", later), later, later), claimResult{Existing: want})
		}},
		{"ScopedByTenantAndScope", func(t *testing.T) {
			st := s.fresh(t)
			claim(t, st, acme, pending(scope, "h1", t0), t0, stale)
			others := []struct {
				tenant string
				scope  store.IdempotencyScope
			}{
				{bravo, scope},
				{acme, store.IdempotencyScope{Method: "DELETE", Route: scope.Route, Key: scope.Key}},
				{acme, store.IdempotencyScope{Method: scope.Method, Route: "/v1/ingest", Key: scope.Key}},
				{acme, store.IdempotencyScope{Method: scope.Method, Route: scope.Route, Key: "idem-2"}},
			}
			for _, o := range others {
				checkClaim(t, fmt.Sprintf("claim of %s %v", o.tenant, o.scope),
					claim(t, st, o.tenant, pending(o.scope, "h2", now), now, stale), claimResult{Claimed: true})
			}
			finish(t, st, bravo, pending(scope, "h2", now), resp)
			tenTx(t, st, bravo, func(tx store.TenantTx) error { return tx.ReleaseIdempotency(pending(scope, "h2", now)) })
			checkClaim(t, "acme's record after bravo's finish",
				claim(t, st, acme, pending(scope, "h3", now), now, stale),
				claimResult{Existing: pending(scope, "h1", t0)})
		}},
		{"ConcurrentClaims", func(t *testing.T) {
			st := s.fresh(t)
			const n = 16
			results := make([]claimResult, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					errs[i] = st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) (err error) {
						rec := pending(scope, fmt.Sprintf("h%d", i), t0)
						results[i].Existing, results[i].Claimed, err = tx.ClaimIdempotency(rec, t0, stale)
						return err
					})
				})
			}
			wg.Wait()
			winner := -1
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("claim %d: %v", i, errs[i])
				}
				if results[i].Claimed {
					if winner >= 0 {
						t.Fatalf("claims %d and %d both won", winner, i)
					}
					winner = i
				}
			}
			if winner < 0 {
				t.Fatal("no claim won")
			}
			for i := range n {
				if i != winner {
					checkClaim(t, fmt.Sprintf("losing claim %d", i), results[i],
						claimResult{Existing: pending(scope, fmt.Sprintf("h%d", winner), t0)})
				}
			}
		}},
		{"Purge", func(t *testing.T) {
			st := s.fresh(t)
			at := func(key string, expires time.Time) *store.IdempotencyRecord {
				r := pending(store.IdempotencyScope{Method: "POST", Route: "/r", Key: key}, key, t0)
				r.ExpiresAt = expires
				return r
			}
			recs := []struct {
				tenant string
				rec    *store.IdempotencyRecord
			}{
				{acme, at("a1", t0.Add(time.Hour))},
				{acme, at("a2", t0.Add(2*time.Hour))},
				{bravo, at("b1", t0.Add(time.Hour))},
				{bravo, at("b2", t0.Add(3*time.Hour))},
			}
			for _, r := range recs {
				claim(t, st, r.tenant, r.rec, t0, stale)
			}
			purge := func(before time.Time) int {
				var n int
				sysTx(t, st, func(tx store.SystemTx) (err error) {
					n, err = tx.PurgeIdempotency(before)
					return err
				})
				return n
			}
			if got, want := purge(t0.Add(2*time.Hour)), 2; got != want {
				t.Errorf("first purge deleted %d, want %d", got, want)
			}
			if got, want := purge(t0.Add(2*time.Hour)), 0; got != want {
				t.Errorf("second purge deleted %d, want %d", got, want)
			}
			// A purged record is gone, so a claim wins even though the
			// caller's clock says it has not expired.
			for _, r := range recs {
				got := claim(t, st, r.tenant, at(r.rec.Scope.Key, t0.Add(time.Hour)), t0, stale)
				want := claimResult{Claimed: true}
				if r.rec.ExpiresAt.After(t0.Add(time.Hour)) {
					want = claimResult{Existing: r.rec}
				}
				checkClaim(t, "claim after purge of "+r.rec.Scope.Key, got, want)
			}
		}},
	}
}

func (s *suite) txTests() []test {
	checkNoTenant := func(t *testing.T, st store.Store, id vaultcrux.TenantID) {
		t.Helper()
		err := st.Tx(t.Context(), func(tx store.SystemTx) error {
			_, err := tx.GetTenant(id)
			return err
		})
		checkKind(t, "GetTenant of rolled back tenant", err, vaultcrux.NotFound)
	}
	return []test{
		{"RollbackOnError", func(t *testing.T) {
			st := s.fresh(t)
			err := st.Tx(t.Context(), func(tx store.SystemTx) error {
				if err := tx.CreateTenant(tenant("charlie"), nil); err != nil {
					return err
				}
				return errBoom
			})
			if !errors.Is(err, errBoom) {
				t.Errorf("system Tx err = %v, want %v", err, errBoom)
			}
			checkNoTenant(t, st, "charlie")

			err = st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
				if err := tx.CreateAPIKey(apiKey(acme, "k1", vaultcrux.RoleOwner)); err != nil {
					return err
				}
				return errBoom
			})
			if !errors.Is(err, errBoom) {
				t.Errorf("tenant Tx err = %v, want %v", err, errBoom)
			}
			err = st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
				_, err := tx.GetAPIKey("k1")
				return err
			})
			checkKind(t, "GetAPIKey of rolled back key", err, vaultcrux.NotFound)
		}},
		{"RollbackOnPanic", func(t *testing.T) {
			st := s.fresh(t)
			for _, run := range []func(){
				func() {
					st.Tx(t.Context(), func(tx store.SystemTx) error {
						if err := tx.CreateTenant(tenant("charlie"), nil); err != nil {
							t.Error(err)
						}
						panic(errBoom)
					})
				},
				func() {
					st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
						if err := tx.CreateAPIKey(apiKey(acme, "k1", vaultcrux.RoleOwner)); err != nil {
							t.Error(err)
						}
						panic(errBoom)
					})
				},
			} {
				got := func() (p any) {
					defer func() { p = recover() }()
					run()
					return nil
				}()
				if got != errBoom {
					t.Errorf("recovered %v, want %v", got, errBoom)
				}
			}
			// The store must still work: the panicking transactions must
			// have given back their connections.
			checkNoTenant(t, st, "charlie")
			err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
				_, err := tx.GetAPIKey("k1")
				return err
			})
			checkKind(t, "GetAPIKey of key created before a panic", err, vaultcrux.NotFound)
		}},
	}
}

func (s *suite) migrationTests() []test {
	return []test{
		{"Status", func(t *testing.T) {
			st := s.open(t)
			applied, latest, err := st.MigrationStatus(t.Context())
			if err != nil || applied != 0 || latest < 1 {
				t.Fatalf("MigrationStatus before Migrate = %d, %d, %v; want 0, >=1, nil", applied, latest, err)
			}
			for i := range 2 {
				if err := st.Migrate(t.Context()); err != nil {
					t.Fatalf("Migrate #%d: %v", i+1, err)
				}
				a, l, err := st.MigrationStatus(t.Context())
				if err != nil || a != latest || l != latest {
					t.Errorf("MigrationStatus after Migrate #%d = %d, %d, %v; want %d, %d, nil", i+1, a, l, err, latest, latest)
				}
			}
		}},
		{"PingDialect", func(t *testing.T) {
			st := s.open(t)
			if err := st.Ping(t.Context()); err != nil {
				t.Errorf("Ping: %v", err)
			}
			if d := st.Dialect(); d != "sqlite" && d != "postgres" {
				t.Errorf("Dialect = %q, want sqlite or postgres", d)
			}
		}},
	}
}

func (s *suite) timeTests() []test {
	return []test{
		{"MillisecondsUTC", func(t *testing.T) {
			st := s.fresh(t)
			zone := time.FixedZone("UTC+5", 5*3600)
			in := time.Date(2025, 1, 2, 3, 4, 5, 123_456_789, zone)
			want := time.Date(2025, 1, 1, 22, 4, 5, 123_000_000, time.UTC)

			sysTx(t, st, func(tx store.SystemTx) error {
				return tx.CreateTenant(&vaultcrux.Tenant{ID: "timely", Name: "T", CreatedAt: in}, nil)
			})
			k := apiKey(acme, "k1", vaultcrux.RoleOwner)
			k.CreatedAt, k.RevokedAt, k.LastUsedAt = in, &in, &in
			createKeys(t, st, k)
			claim(t, st, acme, &store.IdempotencyRecord{Scope: scope, RequestHash: []byte("h"), CreatedAt: in, ExpiresAt: in.Add(time.Hour)}, in, in)

			var ten *vaultcrux.Tenant
			var rec claimResult
			sysTx(t, st, func(tx store.SystemTx) (err error) {
				ten, err = tx.GetTenant("timely")
				return err
			})
			key := getKey(t, st, acme, "k1")
			rec = claim(t, st, acme, pending(scope, "h2", in), in, in.Add(-time.Hour))
			if rec.Existing == nil {
				t.Fatal("second claim won; want the first record")
			}
			got := map[string]time.Time{
				"tenant.CreatedAt": ten.CreatedAt,
				"key.CreatedAt":    key.CreatedAt,
				"key.RevokedAt":    *key.RevokedAt,
				"key.LastUsedAt":   *key.LastUsedAt,
				"record.CreatedAt": rec.Existing.CreatedAt,
				"record.ExpiresAt": rec.Existing.ExpiresAt.Add(-time.Hour),
			}
			for name, g := range got {
				// == rather than Equal: the location must be UTC too.
				if g != want {
					t.Errorf("%s = %v, want %v", name, g, want)
				}
			}
		}},
		{"LedgerMillisecondsUTC", s.ledgerTimeTest},
		{"SeatsMillisecondsUTC", s.seatTimeTest},
	}
}
