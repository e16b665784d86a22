package evidence

import (
	"bytes"
	"context"
	"log/slog"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/envelope"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// Rotation is the outcome of RotateTenantKey.
type Rotation struct {
	KEKID       string `json:"kekId"`
	FromVersion int    `json:"fromVersion"`
	ToVersion   int    `json:"toVersion"`
	Rewrapped   int    `json:"rewrapped"`
	ReceiptID   string `json:"receiptId"`
}

// RotateTenantKey creates the next version of the tenant's KEK, re-wraps
// every data key (documents and unfinished ingest jobs) and the index key
// under it, and retires the old version, erasing its material: content
// is not re-encrypted. All of it commits with its receipt, or none.
func (s *Service) RotateTenantKey(ctx context.Context, actor vaultcrux.Principal, tenant vaultcrux.TenantID) (*Rotation, error) {
	var old *tenantKeys
	err := s.st.ForTenant(tenant).Tx(ctx, func(tx store.TenantTx) (err error) {
		old, err = s.keysFor(ctx, tx, tenant, true)
		return err
	})
	if err != nil {
		return nil, err
	}
	from, to := old.row.Version, old.row.Version+1
	stored, err := s.keys.NewKEK(ctx, tenant, to)
	if err != nil {
		return nil, err
	}
	next, err := s.keys.KEK(ctx, tenant, to, stored)
	if err != nil {
		return nil, err
	}
	wrappedIK, err := next.Wrap(old.indexKey, indexKeyAAD(tenant))
	if err != nil {
		return nil, err
	}
	kekID := envelope.KEKID(tenant)
	r, err := s.ledger.Event(tenant, KindKeyRotated, actor, "tenant_key:"+kekID, map[string]any{
		"kekId": kekID, "provider": s.keys.Name(), "fromVersion": from, "toVersion": to,
	})
	if err != nil {
		return nil, err
	}
	out := &Rotation{KEKID: kekID, FromVersion: from, ToVersion: to}
	issued, err := s.ledger.Commit(ctx, &ledger.Item{
		Tenant: tenant,
		Apply: func(tx store.TenantTx) error {
			cur, err := tx.ActiveTenantKEK()
			if err != nil {
				return err
			}
			if cur.Version != from {
				return vaultcrux.E(vaultcrux.Conflict, "the tenant key was rotated concurrently; retry")
			}
			now := s.ledger.Now()
			if err := tx.RetireTenantKEK(from, now); err != nil {
				return err
			}
			if err := tx.AddTenantKEK(&store.TenantKEK{
				Version: to, Provider: s.keys.Name(), Wrapped: stored, IndexKey: wrappedIK, State: "active", CreatedAt: now,
			}); err != nil {
				return err
			}
			aad := dekAAD(tenant)
			out.Rewrapped, err = tx.RewrapDEKs(from, to, func(w string) (string, error) {
				dek, err := old.kek.Unwrap(w, aad)
				if err != nil {
					return "", err
				}
				return next.Wrap(dek, aad)
			})
			return err
		},
		Receipts: []*receipt.Doc{r},
	})
	if err != nil {
		return nil, err
	}
	out.ReceiptID = issued[0].ID
	return out, nil
}

// Shred is the outcome of ShredTenant.
type Shred struct {
	KEKID      string `json:"kekId"`
	Destroyed  int    `json:"destroyedVersions"`
	ShreddedAt string `json:"shreddedAt"`
	ReceiptID  string `json:"receiptId"`
}

// scrubber is a store that can purge erased bytes from its files (SQLite:
// checkpoint the WAL; PostgreSQL: VACUUM).
type scrubber interface {
	Scrub(ctx context.Context) error
}

// ShredTenant crypto-shreds the tenant: every KEK version is destroyed
// and every wrapped data key erased, so the sealed content that remains
// can never be opened again; the signed erasure receipt commits with it.
// Receipts and metadata (titles, URLs, hashes) remain. It cannot be undone.
func (s *Service) ShredTenant(ctx context.Context, actor vaultcrux.Principal, tenant vaultcrux.TenantID) (*Shred, error) {
	var at bool
	err := s.st.ForTenant(tenant).Tx(ctx, func(tx store.TenantTx) error {
		t, err := tx.TenantShreddedAt()
		at = t != nil
		return err
	})
	if err != nil {
		return nil, err
	}
	if at {
		return nil, vaultcrux.E(vaultcrux.Conflict, "this tenant was already crypto-shredded")
	}
	kekID := envelope.KEKID(tenant)
	r, err := s.ledger.Event(tenant, KindShredded, actor, "tenant:"+string(tenant), map[string]any{
		"kekId": kekID, "provider": s.keys.Name(), "erasure": "crypto_shred",
	})
	if err != nil {
		return nil, err
	}
	out := &Shred{KEKID: kekID}
	now := s.ledger.Now()
	issued, err := s.ledger.Commit(ctx, &ledger.Item{
		Tenant: tenant,
		Apply: func(tx store.TenantTx) (err error) {
			out.Destroyed, err = tx.ShredTenantKeys(now)
			return err
		},
		Receipts: []*receipt.Doc{r},
	})
	if err != nil {
		return nil, err
	}
	s.dropIndex(tenant)
	if sc, ok := s.st.(scrubber); ok {
		if err := sc.Scrub(ctx); err != nil {
			// The keys are destroyed either way; the bytes leave the files
			// at the next checkpoint or vacuum.
			s.log.LogAttrs(ctx, slog.LevelWarn, "scrub after shred", slog.String("error", err.Error()))
		}
	}
	out.ShreddedAt, out.ReceiptID = vaultcrux.FormatTime(now), issued[0].ID
	return out, nil
}

// Stored idempotent responses of routes that return content (retrieve)
// are sealed like content: a replay record never holds plaintext. So are
// other records that must not hold plaintext (the arguments of a Shield
// approval). A record is "<wrapped DEK>\x00<sealed body>", bound by its
// AAD to the tenant and to its purpose.

func sealAAD(t vaultcrux.TenantID, purpose string) []byte { return envelope.AAD(purpose, string(t)) }

// SealReplay seals a response body for the idempotency store.
func (s *Service) SealReplay(ctx context.Context, tenant vaultcrux.TenantID, body []byte) ([]byte, error) {
	return s.Seal(ctx, tenant, "replay", body)
}

// OpenReplay opens what SealReplay made. After a rotation or a shred the
// old record no longer opens: the replay is refused, never served in the
// clear or re-executed.
func (s *Service) OpenReplay(ctx context.Context, tenant vaultcrux.TenantID, rec []byte) ([]byte, error) {
	body, err := s.Open(ctx, tenant, "replay", rec)
	if vaultcrux.ErrorKind(err) == vaultcrux.Conflict {
		return nil, vaultcrux.E(vaultcrux.Conflict, "the stored response to this idempotency key can no longer be opened (the tenant key was rotated); use a new key")
	}
	return body, err
}

// Seal seals body under a fresh DEK wrapped by the tenant's active KEK,
// for purpose (a short name, bound in the AAD: a record sealed for one
// purpose does not open for another).
func (s *Service) Seal(ctx context.Context, tenant vaultcrux.TenantID, purpose string, body []byte) ([]byte, error) {
	var keys *tenantKeys
	err := s.st.ForTenant(tenant).Tx(ctx, func(tx store.TenantTx) (err error) {
		keys, err = s.keysFor(ctx, tx, tenant, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	dek, err := envelope.NewKey(s.rnd())
	if err != nil {
		return nil, err
	}
	aad := sealAAD(tenant, purpose)
	wrapped, err := keys.kek.Wrap(dek, aad)
	if err != nil {
		return nil, err
	}
	sealed, err := envelope.Seal(dek, aad, body, s.rnd())
	if err != nil {
		return nil, err
	}
	return append(append([]byte(wrapped), 0), sealed...), nil
}

// Open opens what Seal made for purpose. A record wrapped under a KEK
// version that is gone (rotated, shredded) is Conflict.
func (s *Service) Open(ctx context.Context, tenant vaultcrux.TenantID, purpose string, rec []byte) ([]byte, error) {
	i := bytes.IndexByte(rec, 0)
	if i < 0 {
		return nil, vaultcrux.E(vaultcrux.Internal, "malformed sealed record")
	}
	var keys *tenantKeys
	err := s.st.ForTenant(tenant).Tx(ctx, func(tx store.TenantTx) (err error) {
		keys, err = s.keysFor(ctx, tx, tenant, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	aad := sealAAD(tenant, purpose)
	dek, err := keys.kek.Unwrap(string(rec[:i]), aad)
	if err != nil {
		return nil, vaultcrux.E(vaultcrux.Conflict, "the sealed record can no longer be opened (the tenant key was rotated)")
	}
	body, err := envelope.Open(dek, aad, rec[i+1:])
	if err != nil {
		return nil, vaultcrux.E(vaultcrux.Internal, "sealed record does not open")
	}
	return body, nil
}
