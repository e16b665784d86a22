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

// migrated returns a database with tenants acme and bravo, each with one
// API key and one idempotency record.
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
			k := &vaultcrux.APIKey{ID: "key-" + string(id), Tenant: id, Role: vaultcrux.RoleOwner, Hash: []byte("h")}
			if err := tx.CreateAPIKey(k); err != nil {
				return err
			}
			_, _, err := tx.ClaimIdempotency(&store.IdempotencyRecord{
				Scope: store.IdempotencyScope{Method: "POST", Route: "/r", Key: "k"}, RequestHash: []byte("h"), CreatedAt: now, ExpiresAt: now.Add(time.Hour),
			}, now, now)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

var tenantTables = []string{"tenants", "api_keys", "idempotency_keys"}

// countRows counts the rows of each tenant table that q can see.
func countRows(t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, table := range tenantTables {
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
	for _, table := range tenantTables {
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
			checkCounts(t, "bravo's tx", countRows(t, raw), map[string]int{"api_keys": 1, "idempotency_keys": 1})
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
			checkCounts(t, "after ListTenants", countRows(t, tx.(*systemTx).tx),
				map[string]int{"tenants": 2, "api_keys": 2, "idempotency_keys": 2})
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
		stx := &systemTx{ctx: t.Context(), tx: tx}
		if err := stx.admin(); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(t.Context()); err != nil {
			t.Fatal(err)
		}
		checkCounts(t, "the connection after a system tx", countRows(t, conn), map[string]int{})
	})
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
