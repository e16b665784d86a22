// Package evidence is the evidence plane (contract §5): encrypted
// ingest, the blind index, retrieval with CROWN answer receipts,
// citations, deletion, tenant key rotation and crypto-shredding.
//
// Invariants:
//   - Content and chunk text reach the store only sealed (internal/envelope)
//     under a per-version data key wrapped by the tenant's KEK; index terms
//     reach it only as keyed hashes (internal/textindex). A queued ingest
//     job's content is sealed too.
//   - Every change (ingest, replace, no-op, delete, rotation, shred) is
//     committed through the ledger together with its event receipt; every
//     retrieve and citations check yields a CROWN answer receipt.
//   - Fail closed: when a key cannot be unwrapped or a store read fails, the
//     request fails; nothing is ever served or indexed in the clear.
//   - The in-memory index of a tenant is a cache: the index change log in
//     the store is the truth, and every search first catches up with it, so
//     every process (and replica) sees the same documents.
package evidence

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/zeebo/blake3"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/envelope"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/textindex"
)

// Event receipt kinds issued here.
const (
	KindIngested   = "document.ingested"
	KindReplaced   = "document.replaced"
	KindUnchanged  = "document.unchanged"
	KindDeleted    = "document.deleted"
	KindKeyRotated = "tenant_key.rotated"
	KindShredded   = "tenant.crypto_shredded"
)

// Config holds a Service's dependencies. Store, Ledger and Keys are
// required.
type Config struct {
	Store  store.Store
	Ledger *ledger.Ledger
	Keys   envelope.Provider
	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger
	// Chunking and Fusion default to textindex's defaults.
	Chunking *textindex.ChunkOptions
	Fusion   *textindex.Fusion
	// Lease is how long a worker owns a claimed ingest job before
	// another may take it over (default 2 min); Poll is how often an idle
	// worker looks for queued jobs (default 500 ms).
	Lease time.Duration
	Poll  time.Duration
}

// Service is the evidence plane. Its methods are safe for concurrent use.
type Service struct {
	st     store.Store
	ledger *ledger.Ledger
	keys   envelope.Provider
	now    func() time.Time
	rand   io.Reader
	randMu sync.Mutex
	log    *slog.Logger
	chunk  textindex.ChunkOptions
	fusion textindex.Fusion
	lease  time.Duration
	poll   time.Duration

	mu      sync.Mutex
	indexes map[vaultcrux.TenantID]*tenantIndex
	chains  map[chainKey]string // the latest snapshot id per answer chain

	wake chan struct{}
	// since measures the timings that receipts record (a test fixes it).
	since func(time.Time) time.Duration
}

// New returns a Service.
func New(c Config) *Service {
	s := &Service{
		st: c.Store, ledger: c.Ledger, keys: c.Keys, now: c.Now, rand: c.Rand, log: c.Logger,
		chunk: textindex.DefaultChunkOptions, fusion: textindex.DefaultFusion,
		lease: c.Lease, poll: c.Poll,
		indexes: map[vaultcrux.TenantID]*tenantIndex{},
		chains:  map[chainKey]string{},
		wake:    make(chan struct{}, 1),
		since:   time.Since,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if c.Chunking != nil {
		s.chunk = *c.Chunking
	}
	if c.Fusion != nil {
		s.fusion = *c.Fusion
	}
	if s.lease <= 0 {
		s.lease = 2 * time.Minute
	}
	if s.poll <= 0 {
		s.poll = 500 * time.Millisecond
	}
	s.ledger.SetLineage(s.Stale)
	return s
}

// random reads from the service's random source under a lock (a
// deterministic test source need not be safe for concurrent use).
type lockedRand struct{ s *Service }

func (r lockedRand) Read(p []byte) (int, error) {
	r.s.randMu.Lock()
	defer r.s.randMu.Unlock()
	return io.ReadFull(r.s.rand, p)
}

func (s *Service) rnd() io.Reader { return lockedRand{s} }

// Hash is "blake3:" + hex of the BLAKE3-256 of b: content hashes, quote
// hashes and query hashes.
func Hash(b []byte) string {
	sum := blake3.Sum256(b)
	return "blake3:" + hex.EncodeToString(sum[:])
}

// HashString is Hash of a string.
func HashString(s string) string { return Hash([]byte(s)) }

var (
	errShredded = vaultcrux.E(vaultcrux.Conflict, "this tenant's content was crypto-shredded; it can no longer be read or added")
	errNoKeys   = vaultcrux.E(vaultcrux.Unavailable, "the tenant key is unavailable")
)

// AAD of the envelopes. A data key is bound to its tenant; content and
// chunks to tenant, document, version (and chunk position), so that a
// ciphertext or a data key moved elsewhere does not open.
func dekAAD(t vaultcrux.TenantID) []byte      { return envelope.AAD("dek", string(t)) }
func indexKeyAAD(t vaultcrux.TenantID) []byte { return envelope.AAD("index-key", string(t)) }
func jobAAD(t vaultcrux.TenantID, jobID string) []byte {
	return envelope.AAD("job", string(t), jobID)
}
func chunkAAD(t vaultcrux.TenantID, docID string, version, seq int) []byte {
	return envelope.AAD("chunk", string(t), docID, itoa(version), itoa(seq))
}

// tenantKeys are the unwrapped keys of one tenant for one request. They
// are never cached: unwrapping costs microseconds, and a shred or a
// rotation takes effect on the next request in every process.
type tenantKeys struct {
	row      *store.TenantKEK
	kek      envelope.KEK
	indexKey []byte
}

// SetupTenant creates version 1 of a new tenant's KEK and its blind-index
// key, in the transaction that creates the tenant
// (tenancy.Provisioner.TenantSetup).
func (s *Service) SetupTenant(tx store.TenantTx, tenant vaultcrux.TenantID) error {
	_, err := s.createKeys(context.Background(), tx, tenant)
	return err
}

func (s *Service) createKeys(ctx context.Context, tx store.TenantTx, tenant vaultcrux.TenantID) (*store.TenantKEK, error) {
	stored, err := s.keys.NewKEK(ctx, tenant, 1)
	if err != nil {
		return nil, err
	}
	kek, err := s.keys.KEK(ctx, tenant, 1, stored)
	if err != nil {
		return nil, err
	}
	ik, err := envelope.NewKey(s.rnd())
	if err != nil {
		return nil, err
	}
	wrappedIK, err := kek.Wrap(ik, indexKeyAAD(tenant))
	if err != nil {
		return nil, err
	}
	row := &store.TenantKEK{
		Version: 1, Provider: s.keys.Name(), Wrapped: stored, IndexKey: wrappedIK,
		State: "active", CreatedAt: s.ledger.Now(),
	}
	return row, tx.AddTenantKEK(row)
}

// keysFor returns the tenant's active keys. With create, a tenant that
// has none (created before the evidence plane existed) gets them now.
// A shredded tenant is errShredded; any other failure is errNoKeys or the
// store's error: the caller fails closed.
func (s *Service) keysFor(ctx context.Context, tx store.TenantTx, tenant vaultcrux.TenantID, create bool) (*tenantKeys, error) {
	row, err := tx.ActiveTenantKEK()
	if vaultcrux.ErrorKind(err) == vaultcrux.NotFound {
		at, serr := tx.TenantShreddedAt()
		switch {
		case serr != nil:
			return nil, serr
		case at != nil:
			return nil, errShredded
		case !create:
			return nil, err
		}
		row, err = s.createKeys(ctx, tx, tenant)
	}
	if err != nil {
		return nil, err
	}
	return s.openKeys(ctx, tenant, row)
}

func (s *Service) openKeys(ctx context.Context, tenant vaultcrux.TenantID, row *store.TenantKEK) (*tenantKeys, error) {
	kek, err := s.keys.KEK(ctx, tenant, row.Version, row.Wrapped)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "tenant key unavailable", slog.String("tenant", string(tenant)), slog.String("error", err.Error()))
		return nil, errNoKeys
	}
	ik, err := kek.Unwrap(row.IndexKey, indexKeyAAD(tenant))
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "tenant index key unavailable", slog.String("tenant", string(tenant)), slog.String("error", err.Error()))
		return nil, errNoKeys
	}
	return &tenantKeys{row: row, kek: kek, indexKey: ik}, nil
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
