package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/keyring"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// KeySource gives the signing key to sign with now.
type KeySource interface {
	// Current returns the active signing key, or an error wrapping
	// keyring.ErrSignerUnavailable when there is none to use.
	Current() (*keyring.SigningKey, error)
}

// Keys is the receipt signing key of this process, kept in step with the
// registry of signing key versions in the store, which every process
// sharing the store reads: a rotation or revocation made by another
// process (the CLI, another replica) takes effect here at the next Refresh.
//
// Keys signs only with a key that the registry lists as active. When the
// seed file holds another key, or the active key is revoked, it is
// unavailable and receipts wait as pending_signature.
type Keys struct {
	st      store.Store
	path    string
	managed bool // the seed file is rendered by a secrets agent: never written here
	now     func() time.Time
	rand    io.Reader
	log     *slog.Logger

	mu     sync.Mutex
	cur    *keyring.SigningKey
	reason string // why cur is nil
}

// Rotation describes a change of the active signing key.
type Rotation struct {
	From *store.SigningKey // nil for the first key
	To   *store.SigningKey
}

// KeysConfig configures OpenKeys.
type KeysConfig struct {
	Store store.Store
	// SeedPath is the signing key seed file. Managed means it comes from
	// VAULTCRUX_SIGNING_KEY_FILE: it must exist and is never replaced.
	SeedPath string
	Managed  bool
	Now      func() time.Time
	Rand     io.Reader
	Logger   *slog.Logger
}

// OpenKeys loads the seed (creating it unless it is managed), registers its
// public key when the registry does not know it yet — which makes it the
// active version and retires the previous one — and returns the keys and
// that rotation, if one happened.
func OpenKeys(ctx context.Context, cfg KeysConfig) (_ *Keys, _ *Rotation, err error) {
	defer vaultcrux.Wrap(&err, "ledger.OpenKeys")
	k := &Keys{st: cfg.Store, path: cfg.SeedPath, managed: cfg.Managed, now: cfg.Now, rand: cfg.Rand, log: cfg.Logger}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	seed, err := k.readSeed()
	if err != nil {
		return nil, nil, err
	}
	rot, err := k.register(ctx, seed)
	if err != nil {
		return nil, nil, err
	}
	return k, rot, nil
}

func (k *Keys) readSeed() (keyring.Secret, error) {
	if k.managed {
		return keyring.ReadSigningSeed(k.path)
	}
	s, _, err := keyring.LoadOrCreateSigningSeed(k.path, k.rand)
	return s, err
}

// register records seed's public key and adopts the key if it is active.
func (k *Keys) register(ctx context.Context, seed keyring.Secret) (*Rotation, error) {
	pub, err := keyring.SigningPublicKey(seed)
	if err != nil {
		return nil, err
	}
	var rec *store.SigningKey
	var rot *Rotation
	err = k.st.Tx(ctx, func(tx store.SystemTx) error {
		before, err := activeKey(tx)
		if err != nil {
			return err
		}
		var created bool
		rec, created, err = tx.RegisterSigningKey(pub, k.now())
		if err != nil {
			return err
		}
		if created {
			rot = &Rotation{From: before, To: rec}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	k.adopt(seed, rec)
	return rot, nil
}

func activeKey(tx store.SystemTx) (*store.SigningKey, error) {
	keys, err := tx.ListSigningKeys()
	if err != nil {
		return nil, err
	}
	for _, sk := range keys {
		if sk.Status == "active" {
			return sk, nil
		}
	}
	return nil, nil
}

// adopt makes the key of seed current if rec, its registry row, is active.
func (k *Keys) adopt(seed keyring.Secret, rec *store.SigningKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if rec.Status != "active" {
		k.setUnavailable(fmt.Sprintf("the signing key in the seed file is %s %s", rec.KID, rec.Status))
		return
	}
	key, err := keyring.NewSigningKey(seed, rec.Version)
	if err != nil {
		k.setUnavailable(err.Error())
		return
	}
	if k.cur == nil || k.cur.Version() != key.Version() {
		k.log.Info("receipt signing key in use", "kid", key.KID())
	}
	k.cur, k.reason = key, ""
}

// unavailable stops signing, for reason.
func (k *Keys) unavailable(reason string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.setUnavailable(reason)
}

// setUnavailable is unavailable with k.mu held.
func (k *Keys) setUnavailable(reason string) {
	if k.cur != nil || k.reason != reason {
		k.log.Error("receipt signer unavailable: receipts are stored pending_signature", "reason", reason)
	}
	k.cur, k.reason = nil, reason
}

// Current returns the key to sign with.
func (k *Keys) Current() (*keyring.SigningKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cur == nil {
		return nil, fmt.Errorf("%w: %s", keyring.ErrSignerUnavailable, k.reason)
	}
	return k.cur, nil
}

// Refresh re-reads the registry. When the active version changed it
// re-reads the seed file, and uses it only if it holds that version's key;
// when the key in use was retired or revoked it stops signing.
func (k *Keys) Refresh(ctx context.Context) (err error) {
	defer vaultcrux.Wrap(&err, "ledger.Keys.Refresh")
	var active *store.SigningKey
	err = k.st.Tx(ctx, func(tx store.SystemTx) error {
		active, err = activeKey(tx)
		return err
	})
	if err != nil {
		return err
	}
	k.mu.Lock()
	cur := k.cur
	k.mu.Unlock()
	switch {
	case active == nil:
		k.unavailable("no signing key is active (revoked?); rotate with: vaultcrux keys rotate-signing")
		return nil
	case cur != nil && cur.Version() == active.Version && bytes.Equal(cur.Public(), active.Public):
		return nil
	}
	seed, err := k.readSeed()
	if err != nil {
		k.unavailable("reading the signing key seed: " + err.Error())
		return nil
	}
	pub, err := keyring.SigningPublicKey(seed)
	if err != nil {
		return err
	}
	if !bytes.Equal(pub, active.Public) {
		k.unavailable(fmt.Sprintf("the active signing key is %s but the seed file holds another key", active.KID))
		return nil
	}
	k.adopt(seed, active)
	return nil
}

// Rotate replaces the seed file with a new key and registers it as the
// next version, retiring the current one. A managed seed file is refused:
// its secrets agent renders the new key, and the next start registers it.
func (k *Keys) Rotate(ctx context.Context) (_ *Rotation, err error) {
	defer vaultcrux.Wrap(&err, "ledger.Keys.Rotate")
	if k.managed {
		return nil, vaultcrux.E(vaultcrux.Invalid, "the signing key comes from VAULTCRUX_SIGNING_KEY_FILE: have your secrets agent render a new key there and restart")
	}
	seed, err := keyring.ReplaceSigningSeed(k.path, k.rand)
	if err != nil {
		return nil, err
	}
	rot, err := k.register(ctx, seed)
	if err != nil {
		return nil, err
	}
	if rot == nil {
		return nil, errors.New("the new signing key was already registered")
	}
	return rot, nil
}

// List returns every registered signing key version.
func List(ctx context.Context, st store.Store) (keys []*store.SigningKey, err error) {
	err = st.Tx(ctx, func(tx store.SystemTx) error {
		keys, err = tx.ListSigningKeys()
		return err
	})
	return keys, err
}

// Event kinds of signing key changes. They are recorded in every tenant's
// log, so that each tenant's auditors see the keys its receipts rely on.
const (
	KindSigningKeyRotated = "signing_key.rotated"
	KindSigningKeyRevoked = "signing_key.revoked"
)

// RecordKeyChange issues an event receipt of kind in every tenant's log
// describing a signing key change: to is the key now active (or revoked),
// from the one it replaced, if any.
func (l *Ledger) RecordKeyChange(ctx context.Context, actor vaultcrux.Principal, kind string, from, to *store.SigningKey) (err error) {
	defer vaultcrux.Wrap(&err, "ledger.RecordKeyChange")
	var tenants []*vaultcrux.Tenant
	err = l.st.Tx(ctx, func(tx store.SystemTx) error {
		tenants, err = tx.ListTenants()
		return err
	})
	if err != nil {
		return err
	}
	details := map[string]any{"kid": to.KID, "pubB64": KeyInfo(to).PubB64, "status": to.Status}
	if from != nil {
		details["previousKid"] = from.KID
		details["previousPubB64"] = KeyInfo(from).PubB64
	}
	var errs []error
	for _, t := range tenants {
		d, err := l.Event(t.ID, kind, actor, "signing-key:"+to.KID, details)
		if err != nil {
			return err
		}
		if _, err := l.Commit(ctx, &Item{Tenant: t.ID, Receipts: []*receipt.Doc{d}}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RevokeSigningKey marks version revoked in the registry. Signatures by a
// revoked key fail verification (key_revoked) whatever their date.
func RevokeSigningKey(ctx context.Context, st store.Store, version int, now time.Time) (k *store.SigningKey, err error) {
	err = st.Tx(ctx, func(tx store.SystemTx) error {
		k, err = tx.RevokeSigningKey(version, now)
		return err
	})
	return k, err
}
