package ledger_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/store/postgres"
	"github.com/vaultcrux/vaultcrux/internal/store/postgres/pgtest"
	"github.com/vaultcrux/vaultcrux/internal/store/sqlite"
	"github.com/vaultcrux/vaultcrux/internal/translog"

	_ "modernc.org/sqlite"
)

type fixture struct {
	st     store.Store
	dbPath string
	keys   *ledger.Keys
	l      *ledger.Ledger
	dir    string
	now    time.Time
	mu     sync.Mutex
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

var actor = vaultcrux.Principal{ID: "key:test", AgentID: "agent-7"}

func newFixture(t testing.TB, tenants ...string) *fixture {
	t.Helper()
	return newFixtureOn(t, "sqlite", tenants...)
}

// backends runs a test on SQLite and on a throwaway PostgreSQL.
func backends(t *testing.T, fn func(t *testing.T, backend string)) {
	for _, b := range []string{"sqlite", "postgres"} {
		t.Run(b, func(t *testing.T) { fn(t, b) })
	}
}

func newFixtureOn(t testing.TB, backend string, tenants ...string) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{dir: dir, dbPath: filepath.Join(dir, "vaultcrux.db"), now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	var st store.Store
	if backend == "postgres" {
		db, err := postgres.Open(context.Background(), pgtest.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		st = db
	} else {
		db, err := sqlite.Open(context.Background(), f.dbPath)
		if err != nil {
			t.Fatal(err)
		}
		st = db
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.st = st
	f.open(t)
	for _, id := range tenants {
		err := st.Tx(context.Background(), func(tx store.SystemTx) error {
			return tx.CreateTenant(&vaultcrux.Tenant{ID: vaultcrux.TenantID(id), Name: id, CreatedAt: f.clock()}, nil)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) open(t testing.TB) {
	t.Helper()
	keys, _, err := ledger.OpenKeys(context.Background(), ledger.KeysConfig{
		Store: f.st, SeedPath: filepath.Join(f.dir, "keys", "signing-key"), Now: f.clock, Rand: rand.Reader,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.keys = keys
	f.l = ledger.New(ledger.Config{Store: f.st, Keys: keys, Now: f.clock, Rand: rand.Reader})
	t.Cleanup(f.l.Close)
}

func (f *fixture) event(t testing.TB, tenant, subject string) *receipt.Doc {
	t.Helper()
	d, err := f.l.Event(vaultcrux.TenantID(tenant), "test.event", actor, subject, map[string]any{"n": subject})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *fixture) commit(t testing.TB, tenant string, n int) []ledger.Issued {
	t.Helper()
	var docs []*receipt.Doc
	for i := range n {
		docs = append(docs, f.event(t, tenant, fmt.Sprint("s", i)))
	}
	out, err := f.l.Commit(context.Background(), &ledger.Item{Tenant: vaultcrux.TenantID(tenant), Receipts: docs})
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return out
}

func (f *fixture) keySet(t testing.TB) receipt.KeySet {
	t.Helper()
	ks, err := f.l.KeySet(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestCommitSignsLogsAndVerifies(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		f := newFixtureOn(t, backend, "acme", "globex")
		a := f.commit(t, "acme", 3)
		g := f.commit(t, "globex", 2)
		a2 := f.commit(t, "acme", 1)
		for i, is := range append(a, a2...) {
			if is.LogIndex != int64(i) || is.Pending {
				t.Errorf("acme receipt %d: index %d pending %v, want index %d signed", i, is.LogIndex, is.Pending, i)
			}
		}
		for i, is := range g {
			if is.LogIndex != int64(i) {
				t.Errorf("globex receipt %d: index %d, want %d (logs are per tenant)", i, is.LogIndex, i)
			}
		}
		ks := f.keySet(t)
		got, err := f.l.GetReceipt(context.Background(), "acme", a[1].ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != ledger.StatusSigned {
			t.Errorf("status %q, want signed", got.Status)
		}
		if err := receipt.Verify(got.Doc, ks); err != nil {
			t.Errorf("stored receipt does not verify: %v", err)
		}
		if got.Doc.Field("tenantId") != "acme" || got.Doc.Field("actor") != "key:test" || got.Doc.Field("agentId") != "agent-7" {
			t.Errorf("receipt fields: tenant %v actor %v agent %v", got.Doc.Field("tenantId"), got.Doc.Field("actor"), got.Doc.Field("agentId"))
		}
		// Another tenant's receipt is not found, as if it did not exist.
		_, err = f.l.GetReceipt(context.Background(), "globex", a[1].ID)
		if vaultcrux.ErrorKind(err) != vaultcrux.NotFound {
			t.Errorf("globex reading acme's receipt: %v, want NotFound", err)
		}
	})
}

// TestGroupCommit commits from many goroutines at once and checks that
// every tenant log is gap-free and that a checkpoint's root is the Merkle
// root of the receipt hashes in log order, computed independently.
func TestGroupCommit(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		f := newFixtureOn(t, backend, "t0", "t1", "t2")
		var mu sync.Mutex

		const writers, each = 16, 25
		var wg sync.WaitGroup
		hashes := make([]map[int64]string, 3)
		for i := range hashes {
			hashes[i] = map[int64]string{}
		}
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tenant := fmt.Sprint("t", w%3)
				for i := range each {
					d, err := f.l.Event(vaultcrux.TenantID(tenant), "test.event", actor, fmt.Sprint(w, "-", i), nil)
					if err != nil {
						errs <- err
						return
					}
					out, err := f.l.Commit(context.Background(), &ledger.Item{Tenant: vaultcrux.TenantID(tenant), Receipts: []*receipt.Doc{d}})
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					if prev, dup := hashes[w%3][out[0].LogIndex]; dup {
						errs <- fmt.Errorf("index %d of %s issued twice (%s, %s)", out[0].LogIndex, tenant, prev, out[0].Hash)
					}
					hashes[w%3][out[0].LogIndex] = out[0].Hash
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		st := f.l.Stats()
		t.Logf("%d requests in %d batches", writers*each, st.Batches)
		if st.Requests != writers*each || st.Receipts != writers*each || st.FailedBatches != 0 {
			t.Errorf("stats %+v, want %d requests and receipts, no failed batch", st, writers*each)
		}
		if batches := st.Batches; batches >= writers*each {
			t.Errorf("%d batches for %d requests: nothing was grouped", batches, writers*each)
		}
		ks := f.keySet(t)
		pubs := map[string][]byte{}
		for kid := range ks {
			pub, _ := ks.Public(kid)
			pubs[kid] = pub
		}
		for i, hs := range hashes {
			tenant := vaultcrux.TenantID(fmt.Sprint("t", i))
			n := int64(len(hs))
			cp, err := f.l.Checkpoint(context.Background(), tenant)
			if err != nil {
				t.Fatal(err)
			}
			if cp.Size != n {
				t.Fatalf("%s: checkpoint size %d, want %d", tenant, cp.Size, n)
			}
			// Independent root: all stored hashes computed from scratch.
			mem := map[int64]tlog.Hash{}
			reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
				out := make([]tlog.Hash, len(idx))
				for j, x := range idx {
					out[j] = mem[x]
				}
				return out, nil
			})
			for k := int64(0); k < n; k++ {
				h, ok := hs[k]
				if !ok {
					t.Fatalf("%s: log index %d missing (gap)", tenant, k)
				}
				stored, err := tlog.StoredHashes(k, []byte(h), reader)
				if err != nil {
					t.Fatal(err)
				}
				for j, sh := range stored {
					mem[tlog.StoredHashIndex(0, k)+int64(j)] = sh
				}
			}
			want, err := tlog.TreeHash(n, reader)
			if err != nil {
				t.Fatal(err)
			}
			if translog.Hash(cp.Root) != want {
				t.Errorf("%s: checkpoint root differs from the independently computed root", tenant)
			}
			c, _, err := translog.OpenCheckpoint(cp.Note, toPubs(t, ks))
			if err != nil || c.Size != n || c.Root != want || c.Origin != translog.Origin(string(tenant)) {
				t.Errorf("%s: signed checkpoint = %+v, %v", tenant, c, err)
			}
		}
	})
}

func toPubs(t testing.TB, ks receipt.KeySet) map[string]ed25519.PublicKey {
	t.Helper()
	out := map[string]ed25519.PublicKey{}
	for kid := range ks {
		pub, err := ks.Public(kid)
		if err != nil {
			t.Fatal(err)
		}
		out[kid] = pub
	}
	return out
}

// TestFailingItemLosesOnlyItself holds the writer inside one item while
// two more queue up, so that they share the next batch; the failing one
// must leave no receipt and no gap, the other must commit.
func TestFailingItemLosesOnlyItself(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		f := newFixtureOn(t, backend, "acme")
		release := make(chan struct{})
		entered := make(chan struct{})
		errBoom := vaultcrux.E(vaultcrux.Conflict, "boom")
		var wg sync.WaitGroup
		results := make([]error, 3)
		issued := make([][]ledger.Issued, 3)
		run := func(i int, it *ledger.Item) {
			defer wg.Done()
			issued[i], results[i] = f.l.Commit(context.Background(), it)
		}
		wg.Add(1)
		go run(0, &ledger.Item{Tenant: "acme", Receipts: []*receipt.Doc{f.event(t, "acme", "first")},
			Apply: func(store.TenantTx) error { close(entered); <-release; return nil }})
		<-entered
		wg.Add(2)
		go run(1, &ledger.Item{Tenant: "acme", Receipts: []*receipt.Doc{f.event(t, "acme", "bad")},
			Apply: func(store.TenantTx) error { return errBoom }})
		go run(2, &ledger.Item{Tenant: "acme", Receipts: []*receipt.Doc{f.event(t, "acme", "good")}})
		time.Sleep(50 * time.Millisecond) // let both queue; correctness does not depend on it
		close(release)
		wg.Wait()
		if results[0] != nil || results[2] != nil {
			t.Fatalf("good items failed: %v, %v", results[0], results[2])
		}
		if !errors.Is(results[1], errBoom) && vaultcrux.ErrorKind(results[1]) != vaultcrux.Conflict {
			t.Fatalf("bad item: %v, want its own Conflict", results[1])
		}
		if issued[0][0].LogIndex != 0 || issued[2][0].LogIndex != 1 {
			t.Errorf("indexes %d, %d; want 0, 1 (no gap for the failed item)", issued[0][0].LogIndex, issued[2][0].LogIndex)
		}
		_, err := f.l.GetReceipt(context.Background(), "acme", f.event(t, "acme", "x").ID())
		if vaultcrux.ErrorKind(err) != vaultcrux.NotFound {
			t.Errorf("unknown receipt: %v", err)
		}
		var recs []*store.ReceiptRecord
		_ = f.st.ForTenant("acme").Tx(context.Background(), func(tx store.TenantTx) (err error) {
			recs, err = tx.ListReceipts(store.ReceiptFilter{BeforeIndex: -1, Limit: 10})
			return err
		})
		if len(recs) != 2 {
			t.Errorf("%d receipts stored, want 2", len(recs))
		}
	})
}

// TestPendingSignature revokes the active key: receipts are still stored
// and logged, unsigned; after a rotation the worker signs them by detached
// attestation without touching the receipt row.
func TestPendingSignature(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		f := newFixtureOn(t, backend, "acme")
		f.commit(t, "acme", 1)
		ctx := context.Background()
		if _, err := ledger.RevokeSigningKey(ctx, f.st, 1, f.clock()); err != nil {
			t.Fatal(err)
		}
		if err := f.keys.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.keys.Current(); err == nil {
			t.Fatal("a revoked key is still current")
		}
		out := f.commit(t, "acme", 2)
		if !out[0].Pending || !out[1].Pending {
			t.Fatalf("receipts made while the signer is down are not pending: %+v", out)
		}
		got, err := f.l.GetReceipt(ctx, "acme", out[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		bodyBefore := string(got.Record.Body)
		if got.Status != ledger.StatusPending || got.Doc.Signature() != nil {
			t.Fatalf("status %q signature %v, want pending with none", got.Status, got.Doc.Signature())
		}
		var fail *receipt.Failure
		if err := receipt.Verify(got.Doc, f.keySet(t)); !errors.As(err, &fail) || fail.Code != receipt.CodeUnsigned {
			t.Errorf("verify pending receipt: %v, want unsigned", err)
		}
		// No checkpoint can be signed either; the log still grew.
		if _, err := f.l.Checkpoint(ctx, "acme"); vaultcrux.ErrorKind(err) != vaultcrux.Unavailable {
			t.Errorf("checkpoint with no signer: %v, want Unavailable", err)
		}
		// Nothing to attest with while down.
		if n, err := f.l.AttestPending(ctx); n != 0 || err != nil {
			t.Errorf("AttestPending while down = %d, %v", n, err)
		}
		if _, err := f.keys.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		f.advance(time.Minute)
		f.l.Tick(ctx)
		got, err = f.l.GetReceipt(ctx, "acme", out[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != ledger.StatusAttested {
			t.Fatalf("status after rotation %q, want attested", got.Status)
		}
		if string(got.Record.Body) != bodyBefore {
			t.Error("the receipt row changed; attestations must be detached")
		}
		ks := f.keySet(t)
		if err := receipt.Verify(got.Doc, ks); err != nil {
			t.Errorf("attested receipt does not verify: %v", err)
		}
		if kid := got.Doc.Signature().KID; kid != "vaultcrux-signing:v2" {
			t.Errorf("attested by %s, want vaultcrux-signing:v2", kid)
		}
		// The receipt signed by v1 before its revocation no longer verifies.
		first, _ := f.l.GetReceipt(ctx, "acme", f.firstID(t, "acme"))
		if err := receipt.Verify(first.Doc, ks); !errors.As(err, &fail) || fail.Code != receipt.CodeKeyRevoked {
			t.Errorf("receipt by a revoked key: %v, want key_revoked", err)
		}
		if n, err := f.l.AttestPending(ctx); n != 0 || err != nil {
			t.Errorf("second AttestPending = %d, %v; want nothing left", n, err)
		}
	})
}

func (f *fixture) firstID(t testing.TB, tenant string) string {
	t.Helper()
	var id string
	err := f.st.ForTenant(vaultcrux.TenantID(tenant)).Tx(context.Background(), func(tx store.TenantTx) error {
		recs, err := tx.ListReceipts(store.ReceiptFilter{BeforeIndex: 1, Limit: 1})
		if err == nil && len(recs) == 1 {
			id = recs[0].ID
		}
		return err
	})
	if err != nil || id == "" {
		t.Fatalf("first receipt: %q, %v", id, err)
	}
	return id
}

// TestRewrittenLogIsRefused changes a stored log hash underneath the
// ledger: the next checkpoint must be refused, and a consistency proof
// from the rewritten log must fail against the signed checkpoints.
func TestRewrittenLogIsRefused(t *testing.T) {
	f := newFixture(t, "acme")
	ctx := context.Background()
	f.commit(t, "acme", 5)
	first, err := f.l.Checkpoint(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", f.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(`UPDATE receipts SET log_hashes = zeroblob(length(log_hashes)) WHERE tenant_id = 'acme' AND log_index = 3`)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("tampered %d rows", n)
	}
	f.l.Close()
	f.open(t) // a fresh process reads the log from the store
	f.commit(t, "acme", 3)
	if _, err := f.l.Checkpoint(ctx, "acme"); vaultcrux.ErrorKind(err) != vaultcrux.Internal {
		t.Fatalf("checkpoint over a rewritten log: %v, want refused (Internal)", err)
	}
	p, err := f.l.Consistency(ctx, "acme", first.Size, 8)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p)
	rep := receipt.VerifyDocument(b, f.keySet(t))
	if rep.OK {
		t.Fatal("consistency proof from a rewritten log verifies")
	}
	if rep.Failures[0].Code != receipt.CodeInclusionFailed && rep.Failures[0].Code != receipt.CodeCheckpointSignatureMismatch {
		t.Errorf("failure %+v", rep.Failures)
	}
}
