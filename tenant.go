package vaultcrux

import (
	"time"
)

// TenantID names a tenant. It is chosen at creation ("default", "acme-prod")
// and matches ValidTenantID. It appears in the x-tenant-id header.
type TenantID string

// ValidTenantID reports whether s is an acceptable tenant id: 1 to 63
// characters of a-z, 0-9, '-' and '_', starting with a letter or digit.
// The alphabet keeps ids safe in headers, logs, file names and key names.
func ValidTenantID(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Tenant is an isolated customer of the vault.
type Tenant struct {
	ID        TenantID
	Name      string
	CreatedAt time.Time
}

// TimeFormat is the wire format of every time: RFC 3339, UTC, milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// FormatTime renders t in TimeFormat.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }
