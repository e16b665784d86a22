package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/store/postgres/pgtest"
	"github.com/vaultcrux/vaultcrux/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t *testing.T, dsn string) *DB {
	t.Helper()
	db, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, pgtest.DSN(t)) })
}

// migrated returns a database with one signing key and tenants acme and
// bravo, each with one seat (and its creation in the role history), one
// API key of that seat, one idempotency record, a log of one attested
// receipt with a checkpoint, one invite, one session and one session
// event.
func migrated(t *testing.T) *DB {
	t.Helper()
	db := open(t, pgtest.DSN(t))
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []vaultcrux.TenantID{"acme", "bravo"} {
		if err := db.Tx(t.Context(), func(tx store.SystemTx) error {
			return tx.CreateTenant(&vaultcrux.Tenant{ID: id, Name: string(id)}, nil)
		}); err != nil {
			t.Fatal(err)
		}
		if err := db.ForTenant(id).Tx(t.Context(), func(tx store.TenantTx) error {
			seat := &vaultcrux.Seat{ID: "seat-" + string(id), Tenant: id, Email: "owner@" + string(id), Role: vaultcrux.RoleOwner, CreatedAt: now}
			if err := tx.CreateSeat(seat, &vaultcrux.SeatRoleChange{ID: "change-" + string(id), SeatID: seat.ID, NewRole: seat.Role, At: now}); err != nil {
				return err
			}
			k := &vaultcrux.APIKey{ID: "key-" + string(id), Tenant: id, Role: vaultcrux.RoleOwner, SeatID: seat.ID, Hash: []byte("h")}
			if err := tx.CreateAPIKey(k); err != nil {
				return err
			}
			if err := tx.CreateInvite(&vaultcrux.Invite{ID: "invite-" + string(id), Tenant: id, Email: "new@" + string(id),
				Role: vaultcrux.RoleMember, TokenHash: []byte("token-" + string(id)), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				return err
			}
			if err := tx.CreateSession(&vaultcrux.Session{ID: "session-" + string(id), Tenant: id, KeyID: k.ID, SeatID: seat.ID,
				Role: k.Role, CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleTimeout: time.Minute, LastSeenAt: now}); err != nil {
				return err
			}
			if err := tx.AddSessionEvent(&vaultcrux.SessionEvent{ID: "event-" + string(id), Tenant: id,
				SessionID: "session-" + string(id), Kind: "connect", At: now}); err != nil {
				return err
			}
			_, _, err := tx.ClaimIdempotency(&store.IdempotencyRecord{
				Scope: store.IdempotencyScope{Method: "POST", Route: "/r", Key: "k"}, RequestHash: []byte("h"), CreatedAt: now, ExpiresAt: now.Add(time.Hour),
			}, now, now)
			if err != nil {
				return err
			}
			if _, err := tx.LogHead(); err != nil {
				return err
			}
			r := &store.ReceiptRecord{ID: "receipt-" + string(id), Kind: "ingest", Hash: "h", Body: []byte("{}"),
				Pending: true, LogIndex: 0, LogHashes: []byte("h"), CreatedAt: now}
			if err := tx.AppendReceipts([]*store.ReceiptRecord{r}); err != nil {
				return err
			}
			if err := tx.AddAttestation(&store.Attestation{ReceiptID: r.ID, Signature: []byte("{}"), CreatedAt: now}); err != nil {
				return err
			}
			return tx.AddCheckpoint(&store.Checkpoint{Size: 1, Root: []byte("r"), Note: []byte("n"), CreatedAt: now})
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Tx(t.Context(), func(tx store.SystemTx) error {
		_, _, err := tx.RegisterSigningKey([]byte("pub"), now)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return db
}

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// rlsTables are the tables under row-level security: the tenant tables
// and the system tables.
var rlsTables = []string{
	"tenants", "api_keys", "idempotency_keys", "signing_keys",
	"receipts", "receipt_attestations", "log_heads", "log_checkpoints",
	"seats", "seat_role_changes", "invites", "frontdoor_sessions", "session_events",
}

// appendOnlyTables are the tables whose policies allow SELECT and INSERT
// only.
var appendOnlyTables = []string{"seat_role_changes", "session_events"}

// tenantRows is what one tenant's transaction sees.
var tenantRows = map[string]int{
	"api_keys": 1, "idempotency_keys": 1,
	"receipts": 1, "receipt_attestations": 1, "log_heads": 1, "log_checkpoints": 1,
	"seats": 1, "seat_role_changes": 1, "invites": 1, "frontdoor_sessions": 1, "session_events": 1,
}

// systemRows is what administration sees.
var systemRows = map[string]int{
	"tenants": 2, "api_keys": 2, "idempotency_keys": 2, "signing_keys": 1,
	"receipts": 2, "receipt_attestations": 2, "log_heads": 2, "log_checkpoints": 2,
	"seats": 2, "seat_role_changes": 2, "invites": 2, "frontdoor_sessions": 2, "session_events": 2,
}

// countRows counts the rows of each table that q can see.
func countRows(t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, table := range rlsTables {
		var n int
		if err := q.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		got[table] = n
	}
	return got
}

func checkCounts(t *testing.T, what string, got map[string]int, want map[string]int) {
	t.Helper()
	for _, table := range rlsTables {
		if got[table] != want[table] {
			t.Errorf("%s: %d rows of %s visible, want %d", what, got[table], table, want[table])
		}
	}
}

// TestRLS runs raw queries, without any tenant clause, inside the
// transactions the store sets up, to check the second wall on its own.
func TestRLS(t *testing.T) {
	db := migrated(t)

	t.Run("TenantTxSeesOnlyItsRows", func(t *testing.T) {
		err := db.ForTenant("bravo").Tx(t.Context(), func(tx store.TenantTx) error {
			raw := tx.(*tenantTx).tx
			checkCounts(t, "bravo's tx", countRows(t, raw), tenantRows)
			var owner string
			if err := raw.QueryRow(t.Context(), "SELECT tenant_id FROM api_keys").Scan(&owner); err != nil {
				return err
			}
			if owner != "bravo" {
				t.Errorf("bravo's tx sees a key of %q", owner)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("TenantTxCannotWriteOtherTenant", func(t *testing.T) {
		writes := []struct {
			name string
			sql  string
		}{
			{"insert key", `INSERT INTO api_keys (key_id, tenant_id, label, role, hash, created_at)
				VALUES ('planted', 'acme', '', 'owner', '\x00', now())`},
			{"insert idempotency", `INSERT INTO idempotency_keys (tenant_id, method, route, key, request_hash, created_at, expires_at)
				VALUES ('acme', 'POST', '/r', 'planted', '\x00', now(), now())`},
			{"move own key", `UPDATE api_keys SET tenant_id = 'acme' WHERE key_id = 'key-bravo'`},
			{"insert receipt", `INSERT INTO receipts (tenant_id, receipt_id, kind, receipt_hash, body, pending, log_index, log_hashes, created_at)
				VALUES ('acme', 'planted', 'ingest', 'h', '\x00', false, 1, '\x00', now())`},
			{"move own log", `UPDATE log_heads SET tenant_id = 'acme' WHERE tenant_id = 'bravo'`},
			{"insert checkpoint", `INSERT INTO log_checkpoints (tenant_id, size, root_hash, note, created_at)
				VALUES ('acme', 0, '\x00', '\x00', now())`},
			{"insert signing key", `INSERT INTO signing_keys (version, kid, public_key, status, created_at)
				VALUES (2, 'planted', '\x00', 'active', now())`},
			{"insert seat", `INSERT INTO seats (tenant_id, seat_id, email, email_lower, role, created_at)
				VALUES ('acme', 'planted', 'p@x', 'p@x', 'owner', now())`},
			{"move own seat", `UPDATE seats SET tenant_id = 'acme' WHERE seat_id = 'seat-bravo'`},
			{"insert role change", `INSERT INTO seat_role_changes (tenant_id, change_id, seat_id, new_role, actor, at)
				VALUES ('acme', 'planted', 'seat-acme', 'owner', '', now())`},
			{"insert invite", `INSERT INTO invites (tenant_id, invite_id, email, role, token_hash, created_by, created_at, expires_at)
				VALUES ('acme', 'planted', 'p@x', 'owner', '\x01', '', now(), now())`},
			{"insert session", `INSERT INTO frontdoor_sessions (tenant_id, session_id, key_id, role, created_at, expires_at,
				idle_timeout_ms, last_seen_at, ip, user_agent)
				VALUES ('acme', 'planted', 'key-acme', 'owner', now(), now(), 1, now(), '', '')`},
			{"move own session", `UPDATE frontdoor_sessions SET tenant_id = 'acme' WHERE session_id = 'session-bravo'`},
			{"insert session event", `INSERT INTO session_events (tenant_id, event_id, kind, at, ip, user_agent, detail)
				VALUES ('acme', 'planted', 'failed', now(), '', '', '')`},
		}
		for _, w := range writes {
			err := db.ForTenant("bravo").Tx(t.Context(), func(tx store.TenantTx) error {
				_, err := tx.(*tenantTx).tx.Exec(t.Context(), w.sql)
				return err
			})
			if code := pgCode(err); code != "42501" { // insufficient_privilege: the WITH CHECK failed
				t.Errorf("%s into acme from bravo's tx: err = %v, want SQLSTATE 42501", w.name, err)
			}
		}
		// Updates and deletes of rows it cannot see touch nothing.
		err := db.ForTenant("bravo").Tx(t.Context(), func(tx store.TenantTx) error {
			raw := tx.(*tenantTx).tx
			for _, sql := range []string{
				`UPDATE api_keys SET revoked_at = now() WHERE key_id = 'key-acme'`,
				`DELETE FROM idempotency_keys WHERE tenant_id = 'acme'`,
				`DELETE FROM tenants`,
				`UPDATE log_heads SET size = 0 WHERE tenant_id = 'acme'`,
				`DELETE FROM receipt_attestations WHERE tenant_id = 'acme'`,
				`UPDATE signing_keys SET status = 'revoked', revoked_at = now()`,
				`UPDATE seats SET revoked_at = now() WHERE tenant_id = 'acme'`,
				`DELETE FROM invites WHERE tenant_id = 'acme'`,
				`UPDATE frontdoor_sessions SET revoked_at = now() WHERE tenant_id = 'acme'`,
				`UPDATE invites SET accepted_at = now(), seat_id = 'seat-acme' WHERE tenant_id = 'acme'`,
			} {
				tag, err := raw.Exec(t.Context(), sql)
				if err != nil {
					return err
				}
				if n := tag.RowsAffected(); n != 0 {
					t.Errorf("%s from bravo's tx affected %d rows, want 0", sql, n)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("AppendOnlyTables", func(t *testing.T) {
		// Neither a tenant nor administration can change or remove the
		// rows it reads; only a role that bypasses RLS could.
		check := func(what string, raw pgx.Tx) {
			t.Helper()
			for _, table := range appendOnlyTables {
				for _, sql := range []string{
					`UPDATE ` + table + ` SET tenant_id = tenant_id`,
					`DELETE FROM ` + table,
				} {
					tag, err := raw.Exec(t.Context(), sql)
					if err != nil {
						t.Errorf("%s: %s: %v", what, sql, err)
					} else if n := tag.RowsAffected(); n != 0 {
						t.Errorf("%s: %s affected %d rows, want 0", what, sql, n)
					}
				}
			}
		}
		err := db.ForTenant("bravo").Tx(t.Context(), func(tx store.TenantTx) error {
			raw := tx.(*tenantTx).tx
			check("bravo's tx", raw)
			checkCounts(t, "bravo's tx after UPDATE and DELETE", countRows(t, raw), tenantRows)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = db.Tx(t.Context(), func(tx store.SystemTx) error {
			if _, err := tx.ListTenants(); err != nil {
				return err
			}
			raw := tx.(*systemTx).tx
			check("a system tx", raw)
			checkCounts(t, "a system tx after UPDATE and DELETE", countRows(t, raw), systemRows)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("LookupSeesOneKey", func(t *testing.T) {
		err := db.Tx(t.Context(), func(tx store.SystemTx) error {
			if _, err := tx.LookupAPIKey("key-acme"); err != nil {
				return err
			}
			checkCounts(t, "after LookupAPIKey", countRows(t, tx.(*systemTx).tx), map[string]int{"api_keys": 1})
			// Back to administration, the lookup setting must be gone.
			if _, err := tx.ListTenants(); err != nil {
				return err
			}
			checkCounts(t, "after ListTenants", countRows(t, tx.(*systemTx).tx), systemRows)
			if _, err := tx.LookupAPIKey("key-bravo"); err != nil {
				return err
			}
			checkCounts(t, "after the second LookupAPIKey", countRows(t, tx.(*systemTx).tx), map[string]int{"api_keys": 1})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("NoSettingSeesNothing", func(t *testing.T) {
		conn, err := db.pool.Acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		checkCounts(t, "a bare connection", countRows(t, conn), map[string]int{})
	})

	t.Run("SettingsDoNotOutliveTx", func(t *testing.T) {
		// One connection, so the next query surely reuses it.
		conn, err := db.pool.Acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		tx, err := conn.Begin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		stx := &systemTx{ctx: t.Context(), tx: tx, mode: new(string)}
		if err := stx.admin(); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(t.Context()); err != nil {
			t.Fatal(err)
		}
		checkCounts(t, "the connection after a system tx", countRows(t, conn), map[string]int{})
	})
}

// TestBatchRLS checks the settings under each handle of a batch, also
// after a savepoint that switched tenants was rolled back.
func TestBatchRLS(t *testing.T) {
	db := migrated(t)
	errBoom := errors.New("boom")
	err := db.Batch(t.Context(), func(b store.BatchTx) error {
		raw := b.(*batchTx).tx
		if _, err := b.Tenant("bravo").LogHead(); err != nil {
			return err
		}
		checkCounts(t, "bravo's handle", countRows(t, raw), tenantRows)
		if _, err := b.System().ListSigningKeys(); err != nil {
			return err
		}
		checkCounts(t, "the system handle", countRows(t, raw), systemRows)
		if _, err := b.System().LookupAPIKey("key-acme"); err != nil {
			return err
		}
		checkCounts(t, "the system handle after LookupAPIKey", countRows(t, raw), map[string]int{"api_keys": 1})
		if _, err := b.Tenant("acme").GetReceipt("receipt-acme"); err != nil {
			return err
		}
		checkCounts(t, "acme's handle", countRows(t, raw), tenantRows)
		var tenant string
		if err := raw.QueryRow(t.Context(), "SELECT tenant_id FROM receipts").Scan(&tenant); err != nil || tenant != "acme" {
			t.Errorf("acme's handle sees a receipt of %q (%v)", tenant, err)
		}

		err := b.Savepoint(func() error {
			if _, err := b.Tenant("bravo").LogHead(); err != nil {
				return err
			}
			return errBoom
		})
		if err != errBoom {
			t.Errorf("Savepoint = %v, want errBoom", err)
		}
		// The rollback went back to acme's settings behind the handles'
		// backs; the next bravo handle must switch again.
		if err := raw.QueryRow(t.Context(), "SELECT current_setting('vaultcrux.tenant')").Scan(&tenant); err != nil || tenant != "acme" {
			t.Errorf("setting after the rollback = %q (%v), want acme", tenant, err)
		}
		if _, err := b.Tenant("bravo").GetReceipt("receipt-bravo"); err != nil {
			return err
		}
		checkCounts(t, "bravo's handle after the rollback", countRows(t, raw), tenantRows)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRLSBypassed(t *testing.T) {
	db := migrated(t)
	if got, err := db.RLSBypassed(t.Context()); err != nil || got {
		t.Errorf("RLSBypassed as the test role = %v, %v; want false, nil", got, err)
	}
	if _, err := db.pool.Exec(t.Context(), "ALTER TABLE idempotency_keys NO FORCE ROW LEVEL SECURITY"); err != nil {
		t.Fatal(err)
	}
	if got, err := db.RLSBypassed(t.Context()); err != nil || !got {
		t.Errorf("RLSBypassed with a table not forcing RLS = %v, %v; want true, nil", got, err)
	}

	admin := open(t, pgtest.AdminDSN(t))
	if got, err := admin.RLSBypassed(t.Context()); err != nil || !got {
		t.Errorf("RLSBypassed as superuser = %v, %v; want true, nil", got, err)
	}
}

// TestConcurrentMigrate stands in for replicas starting together: each
// has its own pool, all migrate the same empty database at once.
func TestConcurrentMigrate(t *testing.T) {
	dsn := pgtest.DSN(t)
	const replicas = 4
	dbs := make([]*DB, replicas)
	for i := range dbs {
		dbs[i] = open(t, dsn)
	}
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Go(func() { errs[i] = db.Migrate(t.Context()) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Migrate: %v", err)
	}
	var rows, latest int
	if err := dbs[0].pool.QueryRow(t.Context(), "SELECT count(*) FROM schema_migrations").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	_, latest, _ = dbs[0].MigrationStatus(t.Context())
	if rows != latest {
		t.Errorf("schema_migrations has %d rows, want %d", rows, latest)
	}
}

// TestErrorsAreClean checks that a driver error, which names constraints
// and tables, is not what a client would see.
func TestErrorsAreClean(t *testing.T) {
	db := migrated(t)
	err := db.ForTenant("acme").Tx(t.Context(), func(tx store.TenantTx) error {
		return tx.CreateAPIKey(&vaultcrux.APIKey{ID: "key-bravo", Tenant: "acme", Role: vaultcrux.RoleOwner, Hash: []byte("h")})
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		t.Errorf("conflict error wraps the driver error %v", pgErr)
	}
	if got, want := fmt.Sprint(err), "postgres.CreateAPIKey: api key id already exists"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

func BenchmarkAppendReceipts(b *testing.B) {
	storetest.BenchAppendReceipts(b, func(b *testing.B) store.Store {
		db, err := Open(b.Context(), pgtest.DSN(b))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db
	})
}
