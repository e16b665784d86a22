package postgres

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/store/postgres/pgtest"
)

// shieldTables are the tables of migration 0005.
var shieldTables = []string{
	"shield_versions", "shield_publishers", "shield_servers", "shield_pins", "kill_switches",
	"kill_switch_audit", "shield_settings", "shield_approvals", "shield_decisions", "event_outbox",
	"taint_events", "shield_session_taint", "sampling_policies", "ui_integrity_sessions", "incident_drills",
}

// shieldAppendOnly are the tables of 0005 whose policies allow SELECT and
// INSERT only.
var shieldAppendOnly = []string{"kill_switch_audit", "shield_decisions", "taint_events"}

// shieldDB returns a database whose tenants acme and bravo each have one
// row in every Shield table, plus one global kill switch (with its audit
// row, and the global version row that the migration creates).
func shieldDB(t *testing.T) *DB {
	t.Helper()
	db := open(t, pgtest.DSN(t))
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tokenExpires := at.Add(time.Hour)
	for _, id := range []vaultcrux.TenantID{"acme", "bravo"} {
		if err := db.Tx(t.Context(), func(tx store.SystemTx) error {
			return tx.CreateTenant(&vaultcrux.Tenant{ID: id, Name: string(id), CreatedAt: at}, nil)
		}); err != nil {
			t.Fatal(err)
		}
		if err := db.ForTenant(id).Tx(t.Context(), func(tx store.TenantTx) error {
			steps := []func() error{
				func() error { return tx.CreatePublisher(&store.ShieldPublisher{ID: "pub", Name: "P", CreatedAt: at}) },
				func() error {
					return tx.CreateServer(&store.ShieldServer{ID: "srv-" + string(id), Name: "S", PublisherID: "pub",
						Digest: "blake3:d", Status: "pending", CreatedAt: at, UpdatedAt: at})
				},
				func() error {
					return tx.PinDigest(&store.ShieldPin{ServerID: "srv-" + string(id), Digest: "blake3:d", PinnedAt: at})
				},
				func() error {
					return tx.EngageKillSwitch(&store.KillSwitch{ID: "ks-" + string(id), Tenant: id, Scope: "tool", EngagedAt: at})
				},
				func() error {
					return tx.SetShieldSetting(&store.ShieldSetting{Name: "SHIELD_MODE", Value: "observe", UpdatedAt: at})
				},
				func() error {
					return tx.CreateApproval(&store.ShieldApproval{ID: "ap-" + string(id), Tool: "t", Status: "pending",
						CreatedAt: at, ExpiresAt: at.Add(time.Hour)})
				},
				func() error {
					_, err := tx.ResolveApproval("ap-"+string(id), "approved", "x", "", []byte("tok-"+string(id)), &tokenExpires, at)
					return err
				},
				func() error {
					return tx.RecordDecision(&store.ShieldDecision{ID: "dec-" + string(id), Outcome: "allow", CreatedAt: at},
						&store.OutboxEvent{ID: "ev-" + string(id), Kind: "shield.decision", CreatedAt: at})
				},
				func() error {
					return tx.AddTaintEvent(&store.TaintEvent{ID: "te-" + string(id), Class: "shield.taint.blocked", At: at})
				},
				func() error { return tx.MarkSessionTaint("agent:a1", "doc:d", at) },
				func() error {
					return tx.CreateSamplingPolicy(&store.SamplingPolicy{ID: "sp", Scope: "tool", Target: "t", MaxCalls: 1,
						WindowMs: 1000, Per: "agent", CreatedAt: at})
				},
				func() error { return tx.CreateUISession(&store.UISession{ID: "ui", CreatedAt: at, ExpiresAt: at}) },
				func() error {
					return tx.CreateIncidentDrill(&store.IncidentDrill{ID: "dr", Scenario: "s", StartedAt: at})
				},
			}
			for _, step := range steps {
				if err := step(); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Tx(t.Context(), func(tx store.SystemTx) error {
		return tx.EngageGlobalKillSwitch(&store.KillSwitch{ID: "ks-global", Scope: "global", EngagedAt: at})
	}); err != nil {
		t.Fatal(err)
	}
	return db
}

// countShieldRows counts the rows of each Shield table that q can see.
func countShieldRows(t *testing.T, q pgx.Tx) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, table := range shieldTables {
		var n int
		if err := q.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		got[table] = n
	}
	return got
}

func checkShieldCounts(t *testing.T, what string, got map[string]int, want func(table string) int) {
	t.Helper()
	for _, table := range shieldTables {
		if got[table] != want(table) {
			t.Errorf("%s: %d rows of %s visible, want %d", what, got[table], table, want(table))
		}
	}
}

// A tenant sees its one row of each table; administration sees both
// tenants' and the global rows (the version row and the switch with its
// audit row).
func shieldTenantRows(string) int { return 1 }

func shieldSystemRows(table string) int {
	switch table {
	case "shield_versions", "kill_switches", "kill_switch_audit":
		return 3
	}
	return 2
}

// TestShieldRLS runs raw queries, without any tenant clause, inside the
// transactions the store sets up, against the Shield's tables.
func TestShieldRLS(t *testing.T) {
	db := shieldDB(t)
	ctx := t.Context()
	inBravo := func(fn func(raw pgx.Tx)) {
		t.Helper()
		if err := db.ForTenant("bravo").Tx(ctx, func(tx store.TenantTx) error {
			fn(tx.(*tenantTx).tx)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	inSystem := func(fn func(raw pgx.Tx)) {
		t.Helper()
		if err := db.Tx(ctx, func(tx store.SystemTx) error {
			if _, err := tx.ListTenants(); err != nil { // enters the system scope
				return err
			}
			fn(tx.(*systemTx).tx)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("Visibility", func(t *testing.T) {
		inBravo(func(raw pgx.Tx) {
			checkShieldCounts(t, "bravo's tx", countShieldRows(t, raw), shieldTenantRows)
			var ks string
			if err := raw.QueryRow(ctx, "SELECT switch_id FROM kill_switches").Scan(&ks); err != nil || ks != "ks-bravo" {
				t.Errorf("bravo's tx sees kill switch %q (%v), want only ks-bravo", ks, err)
			}
		})
		inSystem(func(raw pgx.Tx) { checkShieldCounts(t, "a system tx", countShieldRows(t, raw), shieldSystemRows) })
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
		checkShieldCounts(t, "a bare connection", countShieldRows(t, tx), func(string) int { return 0 })
	})

	t.Run("CannotWriteOtherTenantOrGlobal", func(t *testing.T) {
		writes := []struct{ name, sql string }{
			{"insert version", `INSERT INTO shield_versions (tenant_id, version) VALUES ('acme', 99)`},
			{"insert global version", `INSERT INTO shield_versions (tenant_id, version) VALUES (NULL, 99)`},
			{"insert publisher", `INSERT INTO shield_publishers (tenant_id, publisher_id, name, url, created_at)
				VALUES ('acme', 'planted', 'planted', '', now())`},
			{"insert server", `INSERT INTO shield_servers (tenant_id, server_id, name, url, command, tools, digest, status,
				created_at, updated_at) VALUES ('acme', 'planted', 'planted', '', '', '', 'd', 'active', now(), now())`},
			{"insert pin", `INSERT INTO shield_pins (tenant_id, server_id, digest, pinned_by, pinned_at, revoked_by, revoke_reason)
				VALUES ('acme', 'srv-acme', 'blake3:evil', '', now(), '', '')`},
			{"insert kill switch", `INSERT INTO kill_switches (switch_id, tenant_id, scope, target, reason, engaged_by,
				engaged_at, released_by) VALUES ('planted', 'acme', 'tool', '', '', '', now(), '')`},
			{"insert global kill switch", `INSERT INTO kill_switches (switch_id, tenant_id, scope, target, reason, engaged_by,
				engaged_at, released_by) VALUES ('planted', NULL, 'global', '', '', '', now(), '')`},
			{"insert audit", `INSERT INTO kill_switch_audit (switch_id, action, tenant_id, actor, at, reason)
				VALUES ('ks-acme', 'release', 'acme', '', now(), '')`},
			{"insert global audit", `INSERT INTO kill_switch_audit (switch_id, action, tenant_id, actor, at, reason)
				VALUES ('ks-global', 'release', NULL, '', now(), '')`},
			{"insert setting", `INSERT INTO shield_settings (tenant_id, name, value, updated_by, updated_at)
				VALUES ('acme', 'FEATURE_X', 'true', '', now())`},
			{"insert approval", `INSERT INTO shield_approvals (tenant_id, approval_id, server, tool, args_hash, manifest_hash,
				binding, args, reason, proposed_by, agent_id, status, created_at, expires_at, resolved_by, note, decision_id)
				VALUES ('acme', 'planted', '', 't', '', '', '', '', '', '', '', 'pending', now(), now(), '', '', '')`},
			{"insert decision", `INSERT INTO shield_decisions (tenant_id, decision_id, tool, server, outcome, stage, denial_type,
				mode, verdict, enforced, would_block, tainted, manifest_hash, args_hash, approval_id, agent_id, actor,
				receipt_id, inputs, created_at) VALUES ('acme', 'planted', '', '', 'allow', '', '', '', '', false, false,
				false, '', '', '', '', '', '', '', now())`},
			{"insert event", `INSERT INTO event_outbox (tenant_id, event_id, kind, payload, created_at)
				VALUES ('acme', 'planted', 'shield.decision', '', now())`},
			{"insert taint event", `INSERT INTO taint_events (tenant_id, event_id, decision_id, class, tool, sources, agent_id, at)
				VALUES ('acme', 'planted', '', 'c', '', '', '', now())`},
			{"insert session taint", `INSERT INTO shield_session_taint (tenant_id, session, source, expires_at, updated_at)
				VALUES ('acme', 'agent:planted', 'doc:d', now(), now())`},
			{"upsert session taint", `INSERT INTO shield_session_taint (tenant_id, session, source, expires_at, updated_at)
				VALUES ('acme', 'agent:a1', 'doc:d', now(), now())
				ON CONFLICT (tenant_id, session) DO UPDATE SET source = 'doc:planted'`},
			{"insert sampling policy", `INSERT INTO sampling_policies (tenant_id, policy_id, scope, target, max_calls, window_ms,
				per, created_by, created_at) VALUES ('acme', 'planted', 'tool', 't', 1, 1, 'agent', '', now())`},
			{"insert ui session", `INSERT INTO ui_integrity_sessions (tenant_id, session_id, origin, tool_allow, created_by,
				created_at, expires_at) VALUES ('acme', 'planted', '', '[]', '', now(), now())`},
			{"insert drill", `INSERT INTO incident_drills (tenant_id, drill_id, scenario, kill_switch_id, result, details,
				started_by, started_at) VALUES ('acme', 'planted', 's', '', '', '', '', now())`},
			{"move own server", `UPDATE shield_servers SET tenant_id = 'acme', server_id = 'moved'`},
			{"move own kill switch", `UPDATE kill_switches SET tenant_id = 'acme'`},
			{"make own kill switch global", `UPDATE kill_switches SET tenant_id = NULL, scope = 'global'`},
			{"move own approval", `UPDATE shield_approvals SET tenant_id = 'acme', approval_id = 'moved'`},
			{"move own version", `UPDATE shield_versions SET tenant_id = NULL`},
			{"move own session taint", `UPDATE shield_session_taint SET tenant_id = 'acme', session = 'agent:moved'`},
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
		// Updates and deletes of rows it cannot see touch nothing: only
		// its own version row is within reach.
		inBravo(func(raw pgx.Tx) {
			for _, w := range []struct {
				sql  string
				want int64
			}{
				{`UPDATE shield_versions SET version = version`, 1},
				{`UPDATE shield_servers SET status = 'active' WHERE tenant_id = 'acme'`, 0},
				{`DELETE FROM shield_pins WHERE tenant_id = 'acme'`, 0},
				{`UPDATE kill_switches SET released_at = now() WHERE switch_id <> 'ks-bravo'`, 0},
				{`DELETE FROM shield_settings WHERE tenant_id = 'acme'`, 0},
				{`UPDATE shield_approvals SET status = 'executed', executed_at = now() WHERE tenant_id = 'acme'`, 0},
				{`UPDATE event_outbox SET delivered_at = now() WHERE tenant_id = 'acme'`, 0},
				{`UPDATE sampling_policies SET deleted_at = now() WHERE tenant_id = 'acme'`, 0},
				{`UPDATE ui_integrity_sessions SET revoked_at = now() WHERE tenant_id = 'acme'`, 0},
				{`DELETE FROM incident_drills WHERE tenant_id = 'acme'`, 0},
				{`DELETE FROM shield_publishers WHERE tenant_id = 'acme'`, 0},
				{`UPDATE shield_session_taint SET source = 'doc:planted' WHERE tenant_id = 'acme'`, 0},
				{`DELETE FROM shield_session_taint WHERE tenant_id = 'acme'`, 0},
			} {
				tag, err := raw.Exec(ctx, w.sql)
				if err != nil {
					t.Errorf("%s: %v", w.sql, err)
				} else if n := tag.RowsAffected(); n != w.want {
					t.Errorf("%s from bravo's tx affected %d rows, want %d", w.sql, n, w.want)
				}
			}
		})
		// The global switch is still engaged, and acme's are untouched.
		all, err := func() (ks []*store.KillSwitch, err error) {
			err = db.Tx(ctx, func(tx store.SystemTx) error {
				ks, err = tx.AllActiveKillSwitches()
				return err
			})
			return ks, err
		}()
		if err != nil || len(all) != 3 {
			t.Errorf("AllActiveKillSwitches after bravo's attempts = %d switches (%v), want 3", len(all), err)
		}
	})

	t.Run("AppendOnly", func(t *testing.T) {
		check := func(what string, raw pgx.Tx) {
			t.Helper()
			for _, table := range shieldAppendOnly {
				for _, sql := range []string{`UPDATE ` + table + ` SET tenant_id = tenant_id`, `DELETE FROM ` + table} {
					tag, err := raw.Exec(ctx, sql)
					if err != nil {
						t.Errorf("%s: %s: %v", what, sql, err)
					} else if n := tag.RowsAffected(); n != 0 {
						t.Errorf("%s: %s affected %d rows, want 0", what, sql, n)
					}
				}
			}
		}
		inBravo(func(raw pgx.Tx) {
			check("bravo's tx", raw)
			checkShieldCounts(t, "bravo's tx after UPDATE and DELETE", countShieldRows(t, raw), shieldTenantRows)
		})
		inSystem(func(raw pgx.Tx) {
			check("a system tx", raw)
			checkShieldCounts(t, "a system tx after UPDATE and DELETE", countShieldRows(t, raw), shieldSystemRows)
		})
	})
}
