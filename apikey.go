package vaultcrux

import "time"

// APIKey is the stored record of an API key. The key itself is never
// stored: only its id and a keyed hash of its secret.
type APIKey struct {
	ID         string // the <keyid> part of vcrx_<keyid>_<secret>
	Tenant     TenantID
	Label      string
	Role       Role
	SeatID     string // the seat the key belongs to; "" for a tenant key
	Hash       []byte // HMAC-SHA-256(pepper, …secret…); see internal/apikey
	CreatedAt  time.Time
	RevokedAt  *time.Time
	LastUsedAt *time.Time
}

// Revoked reports whether the key has been revoked.
func (k *APIKey) Revoked() bool { return k.RevokedAt != nil }
