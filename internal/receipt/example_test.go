package receipt_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/vaultcrux/vaultcrux/internal/receipt"
)

// seedSigner stands in for the keyring's signer.
type seedSigner struct{ priv ed25519.PrivateKey }

func (s seedSigner) KID() string                     { return "vaultcrux-signing:v3" }
func (s seedSigner) Public() ed25519.PublicKey       { return s.priv.Public().(ed25519.PublicKey) }
func (s seedSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.priv, msg), nil }

// A receipt is built unsigned, signed over its receiptHash, and verified
// against the set of keys the verifier trusts.
func Example() {
	signer := seedSigner{ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))}
	at := time.Date(2025, 5, 4, 3, 2, 1, 0, time.UTC)

	d, err := receipt.NewEvent(&receipt.Event{
		ReceiptID:  "rcpt_1",
		Kind:       "key.rotated",
		TenantID:   "ten_acme",
		Actor:      "user:alice",
		Subject:    "key:signing",
		Details:    map[string]any{"from": "v2", "to": "v3"},
		OccurredAt: at,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(receipt.Verify(d, nil))

	d, err = receipt.Sign(d, signer, at)
	if err != nil {
		panic(err)
	}
	keys := receipt.KeySet{"vaultcrux-signing:v3": {
		KID:    "vaultcrux-signing:v3",
		PubB64: base64.StdEncoding.EncodeToString(signer.Public()),
		Status: "active",
	}}
	fmt.Println(receipt.Verify(d, keys))

	keys["vaultcrux-signing:v3"] = receipt.KeyInfo{KID: "vaultcrux-signing:v3", PubB64: keys["vaultcrux-signing:v3"].PubB64, Status: "revoked"}
	fmt.Println(receipt.Verify(d, keys))
	// Output:
	// unsigned: receipt has no signature
	// <nil>
	// key_revoked: key "vaultcrux-signing:v3" is revoked
}
