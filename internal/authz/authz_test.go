package authz

import (
	"testing"

	"github.com/vaultcrux/vaultcrux"
)

// TestMatrix spells out contract §4 row by row, independently of the
// table in authz.go, so that a change to either is caught.
func TestMatrix(t *testing.T) {
	o, a, m, v := vaultcrux.RoleOwner, vaultcrux.RoleAdmin, vaultcrux.RoleMember, vaultcrux.RoleViewer
	want := map[Permission][]vaultcrux.Role{
		SeatsManage: {o, a},
		Read:        {o, a, m, v},
		Retrieve:    {o, a, m, v},
		Ingest:      {o, a, m},
		ShieldWrite: {o, a},
		KeysRotate:  {o},
		KeysManage:  {o},
		Public:      {},
		Ops:         {},
	}
	for perm := invalid; perm <= numPermissions; perm++ {
		allowed := map[vaultcrux.Role]bool{}
		for _, r := range want[perm] {
			allowed[r] = true
		}
		for _, r := range []vaultcrux.Role{o, a, m, v, "", "root"} {
			if got := Allowed(r, perm); got != allowed[r] {
				t.Errorf("Allowed(%q, %s) = %v, want %v", r, perm, got, allowed[r])
			}
		}
	}
	if len(want) != int(numPermissions)-1 {
		t.Errorf("test covers %d permissions, package declares %d", len(want), numPermissions-1)
	}
}

func TestCheck(t *testing.T) {
	if err := Check(nil, Read); vaultcrux.ErrorKind(err) != vaultcrux.Unauthenticated {
		t.Errorf("Check(nil) kind = %v, want unauthenticated", vaultcrux.ErrorKind(err))
	}
	p := &vaultcrux.Principal{Tenant: "t", Role: vaultcrux.RoleViewer}
	if err := Check(p, Ingest); vaultcrux.ErrorKind(err) != vaultcrux.Forbidden {
		t.Errorf("viewer Ingest kind = %v, want forbidden", vaultcrux.ErrorKind(err))
	}
	if err := Check(p, Read); err != nil {
		t.Errorf("viewer Read = %v, want nil", err)
	}
}
