package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/ident"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// The frontdoor's own routes (contract §3): sign in with an API key,
// ask whether the browser is signed in, sign out. They are public (the
// cookie is what they manage) and exempt from idempotency keys; connect
// and logout pass the same CSRF check as cookie-authenticated mutations,
// and every route counts forged cookies and bad keys against the
// brute-force budget.

type connectRequest struct {
	TenantID string `json:"tenantId"`
	APIKey   string `json:"apiKey"`
}

// sessionView is the answer of the three frontdoor routes.
type sessionView struct {
	Authenticated bool   `json:"authenticated"`
	TenantID      string `json:"tenantId,omitempty"`
	Role          string `json:"role,omitempty"`
	ExpiresAt     string `json:"expiresAt,omitempty"`
}

var signedOut = sessionView{Authenticated: false}

func (s *Server) handleConnect(req *request) (*response, error) {
	if wait := s.limits.blocked(req.state.ip, s.now()); wait > 0 {
		return nil, s.rateLimited(wait, "address")
	}
	if err := s.checkCSRF(req.http); err != nil {
		return nil, err
	}
	var in connectRequest
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if !vaultcrux.ValidTenantID(in.TenantID) {
		return nil, vaultcrux.E(vaultcrux.Invalid, "tenantId must be a tenant id")
	}
	tenant := vaultcrux.TenantID(in.TenantID)
	now := s.now().UTC().Truncate(time.Millisecond)
	e, err := s.verifyKey(req.ctx, in.APIKey, now)
	switch {
	case err == errBadKey:
		s.recordFailed(req, tenant, "connect with an invalid API key")
		return nil, s.authFailed(req, tenant, "connect", err)
	case err == errRevoked:
		s.recordFailed(req, tenant, "connect with a revoked API key")
		return nil, err
	case err != nil:
		return nil, err
	}
	k := e.key
	if k.Tenant != tenant {
		p := keyPrincipal(k)
		req.state.principal = p
		s.logMismatch(&request{ctx: req.ctx, state: req.state, principal: p}, "connect")
		s.recordFailed(req, k.Tenant, "connect named another tenant")
		return nil, errTenantMismatch
	}
	sid, err := ident.New(now, s.rand)
	if err != nil {
		return nil, err
	}
	sess := &vaultcrux.Session{
		ID: sid, Tenant: tenant, KeyID: k.ID, SeatID: k.SeatID, Role: k.Role,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL), IdleTimeout: s.cfg.SessionIdleTimeout,
		LastSeenAt: now, IP: req.state.ip.String(), UserAgent: userAgent(req.http),
	}
	// A browser that signs in again gives up the session it had.
	var replaced string
	if c := req.http.CookiesNamed(sessionCookieName); len(c) == 1 {
		if t, old, _, ok := s.cookies.parse(c[0].Value); ok && t == tenant {
			replaced = old
		}
	}
	err = s.store.ForTenant(tenant).Tx(req.ctx, func(tx store.TenantTx) error {
		if replaced != "" {
			if err := s.endSession(tx, tenant, replaced, "logout", "replaced by a new sign-in", req, now); err != nil {
				return err
			}
		}
		if err := tx.CreateSession(sess); err != nil {
			return err
		}
		return s.addSessionEvent(tx, tenant, sid, "connect", "", req, now)
	})
	if err != nil {
		s.metrics.storeErrors.WithLabelValues("create_session").Inc()
		return nil, err
	}
	s.auth.used(e, now)
	p := keyPrincipal(k)
	p.SessionID = sid
	req.state.principal = p
	return &response{
		headers: map[string]string{"Set-Cookie": s.sessionCookie(s.cookies.value(tenant, sid), int(s.cfg.SessionTTL/time.Second))},
		data:    sessionView{Authenticated: true, TenantID: string(tenant), Role: string(k.Role), ExpiresAt: vaultcrux.FormatTime(sess.ExpiresAt)},
	}, nil
}

// endSession revokes an unrevoked session with a session event of kind;
// an unknown or ended session is left as it is.
func (s *Server) endSession(tx store.TenantTx, tenant vaultcrux.TenantID, sid, kind, detail string, req *request, now time.Time) error {
	cur, err := tx.GetSession(sid)
	switch {
	case vaultcrux.ErrorKind(err) == vaultcrux.NotFound:
		return nil
	case err != nil:
		return err
	case cur.RevokedAt != nil:
		return nil
	}
	if _, err := tx.RevokeSession(sid, now); err != nil {
		return err
	}
	return s.addSessionEvent(tx, tenant, sid, kind, detail, req, now)
}

// handleSession answers 200 whether or not the browser is signed in:
// {authenticated:false} without a live session (and an invalid cookie is
// cleared). It does not count as use: a page polling it does not keep an
// idle session alive.
func (s *Server) handleSession(req *request) (*response, error) {
	cookies := req.http.CookiesNamed(sessionCookieName)
	if len(cookies) == 0 {
		return &response{data: signedOut}, nil
	}
	if wait := s.limits.blocked(req.state.ip, s.now()); wait > 0 {
		return nil, s.rateLimited(wait, "address")
	}
	if len(cookies) != 1 {
		return s.signedOut(req, "", "more than one session cookie")
	}
	tenant, sid, claimed, ok := s.cookies.parse(cookies[0].Value)
	if !ok {
		return s.signedOut(req, claimed, "invalid session cookie")
	}
	live, err := s.loadSession(req, tenant, sid, false)
	if vaultcrux.ErrorKind(err) == vaultcrux.Unauthenticated {
		return &response{data: signedOut, headers: s.clearCookie()}, nil
	}
	if err != nil {
		return nil, err
	}
	p := keyPrincipal(live.key)
	p.SessionID = sid
	req.state.principal = p
	return &response{data: sessionView{
		Authenticated: true, TenantID: string(tenant), Role: string(live.key.Role),
		ExpiresAt: vaultcrux.FormatTime(live.session.ExpiresAt),
	}}, nil
}

// signedOut answers a forged or malformed cookie: counted as a failed
// attempt (429 once a budget is spent), else {authenticated:false} and the
// cookie cleared.
func (s *Server) signedOut(req *request, claimed vaultcrux.TenantID, detail string) (*response, error) {
	s.recordFailed(req, claimed, detail)
	s.metrics.authFailures.WithLabelValues("session_cookie").Inc()
	if wait, scope := s.limits.failed(req.state.ip, claimed, s.now()); wait > 0 {
		return nil, s.rateLimited(wait, scope)
	}
	return &response{data: signedOut, headers: s.clearCookie()}, nil
}

// handleLogout ends the session of the cookie, if there is one, and
// clears the cookie. It answers 200 also when there was nothing to end.
// Giving up a session gains nothing, so a genuine cookie is ended even
// from an address whose failure budget is spent; a forged one counts as
// a failed attempt.
func (s *Server) handleLogout(req *request) (*response, error) {
	if err := s.checkCSRF(req.http); err != nil {
		return nil, err
	}
	cookies := req.http.CookiesNamed(sessionCookieName)
	if len(cookies) == 0 {
		return &response{data: signedOut, headers: s.clearCookie()}, nil
	}
	if len(cookies) != 1 {
		return s.signedOut(req, "", "more than one session cookie")
	}
	tenant, sid, claimed, ok := s.cookies.parse(cookies[0].Value)
	if !ok {
		return s.signedOut(req, claimed, "invalid session cookie")
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	err := s.store.ForTenant(tenant).Tx(context.WithoutCancel(req.ctx), func(tx store.TenantTx) error {
		return s.endSession(tx, tenant, sid, "logout", "", req, now)
	})
	if err != nil {
		// The cookie is cleared only once the row is ended: a browser
		// must not believe it signed out while its session lives on.
		s.metrics.storeErrors.WithLabelValues("end_session").Inc()
		s.log.LogAttrs(req.ctx, slog.LevelError, "logout", slog.String("request_id", req.state.id), slog.String("error", err.Error()))
		return nil, err
	}
	req.state.principal = &vaultcrux.Principal{Tenant: tenant, ID: "session:" + sid, SessionID: sid}
	return &response{data: signedOut, headers: s.clearCookie()}, nil
}
