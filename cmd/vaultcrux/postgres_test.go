package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaultcrux/vaultcrux/internal/store/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestServeOnPostgres runs the binary against PostgreSQL as an ordinary
// role: migrate, bootstrap, serve, and the CLI on the same database.
func TestServeOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	getenv := func(k string) string {
		if k == "VAULTCRUX_DATABASE_URL" {
			return dsn
		}
		return ""
	}
	dir := filepath.Join(t.TempDir(), "data") // holds only the pepper
	s := serveWith(t, getenv, dir)
	if s.key == "" {
		t.Fatal("first start printed no owner key")
	}
	if code, m := get(t, s.url+"/v1/auth/whoami", "default", s.key); code != 200 || m["data"].(map[string]any)["tenantId"] != "default" {
		t.Fatalf("whoami on postgres: %d %v", code, m)
	}
	if strings.Contains(s.stderr.String(), "bypasses row-level security") {
		t.Errorf("an ordinary role was reported as bypassing RLS:\n%s", s.stderr)
	}
	code, out, errs := runCLIWith(t, getenv, "key", "create", "--tenant", "default", "--role", "admin", "--data-dir", dir)
	admin := keyRE.FindString(out)
	if code != 0 || admin == "" {
		t.Fatalf("key create on postgres: %d %q %q", code, out, errs)
	}
	if code, m := get(t, s.url+"/v1/auth/whoami", "default", admin); code != 200 || m["data"].(map[string]any)["role"] != "admin" {
		t.Fatalf("CLI key on postgres: %d %v", code, m)
	}
	if code, out, _ := runCLIWith(t, getenv, "migrate", "--data-dir", dir); code != 0 || !strings.HasPrefix(out, "postgres schema at version") {
		t.Errorf("migrate: %d %q", code, out)
	}
	if code := s.stop(); code != 0 {
		t.Fatalf("serve exit %d:\n%s", code, s.stderr)
	}
}
