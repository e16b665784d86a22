package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// evIn runs fn in a transaction of tenant and returns its result; an
// error fails t.
func evIn[T any](t *testing.T, st store.Store, tenant string, fn func(store.TenantTx) (T, error)) T {
	t.Helper()
	var v T
	tenTx(t, st, tenant, func(tx store.TenantTx) (err error) {
		v, err = fn(tx)
		return err
	})
	return v
}

// evSys is evIn for a system transaction.
func evSys[T any](t *testing.T, st store.Store, fn func(store.SystemTx) (T, error)) T {
	t.Helper()
	var v T
	sysTx(t, st, func(tx store.SystemTx) (err error) {
		v, err = fn(tx)
		return err
	})
	return v
}

// evErr runs fn in a transaction of tenant and returns its error.
func evErr(t *testing.T, st store.Store, tenant string, fn func(store.TenantTx) error) error {
	return st.ForTenant(vaultcrux.TenantID(tenant)).Tx(t.Context(), fn)
}

// evKEK returns an active KEK version with material naming tenant and
// version.
func evKEK(tenant string, version int) *store.TenantKEK {
	return &store.TenantKEK{
		Version:   version,
		Provider:  "local",
		Wrapped:   fmt.Sprintf("wrapped kek %s v%d", tenant, version),
		IndexKey:  fmt.Sprintf("index key %s v%d", tenant, version),
		State:     "active",
		CreatedAt: t0.Add(time.Duration(version) * time.Hour),
	}
}

// evDoc returns version v of document id, created v minutes after t0.
func evDoc(id string, v int) *store.Document {
	return &store.Document{
		ID:          id,
		CorpusID:    "corpus-1",
		Version:     v,
		Title:       fmt.Sprintf("Title of %s v%d", id, v),
		URL:         "https://example.com/" + id,
		MIMEType:    "text/markdown",
		Source:      "tool:files/read",
		Trust:       "untrusted",
		ContentHash: fmt.Sprintf("blake3:%s-v%d", id, v),
		Bytes:       int64(1000 * v),
		Chunks:      2,
		DEK:         fmt.Sprintf("dek of %s v%d", id, v),
		KEKVersion:  1,
		CreatedAt:   t0.Add(time.Duration(v) * time.Minute),
	}
}

// evChunks returns n chunks of d, as PutDocument takes them.
func evChunks(d *store.Document, n int) []*store.Chunk {
	var out []*store.Chunk
	for i := range n {
		id := fmt.Sprintf("%s#%d", d.ID, i)
		out = append(out, &store.Chunk{
			ID:         id,
			DocID:      d.ID,
			DocVersion: d.Version,
			Seq:        i,
			CorpusID:   d.CorpusID,
			Trust:      d.Trust,
			Sealed:     fmt.Appendf(nil, "sealed %s v%d", id, d.Version),
			TextHash:   fmt.Sprintf("blake3:text %s v%d", id, d.Version),
			Length:     10 + i,
			Terms:      fmt.Appendf(nil, "terms %s v%d", id, d.Version),
			CreatedAt:  d.CreatedAt,
		})
	}
	return out
}

// evPut puts d with n chunks at now and returns its Seq.
func evPut(t *testing.T, st store.Store, tenant string, d *store.Document, n int, now time.Time) int64 {
	t.Helper()
	return evIn(t, st, tenant, func(tx store.TenantTx) (int64, error) { return tx.PutDocument(d, evChunks(d, n), now) })
}

func evTryPut(t *testing.T, st store.Store, tenant string, d *store.Document) error {
	return evErr(t, st, tenant, func(tx store.TenantTx) error {
		_, err := tx.PutDocument(d, evChunks(d, 1), t0)
		return err
	})
}

func evGetDoc(t *testing.T, st store.Store, tenant, id string) (*store.Document, error) {
	var d *store.Document
	err := evErr(t, st, tenant, func(tx store.TenantTx) (err error) {
		d, err = tx.GetDocument(id)
		return err
	})
	return d, err
}

func evDocChunks(t *testing.T, st store.Store, tenant, id string, version int) []*store.Chunk {
	t.Helper()
	return evIn(t, st, tenant, func(tx store.TenantTx) ([]*store.Chunk, error) { return tx.DocumentChunks(id, version) })
}

func evChanges(t *testing.T, st store.Store, tenant string, after int64, limit int) []*store.IndexChange {
	t.Helper()
	return evIn(t, st, tenant, func(tx store.TenantTx) ([]*store.IndexChange, error) { return tx.IndexChanges(after, limit) })
}

func evHead(t *testing.T, st store.Store, tenant string) int64 {
	t.Helper()
	return evIn(t, st, tenant, func(tx store.TenantTx) (int64, error) { return tx.IndexHead() })
}

func evKEKs(t *testing.T, st store.Store, tenant string) []*store.TenantKEK {
	t.Helper()
	return evIn(t, st, tenant, func(tx store.TenantTx) ([]*store.TenantKEK, error) { return tx.ListTenantKEKs() })
}

func evAddKEK(t *testing.T, st store.Store, tenant string, k *store.TenantKEK) {
	t.Helper()
	tenTx(t, st, tenant, func(tx store.TenantTx) error { return tx.AddTenantKEK(k) })
}

// evJob returns a queued ingest job of tenant.
func evJob(tenant, id string, created time.Time) *store.IngestJob {
	return &store.IngestJob{
		ID:         id,
		Tenant:     vaultcrux.TenantID(tenant),
		DocID:      "doc-" + id,
		CorpusID:   "corpus-1",
		Title:      "Title of " + id,
		URL:        "https://example.com/" + id,
		MIMEType:   "text/plain",
		Source:     "agent",
		Trust:      "untrusted",
		Actor:      "key-" + tenant,
		AgentID:    "agent-7",
		Content:    []byte("sealed content of " + id),
		DEK:        "dek of job " + id,
		KEKVersion: 1,
		Bytes:      1234,
		Status:     "queued",
		CreatedAt:  created,
		UpdatedAt:  created,
	}
}

func evCreateJobs(t *testing.T, st store.Store, jobs ...*store.IngestJob) {
	t.Helper()
	for _, j := range jobs {
		tenTx(t, st, string(j.Tenant), func(tx store.TenantTx) error { return tx.CreateIngestJob(j) })
	}
}

func evGetJob(t *testing.T, st store.Store, tenant, id string) *store.IngestJob {
	t.Helper()
	return evIn(t, st, tenant, func(tx store.TenantTx) (*store.IngestJob, error) { return tx.GetIngestJob(id) })
}

func evClaim(t *testing.T, st store.Store, lease string, now, until time.Time, limit int) []*store.IngestJob {
	t.Helper()
	return evSys(t, st, func(tx store.SystemTx) ([]*store.IngestJob, error) {
		return tx.ClaimIngestJobs(lease, now, until, limit)
	})
}

// evClaimed returns j as a claim under lease at now makes it.
func evClaimed(j *store.IngestJob, lease string, now, until time.Time, attempts int) *store.IngestJob {
	c := *j
	c.Status, c.Lease, c.LeaseUntil, c.Attempts, c.UpdatedAt = "processing", lease, &until, attempts, now
	return &c
}

func evFinish(t *testing.T, st store.Store, j *store.IngestJob, lease string) error {
	return evErr(t, st, string(j.Tenant), func(tx store.TenantTx) error { return tx.FinishIngestJob(j, lease) })
}

func evJobIDs(jobs []*store.IngestJob) []string {
	var ids []string
	for _, j := range jobs {
		ids = append(ids, string(j.Tenant)+"/"+j.ID)
	}
	return ids
}

func evChunkIDs(chunks []*store.Chunk) []string {
	var ids []string
	for _, c := range chunks {
		ids = append(ids, c.ID)
	}
	return ids
}

// evidenceTests are the tests of the evidence plane (contract §5).
func (s *suite) evidenceTests() []test {
	return slices.Concat(s.kekTests(), s.documentTests(), s.chunkTests(), s.indexLogTests(), s.ingestJobTests(), []test{
		{"CrossTenant", s.evidenceCrossTenantTest},
		{"InBatch", s.evidenceBatchTest},
		{"MillisecondsUTC", s.evidenceTimeTest},
	})
}

func (s *suite) kekTests() []test {
	return []test{
		{"KEKAddActiveList", func(t *testing.T) {
			st := s.fresh(t)
			err := evErr(t, st, acme, func(tx store.TenantTx) error {
				_, err := tx.ActiveTenantKEK()
				return err
			})
			checkKind(t, "ActiveTenantKEK before any", err, vaultcrux.NotFound)
			if got := evKEKs(t, st, acme); len(got) != 0 {
				t.Errorf("ListTenantKEKs before any = %v, want none", got)
			}
			v1 := evKEK(acme, 1)
			evAddKEK(t, st, acme, v1)
			got := evIn(t, st, acme, func(tx store.TenantTx) (*store.TenantKEK, error) { return tx.ActiveTenantKEK() })
			if diff := cmp.Diff(v1, got); diff != "" {
				t.Errorf("ActiveTenantKEK (-want +got):\n%s", diff)
			}
			refused := []struct {
				name string
				k    *store.TenantKEK
				want vaultcrux.Kind
			}{
				{"same version", evKEK(acme, 1), vaultcrux.Conflict},
				{"second active", evKEK(acme, 2), vaultcrux.Conflict},
				{"unknown state", &store.TenantKEK{Version: 3, Provider: "local", State: "dormant", CreatedAt: t0}, vaultcrux.Internal},
				{"retired with material", &store.TenantKEK{Version: 3, Provider: "local", Wrapped: "w", State: "retired",
					CreatedAt: t0, RetiredAt: ptr(t0)}, vaultcrux.Internal},
				{"version 0", &store.TenantKEK{Provider: "local", Wrapped: "w", State: "active", CreatedAt: t0}, vaultcrux.Internal},
			}
			for _, r := range refused {
				err := evErr(t, st, acme, func(tx store.TenantTx) error { return tx.AddTenantKEK(r.k) })
				checkKind(t, "AddTenantKEK("+r.name+")", err, r.want)
			}
			err = evErr(t, st, "ghost", func(tx store.TenantTx) error { return tx.AddTenantKEK(evKEK("ghost", 1)) })
			checkKind(t, "AddTenantKEK(tenant missing)", err, vaultcrux.NotFound)

			// A rotation in one transaction: retire the active version,
			// then add the next.
			tenTx(t, st, acme, func(tx store.TenantTx) error {
				if err := tx.RetireTenantKEK(1, t0.Add(5*time.Hour)); err != nil {
					return err
				}
				return tx.AddTenantKEK(evKEK(acme, 2))
			})
			// A version may also be stored retired, without material.
			v3 := &store.TenantKEK{Version: 3, Provider: "kms", State: "retired", CreatedAt: t0, RetiredAt: ptr(t0.Add(time.Minute))}
			evAddKEK(t, st, acme, v3)
			retired := evKEK(acme, 1)
			retired.Wrapped, retired.IndexKey, retired.State, retired.RetiredAt = "", "", "retired", ptr(t0.Add(5*time.Hour))
			want := []*store.TenantKEK{retired, evKEK(acme, 2), v3}
			if diff := cmp.Diff(want, evKEKs(t, st, acme)); diff != "" {
				t.Errorf("ListTenantKEKs after the rotation (-want +got):\n%s", diff)
			}
			got = evIn(t, st, acme, func(tx store.TenantTx) (*store.TenantKEK, error) { return tx.ActiveTenantKEK() })
			if diff := cmp.Diff(evKEK(acme, 2), got); diff != "" {
				t.Errorf("ActiveTenantKEK after the rotation (-want +got):\n%s", diff)
			}
			// Versions are per tenant.
			evAddKEK(t, st, bravo, evKEK(bravo, 1))
			if diff := cmp.Diff([]*store.TenantKEK{evKEK(bravo, 1)}, evKEKs(t, st, bravo)); diff != "" {
				t.Errorf("bravo's ListTenantKEKs (-want +got):\n%s", diff)
			}
		}},
		{"KEKRetire", func(t *testing.T) {
			st := s.fresh(t)
			evAddKEK(t, st, acme, evKEK(acme, 1))
			want := evKEK(acme, 1)
			want.Wrapped, want.IndexKey, want.State, want.RetiredAt = "", "", "retired", ptr(t0.Add(time.Hour))
			for i, at := range []time.Time{t0.Add(time.Hour), t0.Add(2 * time.Hour)} {
				tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.RetireTenantKEK(1, at) })
				if diff := cmp.Diff([]*store.TenantKEK{want}, evKEKs(t, st, acme)); diff != "" {
					t.Errorf("ListTenantKEKs after retirement #%d (-want +got):\n%s", i+1, diff)
				}
			}
			err := evErr(t, st, acme, func(tx store.TenantTx) error {
				_, err := tx.ActiveTenantKEK()
				return err
			})
			checkKind(t, "ActiveTenantKEK after retiring the only version", err, vaultcrux.NotFound)
			err = evErr(t, st, acme, func(tx store.TenantTx) error { return tx.RetireTenantKEK(2, t0) })
			checkKind(t, "RetireTenantKEK(missing)", err, vaultcrux.NotFound)
			// A destroyed version stays destroyed.
			evIn(t, st, acme, func(tx store.TenantTx) (int, error) { return tx.ShredTenantKeys(t0.Add(3 * time.Hour)) })
			tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.RetireTenantKEK(1, t0.Add(4*time.Hour)) })
			want.State, want.DestroyedAt = "destroyed", ptr(t0.Add(3*time.Hour))
			if diff := cmp.Diff([]*store.TenantKEK{want}, evKEKs(t, st, acme)); diff != "" {
				t.Errorf("ListTenantKEKs after retiring a destroyed version (-want +got):\n%s", diff)
			}
		}},
		{"Shred", s.shredTest},
		{"Rewrap", s.rewrapTest},
	}
}

// shredTest gives acme and bravo the same keys, documents and jobs, and
// shreds acme.
func (s *suite) shredTest(t *testing.T) {
	st := s.fresh(t)
	for _, tenant := range []string{acme, bravo} {
		tenTx(t, st, tenant, func(tx store.TenantTx) error {
			if err := tx.AddTenantKEK(evKEK(tenant, 1)); err != nil {
				return err
			}
			if err := tx.RetireTenantKEK(1, t0.Add(time.Hour)); err != nil {
				return err
			}
			return tx.AddTenantKEK(evKEK(tenant, 2))
		})
		evPut(t, st, tenant, evDoc("d1", 1), 2, t0)
		evPut(t, st, tenant, evDoc("d2", 1), 1, t0)
		tenTx(t, st, tenant, func(tx store.TenantTx) error {
			_, _, err := tx.DeleteDocument("d2", t0)
			return err
		})
	}
	// Of each tenant, j3 is finished, j2 is being processed, j1 is queued.
	evCreateJobs(t, st, evJob(acme, "j3", t0), evJob(bravo, "j3", t0), evJob(acme, "j2", t0.Add(time.Second)),
		evJob(bravo, "j2", t0.Add(time.Second)), evJob(acme, "j1", t0.Add(2*time.Second)), evJob(bravo, "j1", t0.Add(2*time.Second)))
	claimed := evClaim(t, st, "lease", t0, t0.Add(time.Hour), 4)
	if diff := cmp.Diff([]string{"acme/j3", "bravo/j3", "acme/j2", "bravo/j2"}, evJobIDs(claimed)); diff != "" {
		t.Fatalf("claimed jobs (-want +got):\n%s", diff)
	}
	for _, j := range claimed[:2] {
		j.Status = "indexed"
		if err := evFinish(t, st, j, "lease"); err != nil {
			t.Fatal(err)
		}
	}
	jobsBefore := map[string]*store.IngestJob{}
	for _, id := range []string{"j1", "j2", "j3"} {
		jobsBefore[id] = evGetJob(t, st, acme, id)
	}
	shreddedAt := func(tenant string) *time.Time {
		t.Helper()
		return evIn(t, st, tenant, func(tx store.TenantTx) (*time.Time, error) { return tx.TenantShreddedAt() })
	}
	if at := shreddedAt(acme); at != nil {
		t.Errorf("TenantShreddedAt before the shred = %v, want nil", at)
	}

	shredAt := t0.Add(10 * time.Hour)
	if n := evIn(t, st, acme, func(tx store.TenantTx) (int, error) { return tx.ShredTenantKeys(shredAt) }); n != 2 {
		t.Errorf("ShredTenantKeys destroyed %d versions, want 2", n)
	}
	v1, v2 := evKEK(acme, 1), evKEK(acme, 2)
	v1.Wrapped, v1.IndexKey, v1.State, v1.RetiredAt, v1.DestroyedAt = "", "", "destroyed", ptr(t0.Add(time.Hour)), &shredAt
	v2.Wrapped, v2.IndexKey, v2.State, v2.DestroyedAt = "", "", "destroyed", &shredAt
	wantKEKs := []*store.TenantKEK{v1, v2}
	if diff := cmp.Diff(wantKEKs, evKEKs(t, st, acme)); diff != "" {
		t.Errorf("ListTenantKEKs after the shred (-want +got):\n%s", diff)
	}
	err := evErr(t, st, acme, func(tx store.TenantTx) error {
		_, err := tx.ActiveTenantKEK()
		return err
	})
	checkKind(t, "ActiveTenantKEK after the shred", err, vaultcrux.NotFound)
	err = evErr(t, st, acme, func(tx store.TenantTx) error { return tx.AddTenantKEK(evKEK(acme, 3)) })
	checkKind(t, "AddTenantKEK after the shred", err, vaultcrux.Conflict)
	if at := shreddedAt(acme); at == nil || *at != shredAt {
		t.Errorf("TenantShreddedAt = %v, want %v", at, shredAt)
	}
	wantDoc := evDoc("d1", 1)
	wantDoc.DEK = ""
	if got, err := evGetDoc(t, st, acme, "d1"); err != nil {
		t.Error(err)
	} else if diff := cmp.Diff(wantDoc, got); diff != "" {
		t.Errorf("document after the shred (-want +got):\n%s", diff)
	}
	for id, before := range jobsBefore {
		want := *before
		want.DEK = ""
		if diff := cmp.Diff(&want, evGetJob(t, st, acme, id)); diff != "" {
			t.Errorf("job %s after the shred (-want +got):\n%s", id, diff)
		}
	}
	// The documents are still there to delete, and the deleted one can
	// come back (sealed under a key the tenant no longer has).
	tenTx(t, st, acme, func(tx store.TenantTx) error {
		_, _, err := tx.DeleteDocument("d1", shredAt)
		return err
	})

	// A second shred destroys nothing more and keeps the times.
	if n := evIn(t, st, acme, func(tx store.TenantTx) (int, error) { return tx.ShredTenantKeys(shredAt.Add(time.Hour)) }); n != 0 {
		t.Errorf("second ShredTenantKeys destroyed %d versions, want 0", n)
	}
	if diff := cmp.Diff(wantKEKs, evKEKs(t, st, acme)); diff != "" {
		t.Errorf("ListTenantKEKs after the second shred (-want +got):\n%s", diff)
	}
	if at := shreddedAt(acme); at == nil || *at != shredAt {
		t.Errorf("TenantShreddedAt after the second shred = %v, want %v", at, shredAt)
	}

	// bravo keeps everything.
	if at := shreddedAt(bravo); at != nil {
		t.Errorf("bravo's TenantShreddedAt = %v, want nil", at)
	}
	retired := evKEK(bravo, 1)
	retired.Wrapped, retired.IndexKey, retired.State, retired.RetiredAt = "", "", "retired", ptr(t0.Add(time.Hour))
	if diff := cmp.Diff([]*store.TenantKEK{retired, evKEK(bravo, 2)}, evKEKs(t, st, bravo)); diff != "" {
		t.Errorf("bravo's ListTenantKEKs (-want +got):\n%s", diff)
	}
	if got, err := evGetDoc(t, st, bravo, "d1"); err != nil {
		t.Error(err)
	} else if diff := cmp.Diff(evDoc("d1", 1), got); diff != "" {
		t.Errorf("bravo's document (-want +got):\n%s", diff)
	}
	for _, id := range []string{"j1", "j2"} {
		if got := evGetJob(t, st, bravo, id); got.DEK != "dek of job "+id {
			t.Errorf("bravo's job %s DEK = %q, want it kept", id, got.DEK)
		}
	}

	// A tenant without keys can be shredded too, and then gets none.
	sysTx(t, st, func(tx store.SystemTx) error { return tx.CreateTenant(tenant("charlie"), nil) })
	if n := evIn(t, st, "charlie", func(tx store.TenantTx) (int, error) { return tx.ShredTenantKeys(shredAt) }); n != 0 {
		t.Errorf("ShredTenantKeys of a tenant without keys = %d, want 0", n)
	}
	err = evErr(t, st, "charlie", func(tx store.TenantTx) error { return tx.AddTenantKEK(evKEK("charlie", 1)) })
	checkKind(t, "AddTenantKEK after shredding a tenant without keys", err, vaultcrux.Conflict)
	err = evErr(t, st, "ghost", func(tx store.TenantTx) error {
		_, err := tx.ShredTenantKeys(shredAt)
		return err
	})
	checkKind(t, "ShredTenantKeys(tenant missing)", err, vaultcrux.NotFound)
}

func (s *suite) rewrapTest(t *testing.T) {
	st := s.fresh(t)
	d1, d2, d3, d4 := evDoc("d1", 1), evDoc("d2", 1), evDoc("d3", 1), evDoc("d4", 1)
	d3.KEKVersion = 2
	for _, d := range []*store.Document{d2, d1, d3, d4} {
		evPut(t, st, acme, d, 1, t0)
	}
	evPut(t, st, bravo, evDoc("d1", 1), 1, t0)
	tenTx(t, st, acme, func(tx store.TenantTx) error {
		_, _, err := tx.DeleteDocument("d4", t0)
		return err
	})
	// j3 finished, j2 processing, j1 and j4 (KEK 2) queued.
	j4 := evJob(acme, "j4", t0.Add(3*time.Second))
	j4.KEKVersion = 2
	evCreateJobs(t, st, evJob(acme, "j3", t0), evJob(acme, "j2", t0.Add(time.Second)),
		evJob(acme, "j1", t0.Add(2*time.Second)), j4, evJob(bravo, "j1", t0.Add(4*time.Second)))
	claimed := evClaim(t, st, "l1", t0, t0.Add(time.Hour), 2)
	if diff := cmp.Diff([]string{"acme/j3", "acme/j2"}, evJobIDs(claimed)); diff != "" {
		t.Fatalf("claimed jobs (-want +got):\n%s", diff)
	}
	claimed[0].Status = "indexed"
	if err := evFinish(t, st, claimed[0], "l1"); err != nil {
		t.Fatal(err)
	}
	docsBefore := map[string]*store.Document{}
	for _, id := range []string{"d1", "d2", "d3"} {
		docsBefore[id], _ = evGetDoc(t, st, acme, id)
	}
	jobsBefore := map[string]*store.IngestJob{}
	for _, id := range []string{"j1", "j2", "j3", "j4"} {
		jobsBefore[id] = evGetJob(t, st, acme, id)
	}

	// An error from fn aborts, and the transaction undoes what it did.
	calls := 0
	err := evErr(t, st, acme, func(tx store.TenantTx) error {
		_, err := tx.RewrapDEKs(1, 2, func(w string) (string, error) {
			if calls++; calls == 3 {
				return "", errBoom
			}
			return "new " + w, nil
		})
		return err
	})
	if !errors.Is(err, errBoom) {
		t.Errorf("RewrapDEKs with a failing fn: err = %v, want errBoom", err)
	}

	var seen []string
	n := evIn(t, st, acme, func(tx store.TenantTx) (int, error) {
		return tx.RewrapDEKs(1, 2, func(w string) (string, error) {
			seen = append(seen, w)
			return "rewrapped " + w, nil
		})
	})
	if n != 4 {
		t.Errorf("RewrapDEKs = %d, want 4", n)
	}
	slices.Sort(seen)
	if diff := cmp.Diff([]string{"dek of d1 v1", "dek of d2 v1", "dek of job j1", "dek of job j2"}, seen); diff != "" {
		t.Errorf("DEKs given to fn (-want +got):\n%s", diff)
	}
	for id, before := range docsBefore {
		want := *before
		if id != "d3" {
			want.DEK, want.KEKVersion = "rewrapped "+before.DEK, 2
		}
		if got, err := evGetDoc(t, st, acme, id); err != nil {
			t.Error(err)
		} else if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("document %s after RewrapDEKs (-want +got):\n%s", id, diff)
		}
	}
	for id, before := range jobsBefore {
		want := *before
		if id == "j1" || id == "j2" {
			want.DEK, want.KEKVersion = "rewrapped "+before.DEK, 2
		}
		if diff := cmp.Diff(&want, evGetJob(t, st, acme, id)); diff != "" {
			t.Errorf("job %s after RewrapDEKs (-want +got):\n%s", id, diff)
		}
	}
	if got, err := evGetDoc(t, st, bravo, "d1"); err != nil {
		t.Error(err)
	} else if diff := cmp.Diff(evDoc("d1", 1), got); diff != "" {
		t.Errorf("bravo's document after acme's RewrapDEKs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(evJob(bravo, "j1", t0.Add(4*time.Second)), evGetJob(t, st, bravo, "j1")); diff != "" {
		t.Errorf("bravo's job after acme's RewrapDEKs (-want +got):\n%s", diff)
	}
	// Nothing is left under version 1.
	n = evIn(t, st, acme, func(tx store.TenantTx) (int, error) {
		return tx.RewrapDEKs(1, 2, func(string) (string, error) { return "", errBoom })
	})
	if n != 0 {
		t.Errorf("second RewrapDEKs = %d, want 0", n)
	}
}

func (s *suite) documentTests() []test {
	return []test{
		{"PutGet", func(t *testing.T) {
			st := s.fresh(t)
			_, err := evGetDoc(t, st, acme, "d1")
			checkKind(t, "GetDocument(missing)", err, vaultcrux.NotFound)
			d := evDoc("d1", 1)
			if seq := evPut(t, st, acme, d, 3, t0.Add(time.Hour)); seq != 1 {
				t.Errorf("first PutDocument seq = %d, want 1", seq)
			}
			if got, err := evGetDoc(t, st, acme, "d1"); err != nil {
				t.Error(err)
			} else if diff := cmp.Diff(d, got); diff != "" {
				t.Errorf("GetDocument (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(evChunks(d, 3), evDocChunks(t, st, acme, "d1", 1)); diff != "" {
				t.Errorf("DocumentChunks (-want +got):\n%s", diff)
			}
			// A document without chunks.
			empty := evDoc("d2", 1)
			empty.Chunks = 0
			if seq := evPut(t, st, acme, empty, 0, t0); seq != 2 {
				t.Errorf("second PutDocument seq = %d, want 2", seq)
			}
			if got, err := evGetDoc(t, st, acme, "d2"); err != nil {
				t.Error(err)
			} else if diff := cmp.Diff(empty, got); diff != "" {
				t.Errorf("GetDocument(d2) (-want +got):\n%s", diff)
			}
			want := []*store.IndexChange{
				{Seq: 1, Op: "put", DocID: "d1", Version: 1, At: t0.Add(time.Hour)},
				{Seq: 2, Op: "put", DocID: "d2", Version: 1, At: t0},
			}
			if diff := cmp.Diff(want, evChanges(t, st, acme, 0, 10)); diff != "" {
				t.Errorf("IndexChanges (-want +got):\n%s", diff)
			}
			err = evErr(t, st, "ghost", func(tx store.TenantTx) error {
				_, err := tx.PutDocument(evDoc("d1", 1), nil, t0)
				return err
			})
			checkKind(t, "PutDocument(tenant missing)", err, vaultcrux.NotFound)
		}},
		{"Replace", func(t *testing.T) {
			st := s.fresh(t)
			evPut(t, st, acme, evDoc("d1", 1), 3, t0)
			v2 := evDoc("d1", 2)
			if seq := evPut(t, st, acme, v2, 2, t0.Add(time.Hour)); seq != 2 {
				t.Errorf("PutDocument(v2) seq = %d, want 2", seq)
			}
			if got, err := evGetDoc(t, st, acme, "d1"); err != nil {
				t.Error(err)
			} else if diff := cmp.Diff(v2, got); diff != "" {
				t.Errorf("GetDocument after the replace (-want +got):\n%s", diff)
			}
			if got := evDocChunks(t, st, acme, "d1", 1); len(got) != 0 {
				t.Errorf("DocumentChunks(v1) after the replace = %v, want none", evChunkIDs(got))
			}
			if diff := cmp.Diff(evChunks(v2, 2), evDocChunks(t, st, acme, "d1", 2)); diff != "" {
				t.Errorf("DocumentChunks(v2) (-want +got):\n%s", diff)
			}
			got := evIn(t, st, acme, func(tx store.TenantTx) ([]*store.Chunk, error) {
				return tx.GetChunks([]string{"d1#2", "d1#0"})
			})
			if diff := cmp.Diff(evChunks(v2, 1), got); diff != "" {
				t.Errorf("GetChunks after the replace (-want +got):\n%s", diff)
			}
			all := evIn(t, st, acme, func(tx store.TenantTx) ([]*store.Chunk, error) { return tx.ListChunks("", 100) })
			if diff := cmp.Diff(evChunks(v2, 2), all); diff != "" {
				t.Errorf("ListChunks after the replace (-want +got):\n%s", diff)
			}
		}},
		{"VersionConflict", func(t *testing.T) {
			st := s.fresh(t)
			evPut(t, st, acme, evDoc("d1", 1), 2, t0)
			for _, c := range []struct {
				name string
				d    *store.Document
			}{
				{"same version", evDoc("d1", 1)},
				{"skipped version", evDoc("d1", 3)},
				{"new document at 2", evDoc("d2", 2)},
			} {
				checkKind(t, "PutDocument("+c.name+")", evTryPut(t, st, acme, c.d), vaultcrux.Conflict)
			}
			bad := evDoc("d2", 1)
			bad.Trust = "maybe"
			checkKind(t, "PutDocument(unknown trust)", evTryPut(t, st, acme, bad), vaultcrux.Internal)
			err := evErr(t, st, acme, func(tx store.TenantTx) error {
				d := evDoc("d2", 1)
				chunks := evChunks(evDoc("d3", 1), 1)
				_, err := tx.PutDocument(d, chunks, t0)
				return err
			})
			checkKind(t, "PutDocument(chunk of another document)", err, vaultcrux.Internal)
			err = evErr(t, st, acme, func(tx store.TenantTx) error {
				d := evDoc("d2", 1)
				chunks := evChunks(d, 2)
				chunks[1].ID = chunks[0].ID
				_, err := tx.PutDocument(d, chunks, t0)
				return err
			})
			checkKind(t, "PutDocument(duplicate chunk id)", err, vaultcrux.Conflict)
			_, err = evGetDoc(t, st, acme, "d2")
			checkKind(t, "GetDocument after the refused puts", err, vaultcrux.NotFound)
			if got, err := evGetDoc(t, st, acme, "d1"); err != nil || got.Version != 1 {
				t.Errorf("GetDocument(d1) after the refused puts = %v, %v; want version 1", got, err)
			}
			if diff := cmp.Diff(evChunks(evDoc("d1", 1), 2), evDocChunks(t, st, acme, "d1", 1)); diff != "" {
				t.Errorf("DocumentChunks(d1) after the refused puts (-want +got):\n%s", diff)
			}
			if got := evHead(t, st, acme); got != 1 {
				t.Errorf("IndexHead after the refused puts = %d, want 1", got)
			}
			// A version conflict leaves the transaction usable, and takes
			// no Seq.
			seq := evIn(t, st, acme, func(tx store.TenantTx) (int64, error) {
				_, err := tx.PutDocument(evDoc("d1", 3), nil, t0)
				checkKind(t, "PutDocument(skipped version) in a transaction that goes on", err, vaultcrux.Conflict)
				return tx.PutDocument(evDoc("d1", 2), evChunks(evDoc("d1", 2), 1), t0)
			})
			if seq != 2 {
				t.Errorf("PutDocument after a conflict in the same transaction: seq %d, want 2", seq)
			}
		}},
		{"DeleteThenPut", func(t *testing.T) {
			st := s.fresh(t)
			v1 := evDoc("d1", 1)
			evPut(t, st, acme, v1, 2, t0)
			evPut(t, st, acme, evDoc("d2", 1), 1, t0)
			var deleted *store.Document
			var seq int64
			tenTx(t, st, acme, func(tx store.TenantTx) (err error) {
				deleted, seq, err = tx.DeleteDocument("d1", t0.Add(time.Hour))
				return err
			})
			if diff := cmp.Diff(v1, deleted); diff != "" || seq != 3 {
				t.Errorf("DeleteDocument: seq %d, want 3 (-want +got):\n%s", seq, diff)
			}
			_, err := evGetDoc(t, st, acme, "d1")
			checkKind(t, "GetDocument after the delete", err, vaultcrux.NotFound)
			if got := evDocChunks(t, st, acme, "d1", 1); len(got) != 0 {
				t.Errorf("DocumentChunks after the delete = %v, want none", evChunkIDs(got))
			}
			if got := evIn(t, st, acme, func(tx store.TenantTx) ([]*store.Chunk, error) { return tx.GetChunks([]string{"d1#0", "d1#1"}) }); len(got) != 0 {
				t.Errorf("GetChunks after the delete = %v, want none", evChunkIDs(got))
			}
			docs := evIn(t, st, acme, func(tx store.TenantTx) ([]*store.Document, error) { return tx.ListDocuments("", 10) })
			if diff := cmp.Diff([]*store.Document{evDoc("d2", 1)}, docs); diff != "" {
				t.Errorf("ListDocuments after the delete (-want +got):\n%s", diff)
			}
			for _, id := range []string{"d1", "nope"} {
				err := evErr(t, st, acme, func(tx store.TenantTx) error {
					_, _, err := tx.DeleteDocument(id, t0)
					return err
				})
				checkKind(t, "DeleteDocument("+id+")", err, vaultcrux.NotFound)
			}
			// The version counter survives the delete.
			for id, want := range map[string]int{"d1": 1, "d2": 1, "nope": 0} {
				if v := evIn(t, st, acme, func(tx store.TenantTx) (int, error) { return tx.DocumentVersion(id) }); v != want {
					t.Errorf("DocumentVersion(%s) after the delete = %d, want %d", id, v, want)
				}
			}
			if v := evIn(t, st, bravo, func(tx store.TenantTx) (int, error) { return tx.DocumentVersion("d1") }); v != 0 {
				t.Errorf("DocumentVersion(d1) in another tenant = %d, want 0", v)
			}
			checkKind(t, "PutDocument(v1) after the delete", evTryPut(t, st, acme, evDoc("d1", 1)), vaultcrux.Conflict)
			v2 := evDoc("d1", 2)
			if seq := evPut(t, st, acme, v2, 1, t0.Add(2*time.Hour)); seq != 4 {
				t.Errorf("PutDocument(v2) after the delete: seq %d, want 4", seq)
			}
			if got, err := evGetDoc(t, st, acme, "d1"); err != nil {
				t.Error(err)
			} else if diff := cmp.Diff(v2, got); diff != "" {
				t.Errorf("GetDocument after the put (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(evChunks(v2, 1), evDocChunks(t, st, acme, "d1", 2)); diff != "" {
				t.Errorf("DocumentChunks after the put (-want +got):\n%s", diff)
			}
			want := []*store.IndexChange{
				{Seq: 1, Op: "put", DocID: "d1", Version: 1, At: t0},
				{Seq: 2, Op: "put", DocID: "d2", Version: 1, At: t0},
				{Seq: 3, Op: "delete", DocID: "d1", Version: 1, At: t0.Add(time.Hour)},
				{Seq: 4, Op: "put", DocID: "d1", Version: 2, At: t0.Add(2 * time.Hour)},
			}
			if diff := cmp.Diff(want, evChanges(t, st, acme, 0, 10)); diff != "" {
				t.Errorf("IndexChanges (-want +got):\n%s", diff)
			}
		}},
		{"List", func(t *testing.T) {
			st := s.fresh(t)
			for _, id := range []string{"b", "a", "c", "B", "bb", "a1"} {
				evPut(t, st, acme, evDoc(id, 1), 1, t0)
			}
			evPut(t, st, bravo, evDoc("ab", 1), 1, t0)
			tenTx(t, st, acme, func(tx store.TenantTx) error {
				_, _, err := tx.DeleteDocument("bb", t0)
				return err
			})
			var want []*store.Document
			for _, id := range []string{"B", "a", "a1", "b", "c"} { // bytewise, bb deleted
				want = append(want, evDoc(id, 1))
			}
			pages := []struct {
				after string
				limit int
				want  []*store.Document
			}{
				{"", 10, want},
				{"", 2, want[:2]},
				{"a", 2, want[2:4]},
				{"b", 2, want[4:]},
				{"ab", 1, want[3:4]}, // a cursor need not exist
				{"c", 2, nil},
			}
			for _, p := range pages {
				got := evIn(t, st, acme, func(tx store.TenantTx) ([]*store.Document, error) { return tx.ListDocuments(p.after, p.limit) })
				if diff := cmp.Diff(p.want, got); diff != "" {
					t.Errorf("ListDocuments(%q, %d) (-want +got):\n%s", p.after, p.limit, diff)
				}
			}
			err := evErr(t, st, acme, func(tx store.TenantTx) error {
				_, err := tx.ListDocuments("", 0)
				return err
			})
			checkKind(t, "ListDocuments(limit 0)", err, vaultcrux.Invalid)
		}},
		{"ConcurrentPuts", func(t *testing.T) {
			st := s.fresh(t)
			const workers, perWorker = 6, 5
			type result struct {
				tenant, doc string
				seq         int64
				err         error
			}
			results := make(chan result, 2*workers*perWorker)
			var wg sync.WaitGroup
			for w := range workers {
				for _, tenant := range []string{acme, bravo} {
					wg.Go(func() {
						for i := range perWorker {
							d := evDoc(fmt.Sprintf("w%d-d%d", w, i), 1)
							r := result{tenant: tenant, doc: d.ID}
							r.err = evErr(t, st, tenant, func(tx store.TenantTx) (err error) {
								r.seq, err = tx.PutDocument(d, evChunks(d, 2), t0)
								return err
							})
							results <- r
						}
					})
				}
			}
			wg.Wait()
			close(results)
			seqs := map[string][]int64{}
			docs := map[string][]string{}
			for r := range results {
				if r.err != nil {
					t.Errorf("concurrent PutDocument(%s) in %s: %v", r.doc, r.tenant, r.err)
					continue
				}
				seqs[r.tenant] = append(seqs[r.tenant], r.seq)
				docs[r.tenant] = append(docs[r.tenant], r.doc)
			}
			var want []int64
			for i := range int64(workers * perWorker) {
				want = append(want, i+1)
			}
			for _, tenant := range []string{acme, bravo} {
				slices.Sort(seqs[tenant])
				if diff := cmp.Diff(want, seqs[tenant]); diff != "" {
					t.Errorf("%s: seqs of concurrent puts (-want +got):\n%s", tenant, diff)
				}
				changes := evChanges(t, st, tenant, 0, 100)
				var gotSeqs []int64
				var gotDocs []string
				for _, c := range changes {
					gotSeqs = append(gotSeqs, c.Seq)
					gotDocs = append(gotDocs, c.DocID)
					if c.Op != "put" || c.Version != 1 {
						t.Errorf("%s: change %d is %s of version %d, want put of 1", tenant, c.Seq, c.Op, c.Version)
					}
				}
				if diff := cmp.Diff(want, gotSeqs); diff != "" {
					t.Errorf("%s: IndexChanges seqs (-want +got):\n%s", tenant, diff)
				}
				slices.Sort(gotDocs)
				slices.Sort(docs[tenant])
				if diff := cmp.Diff(docs[tenant], gotDocs); diff != "" {
					t.Errorf("%s: documents in IndexChanges (-want +got):\n%s", tenant, diff)
				}
				if got := evHead(t, st, tenant); got != workers*perWorker {
					t.Errorf("%s: IndexHead = %d, want %d", tenant, got, workers*perWorker)
				}
				n := len(evIn(t, st, tenant, func(tx store.TenantTx) ([]*store.Chunk, error) { return tx.ListChunks("", 1000) }))
				if n != 2*workers*perWorker {
					t.Errorf("%s: %d chunks, want %d", tenant, n, 2*workers*perWorker)
				}
			}
		}},
		{"ConcurrentSameDocument", func(t *testing.T) {
			// Of concurrent puts of one version, exactly one wins; the
			// others are conflicts, and only the winner is logged.
			st := s.fresh(t)
			evPut(t, st, acme, evDoc("d1", 1), 1, t0)
			const writers = 6
			errs := make(chan error, 2*writers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range writers {
				for _, d := range []*store.Document{evDoc("d1", 2), evDoc("d2", 1)} {
					wg.Go(func() {
						d := *d
						d.Title = fmt.Sprintf("writer %d", i)
						<-start
						errs <- evErr(t, st, acme, func(tx store.TenantTx) error {
							_, err := tx.PutDocument(&d, evChunks(&d, 2), t0)
							return err
						})
					})
				}
			}
			close(start)
			wg.Wait()
			close(errs)
			wins := 0
			for err := range errs {
				switch {
				case err == nil:
					wins++
				case vaultcrux.ErrorKind(err) != vaultcrux.Conflict:
					t.Errorf("concurrent PutDocument: %v, want success or a conflict", err)
				}
			}
			if wins != 2 {
				t.Errorf("%d concurrent puts won, want 2 (one per document)", wins)
			}
			changes := evChanges(t, st, acme, 0, 100)
			var seqs []int64
			var got []string
			for _, c := range changes {
				seqs = append(seqs, c.Seq)
				got = append(got, fmt.Sprintf("%s %s v%d", c.Op, c.DocID, c.Version))
			}
			if len(got) == 3 {
				slices.Sort(got[1:]) // the two winners, in either order
			}
			if diff := cmp.Diff([]string{"put d1 v1", "put d1 v2", "put d2 v1"}, got); diff != "" {
				t.Errorf("IndexChanges (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]int64{1, 2, 3}, seqs); diff != "" {
				t.Errorf("IndexChanges seqs (-want +got):\n%s", diff)
			}
			for _, id := range []string{"d1", "d2"} {
				d, err := evGetDoc(t, st, acme, id)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(evChunks(d, 2), evDocChunks(t, st, acme, id, d.Version)); diff != "" {
					t.Errorf("chunks of the winning %s (-want +got):\n%s", id, diff)
				}
			}
		}},
		{"TenantsWithDocuments", func(t *testing.T) {
			st := s.fresh(t)
			list := func() []vaultcrux.TenantID {
				t.Helper()
				return evSys(t, st, func(tx store.SystemTx) ([]vaultcrux.TenantID, error) { return tx.TenantsWithDocuments() })
			}
			if got := list(); len(got) != 0 {
				t.Errorf("TenantsWithDocuments on a new store = %v, want none", got)
			}
			// Keys and shreds are not documents.
			evAddKEK(t, st, acme, evKEK(acme, 1))
			evIn(t, st, bravo, func(tx store.TenantTx) (int, error) { return tx.ShredTenantKeys(t0) })
			evCreateJobs(t, st, evJob(acme, "j1", t0))
			if got := list(); len(got) != 0 {
				t.Errorf("TenantsWithDocuments with keys and jobs only = %v, want none", got)
			}
			sysTx(t, st, func(tx store.SystemTx) error { return tx.CreateTenant(tenant("charlie"), nil) })
			evPut(t, st, "charlie", evDoc("d1", 1), 1, t0)
			evPut(t, st, acme, evDoc("d1", 1), 1, t0)
			if diff := cmp.Diff([]vaultcrux.TenantID{acme, "charlie"}, list()); diff != "" {
				t.Errorf("TenantsWithDocuments (-want +got):\n%s", diff)
			}
			// A tenant whose documents are all deleted still has changes.
			tenTx(t, st, acme, func(tx store.TenantTx) error {
				_, _, err := tx.DeleteDocument("d1", t0)
				return err
			})
			if diff := cmp.Diff([]vaultcrux.TenantID{acme, "charlie"}, list()); diff != "" {
				t.Errorf("TenantsWithDocuments after a delete (-want +got):\n%s", diff)
			}
		}},
	}
}

func (s *suite) chunkTests() []test {
	return []test{
		{"GetChunks", func(t *testing.T) {
			st := s.fresh(t)
			d1, d2 := evDoc("d1", 1), evDoc("d2", 1)
			evPut(t, st, acme, d1, 3, t0)
			evPut(t, st, acme, d2, 2, t0)
			c1, c2 := evChunks(d1, 3), evChunks(d2, 2)
			got := evIn(t, st, acme, func(tx store.TenantTx) ([]*store.Chunk, error) {
				return tx.GetChunks([]string{"d2#1", "missing", "d1#0", "d1#9", "d1#2"})
			})
			if diff := cmp.Diff([]*store.Chunk{c2[1], c1[0], c1[2]}, got); diff != "" {
				t.Errorf("GetChunks (-want +got):\n%s", diff)
			}
			for _, ids := range [][]string{nil, {"missing"}} {
				got := evIn(t, st, acme, func(tx store.TenantTx) ([]*store.Chunk, error) { return tx.GetChunks(ids) })
				if len(got) != 0 {
					t.Errorf("GetChunks(%q) = %v, want none", ids, evChunkIDs(got))
				}
			}
			if got := evDocChunks(t, st, acme, "d1", 2); len(got) != 0 {
				t.Errorf("DocumentChunks of a version that does not exist = %v, want none", evChunkIDs(got))
			}
		}},
		{"ListChunks", func(t *testing.T) {
			st := s.fresh(t)
			// Twelve chunks: "d#10" sorts before "d#2".
			var all []*store.Chunk
			for _, p := range []struct {
				id string
				n  int
			}{{"d", 12}, {"a", 2}, {"c", 3}} {
				d := evDoc(p.id, 1)
				evPut(t, st, acme, d, p.n, t0)
				all = append(all, evChunks(d, p.n)...)
			}
			// c is replaced by a version with one chunk, e is deleted.
			c2 := evDoc("c", 2)
			evPut(t, st, acme, c2, 1, t0)
			evPut(t, st, acme, evDoc("e", 1), 2, t0)
			tenTx(t, st, acme, func(tx store.TenantTx) error {
				_, _, err := tx.DeleteDocument("e", t0)
				return err
			})
			evPut(t, st, bravo, evDoc("b", 1), 2, t0)
			all = slices.DeleteFunc(all, func(c *store.Chunk) bool { return c.DocID == "c" })
			all = append(all, evChunks(c2, 1)...)
			slices.SortFunc(all, func(a, b *store.Chunk) int { return strings.Compare(a.ID, b.ID) })
			if got := evChunkIDs(all); got[3] != "d#0" || got[5] != "d#10" || got[7] != "d#2" {
				t.Fatalf("test chunks in an unexpected order: %v", got)
			}

			list := func(after string, limit int) []*store.Chunk {
				t.Helper()
				return evIn(t, st, acme, func(tx store.TenantTx) ([]*store.Chunk, error) { return tx.ListChunks(after, limit) })
			}
			if diff := cmp.Diff(all, list("", 100)); diff != "" {
				t.Errorf("ListChunks (-want +got):\n%s", diff)
			}
			// Paging by the last id seen visits each chunk once, in order.
			var paged []*store.Chunk
			for after := ""; ; {
				page := list(after, 4)
				if len(page) == 0 {
					break
				}
				if len(page) > 4 {
					t.Fatalf("ListChunks(%q, 4) returned %d chunks", after, len(page))
				}
				paged = append(paged, page...)
				after = page[len(page)-1].ID
			}
			if diff := cmp.Diff(all, paged); diff != "" {
				t.Errorf("ListChunks paged by 4 (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(all[5:7], list("d#1", 2)); diff != "" {
				t.Errorf("ListChunks(d#1, 2) (-want +got):\n%s", diff)
			}
			err := evErr(t, st, acme, func(tx store.TenantTx) error {
				_, err := tx.ListChunks("", 0)
				return err
			})
			checkKind(t, "ListChunks(limit 0)", err, vaultcrux.Invalid)
		}},
	}
}

func (s *suite) indexLogTests() []test {
	return []test{
		{"IndexLog", func(t *testing.T) {
			st := s.fresh(t)
			if got := evHead(t, st, acme); got != 0 {
				t.Errorf("IndexHead of a new tenant = %d, want 0", got)
			}
			if got := evChanges(t, st, acme, 0, 10); len(got) != 0 {
				t.Errorf("IndexChanges of a new tenant = %v, want none", got)
			}
			var want []*store.IndexChange
			at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
			for i, op := range []struct {
				op, doc string
				version int
			}{
				{"put", "a", 1}, {"put", "b", 1}, {"put", "a", 2}, {"delete", "b", 1},
				{"put", "c", 1}, {"delete", "a", 2}, {"put", "b", 2},
			} {
				var seq int64
				tenTx(t, st, acme, func(tx store.TenantTx) (err error) {
					if op.op == "put" {
						seq, err = tx.PutDocument(evDoc(op.doc, op.version), nil, at(i))
					} else {
						_, seq, err = tx.DeleteDocument(op.doc, at(i))
					}
					return err
				})
				if seq != int64(i+1) {
					t.Errorf("change #%d (%s %s) got seq %d, want %d", i+1, op.op, op.doc, seq, i+1)
				}
				want = append(want, &store.IndexChange{Seq: int64(i + 1), Op: op.op, DocID: op.doc, Version: op.version, At: at(i)})
			}
			if got := evHead(t, st, acme); got != 7 {
				t.Errorf("IndexHead = %d, want 7", got)
			}
			pages := []struct {
				after int64
				limit int
				want  []*store.IndexChange
			}{
				{0, 100, want},
				{0, 3, want[:3]},
				{3, 3, want[3:6]},
				{6, 3, want[6:]},
				{7, 3, nil},
				{-5, 1, want[:1]},
			}
			for _, p := range pages {
				if diff := cmp.Diff(p.want, evChanges(t, st, acme, p.after, p.limit)); diff != "" {
					t.Errorf("IndexChanges(%d, %d) (-want +got):\n%s", p.after, p.limit, diff)
				}
			}
			err := evErr(t, st, acme, func(tx store.TenantTx) error {
				_, err := tx.IndexChanges(0, 0)
				return err
			})
			checkKind(t, "IndexChanges(limit 0)", err, vaultcrux.Invalid)
			if got := evHead(t, st, bravo); got != 0 {
				t.Errorf("bravo's IndexHead = %d, want 0", got)
			}
		}},
	}
}

func (s *suite) ingestJobTests() []test {
	return []test{
		{"JobCreateGet", func(t *testing.T) {
			st := s.fresh(t)
			j := evJob(acme, "j1", t0)
			evCreateJobs(t, st, j)
			if diff := cmp.Diff(j, evGetJob(t, st, acme, "j1")); diff != "" {
				t.Errorf("GetIngestJob (-want +got):\n%s", diff)
			}
			// Ids are per tenant; a job may come without content or key.
			bare := evJob(bravo, "j1", t0)
			bare.Content, bare.DEK, bare.AgentID, bare.URL = nil, "", "", ""
			evCreateJobs(t, st, bare)
			if diff := cmp.Diff(bare, evGetJob(t, st, bravo, "j1")); diff != "" {
				t.Errorf("bravo's GetIngestJob (-want +got):\n%s", diff)
			}
			processing := evJob(acme, "j2", t0)
			processing.Status, processing.Lease, processing.LeaseUntil = "processing", "l", ptr(t0)
			refused := []struct {
				name   string
				tenant string
				j      *store.IngestJob
				want   vaultcrux.Kind
			}{
				{"duplicate id", acme, evJob(acme, "j1", t0.Add(time.Hour)), vaultcrux.Conflict},
				{"other tenant's record", acme, evJob(bravo, "j2", t0), vaultcrux.Internal},
				{"not queued", acme, processing, vaultcrux.Internal},
				{"tenant missing", "ghost", evJob("ghost", "j1", t0), vaultcrux.NotFound},
			}
			for _, r := range refused {
				err := evErr(t, st, r.tenant, func(tx store.TenantTx) error { return tx.CreateIngestJob(r.j) })
				checkKind(t, "CreateIngestJob("+r.name+")", err, r.want)
			}
			if diff := cmp.Diff(j, evGetJob(t, st, acme, "j1")); diff != "" {
				t.Errorf("GetIngestJob after the refused creates (-want +got):\n%s", diff)
			}
			for _, id := range []string{"j2", "nope"} {
				err := evErr(t, st, acme, func(tx store.TenantTx) error {
					_, err := tx.GetIngestJob(id)
					return err
				})
				checkKind(t, "GetIngestJob("+id+")", err, vaultcrux.NotFound)
			}
		}},
		{"ClaimFinish", func(t *testing.T) {
			st := s.fresh(t)
			j1, j2, j3, j4 := evJob(acme, "j1", t0), evJob(bravo, "j2", t0.Add(time.Second)),
				evJob(acme, "j3", t0.Add(2*time.Second)), evJob(acme, "j4", t0.Add(3*time.Second))
			evCreateJobs(t, st, j4, j2, j3, j1)
			now, until := t0.Add(time.Hour), t0.Add(2*time.Hour)
			want := []*store.IngestJob{evClaimed(j1, "L1", now, until, 1), evClaimed(j2, "L1", now, until, 1)}
			if diff := cmp.Diff(want, evClaim(t, st, "L1", now, until, 2)); diff != "" {
				t.Errorf("first ClaimIngestJobs (-want +got):\n%s", diff)
			}
			want2 := []*store.IngestJob{evClaimed(j3, "L2", now, until, 1), evClaimed(j4, "L2", now, until, 1)}
			if diff := cmp.Diff(want2, evClaim(t, st, "L2", now, until, 10)); diff != "" {
				t.Errorf("second ClaimIngestJobs (-want +got):\n%s", diff)
			}
			if got := evClaim(t, st, "L3", now, until, 10); len(got) != 0 {
				t.Errorf("ClaimIngestJobs with every job leased = %v, want none", evJobIDs(got))
			}
			if diff := cmp.Diff(want[0], evGetJob(t, st, acme, "j1")); diff != "" {
				t.Errorf("GetIngestJob of a claimed job (-want +got):\n%s", diff)
			}

			done := *want[0]
			done.Status, done.Chunks, done.DocVersion, done.ReceiptID, done.UpdatedAt = "indexed", 4, 1, "rcpt-1", now.Add(time.Minute)
			checkKind(t, "FinishIngestJob(another lease)", evFinish(t, st, &done, "L2"), vaultcrux.Conflict)
			checkKind(t, "FinishIngestJob(no lease)", evFinish(t, st, &done, ""), vaultcrux.Conflict)
			if err := evFinish(t, st, &done, "L1"); err != nil {
				t.Fatalf("FinishIngestJob: %v", err)
			}
			wantDone := done
			wantDone.Content, wantDone.DEK = nil, ""
			if diff := cmp.Diff(&wantDone, evGetJob(t, st, acme, "j1")); diff != "" {
				t.Errorf("GetIngestJob after FinishIngestJob (-want +got):\n%s", diff)
			}
			again := done
			again.Status, again.Error = "failed", "late"
			checkKind(t, "FinishIngestJob(finished)", evFinish(t, st, &again, "L1"), vaultcrux.Conflict)
			if diff := cmp.Diff(&wantDone, evGetJob(t, st, acme, "j1")); diff != "" {
				t.Errorf("GetIngestJob after finishing twice (-want +got):\n%s", diff)
			}

			failed := *want[1]
			failed.Status, failed.Error, failed.UpdatedAt = "failed", "unsupported media type", now.Add(2*time.Minute)
			if err := evFinish(t, st, &failed, "L1"); err != nil {
				t.Fatalf("FinishIngestJob(failed): %v", err)
			}
			wantFailed := failed
			wantFailed.Content, wantFailed.DEK = nil, ""
			if diff := cmp.Diff(&wantFailed, evGetJob(t, st, bravo, "j2")); diff != "" {
				t.Errorf("GetIngestJob of the failed job (-want +got):\n%s", diff)
			}
			unchanged := *want2[0]
			unchanged.Status, unchanged.Unchanged, unchanged.ReceiptID, unchanged.UpdatedAt = "indexed", true, "rcpt-3", now
			if err := evFinish(t, st, &unchanged, "L2"); err != nil {
				t.Fatalf("FinishIngestJob(unchanged): %v", err)
			}
			wantUnchanged := unchanged
			wantUnchanged.Content, wantUnchanged.DEK = nil, ""
			if diff := cmp.Diff(&wantUnchanged, evGetJob(t, st, acme, "j3")); diff != "" {
				t.Errorf("GetIngestJob of the unchanged job (-want +got):\n%s", diff)
			}

			// A queued job is not under any lease.
			evCreateJobs(t, st, evJob(acme, "j5", t0))
			queued := evJob(acme, "j5", t0)
			queued.Status = "indexed"
			checkKind(t, "FinishIngestJob(queued)", evFinish(t, st, queued, "L1"), vaultcrux.Conflict)
			ghost := evJob(acme, "nope", t0)
			ghost.Status = "indexed"
			checkKind(t, "FinishIngestJob(missing)", evFinish(t, st, ghost, "L1"), vaultcrux.NotFound)
			bad := *want2[1]
			bad.Status = "queued"
			checkKind(t, "FinishIngestJob(status queued)", evFinish(t, st, &bad, "L2"), vaultcrux.Internal)
			// Finished jobs are never claimed again.
			got := evClaim(t, st, "L4", now.Add(24*time.Hour), now.Add(25*time.Hour), 10)
			if diff := cmp.Diff([]string{"acme/j5", "acme/j4"}, evJobIDs(got)); diff != "" {
				t.Errorf("ClaimIngestJobs after the leases expired (-want +got):\n%s", diff)
			}
			err := st.Tx(t.Context(), func(tx store.SystemTx) error {
				_, err := tx.ClaimIngestJobs("L5", now, until, 0)
				return err
			})
			checkKind(t, "ClaimIngestJobs(limit 0)", err, vaultcrux.Invalid)
		}},
		{"ClaimExpiredLease", func(t *testing.T) {
			st := s.fresh(t)
			j := evJob(acme, "j1", t0)
			evCreateJobs(t, st, j)
			until := t0.Add(time.Minute)
			first := evClaim(t, st, "L1", t0, until, 10)
			if diff := cmp.Diff([]*store.IngestJob{evClaimed(j, "L1", t0, until, 1)}, first); diff != "" {
				t.Fatalf("first claim (-want +got):\n%s", diff)
			}
			if got := evClaim(t, st, "L2", until.Add(-time.Millisecond), until.Add(time.Hour), 10); len(got) != 0 {
				t.Errorf("claim just before the lease ends = %v, want none", evJobIDs(got))
			}
			until2 := until.Add(time.Minute)
			second := evClaim(t, st, "L2", until, until2, 10)
			if diff := cmp.Diff([]*store.IngestJob{evClaimed(j, "L2", until, until2, 2)}, second); diff != "" {
				t.Fatalf("claim when the lease ends (-want +got):\n%s", diff)
			}
			done := *second[0]
			done.Status, done.UpdatedAt = "indexed", until
			checkKind(t, "FinishIngestJob(stale lease)", evFinish(t, st, &done, "L1"), vaultcrux.Conflict)
			if diff := cmp.Diff(second[0], evGetJob(t, st, acme, "j1")); diff != "" {
				t.Errorf("job after the stale finish (-want +got):\n%s", diff)
			}
			if err := evFinish(t, st, &done, "L2"); err != nil {
				t.Errorf("FinishIngestJob(current lease): %v", err)
			}
			if got := evGetJob(t, st, acme, "j1"); got.Status != "indexed" || got.Attempts != 2 || got.Lease != "L2" {
				t.Errorf("finished job: status %s, attempts %d, lease %s; want indexed, 2, L2", got.Status, got.Attempts, got.Lease)
			}
		}},
		{"ClaimWhileAnotherHolds", func(t *testing.T) {
			// The first claimer keeps its transaction open until the second
			// has claimed (or for a while, where a backend makes the second
			// wait for the first): the second must get other jobs.
			st := s.fresh(t)
			for i := range 4 {
				evCreateJobs(t, st, evJob(acme, fmt.Sprintf("j%d", i), t0.Add(time.Duration(i)*time.Second)))
			}
			held, secondDone := make(chan struct{}), make(chan struct{})
			var first []*store.IngestJob
			firstErr := make(chan error, 1)
			go func() {
				firstErr <- st.Tx(t.Context(), func(tx store.SystemTx) (err error) {
					first, err = tx.ClaimIngestJobs("first", t0, t0.Add(time.Hour), 2)
					close(held)
					select {
					case <-secondDone:
					case <-time.After(time.Second):
					}
					return err
				})
			}()
			<-held
			second := evClaim(t, st, "second", t0, t0.Add(time.Hour), 2)
			close(secondDone)
			if err := <-firstErr; err != nil {
				t.Fatalf("first claim: %v", err)
			}
			if diff := cmp.Diff([]string{"acme/j0", "acme/j1"}, evJobIDs(first)); diff != "" {
				t.Errorf("first claim (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"acme/j2", "acme/j3"}, evJobIDs(second)); diff != "" {
				t.Errorf("second claim while the first was open (-want +got):\n%s", diff)
			}
		}},
		{"ConcurrentClaims", func(t *testing.T) {
			st := s.fresh(t)
			const jobs, claimers = 30, 6
			want := map[string]bool{}
			for i := range jobs {
				tenant := []string{acme, bravo}[i%2]
				j := evJob(tenant, fmt.Sprintf("j%02d", i), t0.Add(time.Duration(i)*time.Millisecond))
				evCreateJobs(t, st, j)
				want[tenant+"/"+j.ID] = true
			}
			var mu sync.Mutex
			got := map[string]string{} // job to lease
			var wg sync.WaitGroup
			start := make(chan struct{})
			for c := range claimers {
				lease := fmt.Sprintf("lease-%d", c)
				wg.Go(func() {
					<-start
					for {
						var claimed []*store.IngestJob
						err := st.Tx(t.Context(), func(tx store.SystemTx) (err error) {
							claimed, err = tx.ClaimIngestJobs(lease, t0, t0.Add(time.Hour), 2)
							return err
						})
						if err != nil {
							t.Errorf("%s: ClaimIngestJobs: %v", lease, err)
							return
						}
						if len(claimed) == 0 {
							return
						}
						mu.Lock()
						for _, id := range evJobIDs(claimed) {
							if other, ok := got[id]; ok {
								t.Errorf("job %s claimed by %s and %s", id, other, lease)
							}
							got[id] = lease
						}
						mu.Unlock()
					}
				})
			}
			close(start)
			wg.Wait()
			if len(got) != jobs {
				t.Errorf("%d jobs claimed, want %d", len(got), jobs)
			}
			for id := range want {
				if _, ok := got[id]; !ok {
					t.Errorf("job %s never claimed", id)
				}
			}
			for id, lease := range got {
				tenant, jobID, _ := strings.Cut(id, "/")
				j := evGetJob(t, st, tenant, jobID)
				if j.Status != "processing" || j.Lease != lease || j.Attempts != 1 {
					t.Errorf("job %s: status %s, lease %s, attempts %d; want processing, %s, 1", id, j.Status, j.Lease, j.Attempts, lease)
				}
			}
		}},
	}
}

// evidenceCrossTenantTest gives acme a key, a document, a job and index
// changes, and checks that bravo reaches none of them.
func (s *suite) evidenceCrossTenantTest(t *testing.T) {
	st := s.fresh(t)
	evAddKEK(t, st, acme, evKEK(acme, 1))
	d := evDoc("d1", 1)
	evPut(t, st, acme, d, 2, t0)
	evPut(t, st, acme, evDoc("d1", 2), 2, t0)
	job := evJob(acme, "j1", t0)
	evCreateJobs(t, st, job)
	claimed := evClaim(t, st, "L1", t0, t0.Add(time.Hour), 1)

	notFound := map[string]func(tx store.TenantTx) error{
		"GetDocument": func(tx store.TenantTx) error {
			_, err := tx.GetDocument("d1")
			return err
		},
		"DeleteDocument": func(tx store.TenantTx) error {
			_, _, err := tx.DeleteDocument("d1", t0)
			return err
		},
		"GetIngestJob": func(tx store.TenantTx) error {
			_, err := tx.GetIngestJob("j1")
			return err
		},
		"FinishIngestJob": func(tx store.TenantTx) error {
			j := *claimed[0]
			j.Status = "failed"
			return tx.FinishIngestJob(&j, "L1")
		},
		"ActiveTenantKEK": func(tx store.TenantTx) error {
			_, err := tx.ActiveTenantKEK()
			return err
		},
		"RetireTenantKEK": func(tx store.TenantTx) error { return tx.RetireTenantKEK(1, t0) },
	}
	for name, call := range notFound {
		checkKind(t, "bravo "+name+"(acme's)", evErr(t, st, bravo, call), vaultcrux.NotFound, acme)
	}
	tenTx(t, st, bravo, func(tx store.TenantTx) error {
		empty := map[string]func() (int, error){
			"GetChunks": func() (int, error) {
				c, err := tx.GetChunks([]string{"d1#0", "d1#1"})
				return len(c), err
			},
			"ListChunks": func() (int, error) {
				c, err := tx.ListChunks("", 100)
				return len(c), err
			},
			"DocumentChunks": func() (int, error) {
				c, err := tx.DocumentChunks("d1", 2)
				return len(c), err
			},
			"ListDocuments": func() (int, error) {
				d, err := tx.ListDocuments("", 100)
				return len(d), err
			},
			"IndexHead": func() (int, error) {
				n, err := tx.IndexHead()
				return int(n), err
			},
			"IndexChanges": func() (int, error) {
				c, err := tx.IndexChanges(0, 100)
				return len(c), err
			},
			"ListTenantKEKs": func() (int, error) {
				k, err := tx.ListTenantKEKs()
				return len(k), err
			},
			"RewrapDEKs": func() (int, error) {
				return tx.RewrapDEKs(1, 2, func(w string) (string, error) { return "planted", nil })
			},
			"ShredTenantKeys": func() (int, error) { return tx.ShredTenantKeys(t0) },
		}
		for name, call := range empty {
			if n, err := call(); err != nil || n != 0 {
				t.Errorf("bravo %s = %d, %v; want 0, nil", name, n, err)
			}
		}
		return nil
	})
	// The same document id in bravo is another document.
	bd := evDoc("d1", 1)
	bd.Title = "bravo's own"
	if seq := evPut(t, st, bravo, bd, 1, t0); seq != 1 {
		t.Errorf("bravo's first PutDocument seq = %d, want 1", seq)
	}
	if got, err := evGetDoc(t, st, bravo, "d1"); err != nil {
		t.Error(err)
	} else if diff := cmp.Diff(bd, got); diff != "" {
		t.Errorf("bravo's d1 (-want +got):\n%s", diff)
	}

	// acme has everything as it was.
	v2 := evDoc("d1", 2)
	if got, err := evGetDoc(t, st, acme, "d1"); err != nil {
		t.Error(err)
	} else if diff := cmp.Diff(v2, got); diff != "" {
		t.Errorf("acme's d1 after bravo's attempts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(evChunks(v2, 2), evDocChunks(t, st, acme, "d1", 2)); diff != "" {
		t.Errorf("acme's chunks after bravo's attempts (-want +got):\n%s", diff)
	}
	if got := evHead(t, st, acme); got != 2 {
		t.Errorf("acme's IndexHead = %d, want 2", got)
	}
	if diff := cmp.Diff([]*store.TenantKEK{evKEK(acme, 1)}, evKEKs(t, st, acme)); diff != "" {
		t.Errorf("acme's keys after bravo's attempts (-want +got):\n%s", diff)
	}
	if at := evIn(t, st, acme, func(tx store.TenantTx) (*time.Time, error) { return tx.TenantShreddedAt() }); at != nil {
		t.Errorf("acme's TenantShreddedAt after bravo's shred = %v, want nil", at)
	}
	if diff := cmp.Diff(claimed[0], evGetJob(t, st, acme, "j1")); diff != "" {
		t.Errorf("acme's job after bravo's attempts (-want +got):\n%s", diff)
	}
}

// evidenceBatchTest uses the evidence plane through the handles of a
// batch, switching between tenants and the system.
func (s *suite) evidenceBatchTest(t *testing.T) {
	st := s.fresh(t)
	evCreateJobs(t, st, evJob(bravo, "j1", t0))
	err := st.Batch(t.Context(), func(b store.BatchTx) error {
		put := func(tenant, id string) (int64, error) {
			d := evDoc(id, 1)
			return b.Tenant(vaultcrux.TenantID(tenant)).PutDocument(d, evChunks(d, 1), t0)
		}
		if seq, err := put(acme, "d1"); err != nil || seq != 1 {
			t.Errorf("acme PutDocument in a batch = %d, %v; want 1, nil", seq, err)
		}
		if seq, err := put(bravo, "d1"); err != nil || seq != 1 {
			t.Errorf("bravo PutDocument in a batch = %d, %v; want 1, nil", seq, err)
		}
		jobs, err := b.System().ClaimIngestJobs("L1", t0, t0.Add(time.Hour), 10)
		if err != nil || len(jobs) != 1 || jobs[0].Tenant != bravo {
			t.Errorf("ClaimIngestJobs in a batch = %v, %v; want bravo's j1", evJobIDs(jobs), err)
		}
		// A put rolled back by its savepoint takes no Seq.
		if err := b.Savepoint(func() error {
			if _, err := put(acme, "d2"); err != nil {
				return err
			}
			return errBoom
		}); err != errBoom {
			t.Errorf("Savepoint = %v, want errBoom", err)
		}
		if seq, err := put(acme, "d3"); err != nil || seq != 2 {
			t.Errorf("acme PutDocument after the rolled back one = %d, %v; want 2, nil", seq, err)
		}
		ids, err := b.System().TenantsWithDocuments()
		if diff := cmp.Diff([]vaultcrux.TenantID{acme, bravo}, ids); diff != "" || err != nil {
			t.Errorf("TenantsWithDocuments in a batch: %v (-want +got):\n%s", err, diff)
		}
		if _, err := b.Tenant(acme).GetDocument("d2"); vaultcrux.ErrorKind(err) != vaultcrux.NotFound {
			t.Errorf("GetDocument(d2) after its savepoint was rolled back: err = %v, want not found", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Batch: %v", err)
	}
	if diff := cmp.Diff([]string{"d1", "d3"}, evDocIDs(t, st, acme)); diff != "" {
		t.Errorf("acme's documents after the batch (-want +got):\n%s", diff)
	}
}

func evDocIDs(t *testing.T, st store.Store, tenant string) []string {
	t.Helper()
	var ids []string
	for _, d := range evIn(t, st, tenant, func(tx store.TenantTx) ([]*store.Document, error) { return tx.ListDocuments("", 100) }) {
		ids = append(ids, d.ID)
	}
	return ids
}

// evidenceTimeTest checks the times of the evidence plane as timeTests
// does for keys.
func (s *suite) evidenceTimeTest(t *testing.T) {
	st := s.fresh(t)
	zone := time.FixedZone("UTC+5", 5*3600)
	in := time.Date(2025, 1, 2, 3, 4, 5, 123_456_789, zone)
	want := time.Date(2025, 1, 1, 22, 4, 5, 123_000_000, time.UTC)

	k := evKEK(acme, 1)
	k.CreatedAt = in
	evAddKEK(t, st, acme, k)
	tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.RetireTenantKEK(1, in) })
	evIn(t, st, acme, func(tx store.TenantTx) (int, error) { return tx.ShredTenantKeys(in) })
	d := evDoc("d1", 1)
	d.CreatedAt = in
	evPut(t, st, acme, d, 1, in)
	j := evJob(acme, "j1", in)
	j.UpdatedAt = in
	evCreateJobs(t, st, j)
	claimed := evClaim(t, st, "L1", in, in, 1)

	keks := evKEKs(t, st, acme)
	doc, err := evGetDoc(t, st, acme, "d1")
	if err != nil {
		t.Fatal(err)
	}
	chunks := evDocChunks(t, st, acme, "d1", 1)
	changes := evChanges(t, st, acme, 0, 1)
	job := evGetJob(t, st, acme, "j1")
	shredded := evIn(t, st, acme, func(tx store.TenantTx) (*time.Time, error) { return tx.TenantShreddedAt() })
	got := map[string]time.Time{
		"kek.CreatedAt":      keks[0].CreatedAt,
		"kek.RetiredAt":      *keks[0].RetiredAt,
		"kek.DestroyedAt":    *keks[0].DestroyedAt,
		"shreddedAt":         *shredded,
		"document.CreatedAt": doc.CreatedAt,
		"chunk.CreatedAt":    chunks[0].CreatedAt,
		"change.At":          changes[0].At,
		"job.CreatedAt":      job.CreatedAt,
		"job.UpdatedAt":      job.UpdatedAt,
		"job.LeaseUntil":     *job.LeaseUntil,
		"claimed.CreatedAt":  claimed[0].CreatedAt,
		"claimed.UpdatedAt":  claimed[0].UpdatedAt,
		"claimed.LeaseUntil": *claimed[0].LeaseUntil,
	}
	for name, g := range got {
		// == rather than Equal: the location must be UTC too.
		if g != want {
			t.Errorf("%s = %v, want %v", name, g, want)
		}
	}
}
