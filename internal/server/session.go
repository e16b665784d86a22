package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/ident"
	"github.com/vaultcrux/vaultcrux/internal/keyring"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// Frontdoor session cookies (contract §3).
//
// # Cookie value, version 1
//
//	v1.<tenant>.<sessionId>.<mac>
//	mac = base64url(HMAC-SHA-256(session secret,
//	        "vc_session/v1" || 0x00 || tenant || 0x00 || sessionId))  (unpadded)
//
// The tenant travels in the value because sessions, like all tenant data,
// are reached only through a tenant-scoped handle (and, in PostgreSQL,
// row-level security): a session cannot be looked up by id alone. The MAC
// binds the id to its tenant, so a cookie is good for one tenant's row
// only, and is compared in constant time. None of tenant ids, ULIDs and
// base64url contain '.'.
//
// A cookie authenticates when its MAC verifies and its row exists, is not
// revoked, is before its absolute expiry and was used within its idle
// timeout, its API key is not revoked and, for a seat's key, its seat is
// not revoked. It acts with the key's current role. A session found
// expired is revoked on the spot with one "expired" session event.
const (
	sessionCookieName = "vc_session"
	cookieVersion     = "v1"
	cookieDomain      = "vc_session/v1"
	// sessionTouchEvery coalesces last_seen_at writes: the idle timeout is
	// measured with this granularity.
	sessionTouchEvery = 30 * time.Second
)

var (
	errBadSession     = vaultcrux.E(vaultcrux.Unauthenticated, "invalid session cookie; sign in again")
	errSessionEnded   = vaultcrux.E(vaultcrux.Unauthenticated, "session ended; sign in again")
	errSessionExpired = vaultcrux.E(vaultcrux.Unauthenticated, "session expired; sign in again")
	errCrossOrigin    = vaultcrux.E(vaultcrux.Forbidden, "cross-origin request refused: a request authenticated by the session cookie must come from this site's own pages; API clients send x-api-key")
)

// cookieSigner computes cookie MACs. The secret lives only inside the
// pooled HMAC states, never in a field that could be printed.
type cookieSigner struct {
	pool sync.Pool // of hash.Hash keyed with the secret
}

func newCookieSigner(secret keyring.Secret) (*cookieSigner, error) {
	if secret.Len() < keyring.MinSecretLen {
		return nil, fmt.Errorf("session secret is %d bytes, want at least %d", secret.Len(), keyring.MinSecretLen)
	}
	key := secret.Bytes()
	c := &cookieSigner{}
	c.pool.New = func() any { return hmac.New(sha256.New, key) }
	return c, nil
}

func (c *cookieSigner) mac(tenant vaultcrux.TenantID, sid string) []byte {
	m := c.pool.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(cookieDomain + "\x00" + string(tenant) + "\x00" + sid))
	sum := m.Sum(nil)
	c.pool.Put(m)
	return sum
}

// value is the cookie value of session sid of tenant.
func (c *cookieSigner) value(tenant vaultcrux.TenantID, sid string) string {
	return cookieVersion + "." + string(tenant) + "." + sid + "." + base64.RawURLEncoding.EncodeToString(c.mac(tenant, sid))
}

// parse checks a cookie value and returns the tenant and session id it
// names. claimed is the tenant the value names even when it fails, for
// counting the failure; it is "" when the value is not even well formed.
func (c *cookieSigner) parse(v string) (tenant vaultcrux.TenantID, sid string, claimed vaultcrux.TenantID, ok bool) {
	parts := strings.Split(v, ".")
	if len(parts) != 4 || parts[0] != cookieVersion || !vaultcrux.ValidTenantID(parts[1]) || !ident.Valid(parts[2]) {
		return "", "", "", false
	}
	claimed = vaultcrux.TenantID(parts[1])
	got, err := base64.RawURLEncoding.Strict().DecodeString(parts[3])
	if err != nil || len(got) != sha256.Size || !hmac.Equal(got, c.mac(claimed, parts[2])) {
		return "", "", claimed, false
	}
	return claimed, parts[2], claimed, true
}

// sessionCookie renders the Set-Cookie value that stores value for maxAge
// seconds; a negative maxAge expires the cookie.
func (s *Server) sessionCookie(value string, maxAge int) string {
	c := &http.Cookie{
		Name: sessionCookieName, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: !s.cfg.DevInsecureCookie, SameSite: http.SameSiteStrictMode,
	}
	return c.String()
}

// clearCookie is the Set-Cookie header that removes the session cookie.
func (s *Server) clearCookie() map[string]string {
	return map[string]string{"Set-Cookie": s.sessionCookie("", -1)}
}

// withClearCookie makes a refused session's answer also remove the cookie.
func (s *Server) withClearCookie(err error) error {
	var he *headersError
	if errors.As(err, &he) {
		return err // a 429 keeps its own headers; the cookie goes next time
	}
	return &headersError{err: err, headers: s.clearCookie()}
}

// checkCSRF refuses an unsafe cross-origin browser request (by
// Sec-Fetch-Site, else Origin against Host). Requests without either
// header are not from a browser and pass; safe methods always pass.
func (s *Server) checkCSRF(r *http.Request) error {
	if err := s.csrf.Check(r); err != nil {
		return errCrossOrigin
	}
	return nil
}

// authenticateCookie authenticates a request to a role route by its
// session cookie.
func (s *Server) authenticateCookie(req *request, cookies []*http.Cookie) (*vaultcrux.Principal, error) {
	r := req.http
	if err := s.checkCSRF(r); err != nil {
		return nil, err
	}
	if len(cookies) != 1 {
		// Two vc_session cookies mean one was planted (from a sibling
		// domain, say): trust neither.
		return nil, s.withClearCookie(s.authFailed(req, "", "session_cookie", errBadSession))
	}
	tenant, sid, claimed, ok := s.cookies.parse(cookies[0].Value)
	if !ok {
		s.recordFailed(req, claimed, "invalid session cookie")
		return nil, s.withClearCookie(s.authFailed(req, claimed, "session_cookie", errBadSession))
	}
	if hdr := r.Header.Get("x-tenant-id"); hdr != "" && hdr != string(tenant) {
		st := req.state
		p := &vaultcrux.Principal{Tenant: tenant, ID: "session:" + sid, SessionID: sid}
		st.principal = p
		s.logMismatch(&request{ctx: req.ctx, state: st, principal: p}, "header")
		return nil, errTenantMismatch
	}
	info, err := s.loadSession(req, tenant, sid, true)
	if err != nil {
		return nil, err
	}
	p := keyPrincipal(info.key)
	p.SessionID = sid
	if err := setAgent(r, p); err != nil {
		return nil, err
	}
	return p, nil
}

// liveSession is a session that authenticates, and its key.
type liveSession struct {
	session *vaultcrux.Session
	key     *vaultcrux.APIKey
}

// loadSession finds session sid of tenant and decides whether it is live
// (see the top of this file). A session found past its absolute or idle
// expiry is revoked with an "expired" event in the same transaction. With
// touch, a live session's last_seen_at is moved forward, at most every
// sessionTouchEvery. Refusals carry the header that clears the cookie; a
// store failure is an error, never a pass.
func (s *Server) loadSession(req *request, tenant vaultcrux.TenantID, sid string, touch bool) (*liveSession, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	var live *liveSession
	var refusal error
	err := s.store.ForTenant(tenant).Tx(req.ctx, func(tx store.TenantTx) error {
		live, refusal = nil, nil
		sess, err := tx.GetSession(sid)
		switch {
		case vaultcrux.ErrorKind(err) == vaultcrux.NotFound:
			refusal = errSessionEnded
			return nil
		case err != nil:
			return err
		case sess.RevokedAt != nil:
			refusal = errSessionEnded
			return nil
		}
		if reason := sessionExpiry(sess, now); reason != "" {
			refusal = errSessionExpired
			ended, err := tx.RevokeSession(sid, now)
			if err != nil {
				return err
			}
			if ended.RevokedAt == nil || !ended.RevokedAt.Equal(now) {
				return nil // another request ended it first and said so
			}
			return s.addSessionEvent(tx, tenant, sid, "expired", reason, req, now)
		}
		key, err := tx.GetAPIKey(sess.KeyID)
		if err != nil {
			return err // the session row refers to it: a miss is a fault
		}
		if key.Revoked() {
			refusal = errSessionEnded
			return nil
		}
		if key.SeatID != "" {
			seat, err := tx.GetSeat(key.SeatID)
			if err != nil {
				return err
			}
			if seat.Revoked() {
				refusal = errSessionEnded
				return nil
			}
		}
		if touch && now.Sub(sess.LastSeenAt) >= sessionTouchEvery {
			if err := tx.TouchSession(sid, now); err != nil {
				return err
			}
			sess.LastSeenAt = now
		}
		live = &liveSession{session: sess, key: key}
		return nil
	})
	if err != nil {
		s.metrics.storeErrors.WithLabelValues("load_session").Inc()
		return nil, err
	}
	if refusal != nil {
		return nil, s.withClearCookie(refusal)
	}
	return live, nil
}

// sessionExpiry says why sess is over at now, or "" when it is not.
func sessionExpiry(sess *vaultcrux.Session, now time.Time) string {
	switch {
	case !now.Before(sess.ExpiresAt):
		return "absolute expiry"
	case now.Sub(sess.LastSeenAt) >= sess.IdleTimeout:
		return "idle timeout"
	}
	return ""
}

// addSessionEvent appends to the session activity table, with the
// request's address and user agent.
func (s *Server) addSessionEvent(tx store.TenantTx, tenant vaultcrux.TenantID, sid, kind, detail string, req *request, now time.Time) error {
	id, err := ident.New(now, s.rand)
	if err != nil {
		return err
	}
	return tx.AddSessionEvent(&vaultcrux.SessionEvent{
		ID: id, Tenant: tenant, SessionID: sid, Kind: kind, At: now,
		IP: req.state.ip.String(), UserAgent: userAgent(req.http), Detail: detail,
	})
}

// recordFailed appends a "failed" session event to tenant's activity, when
// the tenant is known and exists. It is best effort: the attempt is
// refused whatever happens here.
func (s *Server) recordFailed(req *request, tenant vaultcrux.TenantID, detail string) {
	if tenant == "" {
		return
	}
	// A spent budget bounds how many rows an attacker can write: past it
	// the attempt is answered 429 and recorded in the access log only.
	if s.limits.addr.wait(addrKey(req.state.ip), s.now()) > 0 || s.limits.tenant.wait(string(tenant), s.now()) > 0 {
		return
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	err := s.store.ForTenant(tenant).Tx(context.WithoutCancel(req.ctx), func(tx store.TenantTx) error {
		return s.addSessionEvent(tx, tenant, "", "failed", detail, req, now)
	})
	if err != nil && vaultcrux.ErrorKind(err) != vaultcrux.NotFound { // NotFound: no such tenant
		s.metrics.storeErrors.WithLabelValues("add_session_event").Inc()
		s.log.LogAttrs(req.ctx, slog.LevelError, "record failed sign-in",
			slog.String("request_id", req.state.id), slog.String("error", err.Error()))
	}
}

// userAgent is the request's user agent, cut to 256 bytes on a rune
// boundary.
func userAgent(r *http.Request) string { return truncate(r.UserAgent(), 256) }
