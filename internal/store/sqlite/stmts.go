package sqlite

import (
	"context"
	"database/sql"
	"sync/atomic"
)

// Prepared statements of the paths that run at the rate of calls: the
// ledger's per-item savepoint, a Shield decision's two rows and the
// receipts appended after them. Parsing these took a tenth of a recorded
// decision's time; the driver keeps a prepared statement compiled.
//
// They are prepared once the schema is known to be current (after Migrate,
// or when MigrationStatus finds it so), outside any transaction: the
// single connection is free then. A query not in the cache runs unprepared,
// so a failed preparation costs speed, never correctness.
var hotQueries = []string{
	savepointItem, releaseItem,
	insertOutbox, insertDecision,
	insertReceipt, selectLogSize, upsertLogHead,
}

type stmtCache struct {
	m atomic.Pointer[map[string]*sql.Stmt]
}

// prepareHot prepares hotQueries, once.
func (db *DB) prepareHot(ctx context.Context) {
	if db.hot.m.Load() != nil {
		return
	}
	m := make(map[string]*sql.Stmt, len(hotQueries))
	for _, q := range hotQueries {
		st, err := db.db.PrepareContext(ctx, q)
		if err != nil {
			for _, s := range m {
				s.Close()
			}
			return
		}
		m[q] = st
	}
	if !db.hot.m.CompareAndSwap(nil, &m) {
		for _, s := range m {
			s.Close()
		}
	}
}

func (db *DB) closeHot() {
	if m := db.hot.m.Swap(nil); m != nil {
		for _, s := range *m {
			s.Close()
		}
	}
}

// stmt returns q prepared for tx, or nil when it is not cached.
func (c *stmtCache) stmt(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	if c == nil {
		return nil
	}
	m := c.m.Load()
	if m == nil {
		return nil
	}
	st, ok := (*m)[q]
	if !ok {
		return nil
	}
	return tx.StmtContext(ctx, st)
}

// exec runs q in tx, prepared when it is cached.
func (c *stmtCache) exec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if st := c.stmt(ctx, tx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

// queryRow runs q in tx, prepared when it is cached.
func (c *stmtCache) queryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	if st := c.stmt(ctx, tx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}
