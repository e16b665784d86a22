package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// The evidence plane. Every method that writes documents, chunks, the
// index change log or key material first locks the tenant's
// evidence_heads row (lockEvidenceHead): that serialises them within the
// tenant across replicas, so that a read-check-write (the version check
// of PutDocument, the shred check of AddTenantKEK) cannot interleave with
// another, and Seqs are handed out consecutively with no gap: both of two
// concurrent PutDocuments succeed, one after the other. Their checks run
// before their first write, so a Conflict leaves the transaction as it
// was and usable.

// Scrub vacuums the tables that hold key material (tenant_keks, and the
// wrapped DEKs of documents and ingest_jobs), so that the row versions
// that still held erased material are removed and their space is marked
// for reuse. Run it right after a crypto-shred. It runs outside any
// transaction, as the role that owns the tables (the role the store
// connects as, which ran the migrations). VACUUM does not overwrite the
// freed space or the write-ahead log at once; the erasure is complete
// only as PostgreSQL reuses them.
func (db *DB) Scrub(ctx context.Context) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.Scrub")
	_, err = db.pool.Exec(ctx, `VACUUM tenant_keks, documents, ingest_jobs`)
	return err
}

const lockEvidenceHead = `SELECT shredded_at FROM evidence_heads WHERE tenant_id = $1 FOR UPDATE`

// lockEvidenceHead locks the tenant's head row until the transaction
// ends, creating it on first use (two creators meet on its primary key,
// and the loser waits for the winner and then locks its row, as LogHead
// does). It returns the tenant's shred time, or nil.
func (t *tenantTx) lockEvidenceHead() (*time.Time, error) {
	var shredded *time.Time
	err := t.tx.QueryRow(t.ctx, lockEvidenceHead, string(t.tenant)).Scan(&shredded)
	if errors.Is(err, pgx.ErrNoRows) {
		_, err = t.tx.Exec(t.ctx,
			`INSERT INTO evidence_heads (tenant_id) VALUES ($1) ON CONFLICT (tenant_id) DO NOTHING`,
			string(t.tenant))
		if isForeignKey(err) {
			return nil, vaultcrux.E(vaultcrux.NotFound, "tenant not found")
		}
		if err != nil {
			return nil, err
		}
		err = t.tx.QueryRow(t.ctx, lockEvidenceHead, string(t.tenant)).Scan(&shredded)
	}
	if err != nil {
		return nil, err
	}
	return utcPtr(shredded), nil
}

func utcPtr(t *time.Time) *time.Time {
	if t != nil {
		*t = t.UTC()
	}
	return t
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
	defer vaultcrux.Wrap(&err, "postgres.AddTenantKEK")
	if err := t.enter(); err != nil {
		return err
	}
	if err := checkKEK(k); err != nil {
		return err
	}
	shredded, err := t.lockEvidenceHead()
	if err != nil {
		return err
	}
	if shredded != nil {
		return vaultcrux.E(vaultcrux.Conflict, "tenant keys are shredded")
	}
	_, err = t.tx.Exec(t.ctx,
		`INSERT INTO tenant_keks (tenant_id, `+kekColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		string(t.tenant), k.Version, k.Provider, k.Wrapped, k.IndexKey, k.State,
		ms(k.CreatedAt), msPtr(k.RetiredAt), msPtr(k.DestroyedAt))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "kek version exists or another version is active")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

func (t *tenantTx) ActiveTenantKEK() (_ *store.TenantKEK, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ActiveTenantKEK")
	if err := t.enter(); err != nil {
		return nil, err
	}
	k, err := scanKEK(t.tx.QueryRow(t.ctx,
		`SELECT `+kekColumns+` FROM tenant_keks WHERE tenant_id = $1 AND state = 'active'`, string(t.tenant)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "no active tenant kek")
	}
	return k, err
}

func (t *tenantTx) ListTenantKEKs() (_ []*store.TenantKEK, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListTenantKEKs")
	if err := t.enter(); err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(t.ctx,
		`SELECT `+kekColumns+` FROM tenant_keks WHERE tenant_id = $1 ORDER BY version`, string(t.tenant))
	if err != nil {
		return nil, err
	}
	return collect(rows, scanKEK)
}

// RetireTenantKEK keeps the first retirement time when called twice, and
// leaves a destroyed version as it is.
func (t *tenantTx) RetireTenantKEK(version int, at time.Time) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.RetireTenantKEK")
	if err := t.enter(); err != nil {
		return err
	}
	tag, err := t.tx.Exec(t.ctx,
		`UPDATE tenant_keks SET
		     state = CASE state WHEN 'destroyed' THEN state ELSE 'retired' END,
		     retired_at = CASE state WHEN 'destroyed' THEN retired_at ELSE COALESCE(retired_at, $1) END,
		     wrapped = '', index_key = ''
		 WHERE tenant_id = $2 AND version = $3`,
		ms(at), string(t.tenant), version)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return vaultcrux.E(vaultcrux.NotFound, "kek version not found")
	}
	return nil
}

// ShredTenantKeys records the shred first: that locks the head row, so a
// concurrent AddTenantKEK either committed before (and its version is
// destroyed here) or sees the shred and fails.
func (t *tenantTx) ShredTenantKeys(at time.Time) (_ int, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ShredTenantKeys")
	if err := t.enter(); err != nil {
		return 0, err
	}
	_, err = t.tx.Exec(t.ctx,
		`INSERT INTO evidence_heads AS h (tenant_id, shredded_at) VALUES ($1, $2)
		 ON CONFLICT (tenant_id) DO UPDATE SET shredded_at = COALESCE(h.shredded_at, excluded.shredded_at)`,
		string(t.tenant), ms(at))
	if isForeignKey(err) {
		return 0, vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	if err != nil {
		return 0, err
	}
	var destroyed int64
	b := &pgx.Batch{}
	b.Queue(`UPDATE tenant_keks SET state = 'destroyed', destroyed_at = $1, wrapped = '', index_key = ''
		WHERE tenant_id = $2 AND state <> 'destroyed'`, ms(at), string(t.tenant)).
		Exec(func(tag pgconn.CommandTag) error {
			destroyed = tag.RowsAffected()
			return nil
		})
	b.Queue(`UPDATE documents SET dek = '' WHERE tenant_id = $1 AND dek <> ''`, string(t.tenant))
	b.Queue(`UPDATE ingest_jobs SET dek = NULL WHERE tenant_id = $1 AND dek IS NOT NULL`, string(t.tenant))
	if err := t.tx.SendBatch(t.ctx, b).Close(); err != nil {
		return 0, err
	}
	return int(destroyed), nil
}

func (t *tenantTx) TenantShreddedAt() (_ *time.Time, err error) {
	defer vaultcrux.Wrap(&err, "postgres.TenantShreddedAt")
	if err := t.enter(); err != nil {
		return nil, err
	}
	var at *time.Time
	err = t.tx.QueryRow(t.ctx,
		`SELECT shredded_at FROM evidence_heads WHERE tenant_id = $1`, string(t.tenant)).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return utcPtr(at), nil
}

func (t *tenantTx) GetDocument(docID string) (_ *store.Document, err error) {
	defer vaultcrux.Wrap(&err, "postgres.GetDocument")
	if err := t.enter(); err != nil {
		return nil, err
	}
	return t.getDocument(docID)
}

func (t *tenantTx) DocumentVersion(docID string) (_ int, err error) {
	defer vaultcrux.Wrap(&err, "postgres.DocumentVersion")
	if err := t.enter(); err != nil {
		return 0, err
	}
	var v int
	err = t.tx.QueryRow(t.ctx, `SELECT version FROM documents WHERE tenant_id = $1 AND doc_id = $2`, string(t.tenant), docID).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

func (t *tenantTx) getDocument(docID string) (*store.Document, error) {
	d, err := scanDocument(t.tx.QueryRow(t.ctx,
		`SELECT `+documentColumns+` FROM documents WHERE tenant_id = $1 AND doc_id = $2 AND deleted_at IS NULL`,
		string(t.tenant), docID))
	if errors.Is(err, pgx.ErrNoRows) {
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

const upsertDocument = `INSERT INTO documents (tenant_id, ` + documentColumns + `, deleted_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, NULL)
	ON CONFLICT (tenant_id, doc_id) DO UPDATE SET
	    corpus_id = excluded.corpus_id, version = excluded.version, title = excluded.title,
	    url = excluded.url, mime_type = excluded.mime_type, source = excluded.source,
	    trust = excluded.trust, content_hash = excluded.content_hash, bytes = excluded.bytes,
	    chunks = excluded.chunks, dek = excluded.dek, kek_version = excluded.kek_version,
	    created_at = excluded.created_at, deleted_at = NULL`

// insertChunks inserts every chunk in one statement; the rows travel as
// one array per column.
const insertChunks = `INSERT INTO chunks (tenant_id, ` + chunkColumns + `)
SELECT $1, c.* FROM unnest($2::text[], $3::text[], $4::integer[], $5::integer[], $6::text[], $7::text[],
	$8::bytea[], $9::text[], $10::integer[], $11::bytea[], $12::timestamptz[]) AS c`

// appendIndexChange takes the tenant's next Seq from its (locked) head
// and records the change, in one statement.
const appendIndexChange = `WITH head AS (
	UPDATE evidence_heads SET index_seq = index_seq + 1 WHERE tenant_id = $1 RETURNING tenant_id, index_seq
)
INSERT INTO index_changes (tenant_id, seq, op, doc_id, version, at)
SELECT head.tenant_id, head.index_seq, $2, $3, $4, $5 FROM head
RETURNING seq`

// PutDocument stores d.CreatedAt as the version's time and now as the
// time of the index change. Its writes go in one batch.
func (t *tenantTx) PutDocument(d *store.Document, chunks []*store.Chunk, now time.Time) (_ int64, err error) {
	defer vaultcrux.Wrap(&err, "postgres.PutDocument")
	if err := t.enter(); err != nil {
		return 0, err
	}
	if err := checkDocument(d, chunks); err != nil {
		return 0, err
	}
	if _, err := t.lockEvidenceHead(); err != nil {
		return 0, err
	}
	var prev int
	err = t.tx.QueryRow(t.ctx,
		`SELECT version FROM documents WHERE tenant_id = $1 AND doc_id = $2`, string(t.tenant), d.ID).Scan(&prev)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, err
	}
	if d.Version != prev+1 {
		return 0, vaultcrux.E(vaultcrux.Conflict, "document version does not follow")
	}
	var seq int64
	b := &pgx.Batch{}
	b.Queue(upsertDocument, string(t.tenant), d.ID, d.CorpusID, d.Version, d.Title, d.URL, d.MIMEType,
		d.Source, d.Trust, d.ContentHash, d.Bytes, d.Chunks, d.DEK, d.KEKVersion, ms(d.CreatedAt))
	b.Queue(`DELETE FROM chunks WHERE tenant_id = $1 AND doc_id = $2`, string(t.tenant), d.ID)
	if len(chunks) > 0 {
		b.Queue(insertChunks, chunkArrays(string(t.tenant), chunks)...)
	}
	b.Queue(appendIndexChange, string(t.tenant), "put", d.ID, d.Version, ms(now)).
		QueryRow(func(row pgx.Row) error { return row.Scan(&seq) })
	err = t.tx.SendBatch(t.ctx, b).Close()
	switch {
	case isUnique(err):
		return 0, vaultcrux.E(vaultcrux.Conflict, "chunk id already exists")
	case err != nil:
		return 0, err
	}
	return seq, nil
}

// chunkArrays returns the arguments of insertChunks.
func chunkArrays(tenant string, chunks []*store.Chunk) []any {
	n := len(chunks)
	var (
		ids, docs, corpora, trusts, hashes = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		versions, seqs, lengths            = make([]int32, n), make([]int32, n), make([]int32, n)
		sealed, terms                      = make([][]byte, n), make([][]byte, n)
		created                            = make([]time.Time, n)
	)
	for i, c := range chunks {
		ids[i], docs[i], corpora[i], trusts[i], hashes[i] = c.ID, c.DocID, c.CorpusID, c.Trust, c.TextHash
		versions[i], seqs[i], lengths[i] = int32(c.DocVersion), int32(c.Seq), int32(c.Length)
		sealed[i], terms[i] = notNullBytes(c.Sealed), notNullBytes(c.Terms)
		created[i] = ms(c.CreatedAt)
	}
	return []any{tenant, ids, docs, versions, seqs, corpora, trusts, sealed, hashes, lengths, terms, created}
}

// notNullBytes stores a nil slice as an empty bytea; reads return both as nil.
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

func (t *tenantTx) DeleteDocument(docID string, now time.Time) (_ *store.Document, _ int64, err error) {
	defer vaultcrux.Wrap(&err, "postgres.DeleteDocument")
	if err := t.enter(); err != nil {
		return nil, 0, err
	}
	if _, err := t.lockEvidenceHead(); err != nil {
		return nil, 0, err
	}
	d, err := t.getDocument(docID)
	if err != nil {
		return nil, 0, err
	}
	var seq int64
	b := &pgx.Batch{}
	b.Queue(`UPDATE documents SET deleted_at = $1, dek = '' WHERE tenant_id = $2 AND doc_id = $3`,
		ms(now), string(t.tenant), docID)
	b.Queue(`DELETE FROM chunks WHERE tenant_id = $1 AND doc_id = $2`, string(t.tenant), docID)
	b.Queue(appendIndexChange, string(t.tenant), "delete", docID, d.Version, ms(now)).
		QueryRow(func(row pgx.Row) error { return row.Scan(&seq) })
	if err := t.tx.SendBatch(t.ctx, b).Close(); err != nil {
		return nil, 0, err
	}
	return d, seq, nil
}

func (t *tenantTx) ListDocuments(after string, limit int) (_ []*store.Document, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListDocuments")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "limit must be positive")
	}
	rows, err := t.tx.Query(t.ctx,
		`SELECT `+documentColumns+` FROM documents
		 WHERE tenant_id = $1 AND doc_id > $2 AND deleted_at IS NULL ORDER BY doc_id LIMIT $3`,
		string(t.tenant), after, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanDocument)
}

// RewrapDEKs locks the rows it reads. The head lock keeps puts, deletes
// and shreds out; the row locks keep a worker from finishing (and
// erasing) a job in between, and the updates re-check their conditions
// all the same.
func (t *tenantTx) RewrapDEKs(from, to int, fn func(string) (string, error)) (_ int, err error) {
	defer vaultcrux.Wrap(&err, "postgres.RewrapDEKs")
	if err := t.enter(); err != nil {
		return 0, err
	}
	if _, err := t.lockEvidenceHead(); err != nil {
		return 0, err
	}
	docIDs, docDEKs, err := t.rewrapTargets(
		`SELECT doc_id, dek FROM documents
		 WHERE tenant_id = $1 AND kek_version = $2 AND deleted_at IS NULL AND dek <> ''
		 ORDER BY doc_id FOR UPDATE`, from)
	if err != nil {
		return 0, err
	}
	jobIDs, jobDEKs, err := t.rewrapTargets(
		`SELECT job_id, dek FROM ingest_jobs
		 WHERE tenant_id = $1 AND kek_version = $2 AND status IN ('queued', 'processing')
		   AND dek IS NOT NULL AND dek <> ''
		 ORDER BY job_id FOR UPDATE`, from)
	if err != nil {
		return 0, err
	}
	for _, deks := range [][]string{docDEKs, jobDEKs} {
		for i := range deks {
			if deks[i], err = fn(deks[i]); err != nil {
				return 0, err
			}
		}
	}
	var n int64
	count := func(tag pgconn.CommandTag) error {
		n += tag.RowsAffected()
		return nil
	}
	b := &pgx.Batch{}
	if len(docIDs) > 0 {
		b.Queue(`UPDATE documents d SET dek = u.dek, kek_version = $3
			FROM unnest($4::text[], $5::text[]) AS u (doc_id, dek)
			WHERE d.tenant_id = $1 AND d.doc_id = u.doc_id AND d.kek_version = $2 AND d.deleted_at IS NULL`,
			string(t.tenant), from, to, docIDs, docDEKs).Exec(count)
	}
	if len(jobIDs) > 0 {
		b.Queue(`UPDATE ingest_jobs j SET dek = u.dek, kek_version = $3
			FROM unnest($4::text[], $5::text[]) AS u (job_id, dek)
			WHERE j.tenant_id = $1 AND j.job_id = u.job_id AND j.kek_version = $2
			  AND j.status IN ('queued', 'processing') AND j.dek IS NOT NULL`,
			string(t.tenant), from, to, jobIDs, jobDEKs).Exec(count)
	}
	if b.Len() == 0 {
		return 0, nil
	}
	if err := t.tx.SendBatch(t.ctx, b).Close(); err != nil {
		return 0, err
	}
	return int(n), nil
}

func (t *tenantTx) rewrapTargets(query string, from int) (ids, deks []string, err error) {
	rows, err := t.tx.Query(t.ctx, query, string(t.tenant), from)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, dek string
		if err := rows.Scan(&id, &dek); err != nil {
			return nil, nil, err
		}
		ids, deks = append(ids, id), append(deks, dek)
	}
	return ids, deks, rows.Err()
}

func (t *tenantTx) GetChunks(ids []string) (_ []*store.Chunk, err error) {
	defer vaultcrux.Wrap(&err, "postgres.GetChunks")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := t.tx.Query(t.ctx,
		`SELECT `+chunkColumns+` FROM chunks WHERE tenant_id = $1 AND chunk_id = ANY($2)`, string(t.tenant), ids)
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
	defer vaultcrux.Wrap(&err, "postgres.ListChunks")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "limit must be positive")
	}
	rows, err := t.tx.Query(t.ctx,
		`SELECT `+chunkColumns+` FROM chunks WHERE tenant_id = $1 AND chunk_id > $2 ORDER BY chunk_id LIMIT $3`,
		string(t.tenant), after, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanChunk)
}

func (t *tenantTx) DocumentChunks(docID string, version int) (_ []*store.Chunk, err error) {
	defer vaultcrux.Wrap(&err, "postgres.DocumentChunks")
	if err := t.enter(); err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(t.ctx,
		`SELECT `+chunkColumns+` FROM chunks
		 WHERE tenant_id = $1 AND doc_id = $2 AND doc_version = $3 ORDER BY seq, chunk_id`,
		string(t.tenant), docID, version)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanChunk)
}

func (t *tenantTx) IndexHead() (_ int64, err error) {
	defer vaultcrux.Wrap(&err, "postgres.IndexHead")
	if err := t.enter(); err != nil {
		return 0, err
	}
	var seq int64
	err = t.tx.QueryRow(t.ctx,
		`SELECT COALESCE(MAX(seq), 0) FROM index_changes WHERE tenant_id = $1`, string(t.tenant)).Scan(&seq)
	return seq, err
}

func (t *tenantTx) IndexChanges(after int64, limit int) (_ []*store.IndexChange, err error) {
	defer vaultcrux.Wrap(&err, "postgres.IndexChanges")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "limit must be positive")
	}
	rows, err := t.tx.Query(t.ctx,
		`SELECT seq, op, doc_id, version, at FROM index_changes
		 WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, string(t.tenant), after, limit)
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
	defer vaultcrux.Wrap(&err, "postgres.CreateIngestJob")
	if err := t.enter(); err != nil {
		return err
	}
	if err := checkIngestJob(t.tenant, j); err != nil {
		return err
	}
	_, err = t.tx.Exec(t.ctx,
		`INSERT INTO ingest_jobs (`+jobColumns+`)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
		         $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)`,
		string(t.tenant), j.ID, j.DocID, j.CorpusID, j.Title, j.URL, j.MIMEType, j.Source, j.Trust, j.Actor, j.AgentID,
		nilIfEmpty(j.Content), nullString(j.DEK), j.KEKVersion, j.Bytes, j.Status, j.Chunks, j.DocVersion,
		j.Unchanged, j.Error, j.ReceiptID, j.Lease, msPtr(j.LeaseUntil), j.Attempts,
		ms(j.CreatedAt), ms(j.UpdatedAt))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "ingest job id already exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

func (t *tenantTx) GetIngestJob(id string) (_ *store.IngestJob, err error) {
	defer vaultcrux.Wrap(&err, "postgres.GetIngestJob")
	if err := t.enter(); err != nil {
		return nil, err
	}
	j, err := scanJob(t.tx.QueryRow(t.ctx,
		`SELECT `+jobColumns+` FROM ingest_jobs WHERE tenant_id = $1 AND job_id = $2`, string(t.tenant), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "ingest job not found")
	}
	return j, err
}

// FinishIngestJob is one conditional update. A concurrent re-claim of the
// job holds its row; this update waits for it and, READ COMMITTED,
// re-checks the lease after it commits, so it updates nothing. Only a
// miss runs a second query, to tell an unknown job from a lost lease.
func (t *tenantTx) FinishIngestJob(j *store.IngestJob, lease string) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.FinishIngestJob")
	if err := t.enter(); err != nil {
		return err
	}
	if j.Status != "indexed" && j.Status != "failed" {
		return errors.New("ingest job finished with a status other than indexed or failed")
	}
	if lease == "" {
		return vaultcrux.E(vaultcrux.Conflict, "ingest job not held under this lease")
	}
	tag, err := t.tx.Exec(t.ctx,
		`UPDATE ingest_jobs SET status = $1, chunks = $2, doc_version = $3, unchanged = $4, error = $5,
		     receipt_id = $6, updated_at = $7, content = NULL, dek = NULL
		 WHERE tenant_id = $8 AND job_id = $9 AND status = 'processing' AND lease = $10`,
		j.Status, j.Chunks, j.DocVersion, j.Unchanged, j.Error, j.ReceiptID, ms(j.UpdatedAt),
		string(t.tenant), j.ID, lease)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var status string
	err = t.tx.QueryRow(t.ctx,
		`SELECT status FROM ingest_jobs WHERE tenant_id = $1 AND job_id = $2`, string(t.tenant), j.ID).Scan(&status)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return vaultcrux.E(vaultcrux.NotFound, "ingest job not found")
	case err != nil:
		return err
	}
	return vaultcrux.E(vaultcrux.Conflict, "ingest job not held under this lease")
}

// claimIngestJobs picks and moves the jobs in one statement. SKIP LOCKED
// passes over jobs that another claimer is taking, so concurrent claimers
// never wait for each other nor get the same job; READ COMMITTED
// re-checks a picked row's status and lease after locking it, so a job
// that another claimer took just before is not taken again.
var claimIngestJobs = `WITH picked AS (
	SELECT tenant_id, job_id FROM ingest_jobs
	WHERE status IN ('queued', 'processing') AND (status = 'queued' OR lease_until <= $3)
	ORDER BY created_at, tenant_id, job_id
	LIMIT $4
	FOR UPDATE SKIP LOCKED
)
UPDATE ingest_jobs j SET status = 'processing', lease = $1, lease_until = $2,
	attempts = j.attempts + 1, updated_at = $3
FROM picked WHERE j.tenant_id = picked.tenant_id AND j.job_id = picked.job_id
RETURNING ` + qualify("j", jobColumns)

func (s *systemTx) ClaimIngestJobs(lease string, now, leaseUntil time.Time, limit int) (_ []*store.IngestJob, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ClaimIngestJobs")
	if lease == "" {
		return nil, errors.New("claim without a lease")
	}
	if limit <= 0 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "limit must be positive")
	}
	if err := s.admin(); err != nil {
		return nil, err
	}
	rows, err := s.tx.Query(s.ctx, claimIngestJobs, lease, ms(leaseUntil), ms(now), limit)
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
	defer vaultcrux.Wrap(&err, "postgres.TenantsWithDocuments")
	if err := s.admin(); err != nil {
		return nil, err
	}
	rows, err := s.tx.Query(s.ctx,
		`SELECT h.tenant_id FROM evidence_heads h
		 WHERE EXISTS (SELECT 1 FROM index_changes c WHERE c.tenant_id = h.tenant_id)
		 ORDER BY h.tenant_id`)
	if err != nil {
		return nil, err
	}
	return collectTenantIDs(rows)
}

const kekColumns = `version, provider, wrapped, index_key, state, created_at, retired_at, destroyed_at`

func scanKEK(row pgx.Row) (*store.TenantKEK, error) {
	var k store.TenantKEK
	if err := row.Scan(&k.Version, &k.Provider, &k.Wrapped, &k.IndexKey, &k.State,
		&k.CreatedAt, &k.RetiredAt, &k.DestroyedAt); err != nil {
		return nil, err
	}
	k.CreatedAt = k.CreatedAt.UTC()
	utcPtr(k.RetiredAt)
	utcPtr(k.DestroyedAt)
	return &k, nil
}

const documentColumns = `doc_id, corpus_id, version, title, url, mime_type, source, trust, content_hash, bytes, chunks, dek, kek_version, created_at`

func scanDocument(row pgx.Row) (*store.Document, error) {
	var d store.Document
	if err := row.Scan(&d.ID, &d.CorpusID, &d.Version, &d.Title, &d.URL, &d.MIMEType, &d.Source, &d.Trust,
		&d.ContentHash, &d.Bytes, &d.Chunks, &d.DEK, &d.KEKVersion, &d.CreatedAt); err != nil {
		return nil, err
	}
	d.CreatedAt = d.CreatedAt.UTC()
	return &d, nil
}

const chunkColumns = `chunk_id, doc_id, doc_version, seq, corpus_id, trust, sealed, text_hash, length, terms, created_at`

func scanChunk(row pgx.Row) (*store.Chunk, error) {
	var c store.Chunk
	if err := row.Scan(&c.ID, &c.DocID, &c.DocVersion, &c.Seq, &c.CorpusID, &c.Trust, &c.Sealed,
		&c.TextHash, &c.Length, &c.Terms, &c.CreatedAt); err != nil {
		return nil, err
	}
	c.Sealed, c.Terms = nilIfEmpty(c.Sealed), nilIfEmpty(c.Terms)
	c.CreatedAt = c.CreatedAt.UTC()
	return &c, nil
}

func scanIndexChange(row pgx.Row) (*store.IndexChange, error) {
	var c store.IndexChange
	if err := row.Scan(&c.Seq, &c.Op, &c.DocID, &c.Version, &c.At); err != nil {
		return nil, err
	}
	c.At = c.At.UTC()
	return &c, nil
}

// qualify prefixes each of the comma-separated columns with alias.
func qualify(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

const jobColumns = `tenant_id, job_id, doc_id, corpus_id, title, url, mime_type, source, trust, actor, agent_id,
	content, dek, kek_version, bytes, status, chunks, doc_version, unchanged, error, receipt_id,
	lease, lease_until, attempts, created_at, updated_at`

func scanJob(row pgx.Row) (*store.IngestJob, error) {
	var j store.IngestJob
	var tenant string
	var dek *string
	if err := row.Scan(&tenant, &j.ID, &j.DocID, &j.CorpusID, &j.Title, &j.URL, &j.MIMEType, &j.Source,
		&j.Trust, &j.Actor, &j.AgentID, &j.Content, &dek, &j.KEKVersion, &j.Bytes, &j.Status, &j.Chunks,
		&j.DocVersion, &j.Unchanged, &j.Error, &j.ReceiptID, &j.Lease, &j.LeaseUntil, &j.Attempts,
		&j.CreatedAt, &j.UpdatedAt); err != nil {
		return nil, err
	}
	j.Tenant, j.DEK = vaultcrux.TenantID(tenant), fromNull(dek)
	j.Content = nilIfEmpty(j.Content)
	utcPtr(j.LeaseUntil)
	j.CreatedAt, j.UpdatedAt = j.CreatedAt.UTC(), j.UpdatedAt.UTC()
	return &j, nil
}
