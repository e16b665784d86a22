// Package postgres is the PostgreSQL storage backend of vaultcrux, for
// several stateless replicas sharing one database (pgx, pgxpool).
//
// It owns the schema (migrations/, embedded) and the row-level security
// that backs tenant isolation. Invariants:
//
//   - Every table but schema_migrations has row-level security ENABLEd and
//     FORCEd, with policies that read transaction-local settings; a
//     connection with no setting sees and writes no row (fail closed).
//   - A TenantTx sets vaultcrux.tenant to its tenant (and clears the other
//     settings) before fn runs, so even a query that forgot its tenant_id
//     clause sees only that tenant's rows. The queries still name the
//     tenant: RLS is the second wall, not the first.
//   - A SystemTx sets, per method, vaultcrux.system='on' for
//     administration, or only vaultcrux.key_lookup=<id> for LookupAPIKey,
//     which then can read the one key row and nothing else.
//   - RLS does not bind a superuser or a BYPASSRLS role; RLSBypassed
//     reports that (and a table missing its RLS) so the server can warn.
//     RLS guards against the application's own query mistakes, not against
//     SQL injection: injected SQL could set the settings itself.
//   - Settings are always transaction-local (set_config(…, true)), so
//     nothing survives on a pooled connection.
//   - A Batch is one READ COMMITTED transaction whose handles re-scope it
//     lazily: each method sets the settings of its handle (tenant, system
//     or key lookup) when they are not the ones in force, so switching
//     costs one round trip and staying costs none. Savepoints are SQL
//     SAVEPOINTs on the same connection; ROLLBACK TO also undoes settings
//     made since the savepoint, so after one the settings in force are
//     treated as unknown.
//   - Appends to a tenant's log are serialised across replicas by the row
//     lock that LogHead takes on the tenant's log_heads row; the append
//     itself also checks the head, so an appender that skipped LogHead gets
//     a Conflict, never a gap or a fork.
//   - Writes to a tenant's documents, chunks, index change log and key
//     material are serialised across replicas by the row lock on the
//     tenant's evidence_heads row, taken before they read what they check;
//     the same row hands out the change log's Seqs, so they run 1, 2, 3, …
//     with no gap. Ingest jobs are claimed with FOR UPDATE SKIP LOCKED.
//   - Times are timestamptz truncated to milliseconds, returned in UTC.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/store/migration"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

var migrations = migration.MustLoad(migrationFiles, "migrations")

// migrateLock is the pg_advisory_xact_lock key that serialises migrators;
// advisory locks are per database, so other databases are unaffected.
const migrateLock = 0x7661756c74637278 // "vaultcrx"

// signingKeyLock is the pg_advisory_xact_lock key that serialises signing
// key registrations, so that two cannot both take the next version.
const signingKeyLock = 0x76637369676b6579 // "vcsigkey"

// DB is a PostgreSQL store. It implements store.Store.
type DB struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*DB)(nil)

// Open connects to the database named by dsn (a libpq keyword/value string
// or URL) and checks that it answers. It does not migrate; call Migrate.
func Open(ctx context.Context, dsn string) (_ *DB, err error) {
	defer vaultcrux.Wrap(&err, "postgres.Open")
	cfg, err := pgxpool.ParseConfig(dsn) // its errors redact the password
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return &DB{pool: pool}, nil
}

// Dialect returns "postgres".
func (db *DB) Dialect() string { return "postgres" }

// Close closes the connection pool.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.Ping")
	return db.pool.Ping(ctx)
}

// RLSBypassed reports whether row-level security may fail to isolate
// tenants: the connected role is a superuser or has BYPASSRLS, or a table
// of the schema other than schema_migrations lacks ENABLE or FORCE ROW
// LEVEL SECURITY. The server should log a loud warning when it is true.
func (db *DB) RLSBypassed(ctx context.Context) (_ bool, err error) {
	defer vaultcrux.Wrap(&err, "postgres.RLSBypassed")
	var bypassed bool
	err = db.pool.QueryRow(ctx, `
		SELECT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user)
		    OR EXISTS (
		        SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
		          AND c.relname <> 'schema_migrations'
		          AND NOT (c.relrowsecurity AND c.relforcerowsecurity))`).Scan(&bypassed)
	return bypassed, err
}

// Tx runs fn in a system transaction.
func (db *DB) Tx(ctx context.Context, fn func(store.SystemTx) error) error {
	return db.tx(ctx, "postgres.Tx", func(tx pgx.Tx) error {
		return fn(&systemTx{ctx: ctx, tx: tx, mode: new(string)})
	})
}

// ForTenant returns the handle of tenant id.
func (db *DB) ForTenant(id vaultcrux.TenantID) store.TenantStore {
	return &tenantStore{db: db, id: id}
}

type tenantStore struct {
	db *DB
	id vaultcrux.TenantID
}

func (s *tenantStore) Tenant() vaultcrux.TenantID { return s.id }

func (s *tenantStore) Tx(ctx context.Context, fn func(store.TenantTx) error) error {
	if !vaultcrux.ValidTenantID(string(s.id)) {
		// Callers validate ids at the edge; reaching here is a bug.
		return &vaultcrux.Error{Op: "postgres.TenantTx", Err: errors.New("invalid tenant id")}
	}
	return s.db.tx(ctx, "postgres.TenantTx", func(tx pgx.Tx) error {
		t := &tenantTx{ctx: ctx, tx: tx, tenant: s.id, mode: new(string)}
		if err := t.enter(); err != nil {
			return &vaultcrux.Error{Op: "postgres.TenantTx", Err: err}
		}
		return fn(t)
	})
}

// Batch runs fn in one transaction for work of several tenants.
func (db *DB) Batch(ctx context.Context, fn func(store.BatchTx) error) error {
	return db.tx(ctx, "postgres.Batch", func(tx pgx.Tx) error {
		return fn(&batchTx{ctx: ctx, tx: tx, mode: new(string)})
	})
}

// batchTx hands out handles that share mode, the scope in force.
type batchTx struct {
	ctx  context.Context
	tx   pgx.Tx
	mode *string
}

func (b *batchTx) System() store.SystemTx { return &systemTx{ctx: b.ctx, tx: b.tx, mode: b.mode} }

// Tenant cannot return an error: a handle of an invalid id fails each of
// its methods instead.
func (b *batchTx) Tenant(id vaultcrux.TenantID) store.TenantTx {
	t := &tenantTx{ctx: b.ctx, tx: b.tx, tenant: id, mode: b.mode}
	if !vaultcrux.ValidTenantID(string(id)) {
		// Callers validate ids at the edge; reaching here is a bug.
		t.err = errors.New("invalid tenant id")
	}
	return t
}

// Savepoint returns the error of fn as it is, once its writes are undone.
func (b *batchTx) Savepoint(fn func() error) error {
	const op = "postgres.Savepoint"
	if _, err := b.tx.Exec(b.ctx, `SAVEPOINT batch_item`); err != nil {
		return &vaultcrux.Error{Op: op, Err: err}
	}
	if ferr := fn(); ferr != nil {
		// The rollback restores the settings of the savepoint, which the
		// handles did not record: make the next method set its own.
		*b.mode = ""
		if _, err := b.tx.Exec(b.ctx, `ROLLBACK TO SAVEPOINT batch_item; RELEASE SAVEPOINT batch_item`); err != nil {
			return &vaultcrux.Error{Op: op, Err: fmt.Errorf("rolling back after %v: %w", ferr, err)}
		}
		return ferr
	}
	if _, err := b.tx.Exec(b.ctx, `RELEASE SAVEPOINT batch_item`); err != nil {
		return &vaultcrux.Error{Op: op, Err: err}
	}
	return nil
}

// setScope sets all three settings together, so that no earlier scope of
// the transaction lingers, and records want in *mode to skip the round
// trip while it stays in force. Modes are "" (unknown or none),
// "system", "lookup:<key id>" and "tenant:<id>".
func setScope(ctx context.Context, tx pgx.Tx, mode *string, want, tenant, system, keyLookup string) error {
	if *mode == want {
		return nil
	}
	*mode = "" // until the settings are known to hold
	_, err := tx.Exec(ctx, `SELECT set_config('vaultcrux.tenant', $1, true),
		set_config('vaultcrux.system', $2, true), set_config('vaultcrux.key_lookup', $3, true)`,
		tenant, system, keyLookup)
	if err != nil {
		return err
	}
	*mode = want
	return nil
}

// tx runs fn in a READ COMMITTED transaction (the claim and lock queries
// rely on its re-check of locked rows). The deferred Rollback is a no-op
// after Commit, and on a panic it runs before the panic continues.
func (db *DB) tx(ctx context.Context, op string, fn func(pgx.Tx) error) error {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return &vaultcrux.Error{Op: op, Err: err}
	}
	defer tx.Rollback(ctx)
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return &vaultcrux.Error{Op: op, Err: err}
	}
	return nil
}

// Migrate applies pending migrations in one transaction, under an advisory
// lock so that replicas starting together apply each migration once.
func (db *DB) Migrate(ctx context.Context) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.Migrate")
	return db.tx(ctx, "postgres.Migrate", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer     NOT NULL PRIMARY KEY,
			name       text        NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var applied int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&applied); err != nil {
			return err
		}
		for _, m := range migrations {
			if m.Version <= applied {
				continue
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`,
				m.Version, m.Name); err != nil {
				return err
			}
		}
		return nil
	})
}

// MigrationStatus returns the applied and the latest schema version.
func (db *DB) MigrationStatus(ctx context.Context) (applied, latest int, err error) {
	defer vaultcrux.Wrap(&err, "postgres.MigrationStatus")
	latest = migrations[len(migrations)-1].Version
	var exists bool
	err = db.pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists)
	if err != nil || !exists {
		return 0, latest, err
	}
	err = db.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&applied)
	return applied, latest, err
}

func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func isUnique(err error) bool     { return pgCode(err) == "23505" }
func isForeignKey(err error) bool { return pgCode(err) == "23503" }

func ms(t time.Time) time.Time { return t.Truncate(time.Millisecond).UTC() }

func msPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := ms(*t)
	return &v
}
