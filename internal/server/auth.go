package server

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/apikey"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// authCache keeps API key records that the store returned, for at most
// ttl, so that an authenticated request does not cost a database read.
// It holds what the store holds (id, tenant, role, keyed hash, revocation)
// and never a key. Each request still verifies its secret against the
// cached hash. A revocation through this process invalidates the entry at
// once; one made elsewhere (CLI, another replica) is seen within ttl.
type authCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.RWMutex
	entries map[string]*authEntry

	usedMu   sync.Mutex
	lastUsed map[string]time.Time // waiting to be flushed
}

type authEntry struct {
	key     *vaultcrux.APIKey
	fetched time.Time
	touched atomic.Int64 // unix ms of the last use recorded for flushing
}

// touchEvery coalesces last_used_at writes: a key used continuously is
// written at most this often.
const touchEvery = 30 * time.Second

func newAuthCache(ttl time.Duration, now func() time.Time) *authCache {
	return &authCache{ttl: ttl, now: now, entries: map[string]*authEntry{}, lastUsed: map[string]time.Time{}}
}

func (c *authCache) get(id string, now time.Time) *authEntry {
	c.mu.RLock()
	e := c.entries[id]
	c.mu.RUnlock()
	if e == nil || now.Sub(e.fetched) >= c.ttl || now.Before(e.fetched) {
		return nil
	}
	return e
}

func (c *authCache) put(k *vaultcrux.APIKey, now time.Time) *authEntry {
	e := &authEntry{key: k, fetched: now}
	if c.ttl > 0 {
		c.mu.Lock()
		if old := c.entries[k.ID]; old != nil {
			e.touched.Store(old.touched.Load())
		}
		c.entries[k.ID] = e
		c.mu.Unlock()
	}
	return e
}

func (c *authCache) invalidate(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

// used notes that e's key was used at now.
func (c *authCache) used(e *authEntry, now time.Time) {
	ms := now.UnixMilli()
	last := e.touched.Load()
	if ms-last < touchEvery.Milliseconds() || !e.touched.CompareAndSwap(last, ms) {
		return
	}
	c.usedMu.Lock()
	c.lastUsed[e.key.ID] = now
	c.usedMu.Unlock()
}

func (c *authCache) takeLastUsed() map[string]time.Time {
	c.usedMu.Lock()
	defer c.usedMu.Unlock()
	if len(c.lastUsed) == 0 {
		return nil
	}
	out := c.lastUsed
	c.lastUsed = map[string]time.Time{}
	return out
}

func (c *authCache) restoreLastUsed(m map[string]time.Time) {
	c.usedMu.Lock()
	defer c.usedMu.Unlock()
	for id, t := range m {
		if cur, ok := c.lastUsed[id]; !ok || cur.Before(t) {
			c.lastUsed[id] = t
		}
	}
}

// dummyHash is compared against when a key id is unknown, so that an
// unknown id and a wrong secret cost the same.
var dummyHash = make([]byte, 32)

var (
	errMissingKey = vaultcrux.E(vaultcrux.Unauthenticated, "missing x-api-key header")
	errBadKey     = vaultcrux.E(vaultcrux.Unauthenticated, "invalid API key")
	errRevoked    = vaultcrux.E(vaultcrux.Unauthenticated, "API key revoked")
	errNoTenant   = vaultcrux.E(vaultcrux.Unauthenticated, "missing x-tenant-id header")
	errBadAgent   = vaultcrux.E(vaultcrux.Invalid, "x-agent-id must be 1-128 characters of A-Z a-z 0-9 . _ : -")
)

// authenticate resolves the API key of r to a principal. With
// requireTenant, x-tenant-id must be present; when present it must name
// the key's tenant (403 tenant_mismatch). A store failure is an error,
// never a pass.
func (s *Server) authenticate(r *http.Request, requireTenant bool) (*vaultcrux.Principal, error) {
	raw := r.Header.Get("x-api-key")
	if raw == "" {
		return nil, errMissingKey
	}
	tok, err := apikey.Parse(raw)
	if err != nil {
		return nil, errBadKey
	}
	now := s.now()
	e := s.auth.get(tok.ID, now)
	if e == nil {
		var k *vaultcrux.APIKey
		err := s.store.Tx(r.Context(), func(tx store.SystemTx) (err error) {
			k, err = tx.LookupAPIKey(tok.ID)
			return err
		})
		switch {
		case vaultcrux.ErrorKind(err) == vaultcrux.NotFound:
			s.hasher.Verify(tok, dummyHash)
			return nil, errBadKey
		case err != nil:
			s.metrics.storeErrors.WithLabelValues("lookup_api_key").Inc()
			return nil, err
		}
		e = s.auth.put(k, now)
	}
	if !s.hasher.Verify(tok, e.key.Hash) {
		return nil, errBadKey
	}
	if e.key.Revoked() {
		return nil, errRevoked
	}
	st := stateFrom(r.Context())
	p := &vaultcrux.Principal{Tenant: e.key.Tenant, ID: "key:" + e.key.ID, KeyID: e.key.ID, Role: e.key.Role}
	switch hdr := r.Header.Get("x-tenant-id"); {
	case hdr == "" && requireTenant:
		return nil, errNoTenant
	case hdr != "" && hdr != string(e.key.Tenant):
		// Record the attempt under the credential's identity; the header
		// value is attacker-chosen and is not logged.
		st.principal = p
		s.logMismatch(&request{ctx: r.Context(), state: st, principal: p}, "header")
		return nil, errTenantMismatch
	}
	if agent := r.Header.Get("x-agent-id"); agent != "" {
		if !validToken(agent, 128) {
			return nil, errBadAgent
		}
		p.AgentID = agent
	}
	s.auth.used(e, now)
	return p, nil
}
