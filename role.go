package vaultcrux

// Role is the role of a seat or an API key within its tenant.
type Role string

// The roles, from most to least privileged.
const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
	RoleViewer Role = "viewer"
)

// ParseRole returns the role named s, or false.
func ParseRole(s string) (Role, bool) {
	switch r := Role(s); r {
	case RoleOwner, RoleAdmin, RoleMember, RoleViewer:
		return r, true
	}
	return "", false
}

// Principal is who a request acts as: exactly one tenant, one credential
// (an API key or a seat), its role, and the optional agent id the caller
// declared. AgentID is recorded, never trusted for authorization.
type Principal struct {
	Tenant  TenantID
	ID      string // "key:<keyid>" or "seat:<seatid>"
	KeyID   string // the API key that authenticated the request, if any
	Role    Role
	AgentID string
}
