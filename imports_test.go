package vaultcrux_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportRules keeps dependencies pointing inward: cmd → internal/* →
// the root package. It reads the real import graph with `go list`.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err) // go test runs under the go command: it is there
	}
	const mod = "github.com/vaultcrux/vaultcrux"
	rules := []struct {
		pkg    string // package, or prefix ending in "/"
		forbid []string
		why    string
	}{
		{mod, []string{mod + "/"}, "the root package is vocabulary and imports nothing of the module"},
		{mod + "/internal/", []string{mod + "/cmd/"}, "internal packages never import commands"},
		{mod + "/internal/server", []string{mod + "/internal/store/sqlite", mod + "/internal/store/postgres"}, "handlers reach storage through the store interface only"},
		{mod + "/internal/tenancy", []string{mod + "/internal/store/sqlite", mod + "/internal/store/postgres", mod + "/internal/server"}, "provisioning is backend-neutral"},
		{mod + "/internal/store/", []string{mod + "/internal/server", mod + "/internal/apikey", mod + "/internal/keyring", mod + "/internal/tenancy", mod + "/internal/config"}, "storage knows rows, not policy or key material"},
		{mod + "/internal/apikey", []string{mod + "/internal/store", mod + "/internal/server"}, "the key format is pure"},
		{mod + "/internal/authz", []string{mod + "/internal/store", mod + "/internal/server"}, "the permission table is pure"},
		{mod + "/internal/shield", []string{mod + "/internal/store", mod + "/internal/server", mod + "/internal/gate", mod + "/internal/ledger", mod + "/internal/evidence", mod + "/internal/config"}, "the Shield engine is pure: no store, clock or configuration"},
		{mod + "/internal/gate", []string{mod + "/internal/server", mod + "/internal/store/sqlite", mod + "/internal/store/postgres"}, "Shield reaches storage through the store interface and knows nothing of HTTP"},
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 10 {
		t.Fatalf("go list saw only %d packages", len(lines))
	}
	for _, line := range lines {
		f := strings.Fields(line)
		pkg, imports := f[0], f[1:]
		if strings.HasSuffix(pkg, "/vctest") || strings.HasSuffix(pkg, "/storetest") || strings.HasSuffix(pkg, "/pgtest") {
			continue // test helpers may reach anything
		}
		for _, r := range rules {
			if pkg != r.pkg && !(strings.HasSuffix(r.pkg, "/") && strings.HasPrefix(pkg, r.pkg)) {
				continue
			}
			for _, imp := range imports {
				for _, bad := range r.forbid {
					if imp == bad || (strings.HasSuffix(bad, "/") && strings.HasPrefix(imp, bad)) || strings.HasPrefix(imp, bad+"/") {
						t.Errorf("%s imports %s: %s", pkg, imp, r.why)
					}
				}
			}
		}
	}
}
