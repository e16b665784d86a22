package sqlite

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

func TestSecureDeletePragma(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "vaultcrux.db"))
	var got int
	if err := db.db.QueryRowContext(t.Context(), "PRAGMA secure_delete").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != 1 {
		t.Errorf("PRAGMA secure_delete = %d, want 1", got)
	}
}

// TestScrubErasesKeyMaterial shreds a tenant's keys and checks that its
// key material is in neither the database file nor its WAL afterwards.
func TestScrubErasesKeyMaterial(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vaultcrux.db")
	db := open(t, path)
	ctx := t.Context()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	if err := db.Tx(ctx, func(tx store.SystemTx) error {
		return tx.CreateTenant(&vaultcrux.Tenant{ID: "acme", Name: "Acme", CreatedAt: now}, nil)
	}); err != nil {
		t.Fatal(err)
	}
	// Long values, as real wrapped keys are: an erased value that shrinks
	// a row leaves the old row's head in the page's free space unless
	// secure_delete zeroes it.
	long := func(prefix string) string { return prefix + strings.Repeat("0123456789abcdef", 6) }
	secrets := map[string]string{
		"wrapped kek": long("WRAPPED-KEK-MATERIAL-"),
		"index key":   long("INDEX-KEY-MATERIAL-"),
		"doc dek":     long("DOCUMENT-DEK-MATERIAL-"),
		"job dek":     long("INGEST-JOB-DEK-MATERIAL-"),
	}
	err := db.ForTenant("acme").Tx(ctx, func(tx store.TenantTx) error {
		if err := tx.AddTenantKEK(&store.TenantKEK{Version: 1, Provider: "local", Wrapped: secrets["wrapped kek"],
			IndexKey: secrets["index key"], State: "active", CreatedAt: now}); err != nil {
			return err
		}
		d := &store.Document{ID: "d1", Version: 1, Trust: "trusted", DEK: secrets["doc dek"], KEKVersion: 1, CreatedAt: now}
		if _, err := tx.PutDocument(d, nil, now); err != nil {
			return err
		}
		return tx.CreateIngestJob(&store.IngestJob{ID: "j1", Tenant: "acme", Trust: "trusted", Content: []byte("sealed"),
			DEK: secrets["job dek"], KEKVersion: 1, Status: "queued", CreatedAt: now, UpdatedAt: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	files := func() []byte {
		t.Helper()
		var all []byte
		for _, p := range []string{path, path + "-wal"} {
			b, err := os.ReadFile(p)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		return all
	}
	// The control: the material is there to be found before the shred.
	if err := db.Scrub(ctx); err != nil {
		t.Fatalf("Scrub: %v", err)
	}
	before := files()
	for name, s := range secrets {
		if !bytes.Contains(before, []byte(s)) {
			t.Fatalf("%s not found in the database before the shred; the test cannot see it", name)
		}
	}

	if err := db.ForTenant("acme").Tx(ctx, func(tx store.TenantTx) error {
		_, err := tx.ShredTenantKeys(now)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Scrub(ctx); err != nil {
		t.Fatalf("Scrub: %v", err)
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() != 0 {
		t.Errorf("WAL after Scrub is %d bytes, want 0", fi.Size())
	}
	after := files()
	for name, s := range secrets {
		// Any 16 bytes of it would be a leak; its prefix is a name of
		// this test, so its presence means the value was left behind.
		if bytes.Contains(after, []byte(s[:16])) {
			t.Errorf("%s (or a part of it) still in the database files after the shred and Scrub", name)
		}
	}
}
