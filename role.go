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
//
// A seat's API key authenticates as the seat ("seat:<seatid>") with the
// seat's current role; a tenant key (one of no seat) as itself. SessionID
// is set when a frontdoor session cookie, not an x-api-key header,
// authenticated the request.
type Principal struct {
	Tenant    TenantID
	ID        string // "key:<keyid>" or "seat:<seatid>"
	KeyID     string // the API key that authenticated the request, if any
	SeatID    string // the seat of that key, if any
	SessionID string // the frontdoor session, for cookie-authenticated requests
	Role      Role
	AgentID   string
}
