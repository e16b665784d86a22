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
	// Batch runs fn in one transaction in which several tenants' work is
	// done: the group commit of the receipt ledger. fn switches between
	// tenants with BatchTx.Tenant and isolates each item with Savepoint.
	Batch(ctx context.Context, fn func(BatchTx) error) error
	// Dialect is "sqlite" or "postgres".
	Dialect() string
	Close() error
}

// TenantStore is the tenant-scoped handle.
type TenantStore interface {
	Tenant() vaultcrux.TenantID
	Tx(ctx context.Context, fn func(TenantTx) error) error
}

// BatchTx is the transaction of Store.Batch. Only the handle returned by
// the latest call of System or Tenant may be used: switching re-scopes the
// transaction (in PostgreSQL, the row-level security settings), and an
// older handle would run under the new scope.
type BatchTx interface {
	System() SystemTx
	Tenant(id vaultcrux.TenantID) TenantTx
	// Savepoint runs fn inside a savepoint: when fn returns an error, its
	// writes are rolled back and the rest of the transaction is kept.
	Savepoint(fn func() error) error
}

// SystemTx is a transaction across tenants, for administration only.
type SystemTx interface {
	SystemEvidenceTx
	SystemShieldTx

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

	// ListSigningKeys returns every receipt signing key ever registered,
	// by version.
	ListSigningKeys() ([]*SigningKey, error)
	// RegisterSigningKey returns the key whose public key is pub. When
	// there is none it registers pub as the next version, active, retires
	// the previously active version at now, and returns created=true.
	RegisterSigningKey(pub []byte, now time.Time) (k *SigningKey, created bool, err error)
	// RevokeSigningKey marks a version revoked at now (NotFound if the
	// version does not exist). Revoking twice keeps the first time.
	RevokeSigningKey(version int, now time.Time) (*SigningKey, error)
	// LogsNeedingCheckpoint returns the tenants whose log has grown since
	// its latest checkpoint.
	LogsNeedingCheckpoint() ([]vaultcrux.TenantID, error)
	// TenantsWithPendingReceipts returns the tenants that have receipts
	// stored pending_signature with no attestation yet.
	TenantsWithPendingReceipts() ([]vaultcrux.TenantID, error)
}

// TenantTx is a transaction within one tenant.
type TenantTx interface {
	EvidenceTx
	ShieldTx

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

	// LogHead returns the size of the tenant's log and, in PostgreSQL,
	// locks it until the transaction ends, so that appends from several
	// processes are serialised.
	LogHead() (size int64, err error)
	// AppendReceipts stores recs, whose LogIndex must run consecutively
	// from the current log size, and advances the log to their end.
	// Conflict if a receipt id exists or the indexes do not follow on.
	AppendReceipts(recs []*ReceiptRecord) error
	// LogHashes returns the translog stored-hash blobs of the given log
	// indexes, in order; NotFound if one is missing.
	LogHashes(indexes []int64) ([][]byte, error)
	GetReceipt(id string) (*ReceiptRecord, error)
	// GetReceiptByAnswer and GetReceiptBySnapshot find answer receipts.
	GetReceiptByAnswer(answerID string) (*ReceiptRecord, error)
	GetReceiptBySnapshot(snapshotID string) (*ReceiptRecord, error)
	// ListReceipts returns receipts newest (highest log index) first.
	ListReceipts(f ReceiptFilter) ([]*ReceiptRecord, error)
	// PendingReceipts returns up to limit receipts stored
	// pending_signature that have no attestation, oldest first.
	PendingReceipts(limit int) ([]*ReceiptRecord, error)
	// AddAttestation stores the detached signature of a pending receipt;
	// Conflict if the receipt has one, NotFound if the receipt does not
	// exist.
	AddAttestation(a *Attestation) error
	GetAttestation(receiptID string) (*Attestation, error)
	// AddCheckpoint stores a signed checkpoint; Conflict if one of that
	// size exists.
	AddCheckpoint(c *Checkpoint) error
	// LatestCheckpoint returns the checkpoint of the largest size;
	// NotFound if none.
	LatestCheckpoint() (*Checkpoint, error)
	// GetCheckpoint returns the checkpoint of exactly size.
	GetCheckpoint(size int64) (*Checkpoint, error)

	// Seats (contract §4).

	// CountSeats returns how many seats the tenant has, revoked included.
	CountSeats() (int, error)
	// CreateSeat stores s and its creation in the role history (change,
	// OldRole ""). Conflict if an unrevoked seat has the same email
	// (compared case-insensitively).
	CreateSeat(s *vaultcrux.Seat, change *vaultcrux.SeatRoleChange) error
	GetSeat(id string) (*vaultcrux.Seat, error)
	// ListSeats returns up to limit seats ordered by id, after the id
	// `after` ("" for the first page).
	ListSeats(after string, limit int) ([]*vaultcrux.Seat, error)
	// LockActiveOwnerSeats returns how many unrevoked owner seats the
	// tenant has, locking them until the transaction ends (as
	// LockActiveOwnerKeys does for keys).
	LockActiveOwnerSeats() (int, error)
	// ChangeSeatRole sets the role of an unrevoked seat whose role is
	// still change.OldRole and appends change to its history. In the same
	// transaction it gives the new role to the seat's API keys and to the
	// frontdoor sessions opened with the seat or one of its keys, so that
	// a demotion takes effect on every credential of the seat. NotFound
	// for an unknown or revoked seat; Conflict when the seat's role is no
	// longer change.OldRole.
	ChangeSeatRole(change *vaultcrux.SeatRoleChange) (*vaultcrux.Seat, error)
	// AttachKeyToSeat makes the unrevoked key keyID, which belongs to no
	// seat, a key of the unrevoked seat seatID, and gives it the seat's
	// role. NotFound when the key or the seat is missing or revoked;
	// Conflict when the key belongs to a seat already.
	AttachKeyToSeat(keyID, seatID string) (*vaultcrux.APIKey, error)
	// SeatRoleHistory returns the role changes of a seat, oldest first.
	SeatRoleHistory(seatID string) ([]*vaultcrux.SeatRoleChange, error)
	// RevokeSeat marks the seat revoked at t and, in the same transaction,
	// revokes its API keys and its frontdoor sessions (RevokedAt t).
	// Revoking twice keeps the first time.
	RevokeSeat(id string, t time.Time) (*vaultcrux.Seat, error)

	// CreateInvite stores inv. Conflict if its id or token hash exists.
	CreateInvite(inv *vaultcrux.Invite) error
	// FindInvite returns the invite whose token hash is tokenHash,
	// accepted and expired ones included (the caller decides); NotFound
	// when this tenant has none.
	FindInvite(tokenHash []byte) (*vaultcrux.Invite, error)
	// AcceptInvite marks the invite with tokenHash accepted at now by the
	// seat seatID, atomically: of two concurrent accepts one wins. NotFound
	// when no invite has that hash or it was accepted already; Invalid
	// ("invite expired") when it expired (ExpiresAt <= now).
	AcceptInvite(tokenHash []byte, seatID string, now time.Time) (*vaultcrux.Invite, error)

	// Frontdoor sessions (contract §3).

	CreateSession(s *vaultcrux.Session) error
	// GetSession returns the session, revoked or expired ones included
	// (the caller decides); NotFound if absent.
	GetSession(id string) (*vaultcrux.Session, error)
	// TouchSession sets LastSeenAt to t if it is later.
	TouchSession(id string, t time.Time) error
	// RevokeSession marks the session revoked at t (keeping the first
	// time); NotFound if absent.
	RevokeSession(id string, t time.Time) (*vaultcrux.Session, error)
	// RevokeKeySessions revokes every session opened with API key keyID.
	RevokeKeySessions(keyID string, t time.Time) (int, error)
	// ListActiveSessions returns unrevoked sessions whose absolute expiry
	// is after now, ordered by id, after `after`, up to limit. (Idle
	// expiry is the caller's to judge from LastSeenAt.)
	ListActiveSessions(now time.Time, after string, limit int) ([]*vaultcrux.Session, error)
	// AddSessionEvent appends to the session activity table.
	AddSessionEvent(e *vaultcrux.SessionEvent) error
	// ListSessionEvents returns events newest first, up to limit, before
	// the event id `before` ("" for the newest).
	ListSessionEvents(before string, limit int) ([]*vaultcrux.SessionEvent, error)
}

// ReceiptRecord is a stored receipt. The row is written once and never
// updated: a receipt stored pending_signature gets its signature as a
// separate Attestation.
type ReceiptRecord struct {
	ID           string
	Kind         string // the event kind, or "answer" for CROWN answer receipts
	AnswerID     string // answer receipts only
	SnapshotID   string // answer receipts only
	ParentSnapID string // answer receipts only; "" at the root of a chain
	Hash         string // receiptHash
	// Body is the receipt document (canonical JSON), with "signature":
	// null when Pending.
	Body      []byte
	Pending   bool
	LogIndex  int64
	LogHashes []byte // the translog stored hashes of this record
	CreatedAt time.Time
}

// ReceiptFilter selects receipts for ListReceipts.
type ReceiptFilter struct {
	Kind        string    // "" for every kind
	Since       time.Time // zero for no lower bound on CreatedAt
	BeforeIndex int64     // only log indexes below this; <0 for no bound
	Limit       int
}

// Attestation is the detached signature of a receipt that was stored
// pending_signature. Signature is the receipt's signature object (JSON).
type Attestation struct {
	ReceiptID string
	Signature []byte
	CreatedAt time.Time
}

// Checkpoint is a signed tree head of a tenant's log. Note is the signed
// note text that verifiers check.
type Checkpoint struct {
	Size      int64
	Root      []byte
	Note      []byte
	CreatedAt time.Time
}

// SigningKey is a registered receipt signing key. Status is "active",
// "retired" or "revoked".
type SigningKey struct {
	Version   int
	KID       string
	Public    []byte
	Status    string
	CreatedAt time.Time
	RetiredAt *time.Time
	RevokedAt *time.Time
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
