package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// receipt returns the event receipt id at log index i; each log index
// is a minute later than the one before.
func receipt(id string, i int64) *store.ReceiptRecord {
	return &store.ReceiptRecord{
		ID:        id,
		Kind:      "ingest",
		Hash:      "blake3:" + id,
		Body:      []byte(`{"receiptId":"` + id + `","signature":null}`),
		LogIndex:  i,
		LogHashes: []byte("stored hashes of " + id),
		CreatedAt: t0.Add(time.Duration(i) * time.Minute),
	}
}

// receipts returns n receipts named prefix-<log index> from log index from on.
func receipts(prefix string, from int64, n int) []*store.ReceiptRecord {
	var out []*store.ReceiptRecord
	for i := from; i < from+int64(n); i++ {
		out = append(out, receipt(fmt.Sprintf("%s-%d", prefix, i), i))
	}
	return out
}

// answerReceipt returns a pending answer receipt.
func answerReceipt(id string, i int64, answer, snapshot, parent string) *store.ReceiptRecord {
	r := receipt(id, i)
	r.Kind, r.AnswerID, r.SnapshotID, r.ParentSnapID, r.Pending = "answer", answer, snapshot, parent, true
	return r
}

// appendReceipts appends recs as the ledger does: it locks the head,
// checks it, and appends.
func appendReceipts(t *testing.T, st store.Store, tenant string, recs ...*store.ReceiptRecord) {
	t.Helper()
	tenTx(t, st, tenant, func(tx store.TenantTx) error {
		size, err := tx.LogHead()
		if err != nil {
			return err
		}
		if len(recs) > 0 && recs[0].LogIndex != size {
			return fmt.Errorf("log head is %d, appending at %d", size, recs[0].LogIndex)
		}
		return tx.AppendReceipts(recs)
	})
}

// tryAppend appends recs without LogHead and returns the error.
func tryAppend(t *testing.T, st store.Store, tenant string, recs ...*store.ReceiptRecord) error {
	return st.ForTenant(vaultcrux.TenantID(tenant)).Tx(t.Context(), func(tx store.TenantTx) error {
		return tx.AppendReceipts(recs)
	})
}

func logHead(t *testing.T, st store.Store, tenant string) int64 {
	t.Helper()
	var size int64
	tenTx(t, st, tenant, func(tx store.TenantTx) (err error) {
		size, err = tx.LogHead()
		return err
	})
	return size
}

func getReceipt(t *testing.T, st store.Store, tenant, id string) *store.ReceiptRecord {
	t.Helper()
	var r *store.ReceiptRecord
	tenTx(t, st, tenant, func(tx store.TenantTx) (err error) {
		r, err = tx.GetReceipt(id)
		return err
	})
	return r
}

// checkNoReceipt fails unless tenant has no receipt id.
func checkNoReceipt(t *testing.T, st store.Store, tenant, id string) {
	t.Helper()
	err := st.ForTenant(vaultcrux.TenantID(tenant)).Tx(t.Context(), func(tx store.TenantTx) error {
		_, err := tx.GetReceipt(id)
		return err
	})
	checkKind(t, fmt.Sprintf("%s GetReceipt(%s)", tenant, id), err, vaultcrux.NotFound)
}

// all is the filter of every receipt (up to the default limit).
var all = store.ReceiptFilter{BeforeIndex: -1}

func listReceipts(t *testing.T, st store.Store, tenant string, f store.ReceiptFilter) []*store.ReceiptRecord {
	t.Helper()
	var got []*store.ReceiptRecord
	tenTx(t, st, tenant, func(tx store.TenantTx) (err error) {
		got, err = tx.ListReceipts(f)
		return err
	})
	return got
}

// receiptIDs lists the ids of recs, for compact diffs.
func receiptIDs(recs []*store.ReceiptRecord) []string {
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	return ids
}

func register(t *testing.T, st store.Store, pub string, at time.Time) (*store.SigningKey, bool) {
	t.Helper()
	var k *store.SigningKey
	var created bool
	sysTx(t, st, func(tx store.SystemTx) (err error) {
		k, created, err = tx.RegisterSigningKey([]byte(pub), at)
		return err
	})
	return k, created
}

func signingKeys(t *testing.T, st store.Store) []*store.SigningKey {
	t.Helper()
	var keys []*store.SigningKey
	sysTx(t, st, func(tx store.SystemTx) (err error) {
		keys, err = tx.ListSigningKeys()
		return err
	})
	return keys
}

func signingKey(version int, pub, status string, created time.Time) *store.SigningKey {
	return &store.SigningKey{
		Version:   version,
		KID:       fmt.Sprintf("vaultcrux-signing:v%d", version),
		Public:    []byte(pub),
		Status:    status,
		CreatedAt: created,
	}
}

func (s *suite) signingKeyTests() []test {
	return []test{
		{"Register", func(t *testing.T) {
			st := s.fresh(t)
			if got := signingKeys(t, st); len(got) != 0 {
				t.Errorf("ListSigningKeys on a new store = %v, want none", got)
			}
			v1 := signingKey(1, "pub-1", "active", t0)
			got, created := register(t, st, "pub-1", t0)
			if diff := cmp.Diff(v1, got); diff != "" || !created {
				t.Errorf("first RegisterSigningKey: created = %v (-want +got):\n%s", created, diff)
			}
			got, created = register(t, st, "pub-1", t0.Add(time.Hour))
			if diff := cmp.Diff(v1, got); diff != "" || created {
				t.Errorf("RegisterSigningKey(same key): created = %v (-want +got):\n%s", created, diff)
			}
			v2 := signingKey(2, "pub-2", "active", t0.Add(2*time.Hour))
			got, created = register(t, st, "pub-2", t0.Add(2*time.Hour))
			if diff := cmp.Diff(v2, got); diff != "" || !created {
				t.Errorf("RegisterSigningKey(second key): created = %v (-want +got):\n%s", created, diff)
			}
			v1.Status, v1.RetiredAt = "retired", ptr(t0.Add(2*time.Hour))
			if diff := cmp.Diff([]*store.SigningKey{v1, v2}, signingKeys(t, st)); diff != "" {
				t.Errorf("ListSigningKeys (-want +got):\n%s", diff)
			}
			// A retired key registered again is returned as it is.
			if got, created = register(t, st, "pub-1", t0.Add(3*time.Hour)); created || got.Status != "retired" {
				t.Errorf("RegisterSigningKey(retired key) = status %s, created %v; want retired, false", got.Status, created)
			}
		}},
		{"Revoke", func(t *testing.T) {
			st := s.fresh(t)
			register(t, st, "pub-1", t0)
			register(t, st, "pub-2", t0.Add(time.Hour))
			revoke := func(version int, at time.Time) *store.SigningKey {
				var k *store.SigningKey
				sysTx(t, st, func(tx store.SystemTx) (err error) {
					k, err = tx.RevokeSigningKey(version, at)
					return err
				})
				return k
			}
			v1 := signingKey(1, "pub-1", "revoked", t0)
			v1.RetiredAt, v1.RevokedAt = ptr(t0.Add(time.Hour)), ptr(t0.Add(2*time.Hour))
			for i, at := range []time.Time{t0.Add(2 * time.Hour), t0.Add(3 * time.Hour)} {
				if diff := cmp.Diff(v1, revoke(1, at)); diff != "" {
					t.Errorf("RevokeSigningKey(1) #%d (-want +got):\n%s", i+1, diff)
				}
			}
			v2 := signingKey(2, "pub-2", "revoked", t0.Add(time.Hour))
			v2.RevokedAt = ptr(t0.Add(4 * time.Hour))
			if diff := cmp.Diff(v2, revoke(2, t0.Add(4*time.Hour))); diff != "" {
				t.Errorf("RevokeSigningKey(active key) (-want +got):\n%s", diff)
			}
			// A revoked key stays revoked, also when registered again.
			if got, created := register(t, st, "pub-2", t0.Add(5*time.Hour)); created || got.Status != "revoked" {
				t.Errorf("RegisterSigningKey(revoked key) = status %s, created %v; want revoked, false", got.Status, created)
			}
			v3 := signingKey(3, "pub-3", "active", t0.Add(6*time.Hour))
			if got, _ := register(t, st, "pub-3", t0.Add(6*time.Hour)); !cmp.Equal(v3, got) {
				t.Errorf("RegisterSigningKey after revocations = %+v, want %+v", got, v3)
			}
			if diff := cmp.Diff([]*store.SigningKey{v1, v2, v3}, signingKeys(t, st)); diff != "" {
				t.Errorf("ListSigningKeys (-want +got):\n%s", diff)
			}
			err := st.Tx(t.Context(), func(tx store.SystemTx) error {
				_, err := tx.RevokeSigningKey(99, t0)
				return err
			})
			checkKind(t, "RevokeSigningKey(unknown version)", err, vaultcrux.NotFound)
		}},
		{"ConcurrentRegister", func(t *testing.T) {
			// Replicas starting together each register their own key, or
			// the same one. Every registration must succeed and leave
			// one version per key and exactly one active. Rounds give the
			// race more chances.
			st := s.fresh(t)
			const rounds, n = 4, 6
			for round := range rounds {
				pubs := make([]string, 2*n)
				for i := range n {
					pubs[i], pubs[n+i] = fmt.Sprintf("pub-%d-%d", round, i), fmt.Sprintf("shared-%d", round)
				}
				created := make([]bool, len(pubs))
				errs := make([]error, len(pubs))
				var wg sync.WaitGroup
				for i, pub := range pubs {
					wg.Go(func() {
						errs[i] = st.Tx(t.Context(), func(tx store.SystemTx) (err error) {
							_, created[i], err = tx.RegisterSigningKey([]byte(pub), t0)
							return err
						})
					})
				}
				wg.Wait()
				if err := errors.Join(errs...); err != nil {
					t.Fatalf("round %d: concurrent RegisterSigningKey: %v", round, err)
				}
				sharedCreated := 0
				for i := n; i < len(pubs); i++ {
					if created[i] {
						sharedCreated++
					}
				}
				if sharedCreated != 1 {
					t.Errorf("round %d: the shared key was created %d times, want 1", round, sharedCreated)
				}
			}
			keys := signingKeys(t, st)
			const total = rounds * (n + 1)
			if len(keys) != total {
				t.Fatalf("%d keys registered, want %d", len(keys), total)
			}
			active := 0
			for i, k := range keys {
				if k.Version != i+1 {
					t.Errorf("key %d has version %d, want %d", i, k.Version, i+1)
				}
				if k.Status == "active" {
					active++
				} else if k.Status != "retired" || k.RetiredAt == nil {
					t.Errorf("version %d: status %s, retired at %v; want retired with a time", k.Version, k.Status, k.RetiredAt)
				}
			}
			if active != 1 || keys[total-1].Status != "active" {
				t.Errorf("%d active keys, the last is %s; want exactly the last one active", active, keys[total-1].Status)
			}
		}},
	}
}

func (s *suite) batchTests() []test {
	// batch runs fn in a Batch that must succeed.
	batch := func(t *testing.T, st store.Store, fn func(store.BatchTx) error) {
		t.Helper()
		if err := st.Batch(t.Context(), fn); err != nil {
			t.Fatalf("Batch: %v", err)
		}
	}
	return []test{
		{"TwoTenants", func(t *testing.T) {
			st := s.fresh(t)
			batch(t, st, func(b store.BatchTx) error {
				a := b.Tenant(acme)
				if _, err := a.LogHead(); err != nil {
					return err
				}
				if err := a.AppendReceipts(receipts("a", 0, 2)); err != nil {
					return err
				}
				return b.Tenant(bravo).AppendReceipts(receipts("b", 0, 3))
			})
			if diff := cmp.Diff([]string{"a-1", "a-0"}, receiptIDs(listReceipts(t, st, acme, all))); diff != "" {
				t.Errorf("acme's receipts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"b-2", "b-1", "b-0"}, receiptIDs(listReceipts(t, st, bravo, all))); diff != "" {
				t.Errorf("bravo's receipts (-want +got):\n%s", diff)
			}
		}},
		{"SavepointRollback", func(t *testing.T) {
			st := s.fresh(t)
			batch(t, st, func(b store.BatchTx) error {
				if err := b.Savepoint(func() error {
					return b.Tenant(acme).AppendReceipts(receipts("a", 0, 1))
				}); err != nil {
					return err
				}
				err := b.Savepoint(func() error {
					if err := b.Tenant(bravo).AppendReceipts(receipts("b", 0, 1)); err != nil {
						return err
					}
					return errBoom
				})
				if err != errBoom {
					t.Errorf("Savepoint returned %v, want errBoom itself", err)
				}
				// The rollback also undid the switch to bravo inside the
				// savepoint (PostgreSQL: its settings); the next bravo
				// handle must still work, and so must acme's after it.
				bt := b.Tenant(bravo)
				if size, err := bt.LogHead(); err != nil || size != 0 {
					t.Errorf("bravo's LogHead after the rollback = %d, %v; want 0, nil", size, err)
				}
				if err := bt.AppendReceipts([]*store.ReceiptRecord{receipt("b-again", 0)}); err != nil {
					return err
				}
				// A failed statement inside a savepoint (PostgreSQL
				// aborts the transaction on it) is rolled back too.
				err = b.Savepoint(func() error {
					a := b.Tenant(acme)
					if err := a.AppendReceipts(receipts("a2", 1, 1)); err != nil {
						return err
					}
					return a.AppendReceipts([]*store.ReceiptRecord{receipt("a-0", 2)})
				})
				checkKind(t, "Savepoint(duplicate receipt)", err, vaultcrux.Conflict)
				return b.Tenant(acme).AppendReceipts(receipts("a", 1, 1))
			})
			if diff := cmp.Diff([]string{"a-1", "a-0"}, receiptIDs(listReceipts(t, st, acme, all))); diff != "" {
				t.Errorf("acme's receipts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"b-again"}, receiptIDs(listReceipts(t, st, bravo, all))); diff != "" {
				t.Errorf("bravo's receipts (-want +got):\n%s", diff)
			}
		}},
		{"NestedSavepoints", func(t *testing.T) {
			st := s.fresh(t)
			batch(t, st, func(b store.BatchTx) error {
				if err := b.Savepoint(func() error {
					if err := b.Tenant(acme).AppendReceipts(receipts("a", 0, 1)); err != nil {
						return err
					}
					if err := b.Savepoint(func() error {
						if err := b.Tenant(bravo).AppendReceipts(receipts("b", 0, 1)); err != nil {
							return err
						}
						return errBoom
					}); err != errBoom {
						t.Errorf("inner Savepoint returned %v, want errBoom", err)
					}
					return b.Tenant(acme).AppendReceipts(receipts("a", 1, 1))
				}); err != nil {
					return err
				}
				// A released inner savepoint goes with its outer one.
				err := b.Savepoint(func() error {
					if err := b.Savepoint(func() error {
						return b.Tenant(bravo).AppendReceipts(receipts("b", 0, 1))
					}); err != nil {
						return err
					}
					return errBoom
				})
				if err != errBoom {
					t.Errorf("outer Savepoint returned %v, want errBoom", err)
				}
				return nil
			})
			if diff := cmp.Diff([]string{"a-1", "a-0"}, receiptIDs(listReceipts(t, st, acme, all))); diff != "" {
				t.Errorf("acme's receipts (-want +got):\n%s", diff)
			}
			if got := listReceipts(t, st, bravo, all); len(got) != 0 {
				t.Errorf("bravo has receipts %v, want none", receiptIDs(got))
			}
		}},
		{"ErrorRollsBackAll", func(t *testing.T) {
			st := s.fresh(t)
			err := st.Batch(t.Context(), func(b store.BatchTx) error {
				if _, _, err := b.System().RegisterSigningKey([]byte("pub-1"), t0); err != nil {
					return err
				}
				if err := b.Tenant(acme).AppendReceipts(receipts("a", 0, 2)); err != nil {
					return err
				}
				if err := b.Savepoint(func() error {
					return b.Tenant(bravo).AppendReceipts(receipts("b", 0, 1))
				}); err != nil {
					return err
				}
				return errBoom
			})
			if !errors.Is(err, errBoom) {
				t.Fatalf("Batch err = %v, want %v", err, errBoom)
			}
			if got := signingKeys(t, st); len(got) != 0 {
				t.Errorf("signing keys after the rolled back batch: %v, want none", got)
			}
			for _, tenant := range []string{acme, bravo} {
				if got := listReceipts(t, st, tenant, all); len(got) != 0 || logHead(t, st, tenant) != 0 {
					t.Errorf("%s has receipts %v after the rolled back batch, want none", tenant, receiptIDs(got))
				}
			}
		}},
		{"PanicRollsBack", func(t *testing.T) {
			st := s.fresh(t)
			got := func() (p any) {
				defer func() { p = recover() }()
				st.Batch(t.Context(), func(b store.BatchTx) error {
					if err := b.Tenant(acme).AppendReceipts(receipts("a", 0, 1)); err != nil {
						t.Error(err)
					}
					panic(errBoom)
				})
				return nil
			}()
			if got != errBoom {
				t.Errorf("recovered %v, want %v", got, errBoom)
			}
			checkNoReceipt(t, st, acme, "a-0")
		}},
		{"SystemAndTenant", func(t *testing.T) {
			st := s.fresh(t)
			batch(t, st, func(b store.BatchTx) error {
				if _, _, err := b.System().RegisterSigningKey([]byte("pub-1"), t0); err != nil {
					return err
				}
				a := b.Tenant(acme)
				if err := a.AppendReceipts([]*store.ReceiptRecord{answerReceipt("a-0", 0, "ans", "snap", "")}); err != nil {
					return err
				}
				sys := b.System()
				// The batch sees its own writes, in either scope.
				logs, err := sys.LogsNeedingCheckpoint()
				if err != nil {
					return err
				}
				pending, err := sys.TenantsWithPendingReceipts()
				if err != nil {
					return err
				}
				want := []vaultcrux.TenantID{acme}
				if !cmp.Equal(want, logs) || !cmp.Equal(want, pending) {
					t.Errorf("inside the batch: LogsNeedingCheckpoint = %v, TenantsWithPendingReceipts = %v; want %v for both", logs, pending, want)
				}
				if size, err := b.Tenant(bravo).LogHead(); err != nil || size != 0 {
					t.Errorf("bravo's LogHead = %d, %v; want 0, nil", size, err)
				}
				if _, err := b.Tenant(acme).GetReceiptByAnswer("ans"); err != nil {
					return err
				}
				_, err = b.System().ListSigningKeys()
				return err
			})
			if got := signingKeys(t, st); len(got) != 1 {
				t.Errorf("%d signing keys after the batch, want 1", len(got))
			}
			if got := logHead(t, st, acme); got != 1 {
				t.Errorf("acme's log head after the batch = %d, want 1", got)
			}
		}},
		{"EveryMethodKeepsItsScope", func(t *testing.T) {
			// Before each call another tenant's handle is used, so every
			// method must put the transaction back in its own scope (in
			// PostgreSQL, the row-level security settings).
			st := s.fresh(t)
			createKeys(t, st, apiKey(acme, "k1", vaultcrux.RoleOwner))
			appendReceipts(t, st, acme, answerReceipt("r-0", 0, "ans-0", "snap-0", ""), receipt("r-1", 1))
			want := func(what string, got, want int) error {
				if got != want {
					return fmt.Errorf("%s = %d, want %d", what, got, want)
				}
				return nil
			}
			rec := pending(scope, "h1", t0)
			tenantSteps := []struct {
				name string
				fn   func(tx store.TenantTx) error
			}{
				{"CreateAPIKey", func(tx store.TenantTx) error { return tx.CreateAPIKey(apiKey(acme, "k2", vaultcrux.RoleMember)) }},
				{"GetAPIKey", func(tx store.TenantTx) error { _, err := tx.GetAPIKey("k2"); return err }},
				{"ListAPIKeys", func(tx store.TenantTx) error {
					keys, err := tx.ListAPIKeys("", 10)
					return errors.Join(err, want("keys", len(keys), 2))
				}},
				{"LockActiveOwnerKeys", func(tx store.TenantTx) error {
					n, err := tx.LockActiveOwnerKeys()
					return errors.Join(err, want("owners", n, 1))
				}},
				{"RevokeAPIKey", func(tx store.TenantTx) error { _, err := tx.RevokeAPIKey("k2", t0); return err }},
				{"ClaimIdempotency", func(tx store.TenantTx) error { _, _, err := tx.ClaimIdempotency(rec, t0, t0); return err }},
				{"ReleaseIdempotency", func(tx store.TenantTx) error { return tx.ReleaseIdempotency(rec) }},
				{"ClaimIdempotency again", func(tx store.TenantTx) error {
					_, claimed, err := tx.ClaimIdempotency(rec, t0, t0)
					if err == nil && !claimed {
						err = errors.New("claim after release lost")
					}
					return err
				}},
				{"FinishIdempotency", func(tx store.TenantTx) error {
					return tx.FinishIdempotency(rec, &store.IdempotencyResponse{Status: 200})
				}},
				{"LogHead", func(tx store.TenantTx) error {
					size, err := tx.LogHead()
					return errors.Join(err, want("size", int(size), 2))
				}},
				{"AppendReceipts", func(tx store.TenantTx) error {
					return tx.AppendReceipts([]*store.ReceiptRecord{answerReceipt("r-2", 2, "ans-2", "snap-2", "snap-0")})
				}},
				{"LogHashes", func(tx store.TenantTx) error { _, err := tx.LogHashes([]int64{0, 1, 2}); return err }},
				{"GetReceipt", func(tx store.TenantTx) error { _, err := tx.GetReceipt("r-2"); return err }},
				{"GetReceiptByAnswer", func(tx store.TenantTx) error { _, err := tx.GetReceiptByAnswer("ans-0"); return err }},
				{"GetReceiptBySnapshot", func(tx store.TenantTx) error { _, err := tx.GetReceiptBySnapshot("snap-0"); return err }},
				{"ListReceipts", func(tx store.TenantTx) error {
					recs, err := tx.ListReceipts(all)
					return errors.Join(err, want("receipts", len(recs), 3))
				}},
				{"PendingReceipts", func(tx store.TenantTx) error {
					recs, err := tx.PendingReceipts(10)
					return errors.Join(err, want("pending receipts", len(recs), 2))
				}},
				{"AddAttestation", func(tx store.TenantTx) error {
					return tx.AddAttestation(&store.Attestation{ReceiptID: "r-0", Signature: []byte(`{}`), CreatedAt: t0})
				}},
				{"GetAttestation", func(tx store.TenantTx) error { _, err := tx.GetAttestation("r-0"); return err }},
				{"AddCheckpoint", func(tx store.TenantTx) error {
					return tx.AddCheckpoint(&store.Checkpoint{Size: 2, Root: []byte("root"), Note: []byte("note"), CreatedAt: t0})
				}},
				{"LatestCheckpoint", func(tx store.TenantTx) error { _, err := tx.LatestCheckpoint(); return err }},
				{"GetCheckpoint", func(tx store.TenantTx) error { _, err := tx.GetCheckpoint(2); return err }},
			}
			systemSteps := []struct {
				name string
				fn   func(tx store.SystemTx) error
			}{
				{"CreateTenant", func(tx store.SystemTx) error { return tx.CreateTenant(tenant("charlie"), nil) }},
				{"GetTenant", func(tx store.SystemTx) error { _, err := tx.GetTenant(acme); return err }},
				{"ListTenants", func(tx store.SystemTx) error {
					ts, err := tx.ListTenants()
					return errors.Join(err, want("tenants", len(ts), 3))
				}},
				{"TouchAPIKeys", func(tx store.SystemTx) error { return tx.TouchAPIKeys(map[string]time.Time{"k1": t0}) }},
				{"LookupAPIKey", func(tx store.SystemTx) error {
					k, err := tx.LookupAPIKey("k1")
					if err == nil && k.LastUsedAt == nil {
						err = errors.New("TouchAPIKeys did not touch the key")
					}
					return err
				}},
				{"PurgeIdempotency", func(tx store.SystemTx) error {
					n, err := tx.PurgeIdempotency(t0.Add(25 * time.Hour))
					return errors.Join(err, want("purged records", n, 1))
				}},
				{"RegisterSigningKey", func(tx store.SystemTx) error { _, _, err := tx.RegisterSigningKey([]byte("pub-1"), t0); return err }},
				{"ListSigningKeys", func(tx store.SystemTx) error {
					keys, err := tx.ListSigningKeys()
					return errors.Join(err, want("signing keys", len(keys), 1))
				}},
				{"RevokeSigningKey", func(tx store.SystemTx) error { _, err := tx.RevokeSigningKey(1, t0); return err }},
				{"LogsNeedingCheckpoint", func(tx store.SystemTx) error {
					ids, err := tx.LogsNeedingCheckpoint()
					return errors.Join(err, want("logs needing a checkpoint", len(ids), 1))
				}},
				{"TenantsWithPendingReceipts", func(tx store.SystemTx) error {
					ids, err := tx.TenantsWithPendingReceipts()
					return errors.Join(err, want("tenants with pending receipts", len(ids), 1))
				}},
			}
			// bravo has a checkpointed log of its own, so that switching
			// to it writes nothing and it needs no checkpoint.
			appendReceipts(t, st, bravo, receipts("b", 0, 1)...)
			tenTx(t, st, bravo, func(tx store.TenantTx) error {
				return tx.AddCheckpoint(&store.Checkpoint{Size: 1, Root: []byte("root"), Note: []byte("note"), CreatedAt: t0})
			})
			away := func(b store.BatchTx) error {
				_, err := b.Tenant(bravo).LogHead()
				return err
			}
			batch(t, st, func(b store.BatchTx) error {
				for _, step := range tenantSteps {
					if err := away(b); err != nil {
						return err
					}
					if err := step.fn(b.Tenant(acme)); err != nil {
						return fmt.Errorf("%s: %w", step.name, err)
					}
				}
				for _, step := range systemSteps {
					if err := away(b); err != nil {
						return err
					}
					if err := step.fn(b.System()); err != nil {
						return fmt.Errorf("%s: %w", step.name, err)
					}
				}
				return nil
			})
		}},
		{"InvalidTenant", func(t *testing.T) {
			st := s.fresh(t)
			batch(t, st, func(b store.BatchTx) error {
				bad := b.Tenant("Not Valid")
				_, err := bad.LogHead()
				checkKind(t, "LogHead of an invalid tenant id", err, vaultcrux.Internal)
				err = bad.AppendReceipts(receipts("x", 0, 1))
				checkKind(t, "AppendReceipts of an invalid tenant id", err, vaultcrux.Internal)
				_, err = bad.GetAPIKey("k")
				checkKind(t, "GetAPIKey of an invalid tenant id", err, vaultcrux.Internal)
				return nil
			})
		}},
	}
}

func (s *suite) logTests() []test {
	return []test{
		{"AppendAndHead", func(t *testing.T) {
			st := s.fresh(t)
			if got := logHead(t, st, acme); got != 0 {
				t.Errorf("LogHead of a new log = %d, want 0", got)
			}
			want := receipts("r", 0, 3)
			appendReceipts(t, st, acme, want...)
			if got := logHead(t, st, acme); got != 3 {
				t.Errorf("LogHead after appending 3 = %d, want 3", got)
			}
			if got := logHead(t, st, bravo); got != 0 {
				t.Errorf("bravo's LogHead = %d, want 0", got)
			}
			// No LogHead first: a log never touched has no head yet.
			if err := tryAppend(t, st, bravo, receipts("r", 0, 2)...); err != nil {
				t.Errorf("first append without LogHead: %v", err)
			}
			if err := tryAppend(t, st, acme); err != nil {
				t.Errorf("AppendReceipts(nothing): %v", err)
			}
			for _, r := range want {
				if diff := cmp.Diff(r, getReceipt(t, st, acme, r.ID)); diff != "" {
					t.Errorf("GetReceipt(%s) (-want +got):\n%s", r.ID, diff)
				}
			}
			if got, want := logHead(t, st, bravo), int64(2); got != want {
				t.Errorf("bravo's LogHead = %d, want %d", got, want)
			}
		}},
		{"IndexMustFollow", func(t *testing.T) {
			st := s.fresh(t)
			appendReceipts(t, st, acme, receipts("r", 0, 3)...)
			gap := receipts("x", 3, 3)
			gap[2].LogIndex = 6
			cases := []struct {
				name string
				recs []*store.ReceiptRecord
			}{
				{"behind", receipts("x", 2, 2)},
				{"from zero", receipts("x", 0, 1)},
				{"ahead", receipts("x", 4, 1)},
				{"gap inside", gap},
			}
			for _, c := range cases {
				checkKind(t, "AppendReceipts "+c.name, tryAppend(t, st, acme, c.recs...), vaultcrux.Conflict)
			}
			checkKind(t, "first append at 1", tryAppend(t, st, bravo, receipts("x", 1, 1)...), vaultcrux.Conflict)
			if got := logHead(t, st, acme); got != 3 {
				t.Errorf("LogHead after refused appends = %d, want 3", got)
			}
			if got := logHead(t, st, bravo); got != 0 {
				t.Errorf("bravo's LogHead after a refused append = %d, want 0", got)
			}
			for _, id := range []string{"x-3", "x-4", "x-2", "x-0"} {
				checkNoReceipt(t, st, acme, id)
			}
		}},
		{"Duplicates", func(t *testing.T) {
			st := s.fresh(t)
			first := answerReceipt("r-0", 0, "ans-0", "snap-0", "")
			appendReceipts(t, st, acme, first, receipt("r-1", 1))
			cases := []struct {
				name string
				dup  *store.ReceiptRecord
			}{
				{"receipt id", receipt("r-1", 3)},
				{"answer id", answerReceipt("r-3", 3, "ans-0", "snap-3", "snap-0")},
				{"snapshot id", answerReceipt("r-3", 3, "ans-3", "snap-0", "snap-0")},
				{"id within the append", receipt("r-2", 3)},
			}
			for _, c := range cases {
				// A good receipt first: it must not stay behind.
				err := tryAppend(t, st, acme, receipt("r-2", 2), c.dup)
				checkKind(t, "AppendReceipts(duplicate "+c.name+")", err, vaultcrux.Conflict)
			}
			if got := logHead(t, st, acme); got != 2 {
				t.Errorf("LogHead after refused appends = %d, want 2", got)
			}
			checkNoReceipt(t, st, acme, "r-2")
			checkNoReceipt(t, st, acme, "r-3")
			// Ids are per tenant.
			appendReceipts(t, st, bravo, answerReceipt("r-0", 0, "ans-0", "snap-0", ""))
			if diff := cmp.Diff(first, getReceipt(t, st, acme, "r-0")); diff != "" {
				t.Errorf("acme's r-0 after bravo stored one (-want +got):\n%s", diff)
			}
		}},
		{"MissingTenant", func(t *testing.T) {
			st := s.fresh(t)
			ghost := st.ForTenant("ghost")
			err := ghost.Tx(t.Context(), func(tx store.TenantTx) error {
				_, err := tx.LogHead()
				return err
			})
			checkKind(t, "LogHead(tenant missing)", err, vaultcrux.NotFound)
			checkKind(t, "AppendReceipts(tenant missing)", tryAppend(t, st, "ghost", receipts("r", 0, 1)...), vaultcrux.NotFound)
		}},
		{"LogHashes", func(t *testing.T) {
			st := s.fresh(t)
			recs := receipts("r", 0, 3)
			appendReceipts(t, st, acme, recs...)
			hashes := func(tenant string, indexes ...int64) ([][]byte, error) {
				var got [][]byte
				err := st.ForTenant(vaultcrux.TenantID(tenant)).Tx(t.Context(), func(tx store.TenantTx) (err error) {
					got, err = tx.LogHashes(indexes)
					return err
				})
				return got, err
			}
			got, err := hashes(acme, 2, 0, 2, 1)
			want := [][]byte{recs[2].LogHashes, recs[0].LogHashes, recs[2].LogHashes, recs[1].LogHashes}
			if diff := cmp.Diff(want, got); err != nil || diff != "" {
				t.Errorf("LogHashes(2, 0, 2, 1): err = %v (-want +got):\n%s", err, diff)
			}
			if got, err := hashes(acme); err != nil || len(got) != 0 {
				t.Errorf("LogHashes() = %v, %v; want none, nil", got, err)
			}
			_, err = hashes(acme, 0, 3)
			checkKind(t, "LogHashes(beyond the log)", err, vaultcrux.NotFound)
			_, err = hashes(bravo, 0)
			checkKind(t, "bravo LogHashes(0)", err, vaultcrux.NotFound)
		}},
		{"ConcurrentAppends", func(t *testing.T) {
			// Appenders in several transactions (replicas, in
			// PostgreSQL) each read the head and append after it. Some
			// wait, none fails, and the log has no gap.
			st := s.fresh(t)
			const workers, rounds, per = 4, 5, 3
			errs := make([]error, workers)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for r := range rounds {
						err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
							size, err := tx.LogHead()
							if err != nil {
								return err
							}
							return tx.AppendReceipts(receipts(fmt.Sprintf("w%d-r%d", w, r), size, per))
						})
						if err != nil {
							errs[w] = err
							return
						}
					}
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("concurrent appends: %v", err)
			}
			const n = workers * rounds * per
			if got := logHead(t, st, acme); got != n {
				t.Errorf("LogHead = %d, want %d", got, n)
			}
			got := listReceipts(t, st, acme, store.ReceiptFilter{BeforeIndex: -1, Limit: 2 * n})
			if len(got) != n {
				t.Fatalf("%d receipts stored, want %d", len(got), n)
			}
			// Newest first: index n-1 down to 0, each append's receipts
			// together.
			for i, r := range got {
				index := int64(n - 1 - i)
				if r.LogIndex != index {
					t.Fatalf("receipt %d of the list has log index %d, want %d", i, r.LogIndex, index)
				}
				var w, round int
				var at int64
				if _, err := fmt.Sscanf(r.ID, "w%d-r%d-%d", &w, &round, &at); err != nil || at != index {
					t.Errorf("receipt %s stored at log index %d", r.ID, index)
				}
			}
		}},
	}
}

func (s *suite) receiptTests() []test {
	return []test{
		{"Lookups", func(t *testing.T) {
			st := s.fresh(t)
			root := answerReceipt("r-0", 0, "ans-0", "snap-0", "")
			child := answerReceipt("r-1", 1, "ans-1", "snap-1", "snap-0")
			child.Pending = false
			event := receipt("r-2", 2)
			appendReceipts(t, st, acme, root, child, event)
			lookups := []struct {
				name string
				fn   func(tx store.TenantTx) (*store.ReceiptRecord, error)
				want *store.ReceiptRecord
			}{
				{"GetReceipt(r-0)", func(tx store.TenantTx) (*store.ReceiptRecord, error) { return tx.GetReceipt("r-0") }, root},
				{"GetReceipt(r-2)", func(tx store.TenantTx) (*store.ReceiptRecord, error) { return tx.GetReceipt("r-2") }, event},
				{"GetReceiptByAnswer(ans-1)", func(tx store.TenantTx) (*store.ReceiptRecord, error) { return tx.GetReceiptByAnswer("ans-1") }, child},
				{"GetReceiptBySnapshot(snap-0)", func(tx store.TenantTx) (*store.ReceiptRecord, error) { return tx.GetReceiptBySnapshot("snap-0") }, root},
				{"GetReceipt(nope)", func(tx store.TenantTx) (*store.ReceiptRecord, error) { return tx.GetReceipt("nope") }, nil},
				{"GetReceiptByAnswer(nope)", func(tx store.TenantTx) (*store.ReceiptRecord, error) { return tx.GetReceiptByAnswer("nope") }, nil},
				{"GetReceiptBySnapshot(snap-9)", func(tx store.TenantTx) (*store.ReceiptRecord, error) { return tx.GetReceiptBySnapshot("snap-9") }, nil},
				// An event receipt has no answer id, not an empty one.
				{"GetReceiptByAnswer(empty)", func(tx store.TenantTx) (*store.ReceiptRecord, error) { return tx.GetReceiptByAnswer("") }, nil},
			}
			for _, l := range lookups {
				var got *store.ReceiptRecord
				err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) (err error) {
					got, err = l.fn(tx)
					return err
				})
				if l.want == nil {
					checkKind(t, l.name, err, vaultcrux.NotFound)
					continue
				}
				if diff := cmp.Diff(l.want, got); err != nil || diff != "" {
					t.Errorf("%s: err = %v (-want +got):\n%s", l.name, err, diff)
				}
			}
		}},
		{"List", func(t *testing.T) {
			st := s.fresh(t)
			recs := receipts("r", 0, 10)
			for i, r := range recs {
				if i%2 == 1 {
					r.Kind = "deletion"
				}
			}
			appendReceipts(t, st, acme, recs...)
			appendReceipts(t, st, bravo, receipts("b", 0, 2)...)
			newest := func(indexes ...int) []string {
				var ids []string
				for _, i := range indexes {
					ids = append(ids, recs[i].ID)
				}
				return ids
			}
			cases := []struct {
				name   string
				filter store.ReceiptFilter
				want   []string
			}{
				{"all", all, newest(9, 8, 7, 6, 5, 4, 3, 2, 1, 0)},
				{"first page", store.ReceiptFilter{BeforeIndex: -1, Limit: 3}, newest(9, 8, 7)},
				{"second page", store.ReceiptFilter{BeforeIndex: 7, Limit: 3}, newest(6, 5, 4)},
				{"last page", store.ReceiptFilter{BeforeIndex: 1, Limit: 3}, newest(0)},
				{"after the last page", store.ReceiptFilter{BeforeIndex: 0, Limit: 3}, nil},
				{"cursor beyond the log", store.ReceiptFilter{BeforeIndex: 100, Limit: 2}, newest(9, 8)},
				{"kind", store.ReceiptFilter{Kind: "deletion", BeforeIndex: -1}, newest(9, 7, 5, 3, 1)},
				{"kind, paged", store.ReceiptFilter{Kind: "deletion", BeforeIndex: 7, Limit: 2}, newest(5, 3)},
				{"unknown kind", store.ReceiptFilter{Kind: "nope", BeforeIndex: -1}, nil},
				{"since", store.ReceiptFilter{Since: t0.Add(6 * time.Minute), BeforeIndex: -1}, newest(9, 8, 7, 6)},
				{"since, between", store.ReceiptFilter{Since: t0.Add(6*time.Minute - time.Millisecond), BeforeIndex: -1, Limit: 1}, newest(9)},
				{"everything", store.ReceiptFilter{Kind: "ingest", Since: t0.Add(5 * time.Minute), BeforeIndex: 9}, newest(8, 6)},
			}
			for _, c := range cases {
				if diff := cmp.Diff(c.want, receiptIDs(listReceipts(t, st, acme, c.filter))); diff != "" {
					t.Errorf("ListReceipts(%s) (-want +got):\n%s", c.name, diff)
				}
			}
			if diff := cmp.Diff(recs[9], listReceipts(t, st, acme, all)[0]); diff != "" {
				t.Errorf("listed receipt (-want +got):\n%s", diff)
			}
		}},
		{"ListDefaultLimit", func(t *testing.T) {
			st := s.fresh(t)
			appendReceipts(t, st, acme, receipts("r", 0, 51)...)
			for _, limit := range []int{0, -1} {
				got := listReceipts(t, st, acme, store.ReceiptFilter{BeforeIndex: -1, Limit: limit})
				if len(got) != 50 || got[0].LogIndex != 50 {
					t.Errorf("ListReceipts(limit %d) returned %d receipts, want the newest 50", limit, len(got))
				}
			}
		}},
		{"CrossTenant", func(t *testing.T) {
			st := s.fresh(t)
			pending := answerReceipt("r-0", 0, "ans-0", "snap-0", "")
			signed := answerReceipt("r-1", 1, "ans-1", "snap-1", "snap-0")
			signed.Pending = false
			appendReceipts(t, st, acme, pending, signed, answerReceipt("r-2", 2, "ans-2", "snap-2", "snap-1"))
			tenTx(t, st, acme, func(tx store.TenantTx) error {
				if err := tx.AddAttestation(&store.Attestation{ReceiptID: "r-0", Signature: []byte(`{}`), CreatedAt: t0}); err != nil {
					return err
				}
				return tx.AddCheckpoint(&store.Checkpoint{Size: 3, Root: []byte("root"), Note: []byte("note"), CreatedAt: t0})
			})
			notFound := []struct {
				name string
				fn   func(tx store.TenantTx) error
			}{
				{"GetReceipt", func(tx store.TenantTx) error { _, err := tx.GetReceipt("r-0"); return err }},
				{"GetReceiptByAnswer", func(tx store.TenantTx) error { _, err := tx.GetReceiptByAnswer("ans-0"); return err }},
				{"GetReceiptBySnapshot", func(tx store.TenantTx) error { _, err := tx.GetReceiptBySnapshot("snap-0"); return err }},
				{"LogHashes", func(tx store.TenantTx) error { _, err := tx.LogHashes([]int64{0}); return err }},
				{"GetAttestation", func(tx store.TenantTx) error { _, err := tx.GetAttestation("r-0"); return err }},
				{"AddAttestation", func(tx store.TenantTx) error {
					return tx.AddAttestation(&store.Attestation{ReceiptID: "r-2", Signature: []byte(`{}`), CreatedAt: t0})
				}},
				{"LatestCheckpoint", func(tx store.TenantTx) error { _, err := tx.LatestCheckpoint(); return err }},
				{"GetCheckpoint", func(tx store.TenantTx) error { _, err := tx.GetCheckpoint(3); return err }},
			}
			for _, c := range notFound {
				err := st.ForTenant(bravo).Tx(t.Context(), c.fn)
				checkKind(t, "bravo "+c.name+" of acme's", err, vaultcrux.NotFound, acme)
			}
			var list, pendingList []*store.ReceiptRecord
			var size int64
			tenTx(t, st, bravo, func(tx store.TenantTx) (err error) {
				if list, err = tx.ListReceipts(all); err != nil {
					return err
				}
				if pendingList, err = tx.PendingReceipts(10); err != nil {
					return err
				}
				size, err = tx.LogHead()
				return err
			})
			if len(list) != 0 || len(pendingList) != 0 || size != 0 {
				t.Errorf("bravo sees %d receipts, %d pending, log size %d; want none", len(list), len(pendingList), size)
			}
			checkNoReceipt(t, st, bravo, "r-2")
			if got := getReceipt(t, st, acme, "r-2"); got == nil {
				t.Error("acme lost r-2")
			}
		}},
	}
}

func (s *suite) attestationTests() []test {
	pendingIDs := func(t *testing.T, st store.Store, tenant string, limit int) []string {
		t.Helper()
		var got []*store.ReceiptRecord
		tenTx(t, st, tenant, func(tx store.TenantTx) (err error) {
			got, err = tx.PendingReceipts(limit)
			return err
		})
		return receiptIDs(got)
	}
	tenantsPending := func(t *testing.T, st store.Store) []vaultcrux.TenantID {
		t.Helper()
		var got []vaultcrux.TenantID
		sysTx(t, st, func(tx store.SystemTx) (err error) {
			got, err = tx.TenantsWithPendingReceipts()
			return err
		})
		return got
	}
	return []test{
		{"PendingFlow", func(t *testing.T) {
			st := s.fresh(t)
			recs := []*store.ReceiptRecord{
				answerReceipt("r-0", 0, "ans-0", "snap-0", ""),
				receipt("r-1", 1),
				answerReceipt("r-2", 2, "ans-2", "snap-2", "snap-0"),
				receipt("r-3", 3),
			}
			recs[3].Pending = true
			appendReceipts(t, st, acme, recs...)
			if diff := cmp.Diff([]string{"r-0", "r-2", "r-3"}, pendingIDs(t, st, acme, 10)); diff != "" {
				t.Errorf("PendingReceipts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"r-0", "r-2"}, pendingIDs(t, st, acme, 2)); diff != "" {
				t.Errorf("PendingReceipts(2) (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]vaultcrux.TenantID{acme}, tenantsPending(t, st)); diff != "" {
				t.Errorf("TenantsWithPendingReceipts (-want +got):\n%s", diff)
			}

			want := &store.Attestation{ReceiptID: "r-2", Signature: []byte(`{"sigB64":"c2ln","kid":"vaultcrux-signing:v1"}`), CreatedAt: t0.Add(time.Hour)}
			tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.AddAttestation(want) })
			var got *store.Attestation
			tenTx(t, st, acme, func(tx store.TenantTx) (err error) {
				got, err = tx.GetAttestation("r-2")
				return err
			})
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GetAttestation (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"r-0", "r-3"}, pendingIDs(t, st, acme, 10)); diff != "" {
				t.Errorf("PendingReceipts after an attestation (-want +got):\n%s", diff)
			}
			// The receipt row itself is never changed.
			if diff := cmp.Diff(recs[2], getReceipt(t, st, acme, "r-2")); diff != "" {
				t.Errorf("attested receipt (-want +got):\n%s", diff)
			}

			add := func(id string) error {
				return st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
					return tx.AddAttestation(&store.Attestation{ReceiptID: id, Signature: []byte(`{}`), CreatedAt: t0})
				})
			}
			checkKind(t, "AddAttestation(attested)", add("r-2"), vaultcrux.Conflict)
			checkKind(t, "AddAttestation(not pending)", add("r-1"), vaultcrux.Conflict)
			checkKind(t, "AddAttestation(missing)", add("nope"), vaultcrux.NotFound)
			err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
				_, err := tx.GetAttestation("r-0")
				return err
			})
			checkKind(t, "GetAttestation(pending)", err, vaultcrux.NotFound)
			err = st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
				_, err := tx.PendingReceipts(0)
				return err
			})
			checkKind(t, "PendingReceipts(0)", err, vaultcrux.Invalid)

			appendReceipts(t, st, bravo, answerReceipt("b-0", 0, "ans-0", "snap-0", ""))
			if diff := cmp.Diff([]vaultcrux.TenantID{acme, bravo}, tenantsPending(t, st)); diff != "" {
				t.Errorf("TenantsWithPendingReceipts with two tenants (-want +got):\n%s", diff)
			}
			for _, id := range []string{"r-0", "r-3"} {
				if err := add(id); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff([]vaultcrux.TenantID{bravo}, tenantsPending(t, st)); diff != "" {
				t.Errorf("TenantsWithPendingReceipts after acme's are signed (-want +got):\n%s", diff)
			}
			if got := pendingIDs(t, st, acme, 10); len(got) != 0 {
				t.Errorf("PendingReceipts after all are signed = %v, want none", got)
			}
		}},
	}
}

func (s *suite) checkpointTests() []test {
	checkpoint := func(size int64) *store.Checkpoint {
		return &store.Checkpoint{
			Size:      size,
			Root:      []byte(fmt.Sprintf("root of %d", size)),
			Note:      []byte(fmt.Sprintf("vaultcrux/acme\n%d\nroot\n\nsignature\n", size)),
			CreatedAt: t0.Add(time.Duration(size) * time.Second),
		}
	}
	add := func(t *testing.T, st store.Store, tenant string, c *store.Checkpoint) error {
		return st.ForTenant(vaultcrux.TenantID(tenant)).Tx(t.Context(), func(tx store.TenantTx) error {
			return tx.AddCheckpoint(c)
		})
	}
	needing := func(t *testing.T, st store.Store) []vaultcrux.TenantID {
		t.Helper()
		var got []vaultcrux.TenantID
		sysTx(t, st, func(tx store.SystemTx) (err error) {
			got, err = tx.LogsNeedingCheckpoint()
			return err
		})
		return got
	}
	latest := func(t *testing.T, st store.Store, tenant string) (*store.Checkpoint, error) {
		var c *store.Checkpoint
		err := st.ForTenant(vaultcrux.TenantID(tenant)).Tx(t.Context(), func(tx store.TenantTx) (err error) {
			c, err = tx.LatestCheckpoint()
			return err
		})
		return c, err
	}
	return []test{
		{"Flow", func(t *testing.T) {
			st := s.fresh(t)
			_, err := latest(t, st, acme)
			checkKind(t, "LatestCheckpoint(none)", err, vaultcrux.NotFound)
			logHead(t, st, bravo) // a head row with nothing appended
			if got := needing(t, st); len(got) != 0 {
				t.Errorf("LogsNeedingCheckpoint with empty logs = %v, want none", got)
			}
			appendReceipts(t, st, acme, receipts("r", 0, 3)...)
			appendReceipts(t, st, bravo, receipts("b", 0, 1)...)
			if diff := cmp.Diff([]vaultcrux.TenantID{acme, bravo}, needing(t, st)); diff != "" {
				t.Errorf("LogsNeedingCheckpoint after appends (-want +got):\n%s", diff)
			}
			if err := add(t, st, acme, checkpoint(2)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]vaultcrux.TenantID{acme, bravo}, needing(t, st)); diff != "" {
				t.Errorf("LogsNeedingCheckpoint after a checkpoint behind the head (-want +got):\n%s", diff)
			}
			if err := add(t, st, acme, checkpoint(3)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]vaultcrux.TenantID{bravo}, needing(t, st)); diff != "" {
				t.Errorf("LogsNeedingCheckpoint after checkpointing acme (-want +got):\n%s", diff)
			}
			// A smaller checkpoint added late does not move the mark back.
			if err := add(t, st, acme, checkpoint(1)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]vaultcrux.TenantID{bravo}, needing(t, st)); diff != "" {
				t.Errorf("LogsNeedingCheckpoint after an older checkpoint (-want +got):\n%s", diff)
			}
			got, err := latest(t, st, acme)
			if diff := cmp.Diff(checkpoint(3), got); err != nil || diff != "" {
				t.Errorf("LatestCheckpoint: err = %v (-want +got):\n%s", err, diff)
			}
			for _, size := range []int64{1, 2, 3} {
				var c *store.Checkpoint
				tenTx(t, st, acme, func(tx store.TenantTx) (err error) {
					c, err = tx.GetCheckpoint(size)
					return err
				})
				if diff := cmp.Diff(checkpoint(size), c); diff != "" {
					t.Errorf("GetCheckpoint(%d) (-want +got):\n%s", size, diff)
				}
			}
			err = st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
				_, err := tx.GetCheckpoint(0)
				return err
			})
			checkKind(t, "GetCheckpoint(missing)", err, vaultcrux.NotFound)

			dup := checkpoint(3)
			dup.Root = []byte("another root")
			checkKind(t, "AddCheckpoint(existing size)", add(t, st, acme, dup), vaultcrux.Conflict)
			if got, _ := latest(t, st, acme); !cmp.Equal(checkpoint(3), got) {
				t.Errorf("checkpoint after a conflicting add = %+v, want the first", got)
			}
			appendReceipts(t, st, acme, receipts("r", 3, 2)...)
			if diff := cmp.Diff([]vaultcrux.TenantID{acme, bravo}, needing(t, st)); diff != "" {
				t.Errorf("LogsNeedingCheckpoint after acme grew (-want +got):\n%s", diff)
			}
		}},
		{"WithinTheLog", func(t *testing.T) {
			st := s.fresh(t)
			// The empty log may be checkpointed, head row or not.
			if err := add(t, st, acme, checkpoint(0)); err != nil {
				t.Errorf("AddCheckpoint(0) of an empty log: %v", err)
			}
			checkKind(t, "AddCheckpoint beyond an empty log", add(t, st, bravo, checkpoint(1)), vaultcrux.Internal)
			appendReceipts(t, st, acme, receipts("r", 0, 2)...)
			checkKind(t, "AddCheckpoint beyond the log", add(t, st, acme, checkpoint(3)), vaultcrux.Internal)
			if got := needing(t, st); !cmp.Equal([]vaultcrux.TenantID{acme}, got) {
				t.Errorf("LogsNeedingCheckpoint = %v, want [acme]", got)
			}
			checkKind(t, "AddCheckpoint(tenant missing)", add(t, st, "ghost", checkpoint(0)), vaultcrux.NotFound)
		}},
	}
}

// ledgerTimeTest is the Time test of the receipt ledger's tables.
func (s *suite) ledgerTimeTest(t *testing.T) {
	st := s.fresh(t)
	zone := time.FixedZone("UTC+5", 5*3600)
	in := time.Date(2025, 1, 2, 3, 4, 5, 123_456_789, zone)
	want := time.Date(2025, 1, 1, 22, 4, 5, 123_000_000, time.UTC)

	register(t, st, "pub-1", in)
	register(t, st, "pub-2", in)
	sysTx(t, st, func(tx store.SystemTx) error {
		_, err := tx.RevokeSigningKey(1, in)
		return err
	})
	r := answerReceipt("r-0", 0, "ans-0", "snap-0", "")
	r.CreatedAt = in
	appendReceipts(t, st, acme, r)
	var (
		rec  *store.ReceiptRecord
		list []*store.ReceiptRecord
		att  *store.Attestation
		cp   *store.Checkpoint
	)
	tenTx(t, st, acme, func(tx store.TenantTx) (err error) {
		if err := tx.AddAttestation(&store.Attestation{ReceiptID: "r-0", Signature: []byte(`{}`), CreatedAt: in}); err != nil {
			return err
		}
		if err := tx.AddCheckpoint(&store.Checkpoint{Size: 1, Root: []byte("root"), Note: []byte("note"), CreatedAt: in}); err != nil {
			return err
		}
		if rec, err = tx.GetReceipt("r-0"); err != nil {
			return err
		}
		// Since is cut to milliseconds as the stored time is.
		if list, err = tx.ListReceipts(store.ReceiptFilter{Since: in, BeforeIndex: -1}); err != nil {
			return err
		}
		if att, err = tx.GetAttestation("r-0"); err != nil {
			return err
		}
		cp, err = tx.LatestCheckpoint()
		return err
	})
	if len(list) != 1 {
		t.Errorf("ListReceipts(since its own time) returned %d receipts, want 1", len(list))
	}
	keys := signingKeys(t, st)
	got := map[string]time.Time{
		"receipt.CreatedAt":     rec.CreatedAt,
		"attestation.CreatedAt": att.CreatedAt,
		"checkpoint.CreatedAt":  cp.CreatedAt,
		"key.CreatedAt":         keys[0].CreatedAt,
		"key.RetiredAt":         *keys[0].RetiredAt,
		"key.RevokedAt":         *keys[0].RevokedAt,
	}
	for name, g := range got {
		// == rather than Equal: the location must be UTC too.
		if g != want {
			t.Errorf("%s = %v, want %v", name, g, want)
		}
	}
}

// BenchAppendReceipts measures the append of the group commit. Each
// iteration is one Batch that locks a tenant's log head and appends 64
// receipts (600-byte bodies, 64 bytes of stored hashes): OneAppend in one
// AppendReceipts call, SavepointEach one receipt per savepoint, as a
// commit of 64 independent requests would. open returns a new, empty,
// unmigrated store and closes it through b.Cleanup.
func BenchAppendReceipts(b *testing.B, open func(b *testing.B) store.Store) {
	const perBatch = 64
	body := bytes.Repeat([]byte("b"), 600)
	hashes := bytes.Repeat([]byte("h"), 64)
	for _, savepoints := range []bool{false, true} {
		name := "OneAppend"
		if savepoints {
			name = "SavepointEach"
		}
		b.Run(name, func(b *testing.B) {
			st := open(b)
			if err := st.Migrate(b.Context()); err != nil {
				b.Fatal(err)
			}
			if err := st.Tx(b.Context(), func(tx store.SystemTx) error { return tx.CreateTenant(tenant(acme), nil) }); err != nil {
				b.Fatal(err)
			}
			appended := 0
			for b.Loop() {
				err := st.Batch(b.Context(), func(bt store.BatchTx) error {
					size, err := bt.Tenant(acme).LogHead()
					if err != nil {
						return err
					}
					recs := make([]*store.ReceiptRecord, perBatch)
					for i := range recs {
						index := size + int64(i)
						id := "receipt-" + strconv.FormatInt(index, 10)
						recs[i] = &store.ReceiptRecord{
							ID: id, Kind: "ingest", Hash: "blake3:" + id, Body: body,
							Pending: true, LogIndex: index, LogHashes: hashes, CreatedAt: t0,
						}
					}
					if !savepoints {
						return bt.Tenant(acme).AppendReceipts(recs)
					}
					for _, r := range recs {
						if err := bt.Savepoint(func() error {
							return bt.Tenant(acme).AppendReceipts([]*store.ReceiptRecord{r})
						}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				appended += perBatch
			}
			b.ReportMetric(float64(appended)/b.Elapsed().Seconds(), "receipts/s")
		})
	}
}
