package receipt

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/vaultcrux/vaultcrux"
)

// Signature is the signature object of a receipt. Only SigB64 is
// cryptographic: it is the Ed25519 signature of the receiptHash string. KID,
// PubB64 and SignedAt are claims beside it that nothing signs, so a verifier
// trusts a key through its own key set (KID → registered key, status), not
// through PubB64, and never decides trust by SignedAt.
type Signature struct {
	SigB64   string `json:"sigB64"`
	KID      string `json:"kid"`
	PubB64   string `json:"pubB64"`
	SignedAt string `json:"signedAt"`
}

// Signer signs with one Ed25519 key version. It is implemented by the
// keyring, which alone holds private keys; this package only sees public
// keys and signatures.
type Signer interface {
	// KID names the key version, "vaultcrux-signing:v<n>".
	KID() string
	// Public returns the 32-byte Ed25519 public key.
	Public() ed25519.PublicKey
	// Sign returns the 64-byte Ed25519 signature of msg (pure Ed25519, not
	// prehashed).
	Sign(msg []byte) ([]byte, error)
}

// SignHash signs the UTF-8 bytes of receiptHash with s and returns the
// signature object, signedAt being now in vaultcrux.TimeFormat.
//
// receiptHash must be a well-formed receipt hash ("blake3:" and 64
// lowercase hex digits): a signer attests a hash, never arbitrary text.
// Unlike the COSE form, the signature is not verified again here: that
// would halve the receipt rate, and the in-process signer is Go's
// crypto/ed25519. A Signer whose key lives elsewhere (an HSM, a Transit
// engine) must verify its own answers against its public key, so that a
// faulty device neither yields receipts that never verify nor releases a
// faulted deterministic signature, which can leak the key. A receipt with
// a bad signature that got out anyway fails Verify (signature_mismatch).
func SignHash(receiptHash string, s Signer, now time.Time) (sig *Signature, err error) {
	defer vaultcrux.Wrap(&err, "receipt.SignHash")
	if !validHash(receiptHash) {
		return nil, vaultcrux.E(vaultcrux.Invalid, "receipt hash is not blake3:<64 lowercase hex>")
	}
	raw, err := signShaped(s, []byte(receiptHash), false)
	if err != nil {
		return nil, err
	}
	return &Signature{
		SigB64:   base64.StdEncoding.EncodeToString(raw),
		KID:      s.KID(),
		PubB64:   base64.StdEncoding.EncodeToString(s.Public()),
		SignedAt: vaultcrux.FormatTime(now),
	}, nil
}

// signChecked signs msg with s and checks the result against s.Public.
func signChecked(s Signer, msg []byte) ([]byte, error) { return signShaped(s, msg, true) }

// signShaped signs msg with s, checks the shape of the result and, when
// verify is set, the signature itself.
func signShaped(s Signer, msg []byte, verify bool) ([]byte, error) {
	if s == nil {
		return nil, errors.New("no signer")
	}
	if s.KID() == "" {
		return nil, errors.New("signer has an empty key id")
	}
	pub := s.Public()
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("signer public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	sig, err := s.Sign(msg)
	if err != nil {
		return nil, fmt.Errorf("signing with %s: %w", s.KID(), err)
	}
	if len(sig) != ed25519.SignatureSize || verify && !ed25519.Verify(pub, msg, sig) {
		return nil, fmt.Errorf("signer %s produced a signature that does not verify under its public key", s.KID())
	}
	return sig, nil
}

// validHash reports whether h is "blake3:" followed by 64 lowercase hex
// digits, the only form Hash produces.
func validHash(h string) bool {
	const prefix = "blake3:"
	if len(h) != len(prefix)+64 || h[:len(prefix)] != prefix {
		return false
	}
	for i := len(prefix); i < len(h); i++ {
		if c := h[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// decodeB64 decodes the canonical standard base64 (padded) encoding of
// exactly n bytes. encoding/base64 skips '\r' and '\n' even in strict mode,
// so the text is also re-encoded and compared: one spelling per value.
func decodeB64(s string, n int) ([]byte, bool) {
	if len(s) != base64.StdEncoding.EncodedLen(n) {
		return nil, false
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != n || base64.StdEncoding.EncodeToString(b) != s {
		return nil, false
	}
	return b, true
}
