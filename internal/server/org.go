package server

import (
	"net/http"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/ident"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// Team seat routes (contract §4), behind FEATURE_TEAM_SEATS. The rules
// (who may act on which role, the last owner) live in internal/authz and
// internal/tenancy; these handlers decode, call, and show.

// seatView is a seat as the API shows it.
type seatView struct {
	ID        string  `json:"id"`
	Email     string  `json:"email"`
	Role      string  `json:"role"`
	CreatedAt string  `json:"createdAt"`
	RevokedAt *string `json:"revokedAt"`
}

func viewSeat(s *vaultcrux.Seat) seatView {
	return seatView{ID: s.ID, Email: s.Email, Role: string(s.Role), CreatedAt: vaultcrux.FormatTime(s.CreatedAt), RevokedAt: optTime(s.RevokedAt)}
}

// validSeatRef accepts the ids this server issues (ULIDs), so that junk
// from a URL is a plain 404 that reaches no store.
func validSeatRef(id string) bool { return ident.Valid(id) }

type bootstrapOwnerRequest struct {
	tenantRef
	Email string `json:"email"`
}

func (s *Server) handleBootstrapOwner(req *request) (*response, error) {
	var in bootstrapOwnerRequest
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	seat, rid, err := s.prov.BootstrapOwner(req.ctx, *req.principal, in.Email)
	if err != nil {
		return nil, err
	}
	// The calling key now acts as the owner seat.
	s.auth.invalidate(req.principal.KeyID)
	return &response{status: http.StatusCreated, receiptID: rid, data: map[string]any{
		"seat": viewSeat(seat), "keyId": req.principal.KeyID, "receiptId": rid,
	}}, nil
}

type inviteRequest struct {
	tenantRef
	Email string `json:"email"`
	Role  string `json:"role"`
}

func (s *Server) handleInvite(req *request) (*response, error) {
	var in inviteRequest
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if in.Role == "" {
		in.Role = string(vaultcrux.RoleMember)
	}
	role, ok := vaultcrux.ParseRole(in.Role)
	if !ok {
		return nil, vaultcrux.E(vaultcrux.Invalid, "role must be owner, admin, member or viewer")
	}
	inv, tok, rid, err := s.prov.Invite(req.ctx, *req.principal, in.Email, role, s.cfg.InviteTTL)
	if err != nil {
		return nil, err
	}
	return &response{status: http.StatusCreated, receiptID: rid, data: map[string]any{
		"inviteId":  inv.ID,
		"token":     tok.Reveal(), // the only time the token is ever shown
		"email":     inv.Email,
		"role":      string(inv.Role),
		"expiresAt": vaultcrux.FormatTime(inv.ExpiresAt),
		"receiptId": rid,
	}}, nil
}

type acceptInviteRequest struct {
	Token string `json:"token"`
}

// handleAcceptInvite is public: the token is the credential. An invalid
// token of any kind counts against the brute-force budget.
func (s *Server) handleAcceptInvite(req *request) (*response, error) {
	hdr := req.http.Header.Get("x-tenant-id")
	if hdr == "" {
		return nil, vaultcrux.E(vaultcrux.Invalid, "x-tenant-id header is required")
	}
	if wait := s.limits.blocked(req.state.ip, s.now()); wait > 0 {
		return nil, s.rateLimited(wait, "address")
	}
	var in acceptInviteRequest
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	a, err := s.prov.AcceptInvite(req.ctx, vaultcrux.TenantID(hdr), in.Token)
	if vaultcrux.ErrorKind(err) == vaultcrux.NotFound {
		return nil, s.authFailed(req, claimedTenant(req.http), "invite", err)
	}
	if err != nil {
		return nil, err
	}
	req.state.principal = keyPrincipal(a.Key)
	return &response{status: http.StatusCreated, receiptID: a.ReceiptIDs[0], data: map[string]any{
		"seat": viewSeat(a.Seat),
		"apiKey": map[string]any{
			"id":        a.Key.ID,
			"key":       a.Token.Reveal(), // the only time the key is ever shown
			"label":     a.Key.Label,
			"role":      string(a.Key.Role),
			"seatId":    a.Key.SeatID,
			"createdAt": vaultcrux.FormatTime(a.Key.CreatedAt),
		},
		"receiptId":  a.ReceiptIDs[0],
		"receiptIds": a.ReceiptIDs,
	}}, nil
}

func (s *Server) handleListSeats(req *request) (*response, error) {
	limit, after, err := pageParams(req.http)
	if err != nil {
		return nil, err
	}
	seats, err := s.prov.ListSeats(req.ctx, req.principal.Tenant, after, limit+1)
	if err != nil {
		return nil, err
	}
	var next *string
	if len(seats) > limit {
		seats = seats[:limit]
		c := encodeCursor(seats[limit-1].ID)
		next = &c
	}
	items := make([]seatView, len(seats))
	for i, st := range seats {
		items[i] = viewSeat(st)
	}
	return &response{data: map[string]any{"items": items, "nextCursor": next}}, nil
}

type changeSeatRoleRequest struct {
	tenantRef
	Role string `json:"role"`
}

func (s *Server) handleChangeSeatRole(req *request) (*response, error) {
	id := req.http.PathValue("id")
	if !validSeatRef(id) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "seat not found")
	}
	var in changeSeatRoleRequest
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	role, ok := vaultcrux.ParseRole(in.Role)
	if !ok {
		return nil, vaultcrux.E(vaultcrux.Invalid, "role must be owner, admin, member or viewer")
	}
	seat, old, rid, err := s.prov.ChangeSeatRole(req.ctx, *req.principal, id, role)
	if err != nil {
		return nil, err
	}
	// The seat's keys act with the new role from the next request on.
	s.auth.invalidateSeat(id)
	data := map[string]any{"seat": viewSeat(seat), "oldRole": string(old)}
	if rid != "" {
		data["receiptId"] = rid
	}
	return &response{receiptID: rid, data: data}, nil
}

func (s *Server) handleRevokeSeat(req *request) (*response, error) {
	id := req.http.PathValue("id")
	if !validSeatRef(id) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "seat not found")
	}
	seat, rid, err := s.prov.RevokeSeat(req.ctx, *req.principal, id)
	if err != nil {
		return nil, err
	}
	s.auth.invalidateSeat(id)
	data := map[string]any{"seat": viewSeat(seat)}
	if rid != "" {
		data["receiptId"] = rid
	}
	return &response{receiptID: rid, data: data}, nil
}

// sessionItem is a frontdoor session as the session list shows it.
type sessionItem struct {
	ID            string  `json:"id"`
	KeyID         string  `json:"keyId"`
	SeatID        string  `json:"seatId,omitempty"`
	Role          string  `json:"role"`
	CreatedAt     string  `json:"createdAt"`
	ExpiresAt     string  `json:"expiresAt"`
	LastSeenAt    string  `json:"lastSeenAt"`
	IdleExpiresAt string  `json:"idleExpiresAt"`
	IP            string  `json:"ip"`
	UserAgent     string  `json:"userAgent"`
	Current       bool    `json:"current"` // the caller's own session
	RevokedAt     *string `json:"revokedAt,omitempty"`
}

func viewSession(sess *vaultcrux.Session, current string) sessionItem {
	return sessionItem{
		ID: sess.ID, KeyID: sess.KeyID, SeatID: sess.SeatID, Role: string(sess.Role),
		CreatedAt: vaultcrux.FormatTime(sess.CreatedAt), ExpiresAt: vaultcrux.FormatTime(sess.ExpiresAt),
		LastSeenAt: vaultcrux.FormatTime(sess.LastSeenAt), IdleExpiresAt: vaultcrux.FormatTime(sess.LastSeenAt.Add(sess.IdleTimeout)),
		IP: sess.IP, UserAgent: sess.UserAgent, Current: current != "" && sess.ID == current,
		RevokedAt: optTime(sess.RevokedAt),
	}
}

// handleListSessions lists the tenant's live sessions: not revoked, before
// absolute expiry and within their idle timeout. A page may hold fewer
// than limit items (idle-expired ones are left out) and still have a
// next cursor.
func (s *Server) handleListSessions(req *request) (*response, error) {
	limit, after, err := pageParams(req.http)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	var sessions []*vaultcrux.Session
	err = req.tenant(s).Tx(req.ctx, func(tx store.TenantTx) (err error) {
		sessions, err = tx.ListActiveSessions(now, after, limit+1)
		return err
	})
	if err != nil {
		return nil, err
	}
	var next *string
	if len(sessions) > limit {
		sessions = sessions[:limit]
		c := encodeCursor(sessions[limit-1].ID)
		next = &c
	}
	items := []sessionItem{}
	for _, sess := range sessions {
		if sessionExpiry(sess, now) != "" {
			continue
		}
		items = append(items, viewSession(sess, req.principal.SessionID))
	}
	return &response{data: map[string]any{"items": items, "nextCursor": next}}, nil
}

func (s *Server) handleRevokeSession(req *request) (*response, error) {
	id := req.http.PathValue("id")
	if !ident.Valid(id) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "session not found")
	}
	sess, rid, err := s.prov.RevokeSession(req.ctx, *req.principal, id)
	if err != nil {
		return nil, err
	}
	data := map[string]any{"session": viewSession(sess, req.principal.SessionID)}
	if rid != "" {
		data["receiptId"] = rid
	}
	resp := &response{receiptID: rid, data: data}
	if sess.ID == req.principal.SessionID {
		// Ending one's own session signs this browser out too.
		resp.headers = s.clearCookie()
	}
	return resp, nil
}
