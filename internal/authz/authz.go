// Package authz owns the one table that maps roles to permissions (product
// contract §4). Every route and every MCP tool names a Permission; Check is
// the only place that decides whether a principal holds it.
package authz

import (
	"github.com/vaultcrux/vaultcrux"
)

// Permission is what an entry point requires of its caller.
type Permission uint8

// The permissions. Public and Ops are not role checks: Public routes need
// no credential; Ops routes need an allowlisted address or any valid key.
const (
	invalid Permission = iota
	Public
	Ops
	Read        // list seats, read receipts, proofpacks, decisions
	Retrieve    // retrieve, citations
	Ingest      // ingest and delete documents
	ShieldWrite // Shield control plane writes, resolve approvals
	SeatsManage // invite, change role, revoke seat
	KeysManage  // manage API keys
	KeysRotate  // rotate keys, crypto-shred the tenant
	numPermissions
)

var names = [...]string{
	invalid:     "invalid",
	Public:      "public",
	Ops:         "ops",
	Read:        "read",
	Retrieve:    "retrieve",
	Ingest:      "ingest",
	ShieldWrite: "shield_write",
	SeatsManage: "seats_manage",
	KeysManage:  "keys_manage",
	KeysRotate:  "keys_rotate",
}

func (p Permission) String() string {
	if int(p) < len(names) {
		return names[p]
	}
	return "invalid"
}

// Valid reports whether p is a declared permission (the zero value is not:
// a route that forgot to name one is caught by tests and refused at run time).
func (p Permission) Valid() bool { return p > invalid && p < numPermissions }

// matrix is contract §4's table. Admins may manage seats, but not to or
// from owner: seatRoles below is that finer rule.
var matrix = map[vaultcrux.Role][numPermissions]bool{
	vaultcrux.RoleOwner:  {Read: true, Retrieve: true, Ingest: true, ShieldWrite: true, SeatsManage: true, KeysManage: true, KeysRotate: true},
	vaultcrux.RoleAdmin:  {Read: true, Retrieve: true, Ingest: true, ShieldWrite: true, SeatsManage: true},
	vaultcrux.RoleMember: {Read: true, Retrieve: true, Ingest: true},
	vaultcrux.RoleViewer: {Read: true, Retrieve: true},
}

// Allowed reports whether role holds perm. Public and Ops are not role
// permissions and are never granted here; unknown roles hold nothing.
func Allowed(role vaultcrux.Role, perm Permission) bool {
	if !perm.Valid() {
		return false
	}
	row, ok := matrix[role]
	return ok && row[perm]
}

// Check returns nil when p may use perm, else a Forbidden error.
func Check(p *vaultcrux.Principal, perm Permission) error {
	if p == nil {
		return vaultcrux.E(vaultcrux.Unauthenticated, "authentication required")
	}
	if !Allowed(p.Role, perm) {
		return vaultcrux.Ef(vaultcrux.Forbidden, "role %s may not %s", p.Role, perm)
	}
	return nil
}

// seatRoles is the rest of contract §4's first row: which seat roles a
// holder of SeatsManage may act on, as the role a seat has (change, revoke,
// end its sessions) or is given (invite, change). Owners act on every
// role; admins on every role but owner.
var seatRoles = map[vaultcrux.Role]map[vaultcrux.Role]bool{
	vaultcrux.RoleOwner: {vaultcrux.RoleOwner: true, vaultcrux.RoleAdmin: true, vaultcrux.RoleMember: true, vaultcrux.RoleViewer: true},
	vaultcrux.RoleAdmin: {vaultcrux.RoleAdmin: true, vaultcrux.RoleMember: true, vaultcrux.RoleViewer: true},
}

// CheckSeatRoles returns nil when p holds SeatsManage and may act on seats
// of every one of roles (the target's current role and, for an invite or a
// role change, the role it is given); else a Forbidden error. Unknown
// roles are never allowed.
func CheckSeatRoles(p *vaultcrux.Principal, roles ...vaultcrux.Role) error {
	if err := Check(p, SeatsManage); err != nil {
		return err
	}
	for _, r := range roles {
		if !seatRoles[p.Role][r] {
			if r == vaultcrux.RoleOwner {
				return vaultcrux.Ef(vaultcrux.Forbidden, "role %s may not grant, change or remove the owner role", p.Role)
			}
			return vaultcrux.Ef(vaultcrux.Forbidden, "role %s may not act on seats of role %q", p.Role, r)
		}
	}
	return nil
}
