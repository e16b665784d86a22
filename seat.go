package vaultcrux

import "time"

// Seat is a member of a tenant's team (contract §4): a person with a role
// and API keys of their own. A seat's keys carry its id (APIKey.SeatID),
// so that revoking the seat revokes them and the sessions made with them.
type Seat struct {
	ID        string
	Tenant    TenantID
	Email     string
	Role      Role
	CreatedAt time.Time
	RevokedAt *time.Time
}

// Revoked reports whether the seat has been revoked.
func (s *Seat) Revoked() bool { return s.RevokedAt != nil }

// SeatRoleChange is one append-only record of a seat's role changing.
// OldRole is "" when the seat was created.
type SeatRoleChange struct {
	ID      string
	SeatID  string
	OldRole Role
	NewRole Role
	Actor   string // Principal.ID
	At      time.Time
}

// Invite is a pending invitation to join a tenant as a seat. Only a hash
// of its token is stored.
type Invite struct {
	ID         string
	Tenant     TenantID
	Email      string
	Role       Role
	TokenHash  []byte
	CreatedBy  string // Principal.ID
	CreatedAt  time.Time
	ExpiresAt  time.Time
	AcceptedAt *time.Time
	SeatID     string // the seat made by accepting it
}

// Session is a frontdoor browser session (contract §3), bound to the API
// key (and its seat, if any) it was opened with.
type Session struct {
	ID          string
	Tenant      TenantID
	KeyID       string
	SeatID      string
	Role        Role
	CreatedAt   time.Time
	ExpiresAt   time.Time     // absolute expiry
	IdleTimeout time.Duration // ends the session after this long without use
	LastSeenAt  time.Time
	RevokedAt   *time.Time
	IP          string
	UserAgent   string
}

// SessionEvent is one entry of the session activity table: connect,
// logout, expiry, revocation, or a failed attempt.
type SessionEvent struct {
	ID        string
	Tenant    TenantID
	SessionID string // "" for a failed attempt
	Kind      string // "connect", "logout", "expired", "revoked", "failed"
	At        time.Time
	IP        string
	UserAgent string
	Detail    string // a short reason; never a key or cookie
}
