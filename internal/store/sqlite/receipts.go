package sqlite

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

const signingKeyColumns = `version, kid, public_key, status, created_at, retired_at, revoked_at`

func (s *systemTx) ListSigningKeys() (_ []*store.SigningKey, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListSigningKeys")
	rows, err := s.tx.QueryContext(s.ctx, `SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY version`)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanSigningKey)
}

// RegisterSigningKey reads, then writes: atomic because the transaction
// holds the write lock, so two registrations cannot both take a version.
func (s *systemTx) RegisterSigningKey(pub []byte, now time.Time) (_ *store.SigningKey, created bool, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.RegisterSigningKey")
	if len(pub) == 0 {
		return nil, false, errors.New("empty public key")
	}
	k, err := scanSigningKey(s.tx.QueryRowContext(s.ctx,
		`SELECT `+signingKeyColumns+` FROM signing_keys WHERE public_key = ?`, pub))
	if !errors.Is(err, sql.ErrNoRows) {
		return k, false, err
	}
	var version int
	if err := s.tx.QueryRowContext(s.ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM signing_keys`).Scan(&version); err != nil {
		return nil, false, err
	}
	if _, err := s.tx.ExecContext(s.ctx,
		`UPDATE signing_keys SET status = 'retired', retired_at = ? WHERE status = 'active'`, millis(now)); err != nil {
		return nil, false, err
	}
	k, err = scanSigningKey(s.tx.QueryRowContext(s.ctx,
		`INSERT INTO signing_keys (version, kid, public_key, status, created_at)
		 VALUES (?, ?, ?, 'active', ?) RETURNING `+signingKeyColumns,
		version, signingKID(version), pub, millis(now)))
	if err != nil {
		return nil, false, err
	}
	return k, true, nil
}

// signingKID is the key id of a version, as receipts name their signer.
func signingKID(version int) string { return "vaultcrux-signing:v" + strconv.Itoa(version) }

func (s *systemTx) RevokeSigningKey(version int, now time.Time) (_ *store.SigningKey, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.RevokeSigningKey")
	k, err := scanSigningKey(s.tx.QueryRowContext(s.ctx,
		`UPDATE signing_keys SET status = 'revoked', revoked_at = COALESCE(revoked_at, ?)
		 WHERE version = ? RETURNING `+signingKeyColumns,
		millis(now), version))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "signing key not found")
	}
	return k, err
}

func (s *systemTx) LogsNeedingCheckpoint() (_ []vaultcrux.TenantID, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.LogsNeedingCheckpoint")
	rows, err := s.tx.QueryContext(s.ctx,
		`SELECT tenant_id FROM log_heads WHERE size > checkpoint_size ORDER BY tenant_id`)
	if err != nil {
		return nil, err
	}
	return collectTenantIDs(rows)
}

func (s *systemTx) TenantsWithPendingReceipts() (_ []vaultcrux.TenantID, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.TenantsWithPendingReceipts")
	rows, err := s.tx.QueryContext(s.ctx,
		`SELECT DISTINCT r.tenant_id FROM receipts r
		 WHERE r.pending = 1 AND NOT EXISTS (
		     SELECT 1 FROM receipt_attestations a
		     WHERE a.tenant_id = r.tenant_id AND a.receipt_id = r.receipt_id)
		 ORDER BY r.tenant_id`)
	if err != nil {
		return nil, err
	}
	return collectTenantIDs(rows)
}

func collectTenantIDs(rows *sql.Rows) ([]vaultcrux.TenantID, error) {
	defer rows.Close()
	var out []vaultcrux.TenantID
	for rows.Next() {
		var id vaultcrux.TenantID
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// LogHead needs no row lock: the write lock of the transaction already
// keeps every other appender out until it ends.
func (t *tenantTx) LogHead() (_ int64, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.LogHead")
	if err := t.enter(); err != nil {
		return 0, err
	}
	size, ok, err := t.logSize()
	if err != nil || ok {
		return size, err
	}
	_, err = t.tx.ExecContext(t.ctx,
		`INSERT INTO log_heads (tenant_id, size, checkpoint_size) VALUES (?, 0, 0)
		 ON CONFLICT (tenant_id) DO NOTHING`, t.tenant)
	if isForeignKey(err) {
		return 0, vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return 0, err
}

// logSize is the size of the tenant's log; ok is false when the log has
// no head row yet, which means size 0.
func (t *tenantTx) logSize() (size int64, ok bool, err error) {
	err = t.hot.queryRow(t.ctx, t.tx, selectLogSize, t.tenant).Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return size, err == nil, err
}

const selectLogSize = `SELECT size FROM log_heads WHERE tenant_id = ?`

const insertReceipt = `INSERT INTO receipts (tenant_id, ` + receiptColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// AppendReceipts inserts row by row with one prepared statement, inside a
// savepoint of its own, so that a Conflict on a later row leaves nothing
// of the earlier ones behind even when the caller carries on.
func (t *tenantTx) AppendReceipts(recs []*store.ReceiptRecord) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.AppendReceipts")
	if err := t.enter(); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	if err := checkReceipts(recs); err != nil {
		return err
	}
	size, _, err := t.logSize()
	if err != nil {
		return err
	}
	if recs[0].LogIndex != size {
		return vaultcrux.E(vaultcrux.Conflict, "log index does not follow")
	}
	if _, err := t.tx.ExecContext(t.ctx, `SAVEPOINT append_receipts`); err != nil {
		return err
	}
	if err := t.insertReceipts(recs); err != nil {
		// A failed undo leaves the transaction unusable: report that
		// rather than the kind of err, which callers would act on.
		if _, rerr := t.tx.ExecContext(t.ctx, `ROLLBACK TO append_receipts`); rerr != nil {
			return fmt.Errorf("rolling back after %v: %w", err, rerr)
		}
		if _, rerr := t.tx.ExecContext(t.ctx, `RELEASE append_receipts`); rerr != nil {
			return fmt.Errorf("releasing after %v: %w", err, rerr)
		}
		return err
	}
	_, err = t.tx.ExecContext(t.ctx, `RELEASE append_receipts`)
	return err
}

func (t *tenantTx) insertReceipts(recs []*store.ReceiptRecord) error {
	stmt := t.hot.stmt(t.ctx, t.tx, insertReceipt)
	if stmt == nil {
		var err error
		if stmt, err = t.tx.PrepareContext(t.ctx, insertReceipt); err != nil {
			return err
		}
	}
	defer stmt.Close()
	for _, r := range recs {
		_, err := stmt.ExecContext(t.ctx, t.tenant, r.ID, r.Kind,
			nullString(r.AnswerID), nullString(r.SnapshotID), nullString(r.ParentSnapID),
			r.Hash, r.Body, r.Pending, r.LogIndex, r.LogHashes, millis(r.CreatedAt))
		switch {
		case isUnique(err):
			return vaultcrux.E(vaultcrux.Conflict, "receipt, answer or snapshot id already exists")
		case isForeignKey(err):
			return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
		case err != nil:
			return err
		}
	}
	end := recs[len(recs)-1].LogIndex + 1
	_, err := t.hot.exec(t.ctx, t.tx, upsertLogHead, t.tenant, end)
	return err
}

const upsertLogHead = `INSERT INTO log_heads (tenant_id, size, checkpoint_size) VALUES (?, ?, 0)
		 ON CONFLICT (tenant_id) DO UPDATE SET size = excluded.size`

// checkReceipts rejects what the schema would reject less clearly: the
// records come from the receipt code, so a failure is a bug there.
func checkReceipts(recs []*store.ReceiptRecord) error {
	for i, r := range recs {
		if r.ID == "" || r.Kind == "" || r.Hash == "" || len(r.Body) == 0 || len(r.LogHashes) == 0 {
			return errors.New("receipt without id, kind, hash, body or log hashes")
		}
		if r.LogIndex != recs[0].LogIndex+int64(i) {
			return vaultcrux.E(vaultcrux.Conflict, "log index does not follow")
		}
	}
	return nil
}

// LogHashes asks for all indexes in one statement: SQLite's json_each
// turns the JSON array of indexes into rows.
func (t *tenantTx) LogHashes(indexes []int64) (_ [][]byte, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.LogHashes")
	if err := t.enter(); err != nil {
		return nil, err
	}
	out := make([][]byte, len(indexes))
	if len(indexes) == 0 {
		return out, nil
	}
	list, err := json.Marshal(indexes)
	if err != nil {
		return nil, err
	}
	rows, err := t.tx.QueryContext(t.ctx,
		`SELECT log_index, log_hashes FROM receipts
		 WHERE tenant_id = ? AND log_index IN (SELECT value FROM json_each(?))`, t.tenant, string(list))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	found := make(map[int64][]byte, len(indexes))
	for rows.Next() {
		var i int64
		var h []byte
		if err := rows.Scan(&i, &h); err != nil {
			return nil, err
		}
		found[i] = h
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for n, i := range indexes {
		h, ok := found[i]
		if !ok {
			return nil, vaultcrux.E(vaultcrux.NotFound, "log entry not found")
		}
		out[n] = h
	}
	return out, nil
}

func (t *tenantTx) GetReceipt(id string) (_ *store.ReceiptRecord, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.GetReceipt")
	return t.getReceipt(`receipt_id`, id)
}

func (t *tenantTx) GetReceiptByAnswer(answerID string) (_ *store.ReceiptRecord, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.GetReceiptByAnswer")
	return t.getReceipt(`answer_id`, answerID)
}

func (t *tenantTx) GetReceiptBySnapshot(snapshotID string) (_ *store.ReceiptRecord, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.GetReceiptBySnapshot")
	return t.getReceipt(`snapshot_id`, snapshotID)
}

// getReceipt finds the receipt whose column (a constant of the caller,
// never input) equals value.
func (t *tenantTx) getReceipt(column, value string) (*store.ReceiptRecord, error) {
	if err := t.enter(); err != nil {
		return nil, err
	}
	r, err := scanReceipt(t.tx.QueryRowContext(t.ctx,
		`SELECT `+receiptColumns+` FROM receipts WHERE tenant_id = ? AND `+column+` = ?`, t.tenant, value))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "receipt not found")
	}
	return r, err
}

// defaultReceiptLimit applies when a filter asks for no limit.
const defaultReceiptLimit = 50

func (t *tenantTx) ListReceipts(f store.ReceiptFilter) (_ []*store.ReceiptRecord, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListReceipts")
	if err := t.enter(); err != nil {
		return nil, err
	}
	q := strings.Builder{}
	q.WriteString(`SELECT ` + receiptColumns + ` FROM receipts WHERE tenant_id = ?`)
	args := []any{t.tenant}
	if f.Kind != "" {
		q.WriteString(` AND kind = ?`)
		args = append(args, f.Kind)
	}
	if !f.Since.IsZero() {
		q.WriteString(` AND created_at >= ?`)
		args = append(args, millis(f.Since))
	}
	if f.BeforeIndex >= 0 {
		q.WriteString(` AND log_index < ?`)
		args = append(args, f.BeforeIndex)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultReceiptLimit
	}
	q.WriteString(` ORDER BY log_index DESC LIMIT ?`)
	args = append(args, limit)
	rows, err := t.tx.QueryContext(t.ctx, q.String(), args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanReceipt)
}

func (t *tenantTx) PendingReceipts(limit int) (_ []*store.ReceiptRecord, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.PendingReceipts")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "limit must be positive")
	}
	rows, err := t.tx.QueryContext(t.ctx,
		`SELECT `+receiptColumns+` FROM receipts r
		 WHERE r.tenant_id = ? AND r.pending = 1 AND NOT EXISTS (
		     SELECT 1 FROM receipt_attestations a
		     WHERE a.tenant_id = r.tenant_id AND a.receipt_id = r.receipt_id)
		 ORDER BY r.log_index LIMIT ?`, t.tenant, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanReceipt)
}

// AddAttestation inserts only for a pending receipt; when nothing is
// inserted, a second query tells the caller why.
func (t *tenantTx) AddAttestation(a *store.Attestation) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.AddAttestation")
	if err := t.enter(); err != nil {
		return err
	}
	if len(a.Signature) == 0 {
		return errors.New("attestation without signature")
	}
	res, err := t.tx.ExecContext(t.ctx,
		`INSERT INTO receipt_attestations (tenant_id, receipt_id, signature, created_at)
		 SELECT tenant_id, receipt_id, ?, ? FROM receipts
		 WHERE tenant_id = ? AND receipt_id = ? AND pending = 1`,
		a.Signature, millis(a.CreatedAt), t.tenant, a.ReceiptID)
	if isUnique(err) {
		return vaultcrux.E(vaultcrux.Conflict, "receipt already has an attestation")
	}
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	var pending bool
	err = t.tx.QueryRowContext(t.ctx,
		`SELECT pending FROM receipts WHERE tenant_id = ? AND receipt_id = ?`, t.tenant, a.ReceiptID).Scan(&pending)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return vaultcrux.E(vaultcrux.NotFound, "receipt not found")
	case err != nil:
		return err
	default:
		return vaultcrux.E(vaultcrux.Conflict, "receipt is not pending a signature")
	}
}

func (t *tenantTx) GetAttestation(receiptID string) (_ *store.Attestation, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.GetAttestation")
	if err := t.enter(); err != nil {
		return nil, err
	}
	a := store.Attestation{ReceiptID: receiptID}
	var created int64
	err = t.tx.QueryRowContext(t.ctx,
		`SELECT signature, created_at FROM receipt_attestations WHERE tenant_id = ? AND receipt_id = ?`,
		t.tenant, receiptID).Scan(&a.Signature, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "attestation not found")
	}
	if err != nil {
		return nil, err
	}
	a.CreatedAt = fromMillis(created)
	return &a, nil
}

// AddCheckpoint moves the head's checkpoint size first: that is a no-op
// when a checkpoint of the size exists, so the Conflict of the insert
// leaves nothing changed.
func (t *tenantTx) AddCheckpoint(c *store.Checkpoint) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.AddCheckpoint")
	if err := t.enter(); err != nil {
		return err
	}
	if c.Size < 0 || len(c.Root) == 0 || len(c.Note) == 0 {
		return errors.New("checkpoint without size, root or note")
	}
	res, err := t.tx.ExecContext(t.ctx,
		`UPDATE log_heads SET checkpoint_size = max(checkpoint_size, ?1)
		 WHERE tenant_id = ?2 AND size >= ?1`, c.Size, t.tenant)
	if err != nil {
		return err
	}
	// Size 0 is the empty log, which may have no head row yet.
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 && c.Size > 0 {
		return errors.New("checkpoint beyond the end of the log")
	}
	_, err = t.tx.ExecContext(t.ctx,
		`INSERT INTO log_checkpoints (tenant_id, size, root_hash, note, created_at) VALUES (?, ?, ?, ?, ?)`,
		t.tenant, c.Size, c.Root, c.Note, millis(c.CreatedAt))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "checkpoint already exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

func (t *tenantTx) LatestCheckpoint() (_ *store.Checkpoint, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.LatestCheckpoint")
	if err := t.enter(); err != nil {
		return nil, err
	}
	c, err := scanCheckpoint(t.tx.QueryRowContext(t.ctx,
		`SELECT `+checkpointColumns+` FROM log_checkpoints WHERE tenant_id = ? ORDER BY size DESC LIMIT 1`, t.tenant))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "checkpoint not found")
	}
	return c, err
}

func (t *tenantTx) GetCheckpoint(size int64) (_ *store.Checkpoint, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.GetCheckpoint")
	if err := t.enter(); err != nil {
		return nil, err
	}
	c, err := scanCheckpoint(t.tx.QueryRowContext(t.ctx,
		`SELECT `+checkpointColumns+` FROM log_checkpoints WHERE tenant_id = ? AND size = ?`, t.tenant, size))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "checkpoint not found")
	}
	return c, err
}

func scanSigningKey(row scanner) (*store.SigningKey, error) {
	var k store.SigningKey
	var created int64
	var retired, revoked sql.NullInt64
	if err := row.Scan(&k.Version, &k.KID, &k.Public, &k.Status, &created, &retired, &revoked); err != nil {
		return nil, err
	}
	k.CreatedAt = fromMillis(created)
	k.RetiredAt = fromNullMillis(retired)
	k.RevokedAt = fromNullMillis(revoked)
	return &k, nil
}

const receiptColumns = `receipt_id, kind, answer_id, snapshot_id, parent_snap_id, receipt_hash, body, pending, log_index, log_hashes, created_at`

func scanReceipt(row scanner) (*store.ReceiptRecord, error) {
	var r store.ReceiptRecord
	var answer, snapshot, parent sql.NullString
	var created int64
	if err := row.Scan(&r.ID, &r.Kind, &answer, &snapshot, &parent, &r.Hash,
		&r.Body, &r.Pending, &r.LogIndex, &r.LogHashes, &created); err != nil {
		return nil, err
	}
	r.AnswerID, r.SnapshotID, r.ParentSnapID = answer.String, snapshot.String, parent.String
	r.CreatedAt = fromMillis(created)
	return &r, nil
}

const checkpointColumns = `size, root_hash, note, created_at`

func scanCheckpoint(row scanner) (*store.Checkpoint, error) {
	var c store.Checkpoint
	var created int64
	if err := row.Scan(&c.Size, &c.Root, &c.Note, &created); err != nil {
		return nil, err
	}
	c.CreatedAt = fromMillis(created)
	return &c, nil
}

// nullString stores "" as NULL: the answer columns are unique where set.
func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
