package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// The evidence plane. Every method reads, then writes; that is atomic
// because the transaction holds the database's write lock from BEGIN
// IMMEDIATE on. Methods that write several rows do so inside a savepoint
// of their own, so that a failure half-way leaves nothing behind even
// when the caller carries on with the transaction.

// Scrub moves every committed page from the write-ahead log into the
// database file and truncates the log to zero bytes. Run it right after
// a crypto-shred: with secure_delete on, the erased key material is
// overwritten in the database file, and the truncation drops the WAL
// frames that still held it. It fails when another connection (another
// process) keeps the checkpoint from completing; try again later.
func (db *DB) Scrub(ctx context.Context) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.Scrub")
	var busy, logFrames, checkpointed int
	if err := db.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &checkpointed); err != nil {
		return err
	}
	if busy != 0 {
		return errors.New("wal checkpoint blocked by another connection")
	}
	return nil
}

// savepoint runs fn inside a savepoint named name (a constant), rolled
// back when fn fails. A failed undo leaves the transaction unusable: that
// is reported rather than the kind of fn's error, which callers act on.
func (t *tenantTx) savepoint(name string, fn func() error) error {
	if _, err := t.tx.ExecContext(t.ctx, `SAVEPOINT `+name); err != nil {
		return err
	}
	if err := fn(); err != nil {
		if _, rerr := t.tx.ExecContext(t.ctx, `ROLLBACK TO `+name); rerr != nil {
			return fmt.Errorf("rolling back after %v: %w", err, rerr)
		}
		if _, rerr := t.tx.ExecContext(t.ctx, `RELEASE `+name); rerr != nil {
			return fmt.Errorf("releasing after %v: %w", err, rerr)
		}
		return err
	}
	_, err := t.tx.ExecContext(t.ctx, `RELEASE `+name)
	return err
}

// shreddedAt is the tenant's shred time, or nil.
func (t *tenantTx) shreddedAt() (*time.Time, error) {
	var at sql.NullInt64
	err := t.tx.QueryRowContext(t.ctx,
		`SELECT shredded_at FROM evidence_heads WHERE tenant_id = ?`, t.tenant).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return fromNullMillis(at), err
}

// checkKEK rejects what the schema would reject less clearly: KEK
// records come from the key provider code, so a failure is a bug there.
func checkKEK(k *store.TenantKEK) error {
	switch {
	case k.Version <= 0 || k.Provider == "":
		return errors.New("tenant kek without version or provider")
	case k.State != "active" && k.State != "retired" && k.State != "destroyed":
		return errors.New("tenant kek of unknown state")
	case k.State != "active" && (k.Wrapped != "" || k.IndexKey != ""):
		return errors.New("inactive tenant kek with key material")
	}
	return nil
}

func (t *tenantTx) AddTenantKEK(k *store.TenantKEK) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.AddTenantKEK")
	if err := t.enter(); err != nil {
		return err
	}
	if err := checkKEK(k); err != nil {
		return err
	}
	if shred, err := t.shreddedAt(); err != nil {
		return err
	} else if shred != nil {
		return vaultcrux.E(vaultcrux.Conflict, "tenant keys are shredded")
	}
	_, err = t.tx.ExecContext(t.ctx,
		`INSERT INTO tenant_keks (tenant_id, `+kekColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.tenant, k.Version, k.Provider, k.Wrapped, k.IndexKey, k.State,
		millis(k.CreatedAt), nullMillis(k.RetiredAt), nullMillis(k.DestroyedAt))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "kek version exists or another version is active")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

func (t *tenantTx) ActiveTenantKEK() (_ *store.TenantKEK, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ActiveTenantKEK")
	if err := t.enter(); err != nil {
		return nil, err
	}
	k, err := scanKEK(t.tx.QueryRowContext(t.ctx,
		`SELECT `+kekColumns+` FROM tenant_keks WHERE tenant_id = ? AND state = 'active'`, t.tenant))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "no active tenant kek")
	}
	return k, err
}

func (t *tenantTx) ListTenantKEKs() (_ []*store.TenantKEK, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListTenantKEKs")
	if err := t.enter(); err != nil {
		return nil, err
	}
	rows, err := t.tx.QueryContext(t.ctx,
		`SELECT `+kekColumns+` FROM tenant_keks WHERE tenant_id = ? ORDER BY version`, t.tenant)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanKEK)
}

// RetireTenantKEK keeps the first retirement time when called twice, and
// leaves a destroyed version as it is.
func (t *tenantTx) RetireTenantKEK(version int, at time.Time) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.RetireTenantKEK")
	if err := t.enter(); err != nil {
		return err
	}
	res, err := t.tx.ExecContext(t.ctx,
		`UPDATE tenant_keks SET
		     state = CASE state WHEN 'destroyed' THEN state ELSE 'retired' END,
		     retired_at = CASE state WHEN 'destroyed' THEN retired_at ELSE COALESCE(retired_at, ?) END,
		     wrapped = '', index_key = ''
		 WHERE tenant_id = ? AND version = ?`,
		millis(at), t.tenant, version)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return vaultcrux.E(vaultcrux.NotFound, "kek version not found")
	}
	return nil
}

func (t *tenantTx) ShredTenantKeys(at time.Time) (_ int, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ShredTenantKeys")
	if err := t.enter(); err != nil {
		return 0, err
	}
	var n int64
	err = t.savepoint("shred_tenant_keys", func() error {
		_, err := t.tx.ExecContext(t.ctx,
			`INSERT INTO evidence_heads (tenant_id, shredded_at) VALUES (?1, ?2)
			 ON CONFLICT (tenant_id) DO UPDATE SET shredded_at = COALESCE(shredded_at, ?2)`,
			t.tenant, millis(at))
		if isForeignKey(err) {
			return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
		}
		if err != nil {
			return err
		}
		res, err := t.tx.ExecContext(t.ctx,
			`UPDATE tenant_keks SET state = 'destroyed', destroyed_at = ?, wrapped = '', index_key = ''
			 WHERE tenant_id = ? AND state <> 'destroyed'`, millis(at), t.tenant)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		if _, err := t.tx.ExecContext(t.ctx,
			`UPDATE documents SET dek = '' WHERE tenant_id = ? AND dek <> ''`, t.tenant); err != nil {
			return err
		}
		_, err = t.tx.ExecContext(t.ctx,
			`UPDATE ingest_jobs SET dek = NULL WHERE tenant_id = ? AND dek IS NOT NULL`, t.tenant)
		return err
	})
	return int(n), err
}

func (t *tenantTx) TenantShreddedAt() (_ *time.Time, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.TenantShreddedAt")
	if err := t.enter(); err != nil {
		return nil, err
	}
	return t.shreddedAt()
}

func (t *tenantTx) GetDocument(docID string) (_ *store.Document, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.GetDocument")
	if err := t.enter(); err != nil {
		return nil, err
	}
	return t.getDocument(docID)
}

func (t *tenantTx) DocumentVersion(docID string) (_ int, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.DocumentVersion")
	if err := t.enter(); err != nil {
		return 0, err
	}
	var v int
	err = t.tx.QueryRowContext(t.ctx, `SELECT version FROM documents WHERE tenant_id = ? AND doc_id = ?`, t.tenant, docID).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

func (t *tenantTx) getDocument(docID string) (*store.Document, error) {
	d, err := scanDocument(t.tx.QueryRowContext(t.ctx,
		`SELECT `+documentColumns+` FROM documents WHERE tenant_id = ? AND doc_id = ? AND deleted_at IS NULL`,
		t.tenant, docID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "document not found")
	}
	return d, err
}

// checkDocument rejects what the schema would reject less clearly: the
// records come from the ingest code, so a failure is a bug there.
func checkDocument(d *store.Document, chunks []*store.Chunk) error {
	if d.ID == "" || d.Version <= 0 {
		return errors.New("document without id or version")
	}
	if !validTrust(d.Trust) {
		return errors.New("document of unknown trust")
	}
	for _, c := range chunks {
		switch {
		case c.ID == "":
			return errors.New("chunk without id")
		case c.DocID != d.ID || c.DocVersion != d.Version:
			return errors.New("chunk of another document version")
		case !validTrust(c.Trust):
			return errors.New("chunk of unknown trust")
		}
	}
	return nil
}

func validTrust(trust string) bool { return trust == "trusted" || trust == "untrusted" }

// PutDocument stores d.CreatedAt as the version's time and now as the
// time of the index change.
func (t *tenantTx) PutDocument(d *store.Document, chunks []*store.Chunk, now time.Time) (_ int64, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.PutDocument")
	if err := t.enter(); err != nil {
		return 0, err
	}
	if err := checkDocument(d, chunks); err != nil {
		return 0, err
	}
	var prev int
	err = t.tx.QueryRowContext(t.ctx,
		`SELECT version FROM documents WHERE tenant_id = ? AND doc_id = ?`, t.tenant, d.ID).Scan(&prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	if d.Version != prev+1 {
		return 0, vaultcrux.E(vaultcrux.Conflict, "document version does not follow")
	}
	var seq int64
	err = t.savepoint("put_document", func() error {
		_, err := t.tx.ExecContext(t.ctx,
			`INSERT INTO documents (tenant_id, `+documentColumns+`, deleted_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)
			 ON CONFLICT (tenant_id, doc_id) DO UPDATE SET
			     corpus_id = excluded.corpus_id, version = excluded.version, title = excluded.title,
			     url = excluded.url, mime_type = excluded.mime_type, source = excluded.source,
			     trust = excluded.trust, content_hash = excluded.content_hash, bytes = excluded.bytes,
			     chunks = excluded.chunks, dek = excluded.dek, kek_version = excluded.kek_version,
			     created_at = excluded.created_at, deleted_at = NULL`,
			t.tenant, d.ID, d.CorpusID, d.Version, d.Title, d.URL, d.MIMEType, d.Source, d.Trust,
			d.ContentHash, d.Bytes, d.Chunks, d.DEK, d.KEKVersion, millis(d.CreatedAt))
		if isForeignKey(err) {
			return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
		}
		if err != nil {
			return err
		}
		if _, err := t.tx.ExecContext(t.ctx,
			`DELETE FROM chunks WHERE tenant_id = ? AND doc_id = ?`, t.tenant, d.ID); err != nil {
			return err
		}
		if err := t.insertChunks(chunks); err != nil {
			return err
		}
		seq, err = t.appendIndexChange("put", d.ID, d.Version, now)
		return err
	})
	return seq, err
}

func (t *tenantTx) insertChunks(chunks []*store.Chunk) error {
	if len(chunks) == 0 {
		return nil
	}
	stmt, err := t.tx.PrepareContext(t.ctx,
		`INSERT INTO chunks (tenant_id, `+chunkColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, c := range chunks {
		_, err := stmt.ExecContext(t.ctx, t.tenant, c.ID, c.DocID, c.DocVersion, c.Seq, c.CorpusID, c.Trust,
			notNullBytes(c.Sealed), c.TextHash, c.Length, notNullBytes(c.Terms), millis(c.CreatedAt))
		if isUnique(err) {
			return vaultcrux.E(vaultcrux.Conflict, "chunk id already exists")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// notNullBytes stores a nil slice as an empty blob; reads return both as nil.
func notNullBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// appendIndexChange takes the tenant's next Seq and records the change.
func (t *tenantTx) appendIndexChange(op, docID string, version int, at time.Time) (int64, error) {
	var seq int64
	err := t.tx.QueryRowContext(t.ctx,
		`INSERT INTO evidence_heads (tenant_id, index_seq) VALUES (?, 1)
		 ON CONFLICT (tenant_id) DO UPDATE SET index_seq = index_seq + 1
		 RETURNING index_seq`, t.tenant).Scan(&seq)
	if isForeignKey(err) {
		return 0, vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	if err != nil {
		return 0, err
	}
	_, err = t.tx.ExecContext(t.ctx,
		`INSERT INTO index_changes (tenant_id, seq, op, doc_id, version, at) VALUES (?, ?, ?, ?, ?, ?)`,
		t.tenant, seq, op, docID, version, millis(at))
	if isUnique(err) {
		// The head and the log disagree: a bug, not a client's conflict.
		return 0, errors.New("index change seq already taken")
	}
	return seq, err
}

func (t *tenantTx) DeleteDocument(docID string, now time.Time) (_ *store.Document, _ int64, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.DeleteDocument")
	if err := t.enter(); err != nil {
		return nil, 0, err
	}
	d, err := t.getDocument(docID)
	if err != nil {
		return nil, 0, err
	}
	var seq int64
	err = t.savepoint("delete_document", func() error {
		if _, err := t.tx.ExecContext(t.ctx,
			`UPDATE documents SET deleted_at = ?, dek = '' WHERE tenant_id = ? AND doc_id = ?`,
			millis(now), t.tenant, docID); err != nil {
			return err
		}
		if _, err := t.tx.ExecContext(t.ctx,
			`DELETE FROM chunks WHERE tenant_id = ? AND doc_id = ?`, t.tenant, docID); err != nil {
			return err
		}
		var err error
		seq, err = t.appendIndexChange("delete", docID, d.Version, now)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return d, seq, nil
}

func (t *tenantTx) ListDocuments(after string, limit int) (_ []*store.Document, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListDocuments")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "limit must be positive")
	}
	rows, err := t.tx.QueryContext(t.ctx,
		`SELECT `+documentColumns+` FROM documents
		 WHERE tenant_id = ? AND doc_id > ? AND deleted_at IS NULL ORDER BY doc_id LIMIT ?`,
		t.tenant, after, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanDocument)
}

// rewrapTarget is a row whose DEK RewrapDEKs replaces.
type rewrapTarget struct {
	id, dek string
}

func (t *tenantTx) RewrapDEKs(from, to int, fn func(string) (string, error)) (_ int, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.RewrapDEKs")
	if err := t.enter(); err != nil {
		return 0, err
	}
	// Read everything before writing: one connection cannot update rows
	// while it still steps through a query.
	docs, err := t.rewrapTargets(
		`SELECT doc_id, dek FROM documents
		 WHERE tenant_id = ? AND kek_version = ? AND deleted_at IS NULL AND dek <> '' ORDER BY doc_id`, from)
	if err != nil {
		return 0, err
	}
	jobs, err := t.rewrapTargets(
		`SELECT job_id, dek FROM ingest_jobs
		 WHERE tenant_id = ? AND kek_version = ? AND status IN ('queued', 'processing')
		   AND dek IS NOT NULL AND dek <> '' ORDER BY job_id`, from)
	if err != nil {
		return 0, err
	}
	for _, list := range [][]rewrapTarget{docs, jobs} {
		for i := range list {
			if list[i].dek, err = fn(list[i].dek); err != nil {
				return 0, err
			}
		}
	}
	n := 0
	err = t.savepoint("rewrap_deks", func() error {
		for _, u := range []struct {
			sql  string
			rows []rewrapTarget
		}{
			{`UPDATE documents SET dek = ?, kek_version = ? WHERE tenant_id = ? AND doc_id = ?`, docs},
			{`UPDATE ingest_jobs SET dek = ?, kek_version = ? WHERE tenant_id = ? AND job_id = ?`, jobs},
		} {
			for _, r := range u.rows {
				res, err := t.tx.ExecContext(t.ctx, u.sql, r.dek, to, t.tenant, r.id)
				if err != nil {
					return err
				}
				m, err := res.RowsAffected()
				if err != nil {
					return err
				}
				n += int(m)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (t *tenantTx) rewrapTargets(query string, from int) ([]rewrapTarget, error) {
	rows, err := t.tx.QueryContext(t.ctx, query, t.tenant, from)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []rewrapTarget
	for rows.Next() {
		var r rewrapTarget
		if err := rows.Scan(&r.id, &r.dek); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// GetChunks asks for all ids in one statement (json_each, as LogHashes).
func (t *tenantTx) GetChunks(ids []string) (_ []*store.Chunk, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.GetChunks")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	rows, err := t.tx.QueryContext(t.ctx,
		`SELECT `+chunkColumns+` FROM chunks
		 WHERE tenant_id = ? AND chunk_id IN (SELECT value FROM json_each(?))`, t.tenant, string(list))
	if err != nil {
		return nil, err
	}
	found, err := collect(rows, scanChunk)
	if err != nil {
		return nil, err
	}
	return inOrder(ids, found), nil
}

// inOrder returns the chunks of found in the order of ids, skipping ids
// that were not found.
func inOrder(ids []string, found []*store.Chunk) []*store.Chunk {
	byID := make(map[string]*store.Chunk, len(found))
	for _, c := range found {
		byID[c.ID] = c
	}
	var out []*store.Chunk
	for _, id := range ids {
		if c, ok := byID[id]; ok {
			out = append(out, c)
		}
	}
	return out
}

func (t *tenantTx) ListChunks(after string, limit int) (_ []*store.Chunk, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListChunks")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "limit must be positive")
	}
	rows, err := t.tx.QueryContext(t.ctx,
		`SELECT `+chunkColumns+` FROM chunks WHERE tenant_id = ? AND chunk_id > ? ORDER BY chunk_id LIMIT ?`,
		t.tenant, after, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanChunk)
}

func (t *tenantTx) DocumentChunks(docID string, version int) (_ []*store.Chunk, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.DocumentChunks")
	if err := t.enter(); err != nil {
		return nil, err
	}
	rows, err := t.tx.QueryContext(t.ctx,
		`SELECT `+chunkColumns+` FROM chunks
		 WHERE tenant_id = ? AND doc_id = ? AND doc_version = ? ORDER BY seq, chunk_id`,
		t.tenant, docID, version)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanChunk)
}

func (t *tenantTx) IndexHead() (_ int64, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.IndexHead")
	if err := t.enter(); err != nil {
		return 0, err
	}
	var seq int64
	err = t.tx.QueryRowContext(t.ctx,
		`SELECT COALESCE(MAX(seq), 0) FROM index_changes WHERE tenant_id = ?`, t.tenant).Scan(&seq)
	return seq, err
}

func (t *tenantTx) IndexChanges(after int64, limit int) (_ []*store.IndexChange, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.IndexChanges")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "limit must be positive")
	}
	rows, err := t.tx.QueryContext(t.ctx,
		`SELECT seq, op, doc_id, version, at FROM index_changes
		 WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?`, t.tenant, after, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanIndexChange)
}

// checkIngestJob rejects what the schema would reject less clearly.
func checkIngestJob(tenant vaultcrux.TenantID, j *store.IngestJob) error {
	switch {
	case j.Tenant != tenant:
		return errors.New("ingest job tenant differs from the handle's tenant")
	case j.ID == "":
		return errors.New("ingest job without id")
	case j.Status != "queued":
		return errors.New("new ingest job not queued")
	case !validTrust(j.Trust):
		return errors.New("ingest job of unknown trust")
	}
	return nil
}

func (t *tenantTx) CreateIngestJob(j *store.IngestJob) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.CreateIngestJob")
	if err := t.enter(); err != nil {
		return err
	}
	if err := checkIngestJob(t.tenant, j); err != nil {
		return err
	}
	_, err = t.tx.ExecContext(t.ctx,
		`INSERT INTO ingest_jobs (`+jobColumns+`)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.tenant, j.ID, j.DocID, j.CorpusID, j.Title, j.URL, j.MIMEType, j.Source, j.Trust, j.Actor, j.AgentID,
		nilIfEmpty(j.Content), nullString(j.DEK), j.KEKVersion, j.Bytes, j.Status, j.Chunks, j.DocVersion,
		j.Unchanged, j.Error, j.ReceiptID, j.Lease, nullMillis(j.LeaseUntil), j.Attempts,
		millis(j.CreatedAt), millis(j.UpdatedAt))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "ingest job id already exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

func (t *tenantTx) GetIngestJob(id string) (_ *store.IngestJob, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.GetIngestJob")
	if err := t.enter(); err != nil {
		return nil, err
	}
	j, err := scanJob(t.tx.QueryRowContext(t.ctx,
		`SELECT `+jobColumns+` FROM ingest_jobs WHERE tenant_id = ? AND job_id = ?`, t.tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "ingest job not found")
	}
	return j, err
}

// FinishIngestJob is one conditional update; only a miss runs a second
// query, to tell an unknown job from a lost lease.
func (t *tenantTx) FinishIngestJob(j *store.IngestJob, lease string) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.FinishIngestJob")
	if err := t.enter(); err != nil {
		return err
	}
	if j.Status != "indexed" && j.Status != "failed" {
		return errors.New("ingest job finished with a status other than indexed or failed")
	}
	if lease == "" {
		return vaultcrux.E(vaultcrux.Conflict, "ingest job not held under this lease")
	}
	res, err := t.tx.ExecContext(t.ctx,
		`UPDATE ingest_jobs SET status = ?, chunks = ?, doc_version = ?, unchanged = ?, error = ?,
		     receipt_id = ?, updated_at = ?, content = NULL, dek = NULL
		 WHERE tenant_id = ? AND job_id = ? AND status = 'processing' AND lease = ?`,
		j.Status, j.Chunks, j.DocVersion, j.Unchanged, j.Error, j.ReceiptID, millis(j.UpdatedAt),
		t.tenant, j.ID, lease)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	var status string
	err = t.tx.QueryRowContext(t.ctx,
		`SELECT status FROM ingest_jobs WHERE tenant_id = ? AND job_id = ?`, t.tenant, j.ID).Scan(&status)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return vaultcrux.E(vaultcrux.NotFound, "ingest job not found")
	case err != nil:
		return err
	}
	return vaultcrux.E(vaultcrux.Conflict, "ingest job not held under this lease")
}

// ClaimIngestJobs reads and updates in one statement; the write lock of
// the transaction keeps every other claimer out until it commits.
func (s *systemTx) ClaimIngestJobs(lease string, now, leaseUntil time.Time, limit int) (_ []*store.IngestJob, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ClaimIngestJobs")
	if lease == "" {
		return nil, errors.New("claim without a lease")
	}
	if limit <= 0 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "limit must be positive")
	}
	rows, err := s.tx.QueryContext(s.ctx,
		`UPDATE ingest_jobs SET status = 'processing', lease = ?1, lease_until = ?2,
		     attempts = attempts + 1, updated_at = ?3
		 WHERE (tenant_id, job_id) IN (
		     SELECT tenant_id, job_id FROM ingest_jobs
		     WHERE status IN ('queued', 'processing')
		       AND (status = 'queued' OR lease_until <= ?3)
		     ORDER BY created_at, tenant_id, job_id LIMIT ?4)
		 RETURNING `+jobColumns,
		lease, millis(leaseUntil), millis(now), limit)
	if err != nil {
		return nil, err
	}
	jobs, err := collect(rows, scanJob)
	if err != nil {
		return nil, err
	}
	sortJobs(jobs)
	return jobs, nil
}

// sortJobs puts claimed jobs in the order they were picked: RETURNING
// promises none.
func sortJobs(jobs []*store.IngestJob) {
	slices.SortFunc(jobs, func(a, b *store.IngestJob) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		if c := strings.Compare(string(a.Tenant), string(b.Tenant)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// TenantsWithDocuments probes the log of each tenant that has a head
// row (every tenant with index changes has one), rather than scanning
// every change for distinct tenants.
func (s *systemTx) TenantsWithDocuments() (_ []vaultcrux.TenantID, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.TenantsWithDocuments")
	rows, err := s.tx.QueryContext(s.ctx,
		`SELECT h.tenant_id FROM evidence_heads h
		 WHERE EXISTS (SELECT 1 FROM index_changes c WHERE c.tenant_id = h.tenant_id)
		 ORDER BY h.tenant_id`)
	if err != nil {
		return nil, err
	}
	return collectTenantIDs(rows)
}

const kekColumns = `version, provider, wrapped, index_key, state, created_at, retired_at, destroyed_at`

func scanKEK(row scanner) (*store.TenantKEK, error) {
	var k store.TenantKEK
	var created int64
	var retired, destroyed sql.NullInt64
	if err := row.Scan(&k.Version, &k.Provider, &k.Wrapped, &k.IndexKey, &k.State,
		&created, &retired, &destroyed); err != nil {
		return nil, err
	}
	k.CreatedAt = fromMillis(created)
	k.RetiredAt, k.DestroyedAt = fromNullMillis(retired), fromNullMillis(destroyed)
	return &k, nil
}

const documentColumns = `doc_id, corpus_id, version, title, url, mime_type, source, trust, content_hash, bytes, chunks, dek, kek_version, created_at`

func scanDocument(row scanner) (*store.Document, error) {
	var d store.Document
	var created int64
	if err := row.Scan(&d.ID, &d.CorpusID, &d.Version, &d.Title, &d.URL, &d.MIMEType, &d.Source, &d.Trust,
		&d.ContentHash, &d.Bytes, &d.Chunks, &d.DEK, &d.KEKVersion, &created); err != nil {
		return nil, err
	}
	d.CreatedAt = fromMillis(created)
	return &d, nil
}

const chunkColumns = `chunk_id, doc_id, doc_version, seq, corpus_id, trust, sealed, text_hash, length, terms, created_at`

func scanChunk(row scanner) (*store.Chunk, error) {
	var c store.Chunk
	var created int64
	if err := row.Scan(&c.ID, &c.DocID, &c.DocVersion, &c.Seq, &c.CorpusID, &c.Trust, &c.Sealed,
		&c.TextHash, &c.Length, &c.Terms, &created); err != nil {
		return nil, err
	}
	c.Sealed, c.Terms = nilIfEmpty(c.Sealed), nilIfEmpty(c.Terms)
	c.CreatedAt = fromMillis(created)
	return &c, nil
}

func scanIndexChange(row scanner) (*store.IndexChange, error) {
	var c store.IndexChange
	var at int64
	if err := row.Scan(&c.Seq, &c.Op, &c.DocID, &c.Version, &at); err != nil {
		return nil, err
	}
	c.At = fromMillis(at)
	return &c, nil
}

const jobColumns = `tenant_id, job_id, doc_id, corpus_id, title, url, mime_type, source, trust, actor, agent_id,
	content, dek, kek_version, bytes, status, chunks, doc_version, unchanged, error, receipt_id,
	lease, lease_until, attempts, created_at, updated_at`

func scanJob(row scanner) (*store.IngestJob, error) {
	var j store.IngestJob
	var dek sql.NullString
	var leaseUntil sql.NullInt64
	var created, updated int64
	if err := row.Scan(&j.Tenant, &j.ID, &j.DocID, &j.CorpusID, &j.Title, &j.URL, &j.MIMEType, &j.Source,
		&j.Trust, &j.Actor, &j.AgentID, &j.Content, &dek, &j.KEKVersion, &j.Bytes, &j.Status, &j.Chunks,
		&j.DocVersion, &j.Unchanged, &j.Error, &j.ReceiptID, &j.Lease, &leaseUntil, &j.Attempts,
		&created, &updated); err != nil {
		return nil, err
	}
	j.Content, j.DEK = nilIfEmpty(j.Content), dek.String
	j.LeaseUntil = fromNullMillis(leaseUntil)
	j.CreatedAt, j.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &j, nil
}
