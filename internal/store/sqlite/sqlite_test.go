package sqlite

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/store/storetest"
)

func open(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "vaultcrux.db"))
	})
}

func TestPermissions(t *testing.T) {
	// Characters that mean something in a URI must still name the file.
	dir := filepath.Join(t.TempDir(), "data ?#%", "nested")
	path := filepath.Join(dir, "vaultcrux.db")
	db := open(t, path)
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := map[string]os.FileMode{
		filepath.Dir(dir): 0o700 | os.ModeDir,
		dir:               0o700 | os.ModeDir,
		path:              0o600,
		path + "-wal":     0o600,
		path + "-shm":     0o600,
	}
	for p, mode := range want {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("Stat: %v", err)
			continue
		}
		if got := fi.Mode(); got != mode {
			t.Errorf("mode of %s = %v, want %v", filepath.Base(p), got, mode)
		}
	}
}

func TestPragmas(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "vaultcrux.db"))
	for pragma, want := range map[string]string{
		"journal_mode":  "wal",
		"foreign_keys":  "1",
		"synchronous":   "2", // FULL
		"busy_timeout":  "10000",
		"temp_store":    "2", // MEMORY
		"secure_delete": "1",
	} {
		var got string
		if err := db.db.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", pragma, err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %q, want %q", pragma, got, want)
		}
	}
}

// TestHotStatements: every statement of the hot paths prepares against
// the migrated schema (a typo would silently cost the speed), and only
// once the schema is current.
func TestHotStatements(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vaultcrux.db")
	db := open(t, path)
	if db.hot.m.Load() != nil {
		t.Fatal("statements prepared before the schema exists")
	}
	if applied, latest, err := db.MigrationStatus(t.Context()); err != nil || applied == latest {
		t.Fatalf("MigrationStatus = %d, %d, %v on an empty file", applied, latest, err)
	}
	if db.hot.m.Load() != nil {
		t.Fatal("statements prepared against an old schema")
	}
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	m := db.hot.m.Load()
	if m == nil || len(*m) != len(hotQueries) {
		t.Fatalf("after Migrate: %v prepared, want all %d", m, len(hotQueries))
	}
	// A second handle on the migrated file prepares when it finds the
	// schema current.
	other := open(t, path)
	if _, _, err := other.MigrationStatus(t.Context()); err != nil {
		t.Fatal(err)
	}
	if m := other.hot.m.Load(); m == nil || len(*m) != len(hotQueries) {
		t.Fatalf("second handle: %v prepared, want all %d", m, len(hotQueries))
	}
}

// TestTwoHandles stands in for the server and the CLI opening one file:
// separate pools, concurrent migrations and writes, no SQLITE_BUSY.
func TestTwoHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vaultcrux.db")
	dbs := []*DB{open(t, path), open(t, path)}
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for _, db := range dbs {
		wg.Go(func() { errs <- db.Migrate(t.Context()) })
	}
	wg.Wait()
	if err := dbs[0].Tx(t.Context(), func(tx store.SystemTx) error {
		return tx.CreateTenant(&vaultcrux.Tenant{ID: "acme", Name: "Acme"}, nil)
	}); err != nil {
		t.Fatal(err)
	}
	const perHandle = 20
	claimed := make(chan bool, 2*perHandle)
	for _, db := range dbs {
		for i := range perHandle {
			wg.Go(func() {
				errs <- db.ForTenant("acme").Tx(t.Context(), func(tx store.TenantTx) error {
					rec := &store.IdempotencyRecord{
						Scope:       store.IdempotencyScope{Method: "POST", Route: "/r", Key: "k"},
						RequestHash: []byte{byte(i)},
						CreatedAt:   time.UnixMilli(0),
						ExpiresAt:   time.UnixMilli(1 << 50),
					}
					_, ok, err := tx.ClaimIdempotency(rec, time.UnixMilli(0), time.UnixMilli(0))
					claimed <- ok
					return err
				})
			})
		}
	}
	wg.Wait()
	close(errs)
	close(claimed)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent use of two handles: %v", err)
		}
	}
	wins := 0
	for ok := range claimed {
		if ok {
			wins++
		}
	}
	if wins != 1 {
		t.Errorf("%d claims won across two handles, want 1", wins)
	}
	for i, db := range dbs {
		applied, latest, err := db.MigrationStatus(t.Context())
		if err != nil || applied != latest {
			t.Errorf("handle %d: MigrationStatus = %d, %d, %v; want applied == latest", i, applied, latest, err)
		}
	}
}

// helperEnv names the database file a helper process writes to.
const helperEnv = "VAULTCRUX_SQLITE_TEST_HELPER"

// TestTwoProcesses runs a second process (this test binary) that migrates
// and writes the same file while this one does: the server and the CLI.
func TestTwoProcesses(t *testing.T) {
	if path := os.Getenv(helperEnv); path != "" {
		if err := writeKeys(t, path, "child", "parent"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	path := filepath.Join(t.TempDir(), "vaultcrux.db")
	child := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestTwoProcesses$", "-test.count=1")
	child.Env = append(os.Environ(), helperEnv+"="+path)
	out := make(chan []byte, 1)
	go func() {
		b, err := child.CombinedOutput()
		if err != nil {
			b = fmt.Appendf(b, "\nchild: %v", err)
		}
		out <- b
	}()
	if err := writeKeys(t, path, "parent", "child"); err != nil {
		t.Error(err)
	}
	if b := <-out; child.ProcessState == nil || !child.ProcessState.Success() {
		t.Fatalf("helper process failed:\n%s", b)
	}
	db := open(t, path)
	for _, tenant := range []string{"parent", "child"} {
		var keys []*vaultcrux.APIKey
		err := db.ForTenant(vaultcrux.TenantID(tenant)).Tx(t.Context(), func(tx store.TenantTx) (err error) {
			keys, err = tx.ListAPIKeys("", 100)
			return err
		})
		if err != nil || len(keys) != keysPerProcess {
			t.Errorf("%s wrote %d keys (err %v), want %d", tenant, len(keys), err, keysPerProcess)
		}
	}
}

const keysPerProcess = 25

// writeKeys migrates the file, creates tenant, and gives it keys, one
// transaction each that reads before it writes.
func writeKeys(t *testing.T, path, tenant, other string) error {
	db, err := Open(t.Context(), path)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(t.Context()); err != nil {
		return err
	}
	id := vaultcrux.TenantID(tenant)
	if err := db.Tx(t.Context(), func(tx store.SystemTx) error {
		return tx.CreateTenant(&vaultcrux.Tenant{ID: id, Name: tenant}, nil)
	}); err != nil {
		return err
	}
	for i := range keysPerProcess {
		// Lock step: stay at most two keys ahead of the other process, so
		// that the two really interleave.
		if i >= 2 {
			if err := waitForKey(t, db, fmt.Sprintf("%s-%02d", other, i-2)); err != nil {
				return err
			}
		}
		if err := db.ForTenant(id).Tx(t.Context(), func(tx store.TenantTx) error {
			if _, err := tx.ListAPIKeys("", 100); err != nil { // read, then write
				return err
			}
			return tx.CreateAPIKey(&vaultcrux.APIKey{
				ID: fmt.Sprintf("%s-%02d", tenant, i), Tenant: id, Role: vaultcrux.RoleMember, Hash: []byte("h"),
			})
		}); err != nil {
			return err
		}
	}
	return nil
}

func waitForKey(t *testing.T, db *DB, id string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := db.Tx(t.Context(), func(tx store.SystemTx) error {
			_, err := tx.LookupAPIKey(id)
			return err
		})
		if vaultcrux.ErrorKind(err) != vaultcrux.NotFound || time.Now().After(deadline) {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAppendReceiptsAtomic: SQLite keeps a transaction usable after a
// failed statement, so a caller may carry on after a Conflict. The rows
// of the refused append must not stay behind.
func TestAppendReceiptsAtomic(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "vaultcrux.db"))
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := db.Tx(t.Context(), func(tx store.SystemTx) error {
		return tx.CreateTenant(&vaultcrux.Tenant{ID: "acme", Name: "Acme"}, nil)
	}); err != nil {
		t.Fatal(err)
	}
	rec := func(id string, i int64) *store.ReceiptRecord {
		return &store.ReceiptRecord{ID: id, Kind: "ingest", Hash: "h", Body: []byte("{}"), LogIndex: i, LogHashes: []byte("h")}
	}
	err := db.ForTenant("acme").Tx(t.Context(), func(tx store.TenantTx) error {
		err := tx.AppendReceipts([]*store.ReceiptRecord{rec("r-0", 0), rec("r-0", 1)})
		if vaultcrux.ErrorKind(err) != vaultcrux.Conflict {
			t.Errorf("AppendReceipts(duplicate id) = %v, want a conflict", err)
		}
		if size, err := tx.LogHead(); err != nil || size != 0 {
			t.Errorf("LogHead after the refused append = %d, %v; want 0, nil", size, err)
		}
		if _, err := tx.GetReceipt("r-0"); vaultcrux.ErrorKind(err) != vaultcrux.NotFound {
			t.Errorf("GetReceipt(r-0) after the refused append: err = %v, want not found", err)
		}
		return tx.AppendReceipts([]*store.ReceiptRecord{rec("r-1", 0)})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func BenchmarkAppendReceipts(b *testing.B) {
	storetest.BenchAppendReceipts(b, func(b *testing.B) store.Store {
		db, err := Open(b.Context(), filepath.Join(b.TempDir(), "vaultcrux.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db
	})
}

// TestMigrate0003KeepsKeys upgrades a database at version 2 that has keys:
// 0003 rebuilds api_keys, which must carry every row over.
func TestMigrate0003KeepsKeys(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "vaultcrux.db"))
	ctx := t.Context()
	if _, err := db.db.ExecContext(ctx, createMigrationsTable); err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:2] {
		if _, err := db.db.ExecContext(ctx, m.SQL); err != nil {
			t.Fatalf("migration %d: %v", m.Version, err)
		}
		if _, err := db.db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)`,
			m.Version, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.db.ExecContext(ctx, `
		INSERT INTO tenants (id, name, created_at) VALUES ('acme', 'Acme', 0);
		INSERT INTO api_keys (key_id, tenant_id, label, role, hash, created_at, revoked_at, last_used_at)
		VALUES ('k1', 'acme', 'first', 'owner', x'01', 1000, NULL, 2000),
		       ('k2', 'acme', 'second', 'viewer', x'02', 3000, 4000, NULL)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate from version 2: %v", err)
	}
	var got []*vaultcrux.APIKey
	if err := db.ForTenant("acme").Tx(ctx, func(tx store.TenantTx) (err error) {
		got, err = tx.ListAPIKeys("", 10)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ms := func(v int64) *time.Time { t := time.UnixMilli(v).UTC(); return &t }
	want := []*vaultcrux.APIKey{
		{ID: "k1", Tenant: "acme", Label: "first", Role: vaultcrux.RoleOwner, Hash: []byte{1}, CreatedAt: *ms(1000), LastUsedAt: ms(2000)},
		{ID: "k2", Tenant: "acme", Label: "second", Role: vaultcrux.RoleViewer, Hash: []byte{2}, CreatedAt: *ms(3000), RevokedAt: ms(4000)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("keys after migrating to 0003 (-want +got):\n%s", diff)
	}
	var problems int
	if err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_check`).Scan(&problems); err != nil || problems != 0 {
		t.Errorf("foreign_key_check after the migration = %d problems (%v), want 0", problems, err)
	}
}
