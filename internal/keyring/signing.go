package keyring

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/vaultcrux/vaultcrux"
)

// SigningKeyPrefix is the name part of every receipt signing key id:
// "vaultcrux-signing:v<n>".
const SigningKeyPrefix = "vaultcrux-signing"

// SigningKID returns the key id of signing key version n.
func SigningKID(version int) string { return fmt.Sprintf("%s:v%d", SigningKeyPrefix, version) }

// SigningKey is an Ed25519 receipt signing key of a known version. It is
// safe for concurrent use. Its private half never leaves it: it signs, and
// it shows only its key id and public key.
type SigningKey struct {
	version int
	kid     string
	pub     ed25519.PublicKey
	priv    ed25519.PrivateKey
}

// NewSigningKey makes the signing key of version from seed, which must be
// exactly ed25519.SeedSize (32) bytes.
func NewSigningKey(seed Secret, version int) (*SigningKey, error) {
	if seed.Len() != ed25519.SeedSize {
		return nil, &vaultcrux.Error{Op: "keyring.NewSigningKey", Err: fmt.Errorf("signing key seed is %d bytes, want %d", seed.Len(), ed25519.SeedSize)}
	}
	if version < 1 {
		return nil, &vaultcrux.Error{Op: "keyring.NewSigningKey", Err: fmt.Errorf("signing key version %d < 1", version)}
	}
	priv := ed25519.NewKeyFromSeed(seed.Bytes())
	return &SigningKey{
		version: version,
		kid:     SigningKID(version),
		pub:     priv.Public().(ed25519.PublicKey),
		priv:    priv,
	}, nil
}

// SigningPublicKey returns the public key of seed, so that a key can be
// looked up in the registry before its version is known.
func SigningPublicKey(seed Secret) (ed25519.PublicKey, error) {
	if seed.Len() != ed25519.SeedSize {
		return nil, &vaultcrux.Error{Op: "keyring.SigningPublicKey", Err: fmt.Errorf("signing key seed is %d bytes, want %d", seed.Len(), ed25519.SeedSize)}
	}
	return ed25519.NewKeyFromSeed(seed.Bytes()).Public().(ed25519.PublicKey), nil
}

// Version returns the key's version.
func (k *SigningKey) Version() int { return k.version }

// KID returns "vaultcrux-signing:v<n>".
func (k *SigningKey) KID() string { return k.kid }

// Public returns a copy of the public key.
func (k *SigningKey) Public() ed25519.PublicKey { return append(ed25519.PublicKey(nil), k.pub...) }

// Sign signs msg with Ed25519. It never fails; the error is there for
// signers whose key lives elsewhere.
func (k *SigningKey) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }

// String shows the key id only.
func (k *SigningKey) String() string { return k.kid }

// GoString shows the key id only, for %#v.
func (k *SigningKey) GoString() string { return "keyring.SigningKey(" + k.kid + ")" }

// LoadOrCreateSigningSeed reads the signing key seed in the file at path
// (the secret file format of the package documentation), creating it with
// 32 random bytes when it does not exist. The seed must be exactly 32
// bytes.
func LoadOrCreateSigningSeed(path string, rand io.Reader) (s Secret, created bool, err error) {
	defer vaultcrux.Wrap(&err, "keyring.LoadOrCreateSigningSeed")
	s, created, err = LoadOrCreateSecret(path, ed25519.SeedSize, rand)
	if err != nil {
		return Secret{}, false, err
	}
	if s.Len() != ed25519.SeedSize {
		return Secret{}, false, fmt.Errorf("%s: signing key seed is %d bytes, want %d", path, s.Len(), ed25519.SeedSize)
	}
	return s, created, nil
}

// ReadSigningSeed reads a signing key seed from a file that a secrets
// agent renders (VAULTCRUX_SIGNING_KEY_FILE). It creates nothing.
func ReadSigningSeed(path string) (s Secret, err error) {
	defer vaultcrux.Wrap(&err, "keyring.ReadSigningSeed")
	s, err = readSecretFile(path)
	if err != nil {
		return Secret{}, err
	}
	if s.Len() != ed25519.SeedSize {
		return Secret{}, fmt.Errorf("%s: signing key seed is %d bytes, want %d", path, s.Len(), ed25519.SeedSize)
	}
	return s, nil
}

// ReplaceSigningSeed writes a new random seed to path, replacing the file
// there, and returns it. The new file is complete and synced before it
// takes the old one's place (rename), so a crash leaves either key, never
// half of one. The old seed is gone afterwards: a retired key signs
// nothing again.
func ReplaceSigningSeed(path string, rand io.Reader) (s Secret, err error) {
	defer vaultcrux.Wrap(&err, "keyring.ReplaceSigningSeed")
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return Secret{}, err
	}
	content := encodeSecretFile(seed)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Secret{}, err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return Secret{}, err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	_, err = tmp.Write(content)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Secret{}, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return Secret{}, err
	}
	if err := syncDir(dir); err != nil {
		return Secret{}, err
	}
	return NewSecret(seed), nil
}

// ErrSignerUnavailable is the error of a signer that has no usable key: the
// key was revoked, retired by another process, or could not be loaded.
// Receipts made meanwhile are stored pending_signature.
var ErrSignerUnavailable = errors.New("receipt signer unavailable")
