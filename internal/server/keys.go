package server

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/apikey"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// keyView is an API key as the API shows it: never the hash, never the key.
type keyView struct {
	ID         string  `json:"id"`
	Label      string  `json:"label"`
	Role       string  `json:"role"`
	CreatedAt  string  `json:"createdAt"`
	RevokedAt  *string `json:"revokedAt"`
	LastUsedAt *string `json:"lastUsedAt"`
	ReceiptID  string  `json:"receiptId,omitempty"` // of the change just made
}

func viewKey(k *vaultcrux.APIKey) keyView {
	return keyView{
		ID:         k.ID,
		Label:      k.Label,
		Role:       string(k.Role),
		CreatedAt:  vaultcrux.FormatTime(k.CreatedAt),
		RevokedAt:  optTime(k.RevokedAt),
		LastUsedAt: optTime(k.LastUsedAt),
	}
}

func optTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := vaultcrux.FormatTime(*t)
	return &s
}

type createKeyRequest struct {
	tenantRef
	Label string `json:"label"`
	Role  string `json:"role"`
}

func (s *Server) handleCreateKey(req *request) (*response, error) {
	var in createKeyRequest
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
	k, tok, rid, err := s.prov.IssueKey(req.ctx, *req.principal, req.principal.Tenant, in.Label, role)
	if err != nil {
		return nil, err
	}
	return &response{status: http.StatusCreated, receiptID: rid, data: map[string]any{
		"receiptId": rid,
		"id":        k.ID,
		"key":       tok.Reveal(), // the only time the key is ever shown
		"label":     k.Label,
		"role":      string(k.Role),
		"createdAt": vaultcrux.FormatTime(k.CreatedAt),
	}}, nil
}

func (s *Server) handleListKeys(req *request) (*response, error) {
	limit, after, err := pageParams(req.http)
	if err != nil {
		return nil, err
	}
	var keys []*vaultcrux.APIKey
	err = req.tenant(s).Tx(req.ctx, func(tx store.TenantTx) (err error) {
		keys, err = tx.ListAPIKeys(after, limit+1)
		return err
	})
	if err != nil {
		return nil, err
	}
	var next *string
	if len(keys) > limit {
		keys = keys[:limit]
		c := encodeCursor(keys[limit-1].ID)
		next = &c
	}
	items := make([]keyView, len(keys))
	for i, k := range keys {
		items[i] = viewKey(k)
	}
	return &response{data: map[string]any{"items": items, "nextCursor": next}}, nil
}

func (s *Server) handleRevokeKey(req *request) (*response, error) {
	id := req.http.PathValue("id")
	if !apikey.ValidID(id) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "API key not found")
	}
	k, rid, err := s.prov.RevokeKey(req.ctx, *req.principal, req.principal.Tenant, id, false)
	if err != nil {
		return nil, err
	}
	s.auth.invalidate(k.ID)
	v := viewKey(k)
	v.ReceiptID = rid
	return &response{data: v, receiptID: rid}, nil
}

type whoami struct {
	TenantID    vaultcrux.TenantID `json:"tenantId"`
	PrincipalID string             `json:"principalId"`
	KeyID       string             `json:"keyId"`
	Role        vaultcrux.Role     `json:"role"`
	AgentID     string             `json:"agentId"`
}

func (s *Server) handleWhoami(req *request) (*response, error) {
	p := req.principal
	return &response{data: &whoami{TenantID: p.Tenant, PrincipalID: p.ID, KeyID: p.KeyID, Role: p.Role, AgentID: p.AgentID}}, nil
}

// pageParams reads ?limit= (default 50, max 500) and the opaque ?cursor=.
func pageParams(r *http.Request) (limit int, after string, err error) {
	q := r.URL.Query()
	limit = 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return 0, "", vaultcrux.E(vaultcrux.Invalid, "limit must be an integer from 1 to 500")
		}
		limit = n
	}
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.Strict().DecodeString(c)
		if err != nil || len(b) < 3 || string(b[:2]) != "c1" || b[2] != ':' {
			return 0, "", vaultcrux.E(vaultcrux.Invalid, "invalid cursor")
		}
		after = string(b[3:])
	}
	return limit, after, nil
}

// encodeCursor makes an opaque, versioned cursor from the last id of a page.
func encodeCursor(lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("c1:" + lastID))
}
