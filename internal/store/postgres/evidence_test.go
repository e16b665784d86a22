package postgres

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/store/postgres/pgtest"
)

// evidenceTables are the tables of migration 0004.
var evidenceTables = []string{"evidence_heads", "tenant_keks", "documents", "chunks", "index_changes", "ingest_jobs"}

// evidenceDB returns a database whose tenants acme and bravo each have a
// KEK, a document of one chunk (so one index change) and an ingest job.
func evidenceDB(t *testing.T) *DB {
	t.Helper()
	db := open(t, pgtest.DSN(t))
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, id := range []vaultcrux.TenantID{"acme", "bravo"} {
		if err := db.Tx(t.Context(), func(tx store.SystemTx) error {
			return tx.CreateTenant(&vaultcrux.Tenant{ID: id, Name: string(id), CreatedAt: at}, nil)
		}); err != nil {
			t.Fatal(err)
		}
		if err := db.ForTenant(id).Tx(t.Context(), func(tx store.TenantTx) error {
			if err := tx.AddTenantKEK(&store.TenantKEK{Version: 1, Provider: "local", Wrapped: "w", IndexKey: "ik",
				State: "active", CreatedAt: at}); err != nil {
				return err
			}
			d := &store.Document{ID: "doc-" + string(id), Version: 1, Trust: "trusted", DEK: "dek", KEKVersion: 1, CreatedAt: at}
			c := &store.Chunk{ID: d.ID + "#0", DocID: d.ID, DocVersion: 1, Trust: "trusted", Sealed: []byte("s"), Terms: []byte("t"), CreatedAt: at}
			if _, err := tx.PutDocument(d, []*store.Chunk{c}, at); err != nil {
				return err
			}
			return tx.CreateIngestJob(&store.IngestJob{ID: "job-" + string(id), Tenant: id, Trust: "trusted",
				Content: []byte("c"), DEK: "dek", KEKVersion: 1, Status: "queued", CreatedAt: at, UpdatedAt: at})
		}); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// checkEvidenceRows fails unless q sees want rows in each evidence table.
func checkEvidenceRows(t *testing.T, what string, q pgx.Tx, want int) {
	t.Helper()
	for _, table := range evidenceTables {
		var n int
		if err := q.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatalf("%s: count %s: %v", what, table, err)
		}
		if n != want {
			t.Errorf("%s: %d rows of %s visible, want %d", what, n, table, want)
		}
	}
}

// TestEvidenceRLS runs raw queries, without any tenant clause, inside the
// transactions the store sets up, against the evidence plane's tables.
func TestEvidenceRLS(t *testing.T) {
	db := evidenceDB(t)
	ctx := t.Context()

	t.Run("Visibility", func(t *testing.T) {
		if err := db.ForTenant("bravo").Tx(ctx, func(tx store.TenantTx) error {
			raw := tx.(*tenantTx).tx
			checkEvidenceRows(t, "bravo's tx", raw, 1)
			var doc string
			if err := raw.QueryRow(ctx, "SELECT doc_id FROM documents").Scan(&doc); err != nil || doc != "doc-bravo" {
				t.Errorf("bravo's tx sees document %q (%v), want doc-bravo", doc, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := db.Tx(ctx, func(tx store.SystemTx) error {
			if _, err := tx.TenantsWithDocuments(); err != nil {
				return err
			}
			checkEvidenceRows(t, "a system tx", tx.(*systemTx).tx, 2)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		conn, err := db.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		checkEvidenceRows(t, "a bare connection", tx, 0)
	})

	t.Run("CannotWriteOtherTenant", func(t *testing.T) {
		writes := []struct{ name, sql string }{
			{"insert head", `INSERT INTO evidence_heads (tenant_id, index_seq) VALUES ('acme', 5)`},
			{"insert kek", `INSERT INTO tenant_keks (tenant_id, version, provider, wrapped, index_key, state, created_at)
				VALUES ('acme', 9, 'local', 'w', 'i', 'retired', now())`},
			{"insert document", `INSERT INTO documents (tenant_id, doc_id, corpus_id, version, title, url, mime_type, source,
				trust, content_hash, bytes, chunks, dek, kek_version, created_at)
				VALUES ('acme', 'planted', '', 1, '', '', '', '', 'trusted', '', 0, 0, '', 1, now())`},
			{"insert chunk", `INSERT INTO chunks (tenant_id, chunk_id, doc_id, doc_version, seq, corpus_id, trust, sealed,
				text_hash, length, terms, created_at)
				VALUES ('acme', 'planted', 'doc-acme', 1, 9, '', 'trusted', '\x00', '', 0, '\x00', now())`},
			{"insert change", `INSERT INTO index_changes (tenant_id, seq, op, doc_id, version, at)
				VALUES ('acme', 99, 'put', 'planted', 1, now())`},
			{"insert job", `INSERT INTO ingest_jobs (tenant_id, job_id, doc_id, corpus_id, title, url, mime_type, source,
				trust, actor, agent_id, kek_version, bytes, status, chunks, doc_version, unchanged, error, receipt_id,
				lease, attempts, created_at, updated_at)
				VALUES ('acme', 'planted', '', '', '', '', '', '', 'trusted', '', '', 1, 0, 'queued', 0, 0, false,
				'', '', '', 0, now(), now())`},
			{"move own document", `UPDATE documents SET tenant_id = 'acme' WHERE doc_id = 'doc-bravo'`},
			{"move own job", `UPDATE ingest_jobs SET tenant_id = 'acme' WHERE job_id = 'job-bravo'`},
			{"move own kek", `UPDATE tenant_keks SET tenant_id = 'acme', version = 9`},
		}
		for _, w := range writes {
			err := db.ForTenant("bravo").Tx(ctx, func(tx store.TenantTx) error {
				_, err := tx.(*tenantTx).tx.Exec(ctx, w.sql)
				return err
			})
			if code := pgCode(err); code != "42501" { // insufficient_privilege: the WITH CHECK failed
				t.Errorf("%s from bravo's tx: err = %v, want SQLSTATE 42501", w.name, err)
			}
		}
		// Updates and deletes of rows it cannot see touch nothing.
		if err := db.ForTenant("bravo").Tx(ctx, func(tx store.TenantTx) error {
			for _, sql := range []string{
				`UPDATE tenant_keks SET wrapped = '' WHERE tenant_id = 'acme'`,
				`UPDATE documents SET dek = '' WHERE tenant_id = 'acme'`,
				`DELETE FROM chunks WHERE tenant_id = 'acme'`,
				`UPDATE ingest_jobs SET status = 'failed', content = NULL, dek = NULL WHERE tenant_id = 'acme'`,
				`UPDATE evidence_heads SET index_seq = 0 WHERE tenant_id = 'acme'`,
			} {
				tag, err := tx.(*tenantTx).tx.Exec(ctx, sql)
				if err != nil {
					return err
				}
				if n := tag.RowsAffected(); n != 0 {
					t.Errorf("%s from bravo's tx affected %d rows, want 0", sql, n)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("IndexChangesAppendOnly", func(t *testing.T) {
		check := func(what string, raw pgx.Tx) {
			t.Helper()
			for _, sql := range []string{`UPDATE index_changes SET version = version + 1`, `DELETE FROM index_changes`} {
				tag, err := raw.Exec(ctx, sql)
				if err != nil {
					t.Errorf("%s: %s: %v", what, sql, err)
				} else if n := tag.RowsAffected(); n != 0 {
					t.Errorf("%s: %s affected %d rows, want 0", what, sql, n)
				}
			}
		}
		if err := db.ForTenant("bravo").Tx(ctx, func(tx store.TenantTx) error {
			check("bravo's tx", tx.(*tenantTx).tx)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := db.Tx(ctx, func(tx store.SystemTx) error {
			if _, err := tx.TenantsWithDocuments(); err != nil {
				return err
			}
			check("a system tx", tx.(*systemTx).tx)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []vaultcrux.TenantID{"acme", "bravo"} {
			if err := db.ForTenant(id).Tx(ctx, func(tx store.TenantTx) error {
				changes, err := tx.IndexChanges(0, 10)
				if err != nil {
					return err
				}
				if len(changes) != 1 || changes[0].Seq != 1 || changes[0].Version != 1 {
					t.Errorf("%s's index changes after the attempts: %+v, want the one put", id, changes)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestScrub vacuums after a shred; VACUUM must run outside a
// transaction and as the tables' owner, which the store's role is.
func TestScrub(t *testing.T) {
	db := evidenceDB(t)
	if err := db.ForTenant("acme").Tx(t.Context(), func(tx store.TenantTx) error {
		_, err := tx.ShredTenantKeys(time.Now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Scrub(t.Context()); err != nil {
		t.Fatalf("Scrub: %v", err)
	}
	// The tables were vacuumed: PostgreSQL records when.
	var vacuumed int
	if err := db.pool.QueryRow(t.Context(),
		`SELECT count(*) FROM pg_stat_user_tables
		 WHERE relname IN ('tenant_keks', 'documents', 'ingest_jobs') AND last_vacuum IS NOT NULL`).Scan(&vacuumed); err != nil {
		t.Fatal(err)
	}
	if vacuumed != 3 {
		t.Errorf("%d of the 3 key tables have a last_vacuum, want 3", vacuumed)
	}
}
