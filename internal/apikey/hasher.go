package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"
	"sync"

	"github.com/vaultcrux/vaultcrux/internal/keyring"
)

// domain names the hash construction, version 1; see the package
// documentation.
const domain = "vaultcrux/apikey/v1"

// Hasher computes and verifies the stored hashes of keys under one pepper.
// It is safe for concurrent use.
type Hasher struct {
	// Keying HMAC costs two SHA-256 blocks and several allocations;
	// pooled states, keyed once and Reset per use, make a verification
	// allocation-free.
	pool sync.Pool // of *macState
}

type macState struct {
	mac hash.Hash
	msg []byte
	sum [sha256.Size]byte
}

// NewHasher returns a Hasher keyed with pepper, which must be at least
// keyring.MinSecretLen bytes.
func NewHasher(pepper keyring.Secret) (*Hasher, error) {
	if pepper.Len() < keyring.MinSecretLen {
		return nil, fmt.Errorf("apikey.NewHasher: pepper is %d bytes, want at least %d", pepper.Len(), keyring.MinSecretLen)
	}
	key := pepper.Bytes()
	h := new(Hasher)
	h.pool.New = func() any {
		return &macState{
			mac: hmac.New(sha256.New, key),
			msg: make([]byte, 0, len(domain)+1+idLen+1+secretLen),
		}
	}
	return h, nil
}

// Hash returns the hash of t to store with its record.
func (h *Hasher) Hash(t Token) []byte {
	st := h.pool.Get().(*macState)
	out := append([]byte(nil), st.compute(t)...)
	h.pool.Put(st)
	return out
}

// Verify reports whether hash is the stored hash of t, comparing in constant
// time. A Token that is not a well-formed key (the zero Token, say) verifies
// against nothing.
func (h *Hasher) Verify(t Token, hash []byte) bool {
	if !t.valid() || len(hash) != sha256.Size {
		return false
	}
	st := h.pool.Get().(*macState)
	ok := hmac.Equal(st.compute(t), hash)
	h.pool.Put(st)
	return ok
}

// HashInvite returns the stored hash of an invite token (see invite.go),
// or nil for the zero InviteToken.
func (h *Hasher) HashInvite(t InviteToken) []byte {
	if !t.valid() {
		return nil
	}
	st := h.pool.Get().(*macState)
	st.msg = append(st.msg[:0], inviteDomain...)
	st.msg = append(st.msg, 0)
	st.msg = append(st.msg, t.text...)
	st.mac.Reset()
	st.mac.Write(st.msg)
	clear(st.msg)
	out := st.mac.Sum(nil)
	h.pool.Put(st)
	return out
}

// compute returns the MAC of t in st.sum.
func (st *macState) compute(t Token) []byte {
	st.msg = append(st.msg[:0], domain...)
	st.msg = append(st.msg, 0)
	st.msg = append(st.msg, t.ID...)
	st.msg = append(st.msg, 0)
	st.msg = append(st.msg, t.secret...)
	st.mac.Reset()
	st.mac.Write(st.msg)
	clear(st.msg) // the buffer outlives the call in the pool; the secret must not
	return st.mac.Sum(st.sum[:0])
}
