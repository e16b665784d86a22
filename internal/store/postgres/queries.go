package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

type systemTx struct {
	ctx  context.Context
	tx   pgx.Tx
	mode *string // the settings in force, shared with the handles of a batch; see setScope
}

// admin lets the following statements reach every tenant's rows.
func (s *systemTx) admin() error { return s.setMode("system", "on", "") }

func (s *systemTx) setMode(mode, system, keyLookup string) error {
	return setScope(s.ctx, s.tx, s.mode, mode, "", system, keyLookup)
}

func (s *systemTx) CreateTenant(t *vaultcrux.Tenant, firstKey *vaultcrux.APIKey) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.CreateTenant")
	if !vaultcrux.ValidTenantID(string(t.ID)) {
		return vaultcrux.E(vaultcrux.Invalid, "invalid tenant id")
	}
	if err := s.admin(); err != nil {
		return err
	}
	_, err = s.tx.Exec(s.ctx, `INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)`,
		string(t.ID), t.Name, ms(t.CreatedAt))
	if isUnique(err) {
		return vaultcrux.E(vaultcrux.Conflict, "tenant already exists")
	}
	if err != nil || firstKey == nil {
		return err
	}
	return insertAPIKey(s.ctx, s.tx, t.ID, firstKey)
}

func (s *systemTx) GetTenant(id vaultcrux.TenantID) (_ *vaultcrux.Tenant, err error) {
	defer vaultcrux.Wrap(&err, "postgres.GetTenant")
	if err := s.admin(); err != nil {
		return nil, err
	}
	t, err := scanTenant(s.tx.QueryRow(s.ctx, `SELECT id, name, created_at FROM tenants WHERE id = $1`, string(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return t, err
}

func (s *systemTx) ListTenants() (_ []*vaultcrux.Tenant, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListTenants")
	if err := s.admin(); err != nil {
		return nil, err
	}
	rows, err := s.tx.Query(s.ctx, `SELECT id, name, created_at FROM tenants ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanTenant)
}

// LookupAPIKey runs on the hot path of every request, with the narrowest
// setting: the policy api_keys_lookup lets it read this key's row only.
func (s *systemTx) LookupAPIKey(keyID string) (_ *vaultcrux.APIKey, err error) {
	defer vaultcrux.Wrap(&err, "postgres.LookupAPIKey")
	if keyID == "" {
		return nil, vaultcrux.E(vaultcrux.NotFound, "api key not found")
	}
	if err := s.setMode("lookup:"+keyID, "", keyID); err != nil {
		return nil, err
	}
	k, err := scanKey(s.tx.QueryRow(s.ctx, `SELECT `+keyColumns+` FROM api_keys WHERE key_id = $1`, keyID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "api key not found")
	}
	return k, err
}

func (s *systemTx) TouchAPIKeys(lastUsed map[string]time.Time) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.TouchAPIKeys")
	if len(lastUsed) == 0 {
		return nil
	}
	if err := s.admin(); err != nil {
		return err
	}
	// Sorted, so that replicas touching the same keys lock them in the
	// same order and cannot deadlock; only forward, since their batches
	// may arrive out of order.
	b := &pgx.Batch{}
	for _, id := range slices.Sorted(maps.Keys(lastUsed)) {
		b.Queue(`UPDATE api_keys SET last_used_at = $1
			WHERE key_id = $2 AND (last_used_at IS NULL OR last_used_at < $1)`, ms(lastUsed[id]), id)
	}
	return s.tx.SendBatch(s.ctx, b).Close()
}

func (s *systemTx) PurgeIdempotency(before time.Time) (_ int, err error) {
	defer vaultcrux.Wrap(&err, "postgres.PurgeIdempotency")
	if err := s.admin(); err != nil {
		return 0, err
	}
	tag, err := s.tx.Exec(s.ctx, `DELETE FROM idempotency_keys WHERE expires_at < $1`, ms(before))
	return int(tag.RowsAffected()), err
}

type tenantTx struct {
	ctx    context.Context
	tx     pgx.Tx
	tenant vaultcrux.TenantID
	mode   *string // see setScope
	err    error   // set when tenant is invalid: every method fails with it
}

// enter is the first call of every method: it puts the transaction in
// this handle's tenant scope unless it is there already.
func (t *tenantTx) enter() error {
	if t.err != nil {
		return t.err
	}
	return setScope(t.ctx, t.tx, t.mode, "tenant:"+string(t.tenant), string(t.tenant), "", "")
}

func (t *tenantTx) CreateAPIKey(k *vaultcrux.APIKey) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.CreateAPIKey")
	if err := t.enter(); err != nil {
		return err
	}
	return insertAPIKey(t.ctx, t.tx, t.tenant, k)
}

// insertAPIKey stores k for tenant; both a tenant transaction and the
// creation of a tenant with its first key (in system mode) use it.
func insertAPIKey(ctx context.Context, tx pgx.Tx, tenant vaultcrux.TenantID, k *vaultcrux.APIKey) error {
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
	_, err := tx.Exec(ctx,
		`INSERT INTO api_keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		k.ID, string(tenant), k.Label, string(k.Role), nullString(k.SeatID), k.Hash, ms(k.CreatedAt),
		msPtr(k.RevokedAt), msPtr(k.LastUsedAt))
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
	defer vaultcrux.Wrap(&err, "postgres.GetAPIKey")
	if err := t.enter(); err != nil {
		return nil, err
	}
	k, err := scanKey(t.tx.QueryRow(t.ctx,
		`SELECT `+keyColumns+` FROM api_keys WHERE tenant_id = $1 AND key_id = $2`, string(t.tenant), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "api key not found")
	}
	return k, err
}

func (t *tenantTx) ListAPIKeys(after string, limit int) (_ []*vaultcrux.APIKey, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListAPIKeys")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "limit must be positive")
	}
	rows, err := t.tx.Query(t.ctx,
		`SELECT `+keyColumns+` FROM api_keys WHERE tenant_id = $1 AND key_id > $2 ORDER BY key_id LIMIT $3`,
		string(t.tenant), after, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanKey)
}

// LockActiveOwnerKeys locks the rows it counts. A concurrent revoker blocks
// on them and, READ COMMITTED, re-checks each locked row after the first
// commits, so it no longer counts a key that was just revoked. ORDER BY
// fixes the lock order.
func (t *tenantTx) LockActiveOwnerKeys() (_ int, err error) {
	defer vaultcrux.Wrap(&err, "postgres.LockActiveOwnerKeys")
	if err := t.enter(); err != nil {
		return 0, err
	}
	var n int
	err = t.tx.QueryRow(t.ctx, `SELECT count(*) FROM (
			SELECT 1 FROM api_keys
			WHERE tenant_id = $1 AND role = 'owner' AND revoked_at IS NULL
			ORDER BY key_id FOR UPDATE) AS owners`, string(t.tenant)).Scan(&n)
	return n, err
}

func (t *tenantTx) RevokeAPIKey(id string, at time.Time) (_ *vaultcrux.APIKey, err error) {
	defer vaultcrux.Wrap(&err, "postgres.RevokeAPIKey")
	if err := t.enter(); err != nil {
		return nil, err
	}
	k, err := scanKey(t.tx.QueryRow(t.ctx,
		`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1)
		 WHERE tenant_id = $2 AND key_id = $3 RETURNING `+keyColumns,
		ms(at), string(t.tenant), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "api key not found")
	}
	return k, err
}

// ClaimIdempotency is one upsert. Its DO UPDATE replaces only an expired or
// stale pending record; when the WHERE is false PostgreSQL still locks the
// conflicting row, so the SELECT that follows reads that same record and
// no other transaction can replace or delete it in between. Two claimers
// of a free scope meet on the unique index: one inserts, the other waits
// for it to commit and then sees a live record.
func (t *tenantTx) ClaimIdempotency(rec *store.IdempotencyRecord, now, staleBefore time.Time) (_ *store.IdempotencyRecord, claimed bool, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ClaimIdempotency")
	if err := t.enter(); err != nil {
		return nil, false, err
	}
	if rec.Response != nil {
		return nil, false, errors.New("claim with a response")
	}
	sc := rec.Scope
	tag, err := t.tx.Exec(t.ctx,
		`INSERT INTO idempotency_keys AS i (tenant_id, method, route, key, request_hash, created_at, expires_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7)
		 ON CONFLICT (tenant_id, method, route, key) DO UPDATE SET
		     request_hash = excluded.request_hash, status = NULL, header_json = NULL, body = NULL,
		     created_at = excluded.created_at, expires_at = excluded.expires_at
		 WHERE i.expires_at <= $8 OR (i.status IS NULL AND i.created_at < $9)`,
		string(t.tenant), sc.Method, sc.Route, sc.Key, rec.RequestHash,
		ms(rec.CreatedAt), ms(rec.ExpiresAt), ms(now), ms(staleBefore))
	if isForeignKey(err) {
		return nil, false, vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	if err != nil {
		return nil, false, err
	}
	if tag.RowsAffected() == 1 {
		return nil, true, nil
	}
	existing, err := scanIdempotency(t.tx.QueryRow(t.ctx,
		`SELECT `+idemColumns+` FROM idempotency_keys
		 WHERE tenant_id = $1 AND method = $2 AND route = $3 AND key = $4`,
		string(t.tenant), sc.Method, sc.Route, sc.Key))
	if err != nil {
		return nil, false, err
	}
	return existing, false, nil
}

func (t *tenantTx) FinishIdempotency(claimed *store.IdempotencyRecord, resp *store.IdempotencyResponse) (err error) {
	sc := claimed.Scope
	defer vaultcrux.Wrap(&err, "postgres.FinishIdempotency")
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
	tag, err := t.tx.Exec(t.ctx,
		`UPDATE idempotency_keys SET status = $1, header_json = $2, body = $3
		 WHERE tenant_id = $4 AND method = $5 AND route = $6 AND key = $7 AND created_at = $8 AND status IS NULL`,
		resp.Status, string(header), body, string(t.tenant), sc.Method, sc.Route, sc.Key, ms(claimed.CreatedAt))
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return vaultcrux.E(vaultcrux.NotFound, "pending idempotency record not found")
	}
	return nil
}

func (t *tenantTx) ReleaseIdempotency(claimed *store.IdempotencyRecord) (err error) {
	sc := claimed.Scope
	defer vaultcrux.Wrap(&err, "postgres.ReleaseIdempotency")
	if err := t.enter(); err != nil {
		return err
	}
	_, err = t.tx.Exec(t.ctx,
		`DELETE FROM idempotency_keys
		 WHERE tenant_id = $1 AND method = $2 AND route = $3 AND key = $4 AND created_at = $5 AND status IS NULL`,
		string(t.tenant), sc.Method, sc.Route, sc.Key, ms(claimed.CreatedAt))
	return err
}

func collect[T any](rows pgx.Rows, scan func(pgx.Row) (*T, error)) ([]*T, error) {
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

func scanTenant(row pgx.Row) (*vaultcrux.Tenant, error) {
	var t vaultcrux.Tenant
	var id string
	if err := row.Scan(&id, &t.Name, &t.CreatedAt); err != nil {
		return nil, err
	}
	t.ID = vaultcrux.TenantID(id)
	t.CreatedAt = t.CreatedAt.UTC()
	return &t, nil
}

const keyColumns = `key_id, tenant_id, label, role, seat_id, hash, created_at, revoked_at, last_used_at`

func scanKey(row pgx.Row) (*vaultcrux.APIKey, error) {
	var k vaultcrux.APIKey
	var tenant, role string
	var seat *string
	if err := row.Scan(&k.ID, &tenant, &k.Label, &role, &seat, &k.Hash, &k.CreatedAt, &k.RevokedAt, &k.LastUsedAt); err != nil {
		return nil, err
	}
	k.Tenant, k.Role, k.SeatID = vaultcrux.TenantID(tenant), vaultcrux.Role(role), fromNull(seat)
	k.CreatedAt = k.CreatedAt.UTC()
	for _, p := range []*time.Time{k.RevokedAt, k.LastUsedAt} {
		if p != nil {
			*p = p.UTC()
		}
	}
	return &k, nil
}

const idemColumns = `method, route, key, request_hash, status, header_json, body, created_at, expires_at`

func scanIdempotency(row pgx.Row) (*store.IdempotencyRecord, error) {
	var r store.IdempotencyRecord
	var status *int32
	var header, body []byte
	if err := row.Scan(&r.Scope.Method, &r.Scope.Route, &r.Scope.Key, &r.RequestHash,
		&status, &header, &body, &r.CreatedAt, &r.ExpiresAt); err != nil {
		return nil, err
	}
	r.CreatedAt, r.ExpiresAt = r.CreatedAt.UTC(), r.ExpiresAt.UTC()
	if status != nil {
		r.Response = &store.IdempotencyResponse{Status: int(*status)}
		if err := json.Unmarshal(header, &r.Response.Header); err != nil {
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
