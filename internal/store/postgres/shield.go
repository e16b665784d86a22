package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// Shield storage (contract §7). Every method that changes what processes
// cache (servers, pins, kill switches, settings, sampling policies)
// first locks the shield_versions row of its scope (the tenant's, or the
// global one) and bumps it at the end when it changed something. The
// lock serialises a tenant's Shield writers across replicas before any of
// them touches another row, so that two transactions each making several
// changes cannot deadlock, and versions grow in commit order. Conditional
// updates (release, revoke, resolve, consume) rely on READ COMMITTED: a
// second writer blocks on the row and re-checks its condition after the
// first commits, so it updates nothing and only a miss runs a second
// query, to find out why. An error aborts the transaction, so a method
// that fails half-way leaves nothing that could be committed.

// lockShieldVersion locks the version row of tenant ("" for the global
// row) until the transaction ends, creating a tenant's row on first use:
// the upsert's no-op update takes the row lock, also of a row that
// another transaction inserted first.
func lockShieldVersion(ctx context.Context, tx pgx.Tx, tenant vaultcrux.TenantID) error {
	var v int64
	var err error
	if tenant == "" {
		err = tx.QueryRow(ctx, `SELECT version FROM shield_versions WHERE tenant_id IS NULL FOR UPDATE`).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			return errors.New("global shield version row missing")
		}
		return err
	}
	err = tx.QueryRow(ctx,
		`INSERT INTO shield_versions AS v (tenant_id, version) VALUES ($1, 0)
		 ON CONFLICT (tenant_id) DO UPDATE SET version = v.version
		 RETURNING version`, string(tenant)).Scan(&v)
	if isForeignKey(err) {
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

// bumpShieldVersion counts a change in the scope locked by
// lockShieldVersion.
func bumpShieldVersion(ctx context.Context, tx pgx.Tx, tenant vaultcrux.TenantID) error {
	cond, args := switchScope(tenant, 1)
	tag, err := tx.Exec(ctx, `UPDATE shield_versions SET version = version + 1 WHERE `+cond, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return errors.New("shield version row missing")
	}
	return nil
}

func (t *tenantTx) lockShield() error { return lockShieldVersion(t.ctx, t.tx, t.tenant) }
func (t *tenantTx) bump() error       { return bumpShieldVersion(t.ctx, t.tx, t.tenant) }

// enterShield is enter followed by lockShield: the start of a method that
// changes what processes cache.
func (t *tenantTx) enterShield() error {
	if err := t.enter(); err != nil {
		return err
	}
	return t.lockShield()
}

// nullBytes stores an empty slice as NULL.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func checkLimit(limit int) error {
	if limit <= 0 {
		return vaultcrux.E(vaultcrux.Invalid, "limit must be positive")
	}
	return nil
}

// sqlBuilder builds a statement whose conditions depend on the arguments
// in use, numbering the parameters as they are added.
type sqlBuilder struct {
	b    strings.Builder
	args []any
}

func (q *sqlBuilder) sql(s string) { q.b.WriteString(s) }

// arg writes cond followed by the placeholder of v.
func (q *sqlBuilder) arg(cond string, v any) {
	q.args = append(q.args, v)
	q.b.WriteString(cond + "$" + strconv.Itoa(len(q.args)))
}

// Publishers.

func (t *tenantTx) CreatePublisher(p *store.ShieldPublisher) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.CreatePublisher")
	if err := t.enter(); err != nil {
		return err
	}
	if p.ID == "" || p.Name == "" {
		return errors.New("publisher without id or name")
	}
	_, err = t.tx.Exec(t.ctx,
		`INSERT INTO shield_publishers (tenant_id, `+publisherColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		string(t.tenant), p.ID, p.Name, p.URL, ms(p.CreatedAt))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "a publisher with this id or name exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

func (t *tenantTx) GetPublisher(id string) (_ *store.ShieldPublisher, err error) {
	defer vaultcrux.Wrap(&err, "postgres.GetPublisher")
	if err := t.enter(); err != nil {
		return nil, err
	}
	p, err := scanPublisher(t.tx.QueryRow(t.ctx,
		`SELECT `+publisherColumns+` FROM shield_publishers WHERE tenant_id = $1 AND publisher_id = $2`,
		string(t.tenant), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "publisher not found")
	}
	return p, err
}

func (t *tenantTx) ListPublishers(after string, limit int) (_ []*store.ShieldPublisher, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListPublishers")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(t.ctx,
		`SELECT `+publisherColumns+` FROM shield_publishers
		 WHERE tenant_id = $1 AND publisher_id > $2 ORDER BY publisher_id LIMIT $3`,
		string(t.tenant), after, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanPublisher)
}

// Servers.

func (t *tenantTx) CreateServer(s *store.ShieldServer) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.CreateServer")
	if err := t.enter(); err != nil {
		return err
	}
	if s.ID == "" || s.Name == "" || s.Digest == "" {
		return errors.New("server without id, name or digest")
	}
	if !store.ValidServerStatus(s.Status) {
		return vaultcrux.E(vaultcrux.Invalid, "invalid server status")
	}
	if err := t.lockShield(); err != nil {
		return err
	}
	_, err = t.tx.Exec(t.ctx,
		`INSERT INTO shield_servers (tenant_id, `+serverColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		string(t.tenant), s.ID, s.Name, s.URL, s.Command, nullString(s.PublisherID), notNullBytes(s.Tools), s.Digest,
		s.Status, ms(s.CreatedAt), ms(s.UpdatedAt))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "a server with this id or name exists")
	case isForeignKey(err) && s.PublisherID != "":
		return vaultcrux.E(vaultcrux.NotFound, "tenant or publisher not found")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	case err != nil:
		return err
	}
	return t.bump()
}

func (t *tenantTx) GetServer(id string) (_ *store.ShieldServer, err error) {
	defer vaultcrux.Wrap(&err, "postgres.GetServer")
	if err := t.enter(); err != nil {
		return nil, err
	}
	s, err := scanServer(t.tx.QueryRow(t.ctx,
		`SELECT `+serverColumns+` FROM shield_servers WHERE tenant_id = $1 AND server_id = $2`, string(t.tenant), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "server not found")
	}
	return s, err
}

func (t *tenantTx) ListServers(after string, limit int) (_ []*store.ShieldServer, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListServers")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(t.ctx,
		`SELECT `+serverColumns+` FROM shield_servers
		 WHERE tenant_id = $1 AND server_id > $2 ORDER BY server_id LIMIT $3`, string(t.tenant), after, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanServer)
}

func (t *tenantTx) UpdateServerTools(id string, tools []byte, digest string, now time.Time) (_ *store.ShieldServer, err error) {
	defer vaultcrux.Wrap(&err, "postgres.UpdateServerTools")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if digest == "" {
		return nil, errors.New("server tools without a digest")
	}
	return t.updateServer(
		`UPDATE shield_servers SET tools = $1, digest = $2, updated_at = $3
		 WHERE tenant_id = $4 AND server_id = $5 RETURNING `+serverColumns,
		notNullBytes(tools), digest, ms(now), string(t.tenant), id)
}

func (t *tenantTx) SetServerStatus(id, status string, now time.Time) (_ *store.ShieldServer, err error) {
	defer vaultcrux.Wrap(&err, "postgres.SetServerStatus")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if !store.ValidServerStatus(status) {
		return nil, vaultcrux.E(vaultcrux.Invalid, "invalid server status")
	}
	return t.updateServer(
		`UPDATE shield_servers SET status = $1, updated_at = $2
		 WHERE tenant_id = $3 AND server_id = $4 RETURNING `+serverColumns,
		status, ms(now), string(t.tenant), id)
}

// updateServer runs an UPDATE … RETURNING of one server under the version
// lock and bumps the version.
func (t *tenantTx) updateServer(query string, args ...any) (*store.ShieldServer, error) {
	if err := t.lockShield(); err != nil {
		return nil, err
	}
	s, err := scanServer(t.tx.QueryRow(t.ctx, query, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "server not found")
	}
	if err != nil {
		return nil, err
	}
	return s, t.bump()
}

// Pinned digests.

func (t *tenantTx) PinDigest(p *store.ShieldPin) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.PinDigest")
	if err := t.enter(); err != nil {
		return err
	}
	if p.ServerID == "" || p.Digest == "" {
		return errors.New("pin without server id or digest")
	}
	if p.RevokedAt != nil || p.RevokedBy != "" || p.RevokeReason != "" {
		return errors.New("pin created revoked")
	}
	if err := t.lockShield(); err != nil {
		return err
	}
	_, err = t.tx.Exec(t.ctx,
		`INSERT INTO shield_pins (tenant_id, `+pinColumns+`) VALUES ($1, $2, $3, $4, $5, NULL, '', '')`,
		string(t.tenant), p.ServerID, p.Digest, p.PinnedBy, ms(p.PinnedAt))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "digest already pinned for this server")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "server not found")
	case err != nil:
		return err
	}
	return t.bump()
}

func (t *tenantTx) RevokeDigest(serverID, digest, by, reason string, at time.Time) (_ *store.ShieldPin, err error) {
	defer vaultcrux.Wrap(&err, "postgres.RevokeDigest")
	if err := t.enterShield(); err != nil {
		return nil, err
	}
	p, err := scanPin(t.tx.QueryRow(t.ctx,
		`UPDATE shield_pins SET revoked_at = $1, revoked_by = $2, revoke_reason = $3
		 WHERE tenant_id = $4 AND server_id = $5 AND digest = $6 AND revoked_at IS NULL
		 RETURNING `+pinColumns,
		ms(at), by, reason, string(t.tenant), serverID, digest))
	if err == nil {
		return p, t.bump()
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	p, err = scanPin(t.tx.QueryRow(t.ctx,
		`SELECT `+pinColumns+` FROM shield_pins WHERE tenant_id = $1 AND server_id = $2 AND digest = $3`,
		string(t.tenant), serverID, digest))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "digest not pinned")
	}
	return p, err // revoked before: kept as it was
}

func (t *tenantTx) ListPins(serverID string) (_ []*store.ShieldPin, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListPins")
	if err := t.enter(); err != nil {
		return nil, err
	}
	var q sqlBuilder
	q.arg(`SELECT `+pinColumns+` FROM shield_pins WHERE tenant_id = `, string(t.tenant))
	if serverID != "" {
		q.arg(` AND server_id = `, serverID)
	}
	q.sql(` ORDER BY server_id, pinned_at, digest`)
	rows, err := t.tx.Query(t.ctx, q.b.String(), q.args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanPin)
}

// Kill switches. The functions below serve a tenant's switches and, with
// tenant "", the global ones; the caller has set the scope (enter or
// admin).

// switchScope is the condition that keeps a query to tenant's rows, or to
// the global ones, with its arguments; its placeholder is $n.
func switchScope(tenant vaultcrux.TenantID, n int) (string, []any) {
	if tenant == "" {
		return `tenant_id IS NULL`, nil
	}
	return `tenant_id = $` + strconv.Itoa(n), []any{string(tenant)}
}

func checkKillSwitch(tenant vaultcrux.TenantID, k *store.KillSwitch) error {
	switch {
	case k.Tenant != tenant:
		return errors.New("kill switch tenant differs from the handle's tenant")
	case k.ID == "":
		return errors.New("kill switch without id")
	case k.ReleasedAt != nil || k.ReleasedBy != "":
		return errors.New("kill switch engaged released")
	case !store.ValidKillSwitchScope(k.Scope):
		return vaultcrux.E(vaultcrux.Invalid, "invalid kill switch scope")
	case tenant == "" && k.Scope != "global":
		return errors.New("global kill switch of a tenant scope")
	case tenant != "" && k.Scope == "global":
		return vaultcrux.E(vaultcrux.Invalid, "global kill switches are the operator's only")
	}
	return nil
}

func engageKillSwitch(ctx context.Context, tx pgx.Tx, tenant vaultcrux.TenantID, k *store.KillSwitch) error {
	if err := lockShieldVersion(ctx, tx, tenant); err != nil {
		return err
	}
	_, err := tx.Exec(ctx,
		`INSERT INTO kill_switches (`+killSwitchColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, '')`,
		k.ID, nullString(string(tenant)), k.Scope, k.Target, k.Reason, k.EngagedBy, ms(k.EngagedAt))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "kill switch id already exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	case err != nil:
		return err
	}
	if err := insertKillSwitchAudit(ctx, tx, tenant, k.ID, "engage", k.EngagedBy, k.EngagedAt, k.Reason); err != nil {
		return err
	}
	return bumpShieldVersion(ctx, tx, tenant)
}

func insertKillSwitchAudit(ctx context.Context, tx pgx.Tx, tenant vaultcrux.TenantID, switchID, action, actor string, at time.Time, reason string) error {
	_, err := tx.Exec(ctx,
		`INSERT INTO kill_switch_audit (switch_id, action, tenant_id, actor, at, reason) VALUES ($1, $2, $3, $4, $5, $6)`,
		switchID, action, nullString(string(tenant)), actor, ms(at), reason)
	if isUnique(err) {
		// The switch's row and its audit disagree: a bug, not a conflict.
		return errors.New("kill switch audit row exists")
	}
	return err
}

// releaseKillSwitch releases an engaged switch; a released one is
// returned as it is, with no audit row.
func releaseKillSwitch(ctx context.Context, tx pgx.Tx, tenant vaultcrux.TenantID, id, by string, at time.Time) (*store.KillSwitch, error) {
	if err := lockShieldVersion(ctx, tx, tenant); err != nil {
		return nil, err
	}
	cond, scope := switchScope(tenant, 4)
	k, err := scanKillSwitch(tx.QueryRow(ctx,
		`UPDATE kill_switches SET released_at = $1, released_by = $2
		 WHERE switch_id = $3 AND released_at IS NULL AND `+cond+` RETURNING `+killSwitchColumns,
		append([]any{ms(at), by, id}, scope...)...))
	if errors.Is(err, pgx.ErrNoRows) {
		return getKillSwitch(ctx, tx, tenant, id)
	}
	if err != nil {
		return nil, err
	}
	if err := insertKillSwitchAudit(ctx, tx, tenant, id, "release", by, at, ""); err != nil {
		return nil, err
	}
	return k, bumpShieldVersion(ctx, tx, tenant)
}

func getKillSwitch(ctx context.Context, tx pgx.Tx, tenant vaultcrux.TenantID, id string) (*store.KillSwitch, error) {
	cond, scope := switchScope(tenant, 2)
	k, err := scanKillSwitch(tx.QueryRow(ctx,
		`SELECT `+killSwitchColumns+` FROM kill_switches WHERE switch_id = $1 AND `+cond,
		append([]any{id}, scope...)...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "kill switch not found")
	}
	return k, err
}

func listKillSwitches(ctx context.Context, tx pgx.Tx, tenant vaultcrux.TenantID, activeOnly bool) ([]*store.KillSwitch, error) {
	cond, args := switchScope(tenant, 1)
	q := `SELECT ` + killSwitchColumns + ` FROM kill_switches WHERE ` + cond
	if activeOnly {
		q += ` AND released_at IS NULL`
	}
	rows, err := tx.Query(ctx, q+` ORDER BY engaged_at, switch_id`, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanKillSwitch)
}

func listKillSwitchAudit(ctx context.Context, tx pgx.Tx, tenant vaultcrux.TenantID, switchID string) ([]*store.KillSwitchAudit, error) {
	cond, args := switchScope(tenant, 1)
	q := `SELECT ` + auditColumns + ` FROM kill_switch_audit WHERE ` + cond
	if switchID != "" {
		args = append(args, switchID)
		q += ` AND switch_id = $` + strconv.Itoa(len(args))
	}
	rows, err := tx.Query(ctx, q+` ORDER BY at, switch_id, action`, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanKillSwitchAudit)
}

func (t *tenantTx) EngageKillSwitch(k *store.KillSwitch) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.EngageKillSwitch")
	if err := t.enter(); err != nil {
		return err
	}
	if err := checkKillSwitch(t.tenant, k); err != nil {
		return err
	}
	return engageKillSwitch(t.ctx, t.tx, t.tenant, k)
}

func (t *tenantTx) ReleaseKillSwitch(id, by string, at time.Time) (_ *store.KillSwitch, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ReleaseKillSwitch")
	if err := t.enter(); err != nil {
		return nil, err
	}
	return releaseKillSwitch(t.ctx, t.tx, t.tenant, id, by, at)
}

func (t *tenantTx) GetKillSwitch(id string) (_ *store.KillSwitch, err error) {
	defer vaultcrux.Wrap(&err, "postgres.GetKillSwitch")
	if err := t.enter(); err != nil {
		return nil, err
	}
	return getKillSwitch(t.ctx, t.tx, t.tenant, id)
}

func (t *tenantTx) ListKillSwitches(activeOnly bool) (_ []*store.KillSwitch, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListKillSwitches")
	if err := t.enter(); err != nil {
		return nil, err
	}
	return listKillSwitches(t.ctx, t.tx, t.tenant, activeOnly)
}

func (t *tenantTx) ListKillSwitchAudit(switchID string) (_ []*store.KillSwitchAudit, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListKillSwitchAudit")
	if err := t.enter(); err != nil {
		return nil, err
	}
	return listKillSwitchAudit(t.ctx, t.tx, t.tenant, switchID)
}

func (s *systemTx) EngageGlobalKillSwitch(k *store.KillSwitch) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.EngageGlobalKillSwitch")
	if err := checkKillSwitch("", k); err != nil {
		return err
	}
	if err := s.admin(); err != nil {
		return err
	}
	return engageKillSwitch(s.ctx, s.tx, "", k)
}

func (s *systemTx) ReleaseGlobalKillSwitch(id, by string, at time.Time) (_ *store.KillSwitch, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ReleaseGlobalKillSwitch")
	if err := s.admin(); err != nil {
		return nil, err
	}
	return releaseKillSwitch(s.ctx, s.tx, "", id, by, at)
}

func (s *systemTx) ListGlobalKillSwitches(activeOnly bool) (_ []*store.KillSwitch, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListGlobalKillSwitches")
	if err := s.admin(); err != nil {
		return nil, err
	}
	return listKillSwitches(s.ctx, s.tx, "", activeOnly)
}

func (s *systemTx) ListGlobalKillSwitchAudit(switchID string) (_ []*store.KillSwitchAudit, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListGlobalKillSwitchAudit")
	if err := s.admin(); err != nil {
		return nil, err
	}
	return listKillSwitchAudit(s.ctx, s.tx, "", switchID)
}

func (s *systemTx) AllActiveKillSwitches() (_ []*store.KillSwitch, err error) {
	defer vaultcrux.Wrap(&err, "postgres.AllActiveKillSwitches")
	if err := s.admin(); err != nil {
		return nil, err
	}
	rows, err := s.tx.Query(s.ctx,
		`SELECT `+killSwitchColumns+` FROM kill_switches
		 WHERE released_at IS NULL ORDER BY COALESCE(tenant_id, ''), switch_id`)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanKillSwitch)
}

// Versions.

func (t *tenantTx) ShieldVersion() (_ int64, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ShieldVersion")
	if err := t.enter(); err != nil {
		return 0, err
	}
	var v int64
	err = t.tx.QueryRow(t.ctx, `SELECT version FROM shield_versions WHERE tenant_id = $1`, string(t.tenant)).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

func (s *systemTx) ShieldVersions() (_ map[vaultcrux.TenantID]int64, _ int64, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ShieldVersions")
	if err := s.admin(); err != nil {
		return nil, 0, err
	}
	rows, err := s.tx.Query(s.ctx, `SELECT tenant_id, version FROM shield_versions`)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	tenants := map[vaultcrux.TenantID]int64{}
	var global int64
	for rows.Next() {
		var tenant *string
		var v int64
		if err := rows.Scan(&tenant, &v); err != nil {
			return nil, 0, err
		}
		if tenant != nil {
			tenants[vaultcrux.TenantID(*tenant)] = v
		} else {
			global = v
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	return tenants, global, nil
}

// Settings.

func (t *tenantTx) SetShieldSetting(st *store.ShieldSetting) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.SetShieldSetting")
	if err := t.enter(); err != nil {
		return err
	}
	if !store.ValidShieldSettingName(st.Name) {
		return vaultcrux.E(vaultcrux.Invalid, "invalid shield setting name")
	}
	if err := t.lockShield(); err != nil {
		return err
	}
	_, err = t.tx.Exec(t.ctx,
		`INSERT INTO shield_settings (tenant_id, `+settingColumns+`) VALUES ($1, $2, $3, $4, $5)
		 ON CONFLICT (tenant_id, name) DO UPDATE SET
		     value = excluded.value, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
		string(t.tenant), st.Name, st.Value, st.UpdatedBy, ms(st.UpdatedAt))
	if isForeignKey(err) {
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	if err != nil {
		return err
	}
	return t.bump()
}

func (t *tenantTx) DeleteShieldSetting(name string) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.DeleteShieldSetting")
	if err := t.enterShield(); err != nil {
		return err
	}
	tag, err := t.tx.Exec(t.ctx, `DELETE FROM shield_settings WHERE tenant_id = $1 AND name = $2`, string(t.tenant), name)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return vaultcrux.E(vaultcrux.NotFound, "shield setting not found")
	}
	return t.bump()
}

func (t *tenantTx) ListShieldSettings() (_ []*store.ShieldSetting, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListShieldSettings")
	if err := t.enter(); err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(t.ctx,
		`SELECT `+settingColumns+` FROM shield_settings WHERE tenant_id = $1 ORDER BY name`, string(t.tenant))
	if err != nil {
		return nil, err
	}
	return collect(rows, scanSetting)
}

// Approvals.

func (t *tenantTx) CreateApproval(a *store.ShieldApproval) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.CreateApproval")
	if err := t.enter(); err != nil {
		return err
	}
	if a.ID == "" || a.Tool == "" {
		return errors.New("approval without id or tool")
	}
	if a.Status != "pending" || a.ResolvedAt != nil || a.ResolvedBy != "" || a.Note != "" ||
		len(a.TokenHash) != 0 || a.TokenExpiresAt != nil || a.ExecutedAt != nil {
		return errors.New("approval created other than pending")
	}
	_, err = t.tx.Exec(t.ctx,
		`INSERT INTO shield_approvals (tenant_id, `+approvalColumns+`)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12, $13, NULL, '', '', NULL, NULL, NULL, $14)`,
		string(t.tenant), a.ID, a.Server, a.Tool, a.ArgsHash, a.ManifestHash, a.Binding, notNullBytes(a.Args),
		a.Reason, a.ProposedBy, a.AgentID, ms(a.CreatedAt), ms(a.ExpiresAt), a.DecisionID)
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "approval id already exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

func (t *tenantTx) GetApproval(id string) (_ *store.ShieldApproval, err error) {
	defer vaultcrux.Wrap(&err, "postgres.GetApproval")
	if err := t.enter(); err != nil {
		return nil, err
	}
	a, err := scanApproval(t.tx.QueryRow(t.ctx,
		`SELECT `+approvalColumns+` FROM shield_approvals WHERE tenant_id = $1 AND approval_id = $2`,
		string(t.tenant), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "approval not found")
	}
	return a, err
}

func (t *tenantTx) FindApprovalByToken(tokenHash []byte) (_ *store.ShieldApproval, err error) {
	defer vaultcrux.Wrap(&err, "postgres.FindApprovalByToken")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if len(tokenHash) == 0 {
		return nil, vaultcrux.E(vaultcrux.NotFound, "approval token not found")
	}
	a, err := scanApproval(t.tx.QueryRow(t.ctx,
		`SELECT `+approvalColumns+` FROM shield_approvals WHERE tenant_id = $1 AND token_hash = $2`,
		string(t.tenant), tokenHash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "approval token not found")
	}
	return a, err
}

// checkResolution rejects a resolution whose token does not fit its
// status: the caller's bug.
func checkResolution(status string, tokenHash []byte, tokenExpiresAt *time.Time) error {
	switch status {
	case "approved":
		if len(tokenHash) == 0 || tokenExpiresAt == nil {
			return errors.New("approval without a token")
		}
	case "denied":
		if len(tokenHash) != 0 || tokenExpiresAt != nil {
			return errors.New("denial with a token")
		}
	default:
		return errors.New("approval resolved other than approved or denied")
	}
	return nil
}

func (t *tenantTx) ResolveApproval(id, status, by, note string, tokenHash []byte, tokenExpiresAt *time.Time, at time.Time) (_ *store.ShieldApproval, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ResolveApproval")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if err := checkResolution(status, tokenHash, tokenExpiresAt); err != nil {
		return nil, err
	}
	a, err := scanApproval(t.tx.QueryRow(t.ctx,
		`UPDATE shield_approvals SET status = $1, resolved_at = $2, resolved_by = $3, note = $4,
		     token_hash = $5, token_expires_at = $6
		 WHERE tenant_id = $7 AND approval_id = $8 AND status = 'pending' AND expires_at > $2
		 RETURNING `+approvalColumns,
		status, ms(at), by, note, nullBytes(tokenHash), msPtr(tokenExpiresAt), string(t.tenant), id))
	switch {
	case isUnique(err):
		return nil, vaultcrux.E(vaultcrux.Conflict, "approval token already exists")
	case !errors.Is(err, pgx.ErrNoRows):
		return a, err
	}
	a, err = scanApproval(t.tx.QueryRow(t.ctx,
		`SELECT `+approvalColumns+` FROM shield_approvals WHERE tenant_id = $1 AND approval_id = $2`,
		string(t.tenant), id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, vaultcrux.E(vaultcrux.NotFound, "approval not found")
	case err != nil:
		return nil, err
	case a.Status != "pending":
		return nil, vaultcrux.E(vaultcrux.Conflict, "approval is resolved already")
	}
	return nil, vaultcrux.E(vaultcrux.Conflict, "approval request expired")
}

func (t *tenantTx) ConsumeApprovalToken(tokenHash []byte, at time.Time) (_ *store.ShieldApproval, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ConsumeApprovalToken")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if len(tokenHash) == 0 {
		return nil, vaultcrux.E(vaultcrux.NotFound, "approval token not found")
	}
	a, err := scanApproval(t.tx.QueryRow(t.ctx,
		`UPDATE shield_approvals SET status = 'executed', executed_at = $1
		 WHERE tenant_id = $2 AND token_hash = $3 AND status = 'approved' AND token_expires_at > $1
		 RETURNING `+approvalColumns,
		ms(at), string(t.tenant), tokenHash))
	if !errors.Is(err, pgx.ErrNoRows) {
		return a, err
	}
	a, err = scanApproval(t.tx.QueryRow(t.ctx,
		`SELECT `+approvalColumns+` FROM shield_approvals WHERE tenant_id = $1 AND token_hash = $2`,
		string(t.tenant), tokenHash))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, vaultcrux.E(vaultcrux.NotFound, "approval token not found")
	case err != nil:
		return nil, err
	case a.Status != "approved":
		return nil, vaultcrux.E(vaultcrux.NotFound, "approval token not found")
	}
	return nil, vaultcrux.E(vaultcrux.Invalid, "approval token expired")
}

func (t *tenantTx) ExpireApprovals(now time.Time) (_ []*store.ShieldApproval, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ExpireApprovals")
	if err := t.enter(); err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(t.ctx,
		`UPDATE shield_approvals SET status = 'expired', resolved_at = $1
		 WHERE tenant_id = $2 AND status = 'pending' AND expires_at <= $1
		 RETURNING `+approvalColumns, ms(now), string(t.tenant))
	if err != nil {
		return nil, err
	}
	out, err := collect(rows, scanApproval)
	if err != nil {
		return nil, err
	}
	// RETURNING promises no order.
	slices.SortFunc(out, func(a, b *store.ShieldApproval) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (t *tenantTx) ListApprovals(status, after string, limit int) (_ []*store.ShieldApproval, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListApprovals")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	var q sqlBuilder
	q.arg(`SELECT `+approvalColumns+` FROM shield_approvals WHERE tenant_id = `, string(t.tenant))
	if status != "" {
		q.arg(` AND status = `, status)
	}
	q.arg(` AND approval_id > `, after)
	q.arg(` ORDER BY approval_id LIMIT `, limit)
	rows, err := t.tx.Query(t.ctx, q.b.String(), q.args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanApproval)
}

func (s *systemTx) TenantsWithExpiredApprovals(now time.Time) (_ []vaultcrux.TenantID, err error) {
	defer vaultcrux.Wrap(&err, "postgres.TenantsWithExpiredApprovals")
	if err := s.admin(); err != nil {
		return nil, err
	}
	rows, err := s.tx.Query(s.ctx,
		`SELECT DISTINCT tenant_id FROM shield_approvals
		 WHERE status = 'pending' AND expires_at <= $1 ORDER BY tenant_id`, ms(now))
	if err != nil {
		return nil, err
	}
	return collectTenantIDs(rows)
}

// Decisions and the outbox.

func validOutcome(o string) bool { return o == "allow" || o == "deny" || o == "approval_required" }

// RecordDecision is one statement, one round trip: the event's INSERT
// runs in a WITH clause of the decision's, and a statement is atomic.
func (t *tenantTx) RecordDecision(d *store.ShieldDecision, e *store.OutboxEvent) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.RecordDecision")
	if err := t.enter(); err != nil {
		return err
	}
	switch {
	case d.ID == "" || e == nil || e.ID == "" || e.Kind == "":
		return errors.New("decision without id or event")
	case !validOutcome(d.Outcome):
		return errors.New("decision of unknown outcome")
	case e.DeliveredAt != nil:
		return errors.New("outbox event recorded delivered")
	}
	_, err = t.tx.Exec(t.ctx,
		`WITH event AS (
		     INSERT INTO event_outbox (tenant_id, `+outboxColumns+`) VALUES ($1, $2, $3, $4, $5, NULL))
		 INSERT INTO shield_decisions (tenant_id, `+decisionColumns+`)
		 VALUES ($1, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)`,
		string(t.tenant), e.ID, e.Kind, notNullBytes(e.Payload), ms(e.CreatedAt),
		d.ID, d.Tool, d.Server, d.Outcome, d.Stage, d.DenialType, d.Mode, d.Verdict,
		d.Enforced, d.WouldBlock, d.Tainted, d.ManifestHash, d.ArgsHash, d.ApprovalID, d.AgentID, d.Actor,
		d.ReceiptID, notNullBytes(d.Inputs), ms(d.CreatedAt))
	var pgErr *pgconn.PgError
	switch {
	case isUnique(err) && errors.As(err, &pgErr) && pgErr.TableName == "event_outbox":
		return vaultcrux.E(vaultcrux.Conflict, "outbox event id already exists")
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "shield decision id already exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

func (t *tenantTx) GetDecision(id string) (_ *store.ShieldDecision, err error) {
	defer vaultcrux.Wrap(&err, "postgres.GetDecision")
	if err := t.enter(); err != nil {
		return nil, err
	}
	d, err := scanDecision(t.tx.QueryRow(t.ctx,
		`SELECT `+decisionColumns+` FROM shield_decisions WHERE tenant_id = $1 AND decision_id = $2`,
		string(t.tenant), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "shield decision not found")
	}
	return d, err
}

func (t *tenantTx) ListDecisions(f store.DecisionFilter, before string, limit int) (_ []*store.ShieldDecision, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListDecisions")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	// Only the conditions in use are written, as in ListReceipts.
	var q sqlBuilder
	q.arg(`SELECT `+decisionColumns+` FROM shield_decisions WHERE tenant_id = `, string(t.tenant))
	if f.Outcome != "" {
		q.arg(` AND outcome = `, f.Outcome)
	}
	if f.Tool != "" {
		q.arg(` AND tool = `, f.Tool)
	}
	if !f.Since.IsZero() {
		q.arg(` AND created_at >= `, ms(f.Since))
	}
	if before != "" {
		q.arg(` AND decision_id < `, before)
	}
	q.arg(` ORDER BY decision_id DESC LIMIT `, limit)
	rows, err := t.tx.Query(t.ctx, q.b.String(), q.args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanDecision)
}

func (t *tenantTx) CountRecentDecisions(tool, agentID string, since time.Time) (_ int, err error) {
	defer vaultcrux.Wrap(&err, "postgres.CountRecentDecisions")
	if err := t.enter(); err != nil {
		return 0, err
	}
	var n int
	if agentID != "" {
		err = t.tx.QueryRow(t.ctx,
			`SELECT count(*) FROM shield_decisions
			 WHERE tenant_id = $1 AND tool = $2 AND agent_id = $3 AND created_at >= $4`,
			string(t.tenant), tool, agentID, ms(since)).Scan(&n)
	} else {
		err = t.tx.QueryRow(t.ctx,
			`SELECT count(*) FROM shield_decisions WHERE tenant_id = $1 AND tool = $2 AND created_at >= $3`,
			string(t.tenant), tool, ms(since)).Scan(&n)
	}
	return n, err
}

func (t *tenantTx) AddTaintEvent(e *store.TaintEvent) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.AddTaintEvent")
	if err := t.enter(); err != nil {
		return err
	}
	if e.ID == "" || e.Class == "" {
		return errors.New("taint event without id or class")
	}
	_, err = t.tx.Exec(t.ctx,
		`INSERT INTO taint_events (tenant_id, `+taintColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		string(t.tenant), e.ID, e.DecisionID, e.Class, e.Tool, notNullBytes(e.Sources), e.AgentID, ms(e.At))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "taint event id already exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

func (t *tenantTx) ListTaintEvents(before string, limit int) (_ []*store.TaintEvent, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListTaintEvents")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	var q sqlBuilder
	q.arg(`SELECT `+taintColumns+` FROM taint_events WHERE tenant_id = `, string(t.tenant))
	if before != "" {
		q.arg(` AND event_id < `, before)
	}
	q.arg(` ORDER BY event_id DESC LIMIT `, limit)
	rows, err := t.tx.Query(t.ctx, q.b.String(), q.args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanTaint)
}

// dbClock is the database's clock at the moment of reading, truncated to
// milliseconds as every stored time: clock_timestamp(), not now(), which
// is the start of the transaction and would put a mark that commits late
// behind the polls that ran meanwhile.
const dbClock = `date_trunc('milliseconds', clock_timestamp())`

// MarkSessionTaint is one upsert. The SET expressions read the stored
// row as it was before the update (s), and excluded.updated_at is the
// clock of this mark. A concurrent mark of the same session waits for the
// row and applies its update to the committed one.
func (t *tenantTx) MarkSessionTaint(session, source string, expiresAt time.Time) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.MarkSessionTaint")
	if err := t.enter(); err != nil {
		return err
	}
	if session == "" || source == "" {
		return vaultcrux.E(vaultcrux.Invalid, "session taint without session or source")
	}
	_, err = t.tx.Exec(t.ctx,
		`INSERT INTO shield_session_taint AS s (`+sessionTaintColumns+`)
		 VALUES ($1, $2, $3, $4, `+dbClock+`)
		 ON CONFLICT (tenant_id, session) DO UPDATE SET
		     expires_at = GREATEST(s.expires_at, excluded.expires_at),
		     source = CASE WHEN s.expires_at <= excluded.updated_at THEN excluded.source ELSE s.source END,
		     updated_at = excluded.updated_at`,
		string(t.tenant), session, source, ms(expiresAt))
	if isForeignKey(err) {
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

// RecentSessionTaint reads the clock before the marks: under READ
// COMMITTED the marks' query sees every mark committed before it started,
// the clock read included. What it misses is a mark whose transaction
// read the clock before dbNow but committed after the query began: the
// caller's margin below dbNow is for those.
func (s *systemTx) RecentSessionTaint(since time.Time) (_ []*store.SessionTaint, _ time.Time, err error) {
	defer vaultcrux.Wrap(&err, "postgres.RecentSessionTaint")
	if err := s.admin(); err != nil {
		return nil, time.Time{}, err
	}
	var now time.Time
	if err := s.tx.QueryRow(s.ctx, `SELECT `+dbClock).Scan(&now); err != nil {
		return nil, time.Time{}, err
	}
	var q sqlBuilder
	q.sql(`SELECT ` + sessionTaintColumns + ` FROM shield_session_taint`)
	if !since.IsZero() {
		q.arg(` WHERE updated_at >= `, ms(since))
	}
	q.sql(` ORDER BY tenant_id, session`)
	rows, err := s.tx.Query(s.ctx, q.b.String(), q.args...)
	if err != nil {
		return nil, time.Time{}, err
	}
	marks, err := collect(rows, scanSessionTaint)
	if err != nil {
		return nil, time.Time{}, err
	}
	return marks, now.UTC(), nil
}

func (s *systemTx) PruneSessionTaint(now time.Time) (_ int, err error) {
	defer vaultcrux.Wrap(&err, "postgres.PruneSessionTaint")
	if err := s.admin(); err != nil {
		return 0, err
	}
	tag, err := s.tx.Exec(s.ctx, `DELETE FROM shield_session_taint WHERE expires_at <= $1`, ms(now))
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

func (t *tenantTx) ListOutbox(undeliveredOnly bool, limit int) (_ []*store.OutboxEvent, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListOutbox")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	q := `SELECT ` + outboxColumns + ` FROM event_outbox WHERE tenant_id = $1`
	if undeliveredOnly {
		q += ` AND delivered_at IS NULL`
	}
	rows, err := t.tx.Query(t.ctx, q+` ORDER BY event_id LIMIT $2`, string(t.tenant), limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanOutbox)
}

func (t *tenantTx) MarkDelivered(ids []string, at time.Time) (_ int, err error) {
	defer vaultcrux.Wrap(&err, "postgres.MarkDelivered")
	if err := t.enter(); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	tag, err := t.tx.Exec(t.ctx,
		`UPDATE event_outbox SET delivered_at = $1
		 WHERE tenant_id = $2 AND delivered_at IS NULL AND event_id = ANY($3)`,
		ms(at), string(t.tenant), ids)
	return int(tag.RowsAffected()), err
}

func (s *systemTx) TenantsWithUndeliveredEvents() (_ []vaultcrux.TenantID, err error) {
	defer vaultcrux.Wrap(&err, "postgres.TenantsWithUndeliveredEvents")
	if err := s.admin(); err != nil {
		return nil, err
	}
	rows, err := s.tx.Query(s.ctx,
		`SELECT DISTINCT tenant_id FROM event_outbox WHERE delivered_at IS NULL ORDER BY tenant_id`)
	if err != nil {
		return nil, err
	}
	return collectTenantIDs(rows)
}

// Sampling policies.

func (t *tenantTx) CreateSamplingPolicy(p *store.SamplingPolicy) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.CreateSamplingPolicy")
	if err := t.enter(); err != nil {
		return err
	}
	if p.ID == "" || p.DeletedAt != nil {
		return errors.New("sampling policy without id or created deleted")
	}
	if !store.ValidSamplingPolicy(p) {
		return vaultcrux.E(vaultcrux.Invalid, "invalid sampling policy")
	}
	if err := t.lockShield(); err != nil {
		return err
	}
	_, err = t.tx.Exec(t.ctx,
		`INSERT INTO sampling_policies (tenant_id, `+samplingColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)`,
		string(t.tenant), p.ID, p.Scope, p.Target, p.MaxCalls, p.WindowMs, p.Per, p.CreatedBy, ms(p.CreatedAt))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "sampling policy id already exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	case err != nil:
		return err
	}
	return t.bump()
}

func (t *tenantTx) ListSamplingPolicies() (_ []*store.SamplingPolicy, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListSamplingPolicies")
	if err := t.enter(); err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(t.ctx,
		`SELECT `+samplingColumns+` FROM sampling_policies
		 WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY policy_id`, string(t.tenant))
	if err != nil {
		return nil, err
	}
	return collect(rows, scanSampling)
}

func (t *tenantTx) DeleteSamplingPolicy(id string, at time.Time) (_ *store.SamplingPolicy, err error) {
	defer vaultcrux.Wrap(&err, "postgres.DeleteSamplingPolicy")
	if err := t.enterShield(); err != nil {
		return nil, err
	}
	p, err := scanSampling(t.tx.QueryRow(t.ctx,
		`UPDATE sampling_policies SET deleted_at = $1
		 WHERE tenant_id = $2 AND policy_id = $3 AND deleted_at IS NULL RETURNING `+samplingColumns,
		ms(at), string(t.tenant), id))
	if err == nil {
		return p, t.bump()
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	p, err = scanSampling(t.tx.QueryRow(t.ctx,
		`SELECT `+samplingColumns+` FROM sampling_policies WHERE tenant_id = $1 AND policy_id = $2`,
		string(t.tenant), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "sampling policy not found")
	}
	return p, err // deleted before: kept as it was
}

// UI integrity sessions.

func (t *tenantTx) CreateUISession(s *store.UISession) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.CreateUISession")
	if err := t.enter(); err != nil {
		return err
	}
	if s.ID == "" {
		return errors.New("ui session without id")
	}
	allow, err := encodeToolAllow(s.ToolAllow)
	if err != nil {
		return err
	}
	_, err = t.tx.Exec(t.ctx,
		`INSERT INTO ui_integrity_sessions (tenant_id, `+uiSessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		string(t.tenant), s.ID, s.Origin, allow, s.CreatedBy, ms(s.CreatedAt), ms(s.ExpiresAt), msPtr(s.RevokedAt))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "ui session id already exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

// encodeToolAllow stores a nil list as an empty array.
func encodeToolAllow(tools []string) (string, error) {
	if tools == nil {
		tools = []string{}
	}
	b, err := json.Marshal(tools)
	return string(b), err
}

func (t *tenantTx) GetUISession(id string) (_ *store.UISession, err error) {
	defer vaultcrux.Wrap(&err, "postgres.GetUISession")
	if err := t.enter(); err != nil {
		return nil, err
	}
	s, err := scanUISession(t.tx.QueryRow(t.ctx,
		`SELECT `+uiSessionColumns+` FROM ui_integrity_sessions WHERE tenant_id = $1 AND session_id = $2`,
		string(t.tenant), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "ui session not found")
	}
	return s, err
}

func (t *tenantTx) ListUISessions(after string, limit int) (_ []*store.UISession, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListUISessions")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(t.ctx,
		`SELECT `+uiSessionColumns+` FROM ui_integrity_sessions
		 WHERE tenant_id = $1 AND session_id > $2 ORDER BY session_id LIMIT $3`, string(t.tenant), after, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanUISession)
}

func (t *tenantTx) RevokeUISession(id string, at time.Time) (_ *store.UISession, err error) {
	defer vaultcrux.Wrap(&err, "postgres.RevokeUISession")
	if err := t.enter(); err != nil {
		return nil, err
	}
	s, err := scanUISession(t.tx.QueryRow(t.ctx,
		`UPDATE ui_integrity_sessions SET revoked_at = COALESCE(revoked_at, $1)
		 WHERE tenant_id = $2 AND session_id = $3 RETURNING `+uiSessionColumns, ms(at), string(t.tenant), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "ui session not found")
	}
	return s, err
}

// Incident drills.

func (t *tenantTx) CreateIncidentDrill(d *store.IncidentDrill) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.CreateIncidentDrill")
	if err := t.enter(); err != nil {
		return err
	}
	if d.ID == "" || d.Scenario == "" {
		return errors.New("incident drill without id or scenario")
	}
	if d.Result != "" || d.FinishedAt != nil {
		return errors.New("incident drill created finished")
	}
	_, err = t.tx.Exec(t.ctx,
		`INSERT INTO incident_drills (tenant_id, `+drillColumns+`) VALUES ($1, $2, $3, $4, '', $5, $6, $7, NULL)`,
		string(t.tenant), d.ID, d.Scenario, d.KillSwitchID, notNullBytes(d.Details), d.StartedBy, ms(d.StartedAt))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "incident drill id already exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

func (t *tenantTx) FinishIncidentDrill(id, result string, details []byte, at time.Time) (_ *store.IncidentDrill, err error) {
	defer vaultcrux.Wrap(&err, "postgres.FinishIncidentDrill")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if result != "passed" && result != "failed" {
		return nil, errors.New("incident drill finished other than passed or failed")
	}
	d, err := scanDrill(t.tx.QueryRow(t.ctx,
		`UPDATE incident_drills SET result = $1, details = $2, finished_at = $3
		 WHERE tenant_id = $4 AND drill_id = $5 AND finished_at IS NULL RETURNING `+drillColumns,
		result, notNullBytes(details), ms(at), string(t.tenant), id))
	if !errors.Is(err, pgx.ErrNoRows) {
		return d, err
	}
	var exists bool
	if err := t.tx.QueryRow(t.ctx,
		`SELECT EXISTS (SELECT 1 FROM incident_drills WHERE tenant_id = $1 AND drill_id = $2)`,
		string(t.tenant), id).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, vaultcrux.E(vaultcrux.NotFound, "incident drill not found")
	}
	return nil, vaultcrux.E(vaultcrux.Conflict, "incident drill finished already")
}

func (t *tenantTx) ListIncidentDrills(before string, limit int) (_ []*store.IncidentDrill, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListIncidentDrills")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	var q sqlBuilder
	q.arg(`SELECT `+drillColumns+` FROM incident_drills WHERE tenant_id = `, string(t.tenant))
	if before != "" {
		q.arg(` AND drill_id < `, before)
	}
	q.arg(` ORDER BY drill_id DESC LIMIT `, limit)
	rows, err := t.tx.Query(t.ctx, q.b.String(), q.args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanDrill)
}

// Columns and scanners.

const publisherColumns = `publisher_id, name, url, created_at`

func scanPublisher(row pgx.Row) (*store.ShieldPublisher, error) {
	var p store.ShieldPublisher
	if err := row.Scan(&p.ID, &p.Name, &p.URL, &p.CreatedAt); err != nil {
		return nil, err
	}
	p.CreatedAt = p.CreatedAt.UTC()
	return &p, nil
}

const serverColumns = `server_id, name, url, command, publisher_id, tools, digest, status, created_at, updated_at`

func scanServer(row pgx.Row) (*store.ShieldServer, error) {
	var s store.ShieldServer
	var publisher *string
	if err := row.Scan(&s.ID, &s.Name, &s.URL, &s.Command, &publisher, &s.Tools, &s.Digest, &s.Status,
		&s.CreatedAt, &s.UpdatedAt); err != nil {
		return nil, err
	}
	s.PublisherID, s.Tools = fromNull(publisher), nilIfEmpty(s.Tools)
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	return &s, nil
}

const pinColumns = `server_id, digest, pinned_by, pinned_at, revoked_at, revoked_by, revoke_reason`

func scanPin(row pgx.Row) (*store.ShieldPin, error) {
	var p store.ShieldPin
	if err := row.Scan(&p.ServerID, &p.Digest, &p.PinnedBy, &p.PinnedAt, &p.RevokedAt, &p.RevokedBy, &p.RevokeReason); err != nil {
		return nil, err
	}
	p.PinnedAt, p.RevokedAt = p.PinnedAt.UTC(), utcPtr(p.RevokedAt)
	return &p, nil
}

const killSwitchColumns = `switch_id, tenant_id, scope, target, reason, engaged_by, engaged_at, released_at, released_by`

func scanKillSwitch(row pgx.Row) (*store.KillSwitch, error) {
	var k store.KillSwitch
	var tenant *string
	if err := row.Scan(&k.ID, &tenant, &k.Scope, &k.Target, &k.Reason, &k.EngagedBy, &k.EngagedAt,
		&k.ReleasedAt, &k.ReleasedBy); err != nil {
		return nil, err
	}
	k.Tenant = vaultcrux.TenantID(fromNull(tenant))
	k.EngagedAt, k.ReleasedAt = k.EngagedAt.UTC(), utcPtr(k.ReleasedAt)
	return &k, nil
}

const auditColumns = `switch_id, action, actor, at, reason`

func scanKillSwitchAudit(row pgx.Row) (*store.KillSwitchAudit, error) {
	var a store.KillSwitchAudit
	if err := row.Scan(&a.SwitchID, &a.Action, &a.Actor, &a.At, &a.Reason); err != nil {
		return nil, err
	}
	a.ID = store.KillSwitchAuditID(a.SwitchID, a.Action)
	a.At = a.At.UTC()
	return &a, nil
}

const settingColumns = `name, value, updated_by, updated_at`

func scanSetting(row pgx.Row) (*store.ShieldSetting, error) {
	var s store.ShieldSetting
	if err := row.Scan(&s.Name, &s.Value, &s.UpdatedBy, &s.UpdatedAt); err != nil {
		return nil, err
	}
	s.UpdatedAt = s.UpdatedAt.UTC()
	return &s, nil
}

const approvalColumns = `approval_id, server, tool, args_hash, manifest_hash, binding, args, reason, proposed_by,
	agent_id, status, created_at, expires_at, resolved_at, resolved_by, note, token_hash, token_expires_at,
	executed_at, decision_id`

func scanApproval(row pgx.Row) (*store.ShieldApproval, error) {
	var a store.ShieldApproval
	if err := row.Scan(&a.ID, &a.Server, &a.Tool, &a.ArgsHash, &a.ManifestHash, &a.Binding, &a.Args, &a.Reason,
		&a.ProposedBy, &a.AgentID, &a.Status, &a.CreatedAt, &a.ExpiresAt, &a.ResolvedAt, &a.ResolvedBy, &a.Note,
		&a.TokenHash, &a.TokenExpiresAt, &a.ExecutedAt, &a.DecisionID); err != nil {
		return nil, err
	}
	a.Args, a.TokenHash = nilIfEmpty(a.Args), nilIfEmpty(a.TokenHash)
	a.CreatedAt, a.ExpiresAt = a.CreatedAt.UTC(), a.ExpiresAt.UTC()
	a.ResolvedAt, a.TokenExpiresAt, a.ExecutedAt = utcPtr(a.ResolvedAt), utcPtr(a.TokenExpiresAt), utcPtr(a.ExecutedAt)
	return &a, nil
}

const decisionColumns = `decision_id, tool, server, outcome, stage, denial_type, mode, verdict, enforced,
	would_block, tainted, manifest_hash, args_hash, approval_id, agent_id, actor, receipt_id, inputs, created_at`

func scanDecision(row pgx.Row) (*store.ShieldDecision, error) {
	var d store.ShieldDecision
	if err := row.Scan(&d.ID, &d.Tool, &d.Server, &d.Outcome, &d.Stage, &d.DenialType, &d.Mode, &d.Verdict,
		&d.Enforced, &d.WouldBlock, &d.Tainted, &d.ManifestHash, &d.ArgsHash, &d.ApprovalID, &d.AgentID,
		&d.Actor, &d.ReceiptID, &d.Inputs, &d.CreatedAt); err != nil {
		return nil, err
	}
	d.Inputs = nilIfEmpty(d.Inputs)
	d.CreatedAt = d.CreatedAt.UTC()
	return &d, nil
}

const outboxColumns = `event_id, kind, payload, created_at, delivered_at`

func scanOutbox(row pgx.Row) (*store.OutboxEvent, error) {
	var e store.OutboxEvent
	if err := row.Scan(&e.ID, &e.Kind, &e.Payload, &e.CreatedAt, &e.DeliveredAt); err != nil {
		return nil, err
	}
	e.Payload = nilIfEmpty(e.Payload)
	e.CreatedAt, e.DeliveredAt = e.CreatedAt.UTC(), utcPtr(e.DeliveredAt)
	return &e, nil
}

const taintColumns = `event_id, decision_id, class, tool, sources, agent_id, at`

func scanTaint(row pgx.Row) (*store.TaintEvent, error) {
	var e store.TaintEvent
	if err := row.Scan(&e.ID, &e.DecisionID, &e.Class, &e.Tool, &e.Sources, &e.AgentID, &e.At); err != nil {
		return nil, err
	}
	e.Sources = nilIfEmpty(e.Sources)
	e.At = e.At.UTC()
	return &e, nil
}

// sessionTaintColumns name the tenant: marks are read across tenants.
const sessionTaintColumns = `tenant_id, session, source, expires_at, updated_at`

func scanSessionTaint(row pgx.Row) (*store.SessionTaint, error) {
	var m store.SessionTaint
	var tenant string
	if err := row.Scan(&tenant, &m.Session, &m.Source, &m.ExpiresAt, &m.UpdatedAt); err != nil {
		return nil, err
	}
	m.Tenant = vaultcrux.TenantID(tenant)
	m.ExpiresAt, m.UpdatedAt = m.ExpiresAt.UTC(), m.UpdatedAt.UTC()
	return &m, nil
}

const samplingColumns = `policy_id, scope, target, max_calls, window_ms, per, created_by, created_at, deleted_at`

func scanSampling(row pgx.Row) (*store.SamplingPolicy, error) {
	var p store.SamplingPolicy
	if err := row.Scan(&p.ID, &p.Scope, &p.Target, &p.MaxCalls, &p.WindowMs, &p.Per, &p.CreatedBy,
		&p.CreatedAt, &p.DeletedAt); err != nil {
		return nil, err
	}
	p.CreatedAt, p.DeletedAt = p.CreatedAt.UTC(), utcPtr(p.DeletedAt)
	return &p, nil
}

const uiSessionColumns = `session_id, origin, tool_allow, created_by, created_at, expires_at, revoked_at`

func scanUISession(row pgx.Row) (*store.UISession, error) {
	var s store.UISession
	var allow string
	if err := row.Scan(&s.ID, &s.Origin, &allow, &s.CreatedBy, &s.CreatedAt, &s.ExpiresAt, &s.RevokedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(allow), &s.ToolAllow); err != nil {
		return nil, err
	}
	if len(s.ToolAllow) == 0 {
		s.ToolAllow = nil
	}
	s.CreatedAt, s.ExpiresAt, s.RevokedAt = s.CreatedAt.UTC(), s.ExpiresAt.UTC(), utcPtr(s.RevokedAt)
	return &s, nil
}

const drillColumns = `drill_id, scenario, kill_switch_id, result, details, started_by, started_at, finished_at`

func scanDrill(row pgx.Row) (*store.IncidentDrill, error) {
	var d store.IncidentDrill
	if err := row.Scan(&d.ID, &d.Scenario, &d.KillSwitchID, &d.Result, &d.Details, &d.StartedBy,
		&d.StartedAt, &d.FinishedAt); err != nil {
		return nil, err
	}
	d.Details = nilIfEmpty(d.Details)
	d.StartedAt, d.FinishedAt = d.StartedAt.UTC(), utcPtr(d.FinishedAt)
	return &d, nil
}
