package receipt

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
)

// The verification failure codes of the contract (product.md §6), plus
// CodeMalformed for input that is not a receipt at all. Some belong to
// checks made elsewhere (chains, log inclusion, checkpoints, lineage); they
// are defined here so that every verifier reports with one vocabulary.
const (
	CodeMalformed                   = "malformed"
	CodeReceiptMissing              = "receipt_missing"
	CodeHashMismatch                = "hash_mismatch"
	CodeSignatureMismatch           = "signature_mismatch"
	CodeChainBreak                  = "chain_break"
	CodeInclusionFailed             = "inclusion_failed"
	CodeCheckpointSignatureMismatch = "checkpoint_signature_mismatch"
	CodeKeyRevoked                  = "key_revoked"
	CodeUnsigned                    = "unsigned"
	CodeStaleLineage                = "stale_lineage"
)

// Failure is a verification result other than success. Code is one of the
// Code constants; Detail is a short explanation for people. Values taken
// from the receipt are quoted with %q, so Detail is safe to print.
type Failure struct {
	Code   string
	Detail string
}

func (f *Failure) Error() string { return f.Code + ": " + f.Detail }

func fail(code, format string, args ...any) *Failure {
	return &Failure{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// Key statuses. A retired key no longer signs but its signatures stand; a
// revoked key's signatures are untrusted whenever they claim to be made,
// because signedAt is not signed.
const (
	statusActive  = "active"
	statusRetired = "retired"
	statusRevoked = "revoked"
)

// KeyInfo describes one signing key version, as GET
// /v1/receipts/signing-keys lists it and a proofpack carries it.
type KeyInfo struct {
	KID       string `json:"kid"`
	PubB64    string `json:"pubB64"`
	Status    string `json:"status"` // active, retired or revoked
	CreatedAt string `json:"createdAt,omitempty"`
	RetiredAt string `json:"retiredAt,omitempty"`
	RevokedAt string `json:"revokedAt,omitempty"`
}

// KeySet is the set of signing keys a verifier trusts, by KID. An entry
// whose KID field differs from its map key is treated as absent. Trust is
// decided by Status alone; the times are for people, and a verifier cannot
// compare them with signedAt, which is not signed.
type KeySet map[string]KeyInfo

// Public returns the registered public key of kid. It fails with
// CodeSignatureMismatch when kid is unknown, its status is not one of
// active, retired or revoked, or its registered key is not a canonical
// base64 32-byte key; and with CodeKeyRevoked when the key is revoked.
func (ks KeySet) Public(kid string) (ed25519.PublicKey, error) {
	k, ok := ks[kid]
	if !ok || k.KID != kid {
		return nil, fail(CodeSignatureMismatch, "unknown key %q", kid)
	}
	switch k.Status {
	case statusActive, statusRetired:
	case statusRevoked:
		return nil, fail(CodeKeyRevoked, "key %q is revoked", kid)
	default:
		// Fail closed: a status this code does not know is not trust.
		return nil, fail(CodeSignatureMismatch, "key %q has unknown status %q", kid, k.Status)
	}
	pub, ok := decodeB64(k.PubB64, ed25519.PublicKeySize)
	if !ok {
		return nil, fail(CodeSignatureMismatch, "registered key %q is not a base64 Ed25519 public key", kid)
	}
	return ed25519.PublicKey(pub), nil
}

// Verify checks a receipt: its receiptHash against its content, then its
// signature. The first failure is returned as a *Failure:
//
//   - CodeReceiptMissing: d is nil;
//   - CodeHashMismatch: the recomputed hash differs from receiptHash;
//   - CodeUnsigned: the signature is null or absent;
//   - CodeKeyRevoked: keys lists the signing kid as revoked;
//   - CodeSignatureMismatch: the kid is not in keys, pubB64 is not the
//     registered key, sigB64 or pubB64 is not canonical base64 of the right
//     length, or the Ed25519 signature of the receiptHash does not verify.
//
// A non-nil empty KeySet trusts no key. With keys nil, the receipt's own
// pubB64 is used: that proves only that
// the receipt is consistent with a key it names itself, which anyone can
// make. Callers that pass nil must report the result as self-consistency,
// never as authenticity.
//
// For answer receipts the hash covers the CROWN canonical payload only, so
// receiptId, snapshotId, parentSnapId and the evidence fields other than
// sourceId, role and quoteHash are not protected by the signature; see the
// package documentation.
func Verify(d *Doc, keys KeySet) error {
	if d == nil {
		return fail(CodeReceiptMissing, "no receipt")
	}
	h, err := d.ComputeHash()
	if err != nil {
		return fail(CodeMalformed, "cannot compute the receipt hash")
	}
	claimed := d.ClaimedHash()
	if h != claimed {
		return fail(CodeHashMismatch, "receiptHash is %q, content hashes to %s", claimed, h)
	}
	sig := d.Signature()
	if sig == nil {
		return fail(CodeUnsigned, "receipt has no signature")
	}
	// The key set decides first, so that a revoked kid is reported as
	// revoked whatever else is wrong with the signature object.
	var registered ed25519.PublicKey
	if keys != nil {
		if registered, err = keys.Public(sig.KID); err != nil {
			return err
		}
	}
	pub, ok := decodeB64(sig.PubB64, ed25519.PublicKeySize)
	if !ok {
		return fail(CodeSignatureMismatch, "pubB64 is not a base64 Ed25519 public key")
	}
	if keys != nil && !bytes.Equal(pub, registered) {
		return fail(CodeSignatureMismatch, "pubB64 is not the registered key of %q", sig.KID)
	}
	raw, ok := decodeB64(sig.SigB64, ed25519.SignatureSize)
	if !ok {
		return fail(CodeSignatureMismatch, "sigB64 is not a base64 Ed25519 signature")
	}
	if !ed25519.Verify(ed25519.PublicKey(pub), []byte(claimed), raw) {
		return fail(CodeSignatureMismatch, "signature does not verify")
	}
	return nil
}
