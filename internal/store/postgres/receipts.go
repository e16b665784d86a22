package postgres

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

const signingKeyColumns = `version, kid, public_key, status, created_at, retired_at, revoked_at`

func (s *systemTx) ListSigningKeys() (_ []*store.SigningKey, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListSigningKeys")
	if err := s.admin(); err != nil {
		return nil, err
	}
	rows, err := s.tx.Query(s.ctx, `SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY version`)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanSigningKey)
}

// RegisterSigningKey takes an advisory lock first: without it, two
// replicas registering different keys would both read the same next
// version. The lock is held to the end of the transaction, so the second
// one, READ COMMITTED, reads the first one's key once it may go on.
func (s *systemTx) RegisterSigningKey(pub []byte, now time.Time) (_ *store.SigningKey, created bool, err error) {
	defer vaultcrux.Wrap(&err, "postgres.RegisterSigningKey")
	if len(pub) == 0 {
		return nil, false, errors.New("empty public key")
	}
	if err := s.admin(); err != nil {
		return nil, false, err
	}
	if _, err := s.tx.Exec(s.ctx, `SELECT pg_advisory_xact_lock($1)`, int64(signingKeyLock)); err != nil {
		return nil, false, err
	}
	k, err := scanSigningKey(s.tx.QueryRow(s.ctx,
		`SELECT `+signingKeyColumns+` FROM signing_keys WHERE public_key = $1`, pub))
	if !errors.Is(err, pgx.ErrNoRows) {
		return k, false, err
	}
	var version int
	if err := s.tx.QueryRow(s.ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM signing_keys`).Scan(&version); err != nil {
		return nil, false, err
	}
	if _, err := s.tx.Exec(s.ctx,
		`UPDATE signing_keys SET status = 'retired', retired_at = $1 WHERE status = 'active'`, ms(now)); err != nil {
		return nil, false, err
	}
	k, err = scanSigningKey(s.tx.QueryRow(s.ctx,
		`INSERT INTO signing_keys (version, kid, public_key, status, created_at)
		 VALUES ($1, $2, $3, 'active', $4) RETURNING `+signingKeyColumns,
		version, signingKID(version), pub, ms(now)))
	if err != nil {
		return nil, false, err
	}
	return k, true, nil
}

// signingKID is the key id of a version, as receipts name their signer.
func signingKID(version int) string { return "vaultcrux-signing:v" + strconv.Itoa(version) }

func (s *systemTx) RevokeSigningKey(version int, now time.Time) (_ *store.SigningKey, err error) {
	defer vaultcrux.Wrap(&err, "postgres.RevokeSigningKey")
	if err := s.admin(); err != nil {
		return nil, err
	}
	k, err := scanSigningKey(s.tx.QueryRow(s.ctx,
		`UPDATE signing_keys SET status = 'revoked', revoked_at = COALESCE(revoked_at, $1)
		 WHERE version = $2 RETURNING `+signingKeyColumns,
		ms(now), version))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "signing key not found")
	}
	return k, err
}

func (s *systemTx) LogsNeedingCheckpoint() (_ []vaultcrux.TenantID, err error) {
	defer vaultcrux.Wrap(&err, "postgres.LogsNeedingCheckpoint")
	if err := s.admin(); err != nil {
		return nil, err
	}
	rows, err := s.tx.Query(s.ctx,
		`SELECT tenant_id FROM log_heads WHERE size > checkpoint_size ORDER BY tenant_id`)
	if err != nil {
		return nil, err
	}
	return collectTenantIDs(rows)
}

func (s *systemTx) TenantsWithPendingReceipts() (_ []vaultcrux.TenantID, err error) {
	defer vaultcrux.Wrap(&err, "postgres.TenantsWithPendingReceipts")
	if err := s.admin(); err != nil {
		return nil, err
	}
	rows, err := s.tx.Query(s.ctx,
		`SELECT DISTINCT r.tenant_id FROM receipts r
		 WHERE r.pending AND NOT EXISTS (
		     SELECT 1 FROM receipt_attestations a
		     WHERE a.tenant_id = r.tenant_id AND a.receipt_id = r.receipt_id)
		 ORDER BY r.tenant_id`)
	if err != nil {
		return nil, err
	}
	return collectTenantIDs(rows)
}

func collectTenantIDs(rows pgx.Rows) ([]vaultcrux.TenantID, error) {
	defer rows.Close()
	var out []vaultcrux.TenantID
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, vaultcrux.TenantID(id))
	}
	return out, rows.Err()
}

const lockLogHead = `SELECT size FROM log_heads WHERE tenant_id = $1 FOR UPDATE`

// LogHead locks the head row. A second appender blocks on the lock and,
// READ COMMITTED, then reads the size the first one committed. The first
// append of a tenant creates the row: two creators meet on its primary
// key, and the loser waits for the winner's transaction and then locks
// its row.
func (t *tenantTx) LogHead() (_ int64, err error) {
	defer vaultcrux.Wrap(&err, "postgres.LogHead")
	if err := t.enter(); err != nil {
		return 0, err
	}
	var size int64
	err = t.tx.QueryRow(t.ctx, lockLogHead, string(t.tenant)).Scan(&size)
	if !errors.Is(err, pgx.ErrNoRows) {
		return size, err
	}
	if err := t.createLogHead(); err != nil {
		return 0, err
	}
	err = t.tx.QueryRow(t.ctx, lockLogHead, string(t.tenant)).Scan(&size)
	return size, err
}

func (t *tenantTx) createLogHead() error {
	_, err := t.tx.Exec(t.ctx,
		`INSERT INTO log_heads (tenant_id, size, checkpoint_size) VALUES ($1, 0, 0)
		 ON CONFLICT (tenant_id) DO NOTHING`, string(t.tenant))
	if isForeignKey(err) {
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

// appendReceipts moves the head and inserts the rows in one statement, so
// that both happen or neither: nothing is inserted unless the head was
// at the first index. The rows travel as one array per column.
const appendReceipts = `WITH head AS (
	UPDATE log_heads SET size = $3 WHERE tenant_id = $1 AND size = $2 RETURNING tenant_id
)
INSERT INTO receipts (tenant_id, ` + receiptColumns + `)
SELECT head.tenant_id, r.* FROM head, unnest(
	$4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
	$10::bytea[], $11::boolean[], $12::bigint[], $13::bytea[], $14::timestamptz[]) AS r`

// AppendReceipts is one round trip: the hot path of the group commit.
func (t *tenantTx) AppendReceipts(recs []*store.ReceiptRecord) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.AppendReceipts")
	if err := t.enter(); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	if err := checkReceipts(recs); err != nil {
		return err
	}
	n := len(recs)
	var (
		ids, kinds, hashes          = make([]string, n), make([]string, n), make([]string, n)
		answers, snapshots, parents = make([]*string, n), make([]*string, n), make([]*string, n)
		bodies, logHashes           = make([][]byte, n), make([][]byte, n)
		pending                     = make([]bool, n)
		indexes                     = make([]int64, n)
		created                     = make([]time.Time, n)
	)
	for i, r := range recs {
		ids[i], kinds[i], hashes[i] = r.ID, r.Kind, r.Hash
		answers[i], snapshots[i], parents[i] = nullString(r.AnswerID), nullString(r.SnapshotID), nullString(r.ParentSnapID)
		bodies[i], logHashes[i] = r.Body, r.LogHashes
		pending[i], indexes[i], created[i] = r.Pending, r.LogIndex, ms(r.CreatedAt)
	}
	first, end := recs[0].LogIndex, recs[n-1].LogIndex+1
	insert := func() (int64, error) {
		tag, err := t.tx.Exec(t.ctx, appendReceipts, string(t.tenant), first, end,
			ids, kinds, answers, snapshots, parents, hashes, bodies, pending, indexes, logHashes, created)
		switch {
		case isUnique(err):
			return 0, vaultcrux.E(vaultcrux.Conflict, "receipt, answer or snapshot id already exists")
		case isForeignKey(err):
			return 0, vaultcrux.E(vaultcrux.NotFound, "tenant not found")
		}
		return tag.RowsAffected(), err
	}
	inserted, err := insert()
	if err == nil && inserted == 0 && first == 0 {
		// A log appended to without LogHead may have no head row yet.
		if err := t.createLogHead(); err != nil {
			return err
		}
		inserted, err = insert()
	}
	switch {
	case err != nil:
		return err
	case inserted == 0:
		return vaultcrux.E(vaultcrux.Conflict, "log index does not follow")
	case inserted != int64(n):
		return errors.New("append inserted a part of the receipts")
	}
	return nil
}

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

func (t *tenantTx) LogHashes(indexes []int64) (_ [][]byte, err error) {
	defer vaultcrux.Wrap(&err, "postgres.LogHashes")
	if err := t.enter(); err != nil {
		return nil, err
	}
	out := make([][]byte, len(indexes))
	if len(indexes) == 0 {
		return out, nil
	}
	rows, err := t.tx.Query(t.ctx,
		`SELECT log_index, log_hashes FROM receipts WHERE tenant_id = $1 AND log_index = ANY($2)`,
		string(t.tenant), indexes)
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
	defer vaultcrux.Wrap(&err, "postgres.GetReceipt")
	return t.getReceipt(`receipt_id`, id)
}

func (t *tenantTx) GetReceiptByAnswer(answerID string) (_ *store.ReceiptRecord, err error) {
	defer vaultcrux.Wrap(&err, "postgres.GetReceiptByAnswer")
	return t.getReceipt(`answer_id`, answerID)
}

func (t *tenantTx) GetReceiptBySnapshot(snapshotID string) (_ *store.ReceiptRecord, err error) {
	defer vaultcrux.Wrap(&err, "postgres.GetReceiptBySnapshot")
	return t.getReceipt(`snapshot_id`, snapshotID)
}

// getReceipt finds the receipt whose column (a constant of the caller,
// never input) equals value.
func (t *tenantTx) getReceipt(column, value string) (*store.ReceiptRecord, error) {
	if err := t.enter(); err != nil {
		return nil, err
	}
	r, err := scanReceipt(t.tx.QueryRow(t.ctx,
		`SELECT `+receiptColumns+` FROM receipts WHERE tenant_id = $1 AND `+column+` = $2`, string(t.tenant), value))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "receipt not found")
	}
	return r, err
}

// defaultReceiptLimit applies when a filter asks for no limit.
const defaultReceiptLimit = 50

// ListReceipts writes only the conditions that the filter sets, rather
// than conditions that a parameter switches off ("$2 IS NULL OR kind =
// $2"): a generic plan of those could not use the kind index. There are
// eight such statements at most, each cached.
func (t *tenantTx) ListReceipts(f store.ReceiptFilter) (_ []*store.ReceiptRecord, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListReceipts")
	if err := t.enter(); err != nil {
		return nil, err
	}
	q := strings.Builder{}
	q.WriteString(`SELECT ` + receiptColumns + ` FROM receipts WHERE tenant_id = $1`)
	args := []any{string(t.tenant)}
	arg := func(cond string, v any) {
		args = append(args, v)
		q.WriteString(cond + strconv.Itoa(len(args)))
	}
	if f.Kind != "" {
		arg(` AND kind = $`, f.Kind)
	}
	if !f.Since.IsZero() {
		arg(` AND created_at >= $`, ms(f.Since))
	}
	if f.BeforeIndex >= 0 {
		arg(` AND log_index < $`, f.BeforeIndex)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultReceiptLimit
	}
	arg(` ORDER BY log_index DESC LIMIT $`, limit)
	rows, err := t.tx.Query(t.ctx, q.String(), args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanReceipt)
}

func (t *tenantTx) PendingReceipts(limit int) (_ []*store.ReceiptRecord, err error) {
	defer vaultcrux.Wrap(&err, "postgres.PendingReceipts")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "limit must be positive")
	}
	rows, err := t.tx.Query(t.ctx,
		`SELECT `+receiptColumns+` FROM receipts r
		 WHERE r.tenant_id = $1 AND r.pending AND NOT EXISTS (
		     SELECT 1 FROM receipt_attestations a
		     WHERE a.tenant_id = r.tenant_id AND a.receipt_id = r.receipt_id)
		 ORDER BY r.log_index LIMIT $2`, string(t.tenant), limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanReceipt)
}

// AddAttestation inserts only for a pending receipt; when nothing is
// inserted, a second query tells the caller why. Two concurrent
// attesters meet on the primary key: the second gets a Conflict.
func (t *tenantTx) AddAttestation(a *store.Attestation) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.AddAttestation")
	if err := t.enter(); err != nil {
		return err
	}
	if len(a.Signature) == 0 {
		return errors.New("attestation without signature")
	}
	tag, err := t.tx.Exec(t.ctx,
		`INSERT INTO receipt_attestations (tenant_id, receipt_id, signature, created_at)
		 SELECT tenant_id, receipt_id, $1, $2 FROM receipts
		 WHERE tenant_id = $3 AND receipt_id = $4 AND pending`,
		a.Signature, ms(a.CreatedAt), string(t.tenant), a.ReceiptID)
	if isUnique(err) {
		return vaultcrux.E(vaultcrux.Conflict, "receipt already has an attestation")
	}
	if err != nil || tag.RowsAffected() == 1 {
		return err
	}
	var pending bool
	err = t.tx.QueryRow(t.ctx,
		`SELECT pending FROM receipts WHERE tenant_id = $1 AND receipt_id = $2`,
		string(t.tenant), a.ReceiptID).Scan(&pending)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return vaultcrux.E(vaultcrux.NotFound, "receipt not found")
	case err != nil:
		return err
	default:
		return vaultcrux.E(vaultcrux.Conflict, "receipt is not pending a signature")
	}
}

func (t *tenantTx) GetAttestation(receiptID string) (_ *store.Attestation, err error) {
	defer vaultcrux.Wrap(&err, "postgres.GetAttestation")
	if err := t.enter(); err != nil {
		return nil, err
	}
	a := store.Attestation{ReceiptID: receiptID}
	err = t.tx.QueryRow(t.ctx,
		`SELECT signature, created_at FROM receipt_attestations WHERE tenant_id = $1 AND receipt_id = $2`,
		string(t.tenant), receiptID).Scan(&a.Signature, &a.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "attestation not found")
	}
	if err != nil {
		return nil, err
	}
	a.CreatedAt = a.CreatedAt.UTC()
	return &a, nil
}

// AddCheckpoint moves the head's checkpoint size first, which also
// checks that the checkpoint is within the log.
func (t *tenantTx) AddCheckpoint(c *store.Checkpoint) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.AddCheckpoint")
	if err := t.enter(); err != nil {
		return err
	}
	if c.Size < 0 || len(c.Root) == 0 || len(c.Note) == 0 {
		return errors.New("checkpoint without size, root or note")
	}
	tag, err := t.tx.Exec(t.ctx,
		`UPDATE log_heads SET checkpoint_size = GREATEST(checkpoint_size, $2)
		 WHERE tenant_id = $1 AND size >= $2`, string(t.tenant), c.Size)
	if err != nil {
		return err
	}
	// Size 0 is the empty log, which may have no head row yet.
	if tag.RowsAffected() == 0 && c.Size > 0 {
		return errors.New("checkpoint beyond the end of the log")
	}
	_, err = t.tx.Exec(t.ctx,
		`INSERT INTO log_checkpoints (tenant_id, size, root_hash, note, created_at) VALUES ($1, $2, $3, $4, $5)`,
		string(t.tenant), c.Size, c.Root, c.Note, ms(c.CreatedAt))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "checkpoint already exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

func (t *tenantTx) LatestCheckpoint() (_ *store.Checkpoint, err error) {
	defer vaultcrux.Wrap(&err, "postgres.LatestCheckpoint")
	if err := t.enter(); err != nil {
		return nil, err
	}
	c, err := scanCheckpoint(t.tx.QueryRow(t.ctx,
		`SELECT `+checkpointColumns+` FROM log_checkpoints WHERE tenant_id = $1 ORDER BY size DESC LIMIT 1`,
		string(t.tenant)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "checkpoint not found")
	}
	return c, err
}

func (t *tenantTx) GetCheckpoint(size int64) (_ *store.Checkpoint, err error) {
	defer vaultcrux.Wrap(&err, "postgres.GetCheckpoint")
	if err := t.enter(); err != nil {
		return nil, err
	}
	c, err := scanCheckpoint(t.tx.QueryRow(t.ctx,
		`SELECT `+checkpointColumns+` FROM log_checkpoints WHERE tenant_id = $1 AND size = $2`,
		string(t.tenant), size))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "checkpoint not found")
	}
	return c, err
}

func scanSigningKey(row pgx.Row) (*store.SigningKey, error) {
	var k store.SigningKey
	if err := row.Scan(&k.Version, &k.KID, &k.Public, &k.Status, &k.CreatedAt, &k.RetiredAt, &k.RevokedAt); err != nil {
		return nil, err
	}
	k.CreatedAt = k.CreatedAt.UTC()
	for _, p := range []*time.Time{k.RetiredAt, k.RevokedAt} {
		if p != nil {
			*p = p.UTC()
		}
	}
	return &k, nil
}

const receiptColumns = `receipt_id, kind, answer_id, snapshot_id, parent_snap_id, receipt_hash, body, pending, log_index, log_hashes, created_at`

func scanReceipt(row pgx.Row) (*store.ReceiptRecord, error) {
	var r store.ReceiptRecord
	var answer, snapshot, parent *string
	if err := row.Scan(&r.ID, &r.Kind, &answer, &snapshot, &parent, &r.Hash,
		&r.Body, &r.Pending, &r.LogIndex, &r.LogHashes, &r.CreatedAt); err != nil {
		return nil, err
	}
	r.AnswerID, r.SnapshotID, r.ParentSnapID = fromNull(answer), fromNull(snapshot), fromNull(parent)
	r.CreatedAt = r.CreatedAt.UTC()
	return &r, nil
}

const checkpointColumns = `size, root_hash, note, created_at`

func scanCheckpoint(row pgx.Row) (*store.Checkpoint, error) {
	var c store.Checkpoint
	if err := row.Scan(&c.Size, &c.Root, &c.Note, &c.CreatedAt); err != nil {
		return nil, err
	}
	c.CreatedAt = c.CreatedAt.UTC()
	return &c, nil
}

// nullString stores "" as NULL: the answer columns are unique where set.
func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func fromNull(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
