// Package sqlite is the embedded storage backend of vaultcrux: one SQLite
// database file (modernc.org/sqlite, no cgo) behind store.Store.
//
// It owns the file, its schema (migrations/, embedded) and the connection
// settings. Invariants:
//
//   - The data directory is created 0700 and the database file 0600; SQLite
//     gives its -wal and -shm files the mode of the database file.
//   - Every connection runs with foreign_keys=ON, journal_mode=WAL,
//     synchronous=FULL, secure_delete=ON and a busy timeout, set through
//     the DSN so that no pooled connection can miss them.
//   - Transactions run one at a time on a single connection and begin with
//     BEGIN IMMEDIATE: the write lock is taken up front, so a transaction
//     never fails half-way trying to upgrade a read lock, and another
//     process (the CLI) on the same file waits for the busy timeout instead
//     of failing. A consequence: fn must not start another transaction on
//     the same DB, or it waits for itself until its context ends.
//   - Every tenant query names the tenant of the handle in its WHERE
//     clause; SQLite has no second wall, so that clause is the isolation.
//   - Times are INTEGER unix milliseconds, UTC.
//   - A Batch is one such transaction; its savepoints are SQLite SAVEPOINTs
//     on the same connection, so every handle of the batch works inside
//     them.
//   - The write lock also serialises appends to a tenant's log: the head
//     that LogHead reads cannot change before the transaction ends.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/store/migration"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

var migrations = migration.MustLoad(migrationFiles, "migrations")

// busyTimeout bounds how long a transaction waits for another process's
// write lock before failing with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// DB is a SQLite store. It implements store.Store.
type DB struct {
	db  *sql.DB
	hot stmtCache
}

var _ store.Store = (*DB)(nil)

// Open opens the database file at path, creating it and its directory if
// needed. It does not migrate; call Migrate.
func Open(ctx context.Context, path string) (_ *DB, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.Open")
	if path == "" {
		return nil, errors.New("empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, err
	}
	// Create the file ourselves: SQLite would create it 0644 (less umask).
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}

	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	// FULL: a commit is on disk (the WAL fsynced) when it returns, so a
	// receipt handed to a client survives power loss, not just a crash of
	// the process. The ledger's group commit pays one fsync per batch.
	q.Add("_pragma", "synchronous(FULL)")
	// Deleted and overwritten content is zeroed in the file, so that erased
	// key material (a crypto-shred) does not linger in free space; Scrub
	// then clears it out of the WAL.
	q.Add("_pragma", "secure_delete(1)")
	// Savepoint sub-journals and temporary b-trees stay in memory: each
	// batched write runs in a savepoint (a failure costs that write
	// alone), and a sub-journal file cost a write syscall per first-touched
	// page. Durability is the WAL's, which this does not change.
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Set("_txlock", "immediate")
	dsn := (&url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}).String()

	sdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	sdb.SetMaxOpenConns(1)
	sdb.SetMaxIdleConns(1)
	sdb.SetConnMaxLifetime(0)
	sdb.SetConnMaxIdleTime(0)
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	return &DB{db: sdb}, nil
}

// Dialect returns "sqlite".
func (db *DB) Dialect() string { return "sqlite" }

// Close closes the database.
func (db *DB) Close() error {
	db.closeHot()
	return db.db.Close()
}

// Ping checks that the database file can be read.
func (db *DB) Ping(ctx context.Context) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.Ping")
	var n int
	return db.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&n)
}

// Tx runs fn in a system transaction.
func (db *DB) Tx(ctx context.Context, fn func(store.SystemTx) error) error {
	return db.tx(ctx, "sqlite.Tx", func(tx *sql.Tx) error {
		return fn(&systemTx{ctx: ctx, tx: tx})
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
		return &vaultcrux.Error{Op: "sqlite.TenantTx", Err: errors.New("invalid tenant id")}
	}
	return s.db.tx(ctx, "sqlite.TenantTx", func(tx *sql.Tx) error {
		return fn(&tenantTx{ctx: ctx, tx: tx, hot: &s.db.hot, tenant: s.id})
	})
}

// Batch runs fn in one transaction for work of several tenants.
//
// The batch's statements run without ctx's cancellation: the driver
// watches a cancellable context with a goroutine per statement, which cost
// more than a tenth of a group commit's time, and a batch is exactly the
// work that one caller giving up must not abort. What bounds a statement
// is the busy timeout (a lock held elsewhere); ctx still bounds the wait
// for the connection and the commit.
func (db *DB) Batch(ctx context.Context, fn func(store.BatchTx) error) error {
	return db.tx(ctx, "sqlite.Batch", func(tx *sql.Tx) error {
		return fn(&batchTx{ctx: context.WithoutCancel(ctx), tx: tx, hot: &db.hot})
	})
}

type batchTx struct {
	ctx context.Context
	tx  *sql.Tx
	hot *stmtCache
}

func (b *batchTx) System() store.SystemTx { return &systemTx{ctx: b.ctx, tx: b.tx} }

// Tenant cannot return an error: a handle of an invalid id fails each of
// its methods instead.
func (b *batchTx) Tenant(id vaultcrux.TenantID) store.TenantTx {
	t := &tenantTx{ctx: b.ctx, tx: b.tx, hot: b.hot, tenant: id}
	if !vaultcrux.ValidTenantID(string(id)) {
		// Callers validate ids at the edge; reaching here is a bug.
		t.err = errors.New("invalid tenant id")
	}
	return t
}

// Savepoint returns the error of fn as it is, once its writes are undone.
func (b *batchTx) Savepoint(fn func() error) error {
	const op = "sqlite.Savepoint"
	if _, err := b.hot.exec(b.ctx, b.tx, savepointItem); err != nil {
		return &vaultcrux.Error{Op: op, Err: err}
	}
	if ferr := fn(); ferr != nil {
		// ROLLBACK TO keeps the savepoint open; RELEASE ends it.
		if _, err := b.tx.ExecContext(b.ctx, `ROLLBACK TO batch_item`); err != nil {
			return &vaultcrux.Error{Op: op, Err: fmt.Errorf("rolling back after %v: %w", ferr, err)}
		}
		if _, err := b.tx.ExecContext(b.ctx, `RELEASE batch_item`); err != nil {
			return &vaultcrux.Error{Op: op, Err: fmt.Errorf("releasing after %v: %w", ferr, err)}
		}
		return ferr
	}
	if _, err := b.hot.exec(b.ctx, b.tx, releaseItem); err != nil {
		return &vaultcrux.Error{Op: op, Err: err}
	}
	return nil
}

const (
	savepointItem = `SAVEPOINT batch_item`
	releaseItem   = `RELEASE batch_item`
)

// tx runs fn in a BEGIN IMMEDIATE transaction. The deferred Rollback is a
// no-op after Commit, and on a panic it runs before the panic continues.
func (db *DB) tx(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return &vaultcrux.Error{Op: op, Err: err}
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return &vaultcrux.Error{Op: op, Err: err}
	}
	return nil
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
) STRICT`

// Migrate applies pending migrations in one transaction. The write lock of
// BEGIN IMMEDIATE serialises concurrent migrators, in this process or
// another: the second one finds the work done.
func (db *DB) Migrate(ctx context.Context) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.Migrate")
	defer func() {
		if err == nil {
			db.prepareHot(ctx)
		}
	}()
	return db.tx(ctx, "sqlite.Migrate", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
			return err
		}
		var applied int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&applied); err != nil {
			return err
		}
		for _, m := range migrations {
			if m.Version <= applied {
				continue
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
			}
			// The database's clock, not the caller's: this is an operations
			// record, not data.
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO schema_migrations (version, name, applied_at)
				 VALUES (?, ?, CAST(unixepoch('subsec') * 1000 AS INTEGER))`,
				m.Version, m.Name); err != nil {
				return err
			}
		}
		return nil
	})
}

// MigrationStatus returns the applied and the latest schema version.
func (db *DB) MigrationStatus(ctx context.Context) (applied, latest int, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.MigrationStatus")
	latest = migrations[len(migrations)-1].Version
	var exists bool
	err = db.db.QueryRowContext(ctx,
		`SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&exists)
	if err != nil || !exists {
		return 0, latest, err
	}
	err = db.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&applied)
	if err == nil && applied == latest {
		db.prepareHot(ctx)
	}
	return applied, latest, err
}

// isConstraint reports whether err is the SQLite extended result code code.
func isConstraint(err error, code int) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == code
}

func isUnique(err error) bool {
	return isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) || isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE)
}

func isForeignKey(err error) bool { return isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) }

func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func nullMillis(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: millis(*t), Valid: true}
}

func fromNullMillis(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMillis(v.Int64)
	return &t
}
