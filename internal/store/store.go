// Package store defines the storage interface of vaultcrux and owns its
// transaction discipline. Backends live in subpackages (sqlite, postgres);
// both must pass the conformance suite in storetest.
//
// Invariants:
//   - Work happens in closures: Tx commits when fn returns nil and rolls back
//     when it returns an error or panics (the panic is re-raised).
//   - Tenant data is reached only through ForTenant(id): the methods of a
//     TenantTx take no tenant argument, and another tenant's object is
//     NotFound. PostgreSQL additionally enforces this with row-level security
//     keyed on a per-transaction setting.
//   - Errors are *vaultcrux.Error with Kind NotFound or Conflict where the
//     caller can act on them; anything else is Internal.
package store

import (
	"context"
	"time"

	"github.com/vaultcrux/vaultcrux"
)

// Store is a storage backend.
type Store interface {
	// Tx runs fn in a system transaction: tenant administration that is
	// not scoped to one tenant (creating and listing tenants, the API key
	// lookup of authentication, purging expired rows).
	Tx(ctx context.Context, fn func(SystemTx) error) error
	// ForTenant returns the handle through which all of one tenant's data
	// is reached. It does not check that the tenant exists.
	ForTenant(id vaultcrux.TenantID) TenantStore
	// Ping checks that the backend answers.
	Ping(ctx context.Context) error
	// Migrate applies pending migrations; it is safe to run concurrently
	// from several processes.
	Migrate(ctx context.Context) error
	// MigrationStatus returns the applied and the latest known schema version.
	MigrationStatus(ctx context.Context) (applied, latest int, err error)
	// Dialect is "sqlite" or "postgres".
	Dialect() string
	Close() error
}

// TenantStore is the tenant-scoped handle.
type TenantStore interface {
	Tenant() vaultcrux.TenantID
	Tx(ctx context.Context, fn func(TenantTx) error) error
}

// SystemTx is a transaction across tenants, for administration only.
type SystemTx interface {
	// CreateTenant creates t (Conflict if the id exists) and, when firstKey
	// is not nil, stores that key in the same transaction, so that a tenant
	// never exists without a way in.
	CreateTenant(t *vaultcrux.Tenant, firstKey *vaultcrux.APIKey) error
	GetTenant(id vaultcrux.TenantID) (*vaultcrux.Tenant, error)
	ListTenants() ([]*vaultcrux.Tenant, error)
	// LookupAPIKey finds a key by its id in any tenant; authentication
	// uses it to learn which tenant a key belongs to. NotFound if absent.
	LookupAPIKey(keyID string) (*vaultcrux.APIKey, error)
	// TouchAPIKeys records last use times, keyed by key id. Unknown ids are ignored.
	TouchAPIKeys(lastUsed map[string]time.Time) error
	// PurgeIdempotency deletes idempotency records that expired before t
	// and returns how many it deleted.
	PurgeIdempotency(before time.Time) (int, error)
}

// TenantTx is a transaction within one tenant.
type TenantTx interface {
	// CreateAPIKey stores k; k.Tenant must be the handle's tenant.
	CreateAPIKey(k *vaultcrux.APIKey) error
	GetAPIKey(id string) (*vaultcrux.APIKey, error)
	// ListAPIKeys returns up to limit keys ordered by id, starting after
	// the id `after` ("" for the first page).
	ListAPIKeys(after string, limit int) ([]*vaultcrux.APIKey, error)
	// LockActiveOwnerKeys returns how many unrevoked owner keys the tenant
	// has, locking them until the transaction ends so that two concurrent
	// revocations cannot both see the other's key as still active.
	LockActiveOwnerKeys() (int, error)
	// RevokeAPIKey marks the key revoked at t. Revoking a revoked key
	// keeps the first revocation time and is not an error.
	RevokeAPIKey(id string, t time.Time) (*vaultcrux.APIKey, error)

	// ClaimIdempotency atomically inserts rec (Response nil: pending) for
	// its scope. When a record of the scope exists, it returns that record
	// and claimed=false, unless the record is expired (ExpiresAt <= now) or
	// is still pending and was created before staleBefore (its request
	// died); such a record is replaced by rec and claimed=true.
	ClaimIdempotency(rec *IdempotencyRecord, now, staleBefore time.Time) (existing *IdempotencyRecord, claimed bool, err error)
	// FinishIdempotency stores the response of the pending record that
	// claimed (the record given to a successful ClaimIdempotency) created.
	// Scope and CreatedAt identify the claim: if another request has taken
	// the key over since (stale takeover), the record is not touched and
	// the answer is NotFound.
	FinishIdempotency(claimed *IdempotencyRecord, resp *IdempotencyResponse) error
	// ReleaseIdempotency deletes the pending record of claimed, so that the
	// request can be retried (the handler failed and wrote nothing). A
	// record that is finished or belongs to a later claim is kept.
	ReleaseIdempotency(claimed *IdempotencyRecord) error
}

// IdempotencyScope identifies an idempotency record within a tenant:
// (method, route pattern, client key).
type IdempotencyScope struct {
	Method string
	Route  string
	Key    string
}

// IdempotencyRecord is a claimed idempotency key. RequestHash binds the
// key to the exact request (method, path, query, body); Response is nil
// while the first request is still being handled.
type IdempotencyRecord struct {
	Scope       IdempotencyScope
	RequestHash []byte
	CreatedAt   time.Time
	ExpiresAt   time.Time
	Response    *IdempotencyResponse
}

// IdempotencyResponse is the stored first response.
type IdempotencyResponse struct {
	Status int
	Header map[string]string // the few headers replayed (content-type, x-receipt-id)
	Body   []byte
}
