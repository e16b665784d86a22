package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// Shield storage (contract §7). Reads that decide a write (the miss of a
// conditional update, told apart as NotFound or Conflict) are atomic with
// it because the transaction holds the write lock from BEGIN IMMEDIATE
// on. Methods that write several rows (a change and its version bump, a
// kill switch and its audit row) do so inside a savepoint of their own,
// so that a failure half-way leaves nothing behind even when the caller
// carries on with the transaction. RecordDecision, on the hot path,
// avoids the savepoint: see there.

// savepoint is tenantTx.savepoint for a system transaction.
func (s *systemTx) savepoint(name string, fn func() error) error {
	return (&tenantTx{ctx: s.ctx, tx: s.tx}).savepoint(name, fn)
}

// bumpShieldVersion counts a change of tenant's Shield state, or of the
// global state when tenant is "" (its row exists from the migration on).
func bumpShieldVersion(ctx context.Context, tx *sql.Tx, tenant vaultcrux.TenantID) error {
	if tenant == "" {
		res, err := tx.ExecContext(ctx, `UPDATE shield_versions SET version = version + 1 WHERE tenant_id IS NULL`)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return errors.New("global shield version row missing")
		}
		return nil
	}
	_, err := tx.ExecContext(ctx,
		`INSERT INTO shield_versions (tenant_id, version) VALUES (?, 1)
		 ON CONFLICT (tenant_id) DO UPDATE SET version = version + 1`, tenant)
	if isForeignKey(err) {
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

func (t *tenantTx) bump() error { return bumpShieldVersion(t.ctx, t.tx, t.tenant) }

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

// Publishers.

func (t *tenantTx) CreatePublisher(p *store.ShieldPublisher) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.CreatePublisher")
	if err := t.enter(); err != nil {
		return err
	}
	if p.ID == "" || p.Name == "" {
		return errors.New("publisher without id or name")
	}
	_, err = t.tx.ExecContext(t.ctx,
		`INSERT INTO shield_publishers (tenant_id, `+publisherColumns+`) VALUES (?, ?, ?, ?, ?)`,
		t.tenant, p.ID, p.Name, p.URL, millis(p.CreatedAt))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "a publisher with this id or name exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

func (t *tenantTx) GetPublisher(id string) (_ *store.ShieldPublisher, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.GetPublisher")
	if err := t.enter(); err != nil {
		return nil, err
	}
	p, err := scanPublisher(t.tx.QueryRowContext(t.ctx,
		`SELECT `+publisherColumns+` FROM shield_publishers WHERE tenant_id = ? AND publisher_id = ?`, t.tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "publisher not found")
	}
	return p, err
}

func (t *tenantTx) ListPublishers(after string, limit int) (_ []*store.ShieldPublisher, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListPublishers")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	rows, err := t.tx.QueryContext(t.ctx,
		`SELECT `+publisherColumns+` FROM shield_publishers
		 WHERE tenant_id = ? AND publisher_id > ? ORDER BY publisher_id LIMIT ?`, t.tenant, after, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanPublisher)
}

// Servers.

func (t *tenantTx) CreateServer(s *store.ShieldServer) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.CreateServer")
	if err := t.enter(); err != nil {
		return err
	}
	if s.ID == "" || s.Name == "" || s.Digest == "" {
		return errors.New("server without id, name or digest")
	}
	if !store.ValidServerStatus(s.Status) {
		return vaultcrux.E(vaultcrux.Invalid, "invalid server status")
	}
	return t.savepoint("create_server", func() error {
		_, err := t.tx.ExecContext(t.ctx,
			`INSERT INTO shield_servers (tenant_id, `+serverColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.tenant, s.ID, s.Name, s.URL, s.Command, nullString(s.PublisherID), notNullBytes(s.Tools), s.Digest,
			s.Status, millis(s.CreatedAt), millis(s.UpdatedAt))
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
	})
}

func (t *tenantTx) GetServer(id string) (_ *store.ShieldServer, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.GetServer")
	if err := t.enter(); err != nil {
		return nil, err
	}
	s, err := scanServer(t.tx.QueryRowContext(t.ctx,
		`SELECT `+serverColumns+` FROM shield_servers WHERE tenant_id = ? AND server_id = ?`, t.tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "server not found")
	}
	return s, err
}

func (t *tenantTx) ListServers(after string, limit int) (_ []*store.ShieldServer, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListServers")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	rows, err := t.tx.QueryContext(t.ctx,
		`SELECT `+serverColumns+` FROM shield_servers
		 WHERE tenant_id = ? AND server_id > ? ORDER BY server_id LIMIT ?`, t.tenant, after, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanServer)
}

func (t *tenantTx) UpdateServerTools(id string, tools []byte, digest string, now time.Time) (_ *store.ShieldServer, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.UpdateServerTools")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if digest == "" {
		return nil, errors.New("server tools without a digest")
	}
	return t.updateServer("update_server_tools",
		`UPDATE shield_servers SET tools = ?, digest = ?, updated_at = ?
		 WHERE tenant_id = ? AND server_id = ? RETURNING `+serverColumns,
		notNullBytes(tools), digest, millis(now), t.tenant, id)
}

func (t *tenantTx) SetServerStatus(id, status string, now time.Time) (_ *store.ShieldServer, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.SetServerStatus")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if !store.ValidServerStatus(status) {
		return nil, vaultcrux.E(vaultcrux.Invalid, "invalid server status")
	}
	return t.updateServer("set_server_status",
		`UPDATE shield_servers SET status = ?, updated_at = ?
		 WHERE tenant_id = ? AND server_id = ? RETURNING `+serverColumns,
		status, millis(now), t.tenant, id)
}

// updateServer runs an UPDATE … RETURNING of one server and bumps the
// version.
func (t *tenantTx) updateServer(savepoint, query string, args ...any) (*store.ShieldServer, error) {
	var s *store.ShieldServer
	err := t.savepoint(savepoint, func() error {
		var err error
		s, err = scanServer(t.tx.QueryRowContext(t.ctx, query, args...))
		if errors.Is(err, sql.ErrNoRows) {
			return vaultcrux.E(vaultcrux.NotFound, "server not found")
		}
		if err != nil {
			return err
		}
		return t.bump()
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Pinned digests.

func (t *tenantTx) PinDigest(p *store.ShieldPin) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.PinDigest")
	if err := t.enter(); err != nil {
		return err
	}
	if p.ServerID == "" || p.Digest == "" {
		return errors.New("pin without server id or digest")
	}
	if p.RevokedAt != nil || p.RevokedBy != "" || p.RevokeReason != "" {
		return errors.New("pin created revoked")
	}
	return t.savepoint("pin_digest", func() error {
		_, err := t.tx.ExecContext(t.ctx,
			`INSERT INTO shield_pins (tenant_id, `+pinColumns+`) VALUES (?, ?, ?, ?, ?, NULL, '', '')`,
			t.tenant, p.ServerID, p.Digest, p.PinnedBy, millis(p.PinnedAt))
		switch {
		case isUnique(err):
			return vaultcrux.E(vaultcrux.Conflict, "digest already pinned for this server")
		case isForeignKey(err):
			return vaultcrux.E(vaultcrux.NotFound, "server not found")
		case err != nil:
			return err
		}
		return t.bump()
	})
}

func (t *tenantTx) RevokeDigest(serverID, digest, by, reason string, at time.Time) (_ *store.ShieldPin, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.RevokeDigest")
	if err := t.enter(); err != nil {
		return nil, err
	}
	var p *store.ShieldPin
	err = t.savepoint("revoke_digest", func() error {
		var err error
		p, err = scanPin(t.tx.QueryRowContext(t.ctx,
			`UPDATE shield_pins SET revoked_at = ?, revoked_by = ?, revoke_reason = ?
			 WHERE tenant_id = ? AND server_id = ? AND digest = ? AND revoked_at IS NULL
			 RETURNING `+pinColumns,
			millis(at), by, reason, t.tenant, serverID, digest))
		if err == nil {
			return t.bump()
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		p, err = scanPin(t.tx.QueryRowContext(t.ctx,
			`SELECT `+pinColumns+` FROM shield_pins WHERE tenant_id = ? AND server_id = ? AND digest = ?`,
			t.tenant, serverID, digest))
		if errors.Is(err, sql.ErrNoRows) {
			return vaultcrux.E(vaultcrux.NotFound, "digest not pinned")
		}
		return err // revoked before: kept as it was
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (t *tenantTx) ListPins(serverID string) (_ []*store.ShieldPin, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListPins")
	if err := t.enter(); err != nil {
		return nil, err
	}
	q := `SELECT ` + pinColumns + ` FROM shield_pins WHERE tenant_id = ?`
	args := []any{t.tenant}
	if serverID != "" {
		q += ` AND server_id = ?`
		args = append(args, serverID)
	}
	rows, err := t.tx.QueryContext(t.ctx, q+` ORDER BY server_id, pinned_at, digest`, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanPin)
}

// Kill switches. The functions below serve a tenant's switches and, with
// tenant "", the global ones.

// switchScope is the condition that keeps a query to tenant's kill
// switches (or audit rows), or to the global ones, and its arguments.
func switchScope(tenant vaultcrux.TenantID) (string, []any) {
	if tenant == "" {
		return `tenant_id IS NULL`, nil
	}
	return `tenant_id = ?`, []any{tenant}
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

func engageKillSwitch(ctx context.Context, tx *sql.Tx, tenant vaultcrux.TenantID, k *store.KillSwitch) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO kill_switches (`+killSwitchColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, '')`,
		k.ID, nullString(string(tenant)), k.Scope, k.Target, k.Reason, k.EngagedBy, millis(k.EngagedAt))
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

func insertKillSwitchAudit(ctx context.Context, tx *sql.Tx, tenant vaultcrux.TenantID, switchID, action, actor string, at time.Time, reason string) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO kill_switch_audit (switch_id, action, tenant_id, actor, at, reason) VALUES (?, ?, ?, ?, ?, ?)`,
		switchID, action, nullString(string(tenant)), actor, millis(at), reason)
	if isUnique(err) {
		// The switch's row and its audit disagree: a bug, not a conflict.
		return errors.New("kill switch audit row exists")
	}
	return err
}

// releaseKillSwitch releases an engaged switch; a released one is
// returned as it is, with no audit row.
func releaseKillSwitch(ctx context.Context, tx *sql.Tx, tenant vaultcrux.TenantID, id, by string, at time.Time) (*store.KillSwitch, error) {
	cond, scope := switchScope(tenant)
	k, err := scanKillSwitch(tx.QueryRowContext(ctx,
		`UPDATE kill_switches SET released_at = ?, released_by = ?
		 WHERE switch_id = ? AND released_at IS NULL AND `+cond+` RETURNING `+killSwitchColumns,
		append([]any{millis(at), by, id}, scope...)...))
	if errors.Is(err, sql.ErrNoRows) {
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

func getKillSwitch(ctx context.Context, tx *sql.Tx, tenant vaultcrux.TenantID, id string) (*store.KillSwitch, error) {
	cond, scope := switchScope(tenant)
	k, err := scanKillSwitch(tx.QueryRowContext(ctx,
		`SELECT `+killSwitchColumns+` FROM kill_switches WHERE switch_id = ? AND `+cond,
		append([]any{id}, scope...)...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "kill switch not found")
	}
	return k, err
}

func listKillSwitches(ctx context.Context, tx *sql.Tx, tenant vaultcrux.TenantID, activeOnly bool) ([]*store.KillSwitch, error) {
	cond, args := switchScope(tenant)
	q := `SELECT ` + killSwitchColumns + ` FROM kill_switches WHERE ` + cond
	if activeOnly {
		q += ` AND released_at IS NULL`
	}
	rows, err := tx.QueryContext(ctx, q+` ORDER BY engaged_at, switch_id`, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanKillSwitch)
}

func listKillSwitchAudit(ctx context.Context, tx *sql.Tx, tenant vaultcrux.TenantID, switchID string) ([]*store.KillSwitchAudit, error) {
	cond, args := switchScope(tenant)
	q := `SELECT ` + auditColumns + ` FROM kill_switch_audit WHERE ` + cond
	if switchID != "" {
		q += ` AND switch_id = ?`
		args = append(args, switchID)
	}
	rows, err := tx.QueryContext(ctx, q+` ORDER BY at, switch_id, action`, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanKillSwitchAudit)
}

func (t *tenantTx) EngageKillSwitch(k *store.KillSwitch) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.EngageKillSwitch")
	if err := t.enter(); err != nil {
		return err
	}
	if err := checkKillSwitch(t.tenant, k); err != nil {
		return err
	}
	return t.savepoint("engage_kill_switch", func() error { return engageKillSwitch(t.ctx, t.tx, t.tenant, k) })
}

func (t *tenantTx) ReleaseKillSwitch(id, by string, at time.Time) (_ *store.KillSwitch, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ReleaseKillSwitch")
	if err := t.enter(); err != nil {
		return nil, err
	}
	var k *store.KillSwitch
	err = t.savepoint("release_kill_switch", func() (err error) {
		k, err = releaseKillSwitch(t.ctx, t.tx, t.tenant, id, by, at)
		return err
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

func (t *tenantTx) GetKillSwitch(id string) (_ *store.KillSwitch, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.GetKillSwitch")
	if err := t.enter(); err != nil {
		return nil, err
	}
	return getKillSwitch(t.ctx, t.tx, t.tenant, id)
}

func (t *tenantTx) ListKillSwitches(activeOnly bool) (_ []*store.KillSwitch, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListKillSwitches")
	if err := t.enter(); err != nil {
		return nil, err
	}
	return listKillSwitches(t.ctx, t.tx, t.tenant, activeOnly)
}

func (t *tenantTx) ListKillSwitchAudit(switchID string) (_ []*store.KillSwitchAudit, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListKillSwitchAudit")
	if err := t.enter(); err != nil {
		return nil, err
	}
	return listKillSwitchAudit(t.ctx, t.tx, t.tenant, switchID)
}

func (s *systemTx) EngageGlobalKillSwitch(k *store.KillSwitch) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.EngageGlobalKillSwitch")
	if err := checkKillSwitch("", k); err != nil {
		return err
	}
	return s.savepoint("engage_global_kill_switch", func() error { return engageKillSwitch(s.ctx, s.tx, "", k) })
}

func (s *systemTx) ReleaseGlobalKillSwitch(id, by string, at time.Time) (_ *store.KillSwitch, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ReleaseGlobalKillSwitch")
	var k *store.KillSwitch
	err = s.savepoint("release_global_kill_switch", func() (err error) {
		k, err = releaseKillSwitch(s.ctx, s.tx, "", id, by, at)
		return err
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

func (s *systemTx) ListGlobalKillSwitches(activeOnly bool) (_ []*store.KillSwitch, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListGlobalKillSwitches")
	return listKillSwitches(s.ctx, s.tx, "", activeOnly)
}

func (s *systemTx) ListGlobalKillSwitchAudit(switchID string) (_ []*store.KillSwitchAudit, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListGlobalKillSwitchAudit")
	return listKillSwitchAudit(s.ctx, s.tx, "", switchID)
}

func (s *systemTx) AllActiveKillSwitches() (_ []*store.KillSwitch, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.AllActiveKillSwitches")
	rows, err := s.tx.QueryContext(s.ctx,
		`SELECT `+killSwitchColumns+` FROM kill_switches
		 WHERE released_at IS NULL ORDER BY COALESCE(tenant_id, ''), switch_id`)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanKillSwitch)
}

// Versions.

func (t *tenantTx) ShieldVersion() (_ int64, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ShieldVersion")
	if err := t.enter(); err != nil {
		return 0, err
	}
	var v int64
	err = t.tx.QueryRowContext(t.ctx, `SELECT version FROM shield_versions WHERE tenant_id = ?`, t.tenant).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

func (s *systemTx) ShieldVersions() (_ map[vaultcrux.TenantID]int64, _ int64, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ShieldVersions")
	rows, err := s.tx.QueryContext(s.ctx, `SELECT tenant_id, version FROM shield_versions`)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	tenants := map[vaultcrux.TenantID]int64{}
	var global int64
	for rows.Next() {
		var tenant sql.NullString
		var v int64
		if err := rows.Scan(&tenant, &v); err != nil {
			return nil, 0, err
		}
		if tenant.Valid {
			tenants[vaultcrux.TenantID(tenant.String)] = v
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
	defer vaultcrux.Wrap(&err, "sqlite.SetShieldSetting")
	if err := t.enter(); err != nil {
		return err
	}
	if !store.ValidShieldSettingName(st.Name) {
		return vaultcrux.E(vaultcrux.Invalid, "invalid shield setting name")
	}
	return t.savepoint("set_shield_setting", func() error {
		_, err := t.tx.ExecContext(t.ctx,
			`INSERT INTO shield_settings (tenant_id, `+settingColumns+`) VALUES (?, ?, ?, ?, ?)
			 ON CONFLICT (tenant_id, name) DO UPDATE SET
			     value = excluded.value, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
			t.tenant, st.Name, st.Value, st.UpdatedBy, millis(st.UpdatedAt))
		if isForeignKey(err) {
			return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
		}
		if err != nil {
			return err
		}
		return t.bump()
	})
}

func (t *tenantTx) DeleteShieldSetting(name string) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.DeleteShieldSetting")
	if err := t.enter(); err != nil {
		return err
	}
	return t.savepoint("delete_shield_setting", func() error {
		res, err := t.tx.ExecContext(t.ctx,
			`DELETE FROM shield_settings WHERE tenant_id = ? AND name = ?`, t.tenant, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return vaultcrux.E(vaultcrux.NotFound, "shield setting not found")
		}
		return t.bump()
	})
}

func (t *tenantTx) ListShieldSettings() (_ []*store.ShieldSetting, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListShieldSettings")
	if err := t.enter(); err != nil {
		return nil, err
	}
	rows, err := t.tx.QueryContext(t.ctx,
		`SELECT `+settingColumns+` FROM shield_settings WHERE tenant_id = ? ORDER BY name`, t.tenant)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanSetting)
}

// Approvals.

func (t *tenantTx) CreateApproval(a *store.ShieldApproval) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.CreateApproval")
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
	_, err = t.tx.ExecContext(t.ctx,
		`INSERT INTO shield_approvals (tenant_id, `+approvalColumns+`)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, NULL, '', '', NULL, NULL, NULL, ?)`,
		t.tenant, a.ID, a.Server, a.Tool, a.ArgsHash, a.ManifestHash, a.Binding, notNullBytes(a.Args),
		a.Reason, a.ProposedBy, a.AgentID, millis(a.CreatedAt), millis(a.ExpiresAt), a.DecisionID)
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "approval id already exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

func (t *tenantTx) GetApproval(id string) (_ *store.ShieldApproval, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.GetApproval")
	if err := t.enter(); err != nil {
		return nil, err
	}
	a, err := scanApproval(t.tx.QueryRowContext(t.ctx,
		`SELECT `+approvalColumns+` FROM shield_approvals WHERE tenant_id = ? AND approval_id = ?`, t.tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "approval not found")
	}
	return a, err
}

func (t *tenantTx) FindApprovalByToken(tokenHash []byte) (_ *store.ShieldApproval, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.FindApprovalByToken")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if len(tokenHash) == 0 {
		return nil, vaultcrux.E(vaultcrux.NotFound, "approval token not found")
	}
	a, err := scanApproval(t.tx.QueryRowContext(t.ctx,
		`SELECT `+approvalColumns+` FROM shield_approvals WHERE tenant_id = ? AND token_hash = ?`, t.tenant, tokenHash))
	if errors.Is(err, sql.ErrNoRows) {
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

// ResolveApproval is one conditional update; only a miss runs a second
// query, to tell an unknown approval from one that cannot be resolved.
func (t *tenantTx) ResolveApproval(id, status, by, note string, tokenHash []byte, tokenExpiresAt *time.Time, at time.Time) (_ *store.ShieldApproval, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ResolveApproval")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if err := checkResolution(status, tokenHash, tokenExpiresAt); err != nil {
		return nil, err
	}
	a, err := scanApproval(t.tx.QueryRowContext(t.ctx,
		`UPDATE shield_approvals SET status = ?1, resolved_at = ?2, resolved_by = ?3, note = ?4,
		     token_hash = ?5, token_expires_at = ?6
		 WHERE tenant_id = ?7 AND approval_id = ?8 AND status = 'pending' AND expires_at > ?2
		 RETURNING `+approvalColumns,
		status, millis(at), by, note, nullBytes(tokenHash), nullMillis(tokenExpiresAt), t.tenant, id))
	switch {
	case isUnique(err):
		return nil, vaultcrux.E(vaultcrux.Conflict, "approval token already exists")
	case !errors.Is(err, sql.ErrNoRows):
		return a, err
	}
	a, err = scanApproval(t.tx.QueryRowContext(t.ctx,
		`SELECT `+approvalColumns+` FROM shield_approvals WHERE tenant_id = ? AND approval_id = ?`, t.tenant, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, vaultcrux.E(vaultcrux.NotFound, "approval not found")
	case err != nil:
		return nil, err
	case a.Status != "pending":
		return nil, vaultcrux.E(vaultcrux.Conflict, "approval is resolved already")
	}
	return nil, vaultcrux.E(vaultcrux.Conflict, "approval request expired")
}

// ConsumeApprovalToken is one conditional update, as AcceptInvite; the
// write lock of the transaction keeps every other consumer out.
func (t *tenantTx) ConsumeApprovalToken(tokenHash []byte, at time.Time) (_ *store.ShieldApproval, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ConsumeApprovalToken")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if len(tokenHash) == 0 {
		return nil, vaultcrux.E(vaultcrux.NotFound, "approval token not found")
	}
	a, err := scanApproval(t.tx.QueryRowContext(t.ctx,
		`UPDATE shield_approvals SET status = 'executed', executed_at = ?1
		 WHERE tenant_id = ?2 AND token_hash = ?3 AND status = 'approved' AND token_expires_at > ?1
		 RETURNING `+approvalColumns,
		millis(at), t.tenant, tokenHash))
	if !errors.Is(err, sql.ErrNoRows) {
		return a, err
	}
	a, err = scanApproval(t.tx.QueryRowContext(t.ctx,
		`SELECT `+approvalColumns+` FROM shield_approvals WHERE tenant_id = ? AND token_hash = ?`, t.tenant, tokenHash))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, vaultcrux.E(vaultcrux.NotFound, "approval token not found")
	case err != nil:
		return nil, err
	case a.Status != "approved":
		return nil, vaultcrux.E(vaultcrux.NotFound, "approval token not found")
	}
	return nil, vaultcrux.E(vaultcrux.Invalid, "approval token expired")
}

func (t *tenantTx) ExpireApprovals(now time.Time) (_ []*store.ShieldApproval, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ExpireApprovals")
	if err := t.enter(); err != nil {
		return nil, err
	}
	rows, err := t.tx.QueryContext(t.ctx,
		`UPDATE shield_approvals SET status = 'expired', resolved_at = ?1
		 WHERE tenant_id = ?2 AND status = 'pending' AND expires_at <= ?1
		 RETURNING `+approvalColumns, millis(now), t.tenant)
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
	defer vaultcrux.Wrap(&err, "sqlite.ListApprovals")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	q := `SELECT ` + approvalColumns + ` FROM shield_approvals WHERE tenant_id = ?`
	args := []any{t.tenant}
	if status != "" {
		q += ` AND status = ?`
		args = append(args, status)
	}
	q += ` AND approval_id > ? ORDER BY approval_id LIMIT ?`
	rows, err := t.tx.QueryContext(t.ctx, q, append(args, after, limit)...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanApproval)
}

func (s *systemTx) TenantsWithExpiredApprovals(now time.Time) (_ []vaultcrux.TenantID, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.TenantsWithExpiredApprovals")
	rows, err := s.tx.QueryContext(s.ctx,
		`SELECT DISTINCT tenant_id FROM shield_approvals
		 WHERE status = 'pending' AND expires_at <= ? ORDER BY tenant_id`, millis(now))
	if err != nil {
		return nil, err
	}
	return collectTenantIDs(rows)
}

// Decisions and the outbox.

func validOutcome(o string) bool { return o == "allow" || o == "deny" || o == "approval_required" }

// RecordDecision writes two rows without a savepoint, which would cost
// two more statements per decision: the event goes first, so that when
// it fails nothing is written, and when the decision then fails the event
// is deleted again (it is this call's own row).
const (
	insertOutbox   = `INSERT INTO event_outbox (tenant_id, ` + outboxColumns + `) VALUES (?, ?, ?, ?, ?, NULL)`
	insertDecision = `INSERT INTO shield_decisions (tenant_id, ` + decisionColumns + `)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

func (t *tenantTx) RecordDecision(d *store.ShieldDecision, e *store.OutboxEvent) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.RecordDecision")
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
	_, err = t.hot.exec(t.ctx, t.tx, insertOutbox,
		t.tenant, e.ID, e.Kind, notNullBytes(e.Payload), millis(e.CreatedAt))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "outbox event id already exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	case err != nil:
		return err
	}
	_, err = t.hot.exec(t.ctx, t.tx, insertDecision,
		t.tenant, d.ID, d.Tool, d.Server, d.Outcome, d.Stage, d.DenialType, d.Mode, d.Verdict,
		d.Enforced, d.WouldBlock, d.Tainted, d.ManifestHash, d.ArgsHash, d.ApprovalID, d.AgentID, d.Actor,
		d.ReceiptID, notNullBytes(d.Inputs), millis(d.CreatedAt))
	if err == nil {
		return nil
	}
	if _, derr := t.tx.ExecContext(t.ctx,
		`DELETE FROM event_outbox WHERE tenant_id = ? AND event_id = ?`, t.tenant, e.ID); derr != nil {
		return errors.Join(err, derr)
	}
	if isUnique(err) {
		return vaultcrux.E(vaultcrux.Conflict, "shield decision id already exists")
	}
	return err
}

func (t *tenantTx) GetDecision(id string) (_ *store.ShieldDecision, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.GetDecision")
	if err := t.enter(); err != nil {
		return nil, err
	}
	d, err := scanDecision(t.tx.QueryRowContext(t.ctx,
		`SELECT `+decisionColumns+` FROM shield_decisions WHERE tenant_id = ? AND decision_id = ?`, t.tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "shield decision not found")
	}
	return d, err
}

func (t *tenantTx) ListDecisions(f store.DecisionFilter, before string, limit int) (_ []*store.ShieldDecision, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListDecisions")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	q := strings.Builder{}
	q.WriteString(`SELECT ` + decisionColumns + ` FROM shield_decisions WHERE tenant_id = ?`)
	args := []any{t.tenant}
	if f.Outcome != "" {
		q.WriteString(` AND outcome = ?`)
		args = append(args, f.Outcome)
	}
	if f.Tool != "" {
		q.WriteString(` AND tool = ?`)
		args = append(args, f.Tool)
	}
	if !f.Since.IsZero() {
		q.WriteString(` AND created_at >= ?`)
		args = append(args, millis(f.Since))
	}
	if before != "" {
		q.WriteString(` AND decision_id < ?`)
		args = append(args, before)
	}
	q.WriteString(` ORDER BY decision_id DESC LIMIT ?`)
	rows, err := t.tx.QueryContext(t.ctx, q.String(), append(args, limit)...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanDecision)
}

func (t *tenantTx) CountRecentDecisions(tool, agentID string, since time.Time) (_ int, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.CountRecentDecisions")
	if err := t.enter(); err != nil {
		return 0, err
	}
	var n int
	if agentID != "" {
		err = t.tx.QueryRowContext(t.ctx,
			`SELECT count(*) FROM shield_decisions
			 WHERE tenant_id = ? AND tool = ? AND agent_id = ? AND created_at >= ?`,
			t.tenant, tool, agentID, millis(since)).Scan(&n)
	} else {
		err = t.tx.QueryRowContext(t.ctx,
			`SELECT count(*) FROM shield_decisions WHERE tenant_id = ? AND tool = ? AND created_at >= ?`,
			t.tenant, tool, millis(since)).Scan(&n)
	}
	return n, err
}

func (t *tenantTx) AddTaintEvent(e *store.TaintEvent) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.AddTaintEvent")
	if err := t.enter(); err != nil {
		return err
	}
	if e.ID == "" || e.Class == "" {
		return errors.New("taint event without id or class")
	}
	_, err = t.tx.ExecContext(t.ctx,
		`INSERT INTO taint_events (tenant_id, `+taintColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.tenant, e.ID, e.DecisionID, e.Class, e.Tool, notNullBytes(e.Sources), e.AgentID, millis(e.At))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "taint event id already exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

func (t *tenantTx) ListTaintEvents(before string, limit int) (_ []*store.TaintEvent, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListTaintEvents")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	q := `SELECT ` + taintColumns + ` FROM taint_events WHERE tenant_id = ?`
	args := []any{t.tenant}
	if before != "" {
		q += ` AND event_id < ?`
		args = append(args, before)
	}
	rows, err := t.tx.QueryContext(t.ctx, q+` ORDER BY event_id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanTaint)
}

// dbClock is the database's clock in unix milliseconds, the time of
// session taint marks. SQLite reads it once per statement.
const dbClock = `CAST(unixepoch('subsec') * 1000 AS INTEGER)`

// MarkSessionTaint is one upsert. The SET expressions read the stored
// row as it was before the update, and excluded.updated_at is the clock
// of this mark.
func (t *tenantTx) MarkSessionTaint(session, source string, expiresAt time.Time) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.MarkSessionTaint")
	if err := t.enter(); err != nil {
		return err
	}
	if session == "" || source == "" {
		return vaultcrux.E(vaultcrux.Invalid, "session taint without session or source")
	}
	_, err = t.tx.ExecContext(t.ctx,
		`INSERT INTO shield_session_taint AS s (`+sessionTaintColumns+`)
		 VALUES (?, ?, ?, ?, `+dbClock+`)
		 ON CONFLICT (tenant_id, session) DO UPDATE SET
		     expires_at = max(s.expires_at, excluded.expires_at),
		     source = CASE WHEN s.expires_at <= excluded.updated_at THEN excluded.source ELSE s.source END,
		     updated_at = excluded.updated_at`,
		t.tenant, session, source, millis(expiresAt))
	if isForeignKey(err) {
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

// RecentSessionTaint reads the clock and the marks in one transaction,
// which holds the write lock: no mark can commit in between.
func (s *systemTx) RecentSessionTaint(since time.Time) (_ []*store.SessionTaint, _ time.Time, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.RecentSessionTaint")
	var now int64
	if err := s.tx.QueryRowContext(s.ctx, `SELECT `+dbClock).Scan(&now); err != nil {
		return nil, time.Time{}, err
	}
	q := `SELECT ` + sessionTaintColumns + ` FROM shield_session_taint`
	var args []any
	if !since.IsZero() {
		q += ` WHERE updated_at >= ?`
		args = append(args, millis(since))
	}
	rows, err := s.tx.QueryContext(s.ctx, q+` ORDER BY tenant_id, session`, args...)
	if err != nil {
		return nil, time.Time{}, err
	}
	marks, err := collect(rows, scanSessionTaint)
	if err != nil {
		return nil, time.Time{}, err
	}
	return marks, fromMillis(now), nil
}

func (s *systemTx) PruneSessionTaint(now time.Time) (_ int, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.PruneSessionTaint")
	res, err := s.tx.ExecContext(s.ctx, `DELETE FROM shield_session_taint WHERE expires_at <= ?`, millis(now))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (t *tenantTx) ListOutbox(undeliveredOnly bool, limit int) (_ []*store.OutboxEvent, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListOutbox")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	q := `SELECT ` + outboxColumns + ` FROM event_outbox WHERE tenant_id = ?`
	if undeliveredOnly {
		q += ` AND delivered_at IS NULL`
	}
	rows, err := t.tx.QueryContext(t.ctx, q+` ORDER BY event_id LIMIT ?`, t.tenant, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanOutbox)
}

// markChunk bounds the ids of one UPDATE, far below SQLite's limit on
// bound parameters.
const markChunk = 500

func (t *tenantTx) MarkDelivered(ids []string, at time.Time) (_ int, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.MarkDelivered")
	if err := t.enter(); err != nil {
		return 0, err
	}
	var total int64
	for chunk := range slices.Chunk(ids, markChunk) {
		args := []any{millis(at), t.tenant}
		for _, id := range chunk {
			args = append(args, id)
		}
		res, err := t.tx.ExecContext(t.ctx,
			`UPDATE event_outbox SET delivered_at = ?
			 WHERE tenant_id = ? AND delivered_at IS NULL
			   AND event_id IN (?`+strings.Repeat(", ?", len(chunk)-1)+`)`, args...)
		if err != nil {
			return 0, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		total += n
	}
	return int(total), nil
}

func (s *systemTx) TenantsWithUndeliveredEvents() (_ []vaultcrux.TenantID, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.TenantsWithUndeliveredEvents")
	rows, err := s.tx.QueryContext(s.ctx,
		`SELECT DISTINCT tenant_id FROM event_outbox WHERE delivered_at IS NULL ORDER BY tenant_id`)
	if err != nil {
		return nil, err
	}
	return collectTenantIDs(rows)
}

// Sampling policies.

func (t *tenantTx) CreateSamplingPolicy(p *store.SamplingPolicy) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.CreateSamplingPolicy")
	if err := t.enter(); err != nil {
		return err
	}
	if p.ID == "" || p.DeletedAt != nil {
		return errors.New("sampling policy without id or created deleted")
	}
	if !store.ValidSamplingPolicy(p) {
		return vaultcrux.E(vaultcrux.Invalid, "invalid sampling policy")
	}
	return t.savepoint("create_sampling_policy", func() error {
		_, err := t.tx.ExecContext(t.ctx,
			`INSERT INTO sampling_policies (tenant_id, `+samplingColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
			t.tenant, p.ID, p.Scope, p.Target, p.MaxCalls, p.WindowMs, p.Per, p.CreatedBy, millis(p.CreatedAt))
		switch {
		case isUnique(err):
			return vaultcrux.E(vaultcrux.Conflict, "sampling policy id already exists")
		case isForeignKey(err):
			return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
		case err != nil:
			return err
		}
		return t.bump()
	})
}

func (t *tenantTx) ListSamplingPolicies() (_ []*store.SamplingPolicy, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListSamplingPolicies")
	if err := t.enter(); err != nil {
		return nil, err
	}
	rows, err := t.tx.QueryContext(t.ctx,
		`SELECT `+samplingColumns+` FROM sampling_policies
		 WHERE tenant_id = ? AND deleted_at IS NULL ORDER BY policy_id`, t.tenant)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanSampling)
}

func (t *tenantTx) DeleteSamplingPolicy(id string, at time.Time) (_ *store.SamplingPolicy, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.DeleteSamplingPolicy")
	if err := t.enter(); err != nil {
		return nil, err
	}
	var p *store.SamplingPolicy
	err = t.savepoint("delete_sampling_policy", func() error {
		var err error
		p, err = scanSampling(t.tx.QueryRowContext(t.ctx,
			`UPDATE sampling_policies SET deleted_at = ?
			 WHERE tenant_id = ? AND policy_id = ? AND deleted_at IS NULL RETURNING `+samplingColumns,
			millis(at), t.tenant, id))
		if err == nil {
			return t.bump()
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		p, err = scanSampling(t.tx.QueryRowContext(t.ctx,
			`SELECT `+samplingColumns+` FROM sampling_policies WHERE tenant_id = ? AND policy_id = ?`, t.tenant, id))
		if errors.Is(err, sql.ErrNoRows) {
			return vaultcrux.E(vaultcrux.NotFound, "sampling policy not found")
		}
		return err // deleted before: kept as it was
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// UI integrity sessions.

func (t *tenantTx) CreateUISession(s *store.UISession) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.CreateUISession")
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
	_, err = t.tx.ExecContext(t.ctx,
		`INSERT INTO ui_integrity_sessions (tenant_id, `+uiSessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.tenant, s.ID, s.Origin, allow, s.CreatedBy, millis(s.CreatedAt), millis(s.ExpiresAt), nullMillis(s.RevokedAt))
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
	defer vaultcrux.Wrap(&err, "sqlite.GetUISession")
	if err := t.enter(); err != nil {
		return nil, err
	}
	s, err := scanUISession(t.tx.QueryRowContext(t.ctx,
		`SELECT `+uiSessionColumns+` FROM ui_integrity_sessions WHERE tenant_id = ? AND session_id = ?`, t.tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "ui session not found")
	}
	return s, err
}

func (t *tenantTx) ListUISessions(after string, limit int) (_ []*store.UISession, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListUISessions")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	rows, err := t.tx.QueryContext(t.ctx,
		`SELECT `+uiSessionColumns+` FROM ui_integrity_sessions
		 WHERE tenant_id = ? AND session_id > ? ORDER BY session_id LIMIT ?`, t.tenant, after, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanUISession)
}

func (t *tenantTx) RevokeUISession(id string, at time.Time) (_ *store.UISession, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.RevokeUISession")
	if err := t.enter(); err != nil {
		return nil, err
	}
	s, err := scanUISession(t.tx.QueryRowContext(t.ctx,
		`UPDATE ui_integrity_sessions SET revoked_at = COALESCE(revoked_at, ?)
		 WHERE tenant_id = ? AND session_id = ? RETURNING `+uiSessionColumns, millis(at), t.tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "ui session not found")
	}
	return s, err
}

// Incident drills.

func (t *tenantTx) CreateIncidentDrill(d *store.IncidentDrill) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.CreateIncidentDrill")
	if err := t.enter(); err != nil {
		return err
	}
	if d.ID == "" || d.Scenario == "" {
		return errors.New("incident drill without id or scenario")
	}
	if d.Result != "" || d.FinishedAt != nil {
		return errors.New("incident drill created finished")
	}
	_, err = t.tx.ExecContext(t.ctx,
		`INSERT INTO incident_drills (tenant_id, `+drillColumns+`) VALUES (?, ?, ?, ?, '', ?, ?, ?, NULL)`,
		t.tenant, d.ID, d.Scenario, d.KillSwitchID, notNullBytes(d.Details), d.StartedBy, millis(d.StartedAt))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "incident drill id already exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

func (t *tenantTx) FinishIncidentDrill(id, result string, details []byte, at time.Time) (_ *store.IncidentDrill, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.FinishIncidentDrill")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if result != "passed" && result != "failed" {
		return nil, errors.New("incident drill finished other than passed or failed")
	}
	d, err := scanDrill(t.tx.QueryRowContext(t.ctx,
		`UPDATE incident_drills SET result = ?, details = ?, finished_at = ?
		 WHERE tenant_id = ? AND drill_id = ? AND finished_at IS NULL RETURNING `+drillColumns,
		result, notNullBytes(details), millis(at), t.tenant, id))
	if !errors.Is(err, sql.ErrNoRows) {
		return d, err
	}
	var n int
	if err := t.tx.QueryRowContext(t.ctx,
		`SELECT count(*) FROM incident_drills WHERE tenant_id = ? AND drill_id = ?`, t.tenant, id).Scan(&n); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, vaultcrux.E(vaultcrux.NotFound, "incident drill not found")
	}
	return nil, vaultcrux.E(vaultcrux.Conflict, "incident drill finished already")
}

func (t *tenantTx) ListIncidentDrills(before string, limit int) (_ []*store.IncidentDrill, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListIncidentDrills")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	q := `SELECT ` + drillColumns + ` FROM incident_drills WHERE tenant_id = ?`
	args := []any{t.tenant}
	if before != "" {
		q += ` AND drill_id < ?`
		args = append(args, before)
	}
	rows, err := t.tx.QueryContext(t.ctx, q+` ORDER BY drill_id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanDrill)
}

// Columns and scanners.

const publisherColumns = `publisher_id, name, url, created_at`

func scanPublisher(row scanner) (*store.ShieldPublisher, error) {
	var p store.ShieldPublisher
	var created int64
	if err := row.Scan(&p.ID, &p.Name, &p.URL, &created); err != nil {
		return nil, err
	}
	p.CreatedAt = fromMillis(created)
	return &p, nil
}

const serverColumns = `server_id, name, url, command, publisher_id, tools, digest, status, created_at, updated_at`

func scanServer(row scanner) (*store.ShieldServer, error) {
	var s store.ShieldServer
	var publisher sql.NullString
	var created, updated int64
	if err := row.Scan(&s.ID, &s.Name, &s.URL, &s.Command, &publisher, &s.Tools, &s.Digest, &s.Status,
		&created, &updated); err != nil {
		return nil, err
	}
	s.PublisherID, s.Tools = publisher.String, nilIfEmpty(s.Tools)
	s.CreatedAt, s.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &s, nil
}

const pinColumns = `server_id, digest, pinned_by, pinned_at, revoked_at, revoked_by, revoke_reason`

func scanPin(row scanner) (*store.ShieldPin, error) {
	var p store.ShieldPin
	var pinned int64
	var revoked sql.NullInt64
	if err := row.Scan(&p.ServerID, &p.Digest, &p.PinnedBy, &pinned, &revoked, &p.RevokedBy, &p.RevokeReason); err != nil {
		return nil, err
	}
	p.PinnedAt, p.RevokedAt = fromMillis(pinned), fromNullMillis(revoked)
	return &p, nil
}

const killSwitchColumns = `switch_id, tenant_id, scope, target, reason, engaged_by, engaged_at, released_at, released_by`

func scanKillSwitch(row scanner) (*store.KillSwitch, error) {
	var k store.KillSwitch
	var tenant sql.NullString
	var engaged int64
	var released sql.NullInt64
	if err := row.Scan(&k.ID, &tenant, &k.Scope, &k.Target, &k.Reason, &k.EngagedBy, &engaged,
		&released, &k.ReleasedBy); err != nil {
		return nil, err
	}
	k.Tenant = vaultcrux.TenantID(tenant.String)
	k.EngagedAt, k.ReleasedAt = fromMillis(engaged), fromNullMillis(released)
	return &k, nil
}

const auditColumns = `switch_id, action, actor, at, reason`

func scanKillSwitchAudit(row scanner) (*store.KillSwitchAudit, error) {
	var a store.KillSwitchAudit
	var at int64
	if err := row.Scan(&a.SwitchID, &a.Action, &a.Actor, &at, &a.Reason); err != nil {
		return nil, err
	}
	a.ID = store.KillSwitchAuditID(a.SwitchID, a.Action)
	a.At = fromMillis(at)
	return &a, nil
}

const settingColumns = `name, value, updated_by, updated_at`

func scanSetting(row scanner) (*store.ShieldSetting, error) {
	var s store.ShieldSetting
	var updated int64
	if err := row.Scan(&s.Name, &s.Value, &s.UpdatedBy, &updated); err != nil {
		return nil, err
	}
	s.UpdatedAt = fromMillis(updated)
	return &s, nil
}

const approvalColumns = `approval_id, server, tool, args_hash, manifest_hash, binding, args, reason, proposed_by,
	agent_id, status, created_at, expires_at, resolved_at, resolved_by, note, token_hash, token_expires_at,
	executed_at, decision_id`

func scanApproval(row scanner) (*store.ShieldApproval, error) {
	var a store.ShieldApproval
	var created, expires int64
	var resolved, tokenExpires, executed sql.NullInt64
	if err := row.Scan(&a.ID, &a.Server, &a.Tool, &a.ArgsHash, &a.ManifestHash, &a.Binding, &a.Args, &a.Reason,
		&a.ProposedBy, &a.AgentID, &a.Status, &created, &expires, &resolved, &a.ResolvedBy, &a.Note,
		&a.TokenHash, &tokenExpires, &executed, &a.DecisionID); err != nil {
		return nil, err
	}
	a.Args, a.TokenHash = nilIfEmpty(a.Args), nilIfEmpty(a.TokenHash)
	a.CreatedAt, a.ExpiresAt = fromMillis(created), fromMillis(expires)
	a.ResolvedAt, a.TokenExpiresAt, a.ExecutedAt = fromNullMillis(resolved), fromNullMillis(tokenExpires), fromNullMillis(executed)
	return &a, nil
}

const decisionColumns = `decision_id, tool, server, outcome, stage, denial_type, mode, verdict, enforced,
	would_block, tainted, manifest_hash, args_hash, approval_id, agent_id, actor, receipt_id, inputs, created_at`

func scanDecision(row scanner) (*store.ShieldDecision, error) {
	var d store.ShieldDecision
	var created int64
	if err := row.Scan(&d.ID, &d.Tool, &d.Server, &d.Outcome, &d.Stage, &d.DenialType, &d.Mode, &d.Verdict,
		&d.Enforced, &d.WouldBlock, &d.Tainted, &d.ManifestHash, &d.ArgsHash, &d.ApprovalID, &d.AgentID,
		&d.Actor, &d.ReceiptID, &d.Inputs, &created); err != nil {
		return nil, err
	}
	d.Inputs = nilIfEmpty(d.Inputs)
	d.CreatedAt = fromMillis(created)
	return &d, nil
}

const outboxColumns = `event_id, kind, payload, created_at, delivered_at`

func scanOutbox(row scanner) (*store.OutboxEvent, error) {
	var e store.OutboxEvent
	var created int64
	var delivered sql.NullInt64
	if err := row.Scan(&e.ID, &e.Kind, &e.Payload, &created, &delivered); err != nil {
		return nil, err
	}
	e.Payload = nilIfEmpty(e.Payload)
	e.CreatedAt, e.DeliveredAt = fromMillis(created), fromNullMillis(delivered)
	return &e, nil
}

const taintColumns = `event_id, decision_id, class, tool, sources, agent_id, at`

func scanTaint(row scanner) (*store.TaintEvent, error) {
	var e store.TaintEvent
	var at int64
	if err := row.Scan(&e.ID, &e.DecisionID, &e.Class, &e.Tool, &e.Sources, &e.AgentID, &at); err != nil {
		return nil, err
	}
	e.Sources = nilIfEmpty(e.Sources)
	e.At = fromMillis(at)
	return &e, nil
}

// sessionTaintColumns name the tenant: marks are read across tenants.
const sessionTaintColumns = `tenant_id, session, source, expires_at, updated_at`

func scanSessionTaint(row scanner) (*store.SessionTaint, error) {
	var m store.SessionTaint
	var expires, updated int64
	if err := row.Scan(&m.Tenant, &m.Session, &m.Source, &expires, &updated); err != nil {
		return nil, err
	}
	m.ExpiresAt, m.UpdatedAt = fromMillis(expires), fromMillis(updated)
	return &m, nil
}

const samplingColumns = `policy_id, scope, target, max_calls, window_ms, per, created_by, created_at, deleted_at`

func scanSampling(row scanner) (*store.SamplingPolicy, error) {
	var p store.SamplingPolicy
	var created int64
	var deleted sql.NullInt64
	if err := row.Scan(&p.ID, &p.Scope, &p.Target, &p.MaxCalls, &p.WindowMs, &p.Per, &p.CreatedBy,
		&created, &deleted); err != nil {
		return nil, err
	}
	p.CreatedAt, p.DeletedAt = fromMillis(created), fromNullMillis(deleted)
	return &p, nil
}

const uiSessionColumns = `session_id, origin, tool_allow, created_by, created_at, expires_at, revoked_at`

func scanUISession(row scanner) (*store.UISession, error) {
	var s store.UISession
	var allow string
	var created, expires int64
	var revoked sql.NullInt64
	if err := row.Scan(&s.ID, &s.Origin, &allow, &s.CreatedBy, &created, &expires, &revoked); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(allow), &s.ToolAllow); err != nil {
		return nil, err
	}
	if len(s.ToolAllow) == 0 {
		s.ToolAllow = nil
	}
	s.CreatedAt, s.ExpiresAt, s.RevokedAt = fromMillis(created), fromMillis(expires), fromNullMillis(revoked)
	return &s, nil
}

const drillColumns = `drill_id, scenario, kill_switch_id, result, details, started_by, started_at, finished_at`

func scanDrill(row scanner) (*store.IncidentDrill, error) {
	var d store.IncidentDrill
	var started int64
	var finished sql.NullInt64
	if err := row.Scan(&d.ID, &d.Scenario, &d.KillSwitchID, &d.Result, &d.Details, &d.StartedBy,
		&started, &finished); err != nil {
		return nil, err
	}
	d.Details = nilIfEmpty(d.Details)
	d.StartedAt, d.FinishedAt = fromMillis(started), fromNullMillis(finished)
	return &d, nil
}
