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

// TestSeatRoles spells out "admin ✓ (not to/from owner)" of contract §4.
func TestSeatRoles(t *testing.T) {
	o, a, m, v := vaultcrux.RoleOwner, vaultcrux.RoleAdmin, vaultcrux.RoleMember, vaultcrux.RoleViewer
	want := map[vaultcrux.Role][]vaultcrux.Role{o: {o, a, m, v}, a: {a, m, v}, m: {}, v: {}}
	for actor, targets := range want {
		ok := map[vaultcrux.Role]bool{}
		for _, r := range targets {
			ok[r] = true
		}
		p := &vaultcrux.Principal{Tenant: "t", Role: actor}
		for _, target := range []vaultcrux.Role{o, a, m, v, "", "root"} {
			err := CheckSeatRoles(p, target)
			if (err == nil) != ok[target] {
				t.Errorf("CheckSeatRoles(%s → %q) = %v, want allowed=%v", actor, target, err, ok[target])
			}
			if err != nil && vaultcrux.ErrorKind(err) != vaultcrux.Forbidden {
				t.Errorf("CheckSeatRoles(%s → %q) kind = %v, want forbidden", actor, target, vaultcrux.ErrorKind(err))
			}
		}
	}
	admin := &vaultcrux.Principal{Tenant: "t", Role: a}
	// Every role named must be allowed: admin changing a member to owner, or an owner to member.
	for _, roles := range [][]vaultcrux.Role{{m, o}, {o, m}} {
		if err := CheckSeatRoles(admin, roles...); vaultcrux.ErrorKind(err) != vaultcrux.Forbidden {
			t.Errorf("admin CheckSeatRoles(%v) = %v, want forbidden", roles, err)
		}
	}
	if err := CheckSeatRoles(admin, m, v); err != nil {
		t.Errorf("admin CheckSeatRoles(member, viewer) = %v, want nil", err)
	}
	if err := CheckSeatRoles(nil, m); vaultcrux.ErrorKind(err) != vaultcrux.Unauthenticated {
		t.Errorf("CheckSeatRoles(nil) = %v, want unauthenticated", err)
	}
}
