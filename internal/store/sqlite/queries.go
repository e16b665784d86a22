package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

type systemTx struct {
	ctx context.Context
	tx  *sql.Tx
}

func (s *systemTx) CreateTenant(t *vaultcrux.Tenant, firstKey *vaultcrux.APIKey) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.CreateTenant")
	if !vaultcrux.ValidTenantID(string(t.ID)) {
		return vaultcrux.E(vaultcrux.Invalid, "invalid tenant id")
	}
	_, err = s.tx.ExecContext(s.ctx, `INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)`,
		t.ID, t.Name, millis(t.CreatedAt))
	if isUnique(err) {
		return vaultcrux.E(vaultcrux.Conflict, "tenant already exists")
	}
	if err != nil || firstKey == nil {
		return err
	}
	return insertAPIKey(s.ctx, s.tx, t.ID, firstKey)
}

func (s *systemTx) GetTenant(id vaultcrux.TenantID) (_ *vaultcrux.Tenant, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.GetTenant")
	t, err := scanTenant(s.tx.QueryRowContext(s.ctx, `SELECT id, name, created_at FROM tenants WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return t, err
}

func (s *systemTx) ListTenants() (_ []*vaultcrux.Tenant, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListTenants")
	rows, err := s.tx.QueryContext(s.ctx, `SELECT id, name, created_at FROM tenants ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanTenant)
}

func (s *systemTx) LookupAPIKey(keyID string) (_ *vaultcrux.APIKey, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.LookupAPIKey")
	k, err := scanKey(s.tx.QueryRowContext(s.ctx, `SELECT `+keyColumns+` FROM api_keys WHERE key_id = ?`, keyID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "api key not found")
	}
	return k, err
}

func (s *systemTx) TouchAPIKeys(lastUsed map[string]time.Time) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.TouchAPIKeys")
	for _, id := range slices.Sorted(maps.Keys(lastUsed)) {
		// Only forward: replicas may flush their batches out of order.
		_, err := s.tx.ExecContext(s.ctx,
			`UPDATE api_keys SET last_used_at = ?1
			 WHERE key_id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)`,
			millis(lastUsed[id]), id)
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *systemTx) PurgeIdempotency(before time.Time) (_ int, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.PurgeIdempotency")
	res, err := s.tx.ExecContext(s.ctx, `DELETE FROM idempotency_keys WHERE expires_at < ?`, millis(before))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

type tenantTx struct {
	ctx    context.Context
	tx     *sql.Tx
	hot    *stmtCache // nil: nothing prepared
	tenant vaultcrux.TenantID
	err    error // set when tenant is invalid: every method fails with it
}

// enter is the first call of every method: a batch hands out handles
// without being able to fail.
func (t *tenantTx) enter() error { return t.err }

func (t *tenantTx) CreateAPIKey(k *vaultcrux.APIKey) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.CreateAPIKey")
	if err := t.enter(); err != nil {
		return err
	}
	return insertAPIKey(t.ctx, t.tx, t.tenant, k)
}

// insertAPIKey stores k for tenant; both a tenant transaction and the
// creation of a tenant with its first key use it.
func insertAPIKey(ctx context.Context, tx *sql.Tx, tenant vaultcrux.TenantID, k *vaultcrux.APIKey) error {
	if k.Tenant != tenant {
		// The handle decides the tenant; a record naming another one is a
		// bug in the caller, not a client error.
		return errors.New("api key tenant differs from the handle's tenant")
	}
	if _, ok := vaultcrux.ParseRole(string(k.Role)); !ok {
		return vaultcrux.E(vaultcrux.Invalid, "invalid role")
	}
	if k.ID == "" || len(k.Hash) == 0 {
		return errors.New("api key without id or hash")
	}
	_, err := tx.ExecContext(ctx,
		`INSERT INTO api_keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, tenant, k.Label, string(k.Role), nullString(k.SeatID), k.Hash, millis(k.CreatedAt),
		nullMillis(k.RevokedAt), nullMillis(k.LastUsedAt))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "api key id already exists")
	case isForeignKey(err) && k.SeatID != "":
		return vaultcrux.E(vaultcrux.NotFound, "tenant or seat not found")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

func (t *tenantTx) GetAPIKey(id string) (_ *vaultcrux.APIKey, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.GetAPIKey")
	if err := t.enter(); err != nil {
		return nil, err
	}
	k, err := scanKey(t.tx.QueryRowContext(t.ctx,
		`SELECT `+keyColumns+` FROM api_keys WHERE tenant_id = ? AND key_id = ?`, t.tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "api key not found")
	}
	return k, err
}

func (t *tenantTx) ListAPIKeys(after string, limit int) (_ []*vaultcrux.APIKey, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListAPIKeys")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "limit must be positive")
	}
	rows, err := t.tx.QueryContext(t.ctx,
		`SELECT `+keyColumns+` FROM api_keys WHERE tenant_id = ? AND key_id > ? ORDER BY key_id LIMIT ?`,
		t.tenant, after, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanKey)
}

// LockActiveOwnerKeys needs no row locks here: the transaction already
// holds the database's write lock, so no other revocation can interleave.
func (t *tenantTx) LockActiveOwnerKeys() (_ int, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.LockActiveOwnerKeys")
	if err := t.enter(); err != nil {
		return 0, err
	}
	var n int
	err = t.tx.QueryRowContext(t.ctx,
		`SELECT count(*) FROM api_keys WHERE tenant_id = ? AND role = 'owner' AND revoked_at IS NULL`,
		t.tenant).Scan(&n)
	return n, err
}

func (t *tenantTx) RevokeAPIKey(id string, at time.Time) (_ *vaultcrux.APIKey, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.RevokeAPIKey")
	if err := t.enter(); err != nil {
		return nil, err
	}
	k, err := scanKey(t.tx.QueryRowContext(t.ctx,
		`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?)
		 WHERE tenant_id = ? AND key_id = ? RETURNING `+keyColumns,
		millis(at), t.tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "api key not found")
	}
	return k, err
}

// ClaimIdempotency reads, then writes. That is atomic only because the
// transaction holds the write lock from BEGIN IMMEDIATE on.
func (t *tenantTx) ClaimIdempotency(rec *store.IdempotencyRecord, now, staleBefore time.Time) (_ *store.IdempotencyRecord, claimed bool, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ClaimIdempotency")
	if err := t.enter(); err != nil {
		return nil, false, err
	}
	if rec.Response != nil {
		return nil, false, errors.New("claim with a response")
	}
	sc := rec.Scope
	existing, err := scanIdempotency(t.tx.QueryRowContext(t.ctx,
		`SELECT `+idemColumns+` FROM idempotency_keys
		 WHERE tenant_id = ? AND method = ? AND route = ? AND key = ?`,
		t.tenant, sc.Method, sc.Route, sc.Key))
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, false, err
	case existing.ExpiresAt.After(now) && (existing.Response != nil || !existing.CreatedAt.Before(staleBefore)):
		return existing, false, nil
	}
	_, err = t.tx.ExecContext(t.ctx,
		`INSERT INTO idempotency_keys (tenant_id, method, route, key, request_hash, created_at, expires_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT (tenant_id, method, route, key) DO UPDATE SET
		     request_hash = excluded.request_hash, status = NULL, header_json = NULL, body = NULL,
		     created_at = excluded.created_at, expires_at = excluded.expires_at`,
		t.tenant, sc.Method, sc.Route, sc.Key, rec.RequestHash, millis(rec.CreatedAt), millis(rec.ExpiresAt))
	if isForeignKey(err) {
		return nil, false, vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	if err != nil {
		return nil, false, err
	}
	return nil, true, nil
}

func (t *tenantTx) FinishIdempotency(claimed *store.IdempotencyRecord, resp *store.IdempotencyResponse) (err error) {
	sc := claimed.Scope
	defer vaultcrux.Wrap(&err, "sqlite.FinishIdempotency")
	if err := t.enter(); err != nil {
		return err
	}
	header, err := json.Marshal(resp.Header)
	if err != nil {
		return err
	}
	body := resp.Body
	if body == nil {
		body = []byte{} // NULL would mean pending
	}
	res, err := t.tx.ExecContext(t.ctx,
		`UPDATE idempotency_keys SET status = ?, header_json = ?, body = ?
		 WHERE tenant_id = ? AND method = ? AND route = ? AND key = ? AND created_at = ? AND status IS NULL`,
		resp.Status, string(header), body, t.tenant, sc.Method, sc.Route, sc.Key, millis(claimed.CreatedAt))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return vaultcrux.E(vaultcrux.NotFound, "pending idempotency record not found")
	}
	return nil
}

func (t *tenantTx) ReleaseIdempotency(claimed *store.IdempotencyRecord) (err error) {
	sc := claimed.Scope
	defer vaultcrux.Wrap(&err, "sqlite.ReleaseIdempotency")
	if err := t.enter(); err != nil {
		return err
	}
	_, err = t.tx.ExecContext(t.ctx,
		`DELETE FROM idempotency_keys
		 WHERE tenant_id = ? AND method = ? AND route = ? AND key = ? AND created_at = ? AND status IS NULL`,
		t.tenant, sc.Method, sc.Route, sc.Key, millis(claimed.CreatedAt))
	return err
}

type scanner interface{ Scan(dest ...any) error }

func collect[T any](rows *sql.Rows, scan func(scanner) (*T, error)) ([]*T, error) {
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func scanTenant(row scanner) (*vaultcrux.Tenant, error) {
	var t vaultcrux.Tenant
	var created int64
	if err := row.Scan(&t.ID, &t.Name, &created); err != nil {
		return nil, err
	}
	t.CreatedAt = fromMillis(created)
	return &t, nil
}

const keyColumns = `key_id, tenant_id, label, role, seat_id, hash, created_at, revoked_at, last_used_at`

func scanKey(row scanner) (*vaultcrux.APIKey, error) {
	var k vaultcrux.APIKey
	var seat sql.NullString
	var created int64
	var revoked, used sql.NullInt64
	if err := row.Scan(&k.ID, &k.Tenant, &k.Label, &k.Role, &seat, &k.Hash, &created, &revoked, &used); err != nil {
		return nil, err
	}
	k.SeatID = seat.String
	k.CreatedAt = fromMillis(created)
	k.RevokedAt = fromNullMillis(revoked)
	k.LastUsedAt = fromNullMillis(used)
	return &k, nil
}

const idemColumns = `method, route, key, request_hash, status, header_json, body, created_at, expires_at`

func scanIdempotency(row scanner) (*store.IdempotencyRecord, error) {
	var r store.IdempotencyRecord
	var status sql.NullInt64
	var header sql.NullString
	var body []byte
	var created, expires int64
	if err := row.Scan(&r.Scope.Method, &r.Scope.Route, &r.Scope.Key, &r.RequestHash,
		&status, &header, &body, &created, &expires); err != nil {
		return nil, err
	}
	r.CreatedAt = fromMillis(created)
	r.ExpiresAt = fromMillis(expires)
	if status.Valid {
		r.Response = &store.IdempotencyResponse{Status: int(status.Int64)}
		if err := json.Unmarshal([]byte(header.String), &r.Response.Header); err != nil {
			return nil, err
		}
		if len(r.Response.Header) == 0 {
			r.Response.Header = nil
		}
		if len(body) > 0 {
			r.Response.Body = body
		}
	}
	return &r, nil
}
