package server

import (
	"context"
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

// invalidateSeat drops the entries of a seat's keys, after the seat's role
// changed or the seat was revoked, so that this process sees the change at
// once (others within the TTL).
func (c *authCache) invalidateSeat(seatID string) {
	c.mu.Lock()
	for id, e := range c.entries {
		if e.key.SeatID == seatID {
			delete(c.entries, id)
		}
	}
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

// authenticateRequest authenticates a request to a role route: by its
// x-api-key header when it has one, else by its vc_session cookie. An
// address whose failure budget is spent is refused before any check.
func (s *Server) authenticateRequest(req *request) (*vaultcrux.Principal, error) {
	r := req.http
	if wait := s.limits.blocked(req.state.ip, s.now()); wait > 0 {
		return nil, s.rateLimited(wait, "address")
	}
	if r.Header.Get("x-api-key") == "" {
		if cookies := r.CookiesNamed(sessionCookieName); len(cookies) > 0 {
			return s.authenticateCookie(req, cookies)
		}
	}
	p, err := s.authenticate(r, true)
	if err == errBadKey {
		return nil, s.authFailed(req, claimedTenant(r), "api_key", err)
	}
	return p, err
}

// authFailed records a failed attempt with the limiter and returns err,
// or the 429 that replaces it once the address's or the tenant's budget
// is spent.
func (s *Server) authFailed(req *request, tenant vaultcrux.TenantID, credential string, err error) error {
	s.metrics.authFailures.WithLabelValues(credential).Inc()
	if wait, scope := s.limits.failed(req.state.ip, tenant, s.now()); wait > 0 {
		return s.rateLimited(wait, scope)
	}
	return err
}

// claimedTenant is the tenant a request's x-tenant-id names, if it is a
// well-formed id: what a failed attempt is counted against.
func claimedTenant(r *http.Request) vaultcrux.TenantID {
	if h := r.Header.Get("x-tenant-id"); vaultcrux.ValidTenantID(h) {
		return vaultcrux.TenantID(h)
	}
	return ""
}

// verifyKey resolves a presented key to its record: parse, cached or
// stored record, constant-time verification, revocation. Every malformed,
// unknown or wrong key is errBadKey. A store failure is an error, never a
// pass.
func (s *Server) verifyKey(ctx context.Context, raw string, now time.Time) (*authEntry, error) {
	tok, err := apikey.Parse(raw)
	if err != nil {
		return nil, errBadKey
	}
	e := s.auth.get(tok.ID, now)
	if e == nil {
		var k *vaultcrux.APIKey
		err := s.store.Tx(ctx, func(tx store.SystemTx) (err error) {
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
	return e, nil
}

// keyPrincipal is the principal of an API key: a seat's key acts as its
// seat, with the role the store keeps in step with the seat's.
func keyPrincipal(k *vaultcrux.APIKey) *vaultcrux.Principal {
	p := &vaultcrux.Principal{Tenant: k.Tenant, ID: "key:" + k.ID, KeyID: k.ID, SeatID: k.SeatID, Role: k.Role}
	if k.SeatID != "" {
		p.ID = "seat:" + k.SeatID
	}
	return p
}

// authenticate resolves the API key of r to a principal. With
// requireTenant, x-tenant-id must be present; when present it must name
// the key's tenant (403 tenant_mismatch).
func (s *Server) authenticate(r *http.Request, requireTenant bool) (*vaultcrux.Principal, error) {
	raw := r.Header.Get("x-api-key")
	if raw == "" {
		return nil, errMissingKey
	}
	now := s.now()
	e, err := s.verifyKey(r.Context(), raw, now)
	if err != nil {
		return nil, err
	}
	st := stateFrom(r.Context())
	p := keyPrincipal(e.key)
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
	if err := setAgent(r, p); err != nil {
		return nil, err
	}
	s.auth.used(e, now)
	return p, nil
}

// setAgent records the optional x-agent-id of r in p.
func setAgent(r *http.Request, p *vaultcrux.Principal) error {
	if agent := r.Header.Get("x-agent-id"); agent != "" {
		if !validToken(agent, 128) {
			return errBadAgent
		}
		p.AgentID = agent
	}
	return nil
}
