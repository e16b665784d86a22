package envelope

import (
	"context"
	"errors"
	"io"
	"strconv"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/keyring"
)

// Provider is key custody (contract §5): it creates tenants' KEK versions
// and wraps and unwraps data keys with them. The store keeps what
// NewKEK returns (for the local provider, the KEK sealed under the master
// key; for a remote one, nothing secret), and hands it back to KEK.
type Provider interface {
	// Name is "local" (or "transit").
	Name() string
	// NewKEK creates version of tenant's KEK and returns what the store
	// keeps for it.
	NewKEK(ctx context.Context, tenant vaultcrux.TenantID, version int) (stored string, err error)
	// KEK returns a handle on version of tenant's KEK, from what NewKEK
	// returned. An error means the key cannot be used: callers fail closed.
	KEK(ctx context.Context, tenant vaultcrux.TenantID, version int, stored string) (KEK, error)
	// Check reports whether the provider can serve (readiness).
	Check(ctx context.Context) error
}

// KEK wraps and unwraps data keys with one version of a tenant's KEK.
type KEK interface {
	ID() string
	Version() int
	Wrap(key, aad []byte) (string, error)
	Unwrap(wrapped string, aad []byte) ([]byte, error)
}

// KEKID is the key id of tenant's KEK, the same for every provider (the
// transit provider's key name).
func KEKID(tenant vaultcrux.TenantID) string { return "vaultcrux-tenant-" + string(tenant) }

// masterID names the local master key inside the KEKs it wraps.
const masterID = "vaultcrux-master"

// Local is the embedded key provider: a 32-byte master key, kept in a
// 0600 file (or rendered by a secrets agent), wraps each tenant's KEK;
// the wrapped KEK lives in the store.
type Local struct {
	master []byte
	rand   io.Reader
}

// NewLocal returns the local provider for master.
func NewLocal(master keyring.Secret, rand io.Reader) (*Local, error) {
	if master.Len() != KeySize {
		return nil, errors.New("envelope: the master key must be 32 bytes")
	}
	return &Local{master: master.Bytes(), rand: rand}, nil
}

// Name implements Provider.
func (*Local) Name() string { return "local" }

// Check implements Provider.
func (*Local) Check(context.Context) error { return nil }

func kekAAD(tenant vaultcrux.TenantID, version int) []byte {
	return AAD("kek", string(tenant), strconv.Itoa(version))
}

// NewKEK implements Provider.
func (l *Local) NewKEK(_ context.Context, tenant vaultcrux.TenantID, version int) (string, error) {
	kek, err := NewKey(l.rand)
	if err != nil {
		return "", err
	}
	return Wrap(l.master, masterID, 1, kek, kekAAD(tenant, version), l.rand)
}

// KEK implements Provider.
func (l *Local) KEK(_ context.Context, tenant vaultcrux.TenantID, version int, stored string) (KEK, error) {
	if stored == "" {
		return nil, errors.New("envelope: the tenant key has been destroyed")
	}
	kek, err := Unwrap(l.master, masterID, 1, stored, kekAAD(tenant, version))
	if err != nil {
		return nil, err
	}
	return &localKEK{id: KEKID(tenant), version: version, key: kek, rand: l.rand}, nil
}

type localKEK struct {
	id      string
	version int
	key     []byte
	rand    io.Reader
}

func (k *localKEK) ID() string   { return k.id }
func (k *localKEK) Version() int { return k.version }

func (k *localKEK) Wrap(key, aad []byte) (string, error) {
	return Wrap(k.key, k.id, k.version, key, aad, k.rand)
}

func (k *localKEK) Unwrap(wrapped string, aad []byte) ([]byte, error) {
	return Unwrap(k.key, k.id, k.version, wrapped, aad)
}
