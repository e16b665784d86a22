package gate

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
	"github.com/vaultcrux/vaultcrux/internal/shield"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// TokenPrefix starts every approval token.
const TokenPrefix = "vcapt_"

const approvalPurpose = "shield-approval-args"

// newApproval builds a pending approval request for the decided call d,
// bound to the tenant, its id, the resolved server and tool, the args
// hash and the manifest hash. Its arguments are stored sealed.
func (g *Gate) newApproval(ctx context.Context, call *Call, id, decisionID string, d *shield.Decision, reason string, now time.Time) (*store.ShieldApproval, error) {
	p := call.Principal
	shown := call.ApprovalArgs
	if len(shown) == 0 {
		shown = call.Args
	}
	if len(shown) == 0 {
		shown = json.RawMessage("{}")
	}
	sealed, err := g.sealer.Seal(ctx, p.Tenant, approvalPurpose, shown)
	if err != nil {
		return nil, err
	}
	return &store.ShieldApproval{
		ID: id, Server: d.Server, Tool: d.Tool, ArgsHash: d.ArgsHash, ManifestHash: d.ManifestHash,
		Binding: shield.ApprovalBinding(string(p.Tenant), id, d.Server, d.Tool, d.ArgsHash, d.ManifestHash),
		Args:    sealed, Reason: reason, ProposedBy: p.ID, AgentID: p.AgentID, Status: "pending",
		CreatedAt: now, ExpiresAt: now.Add(g.cfg.ApprovalTTL), DecisionID: decisionID,
	}, nil
}

func approvalDetails(a *store.ShieldApproval) map[string]any {
	m := map[string]any{
		"approvalId": a.ID, "status": a.Status, "tool": a.Tool, "server": a.Server,
		"argsHash": a.ArgsHash, "shieldManifestHash": a.ManifestHash, "binding": a.Binding,
		"expiresAt": vaultcrux.FormatTime(a.ExpiresAt),
	}
	if a.DecisionID != "" {
		m["decisionId"] = a.DecisionID
	}
	if a.ResolvedBy != "" {
		m["resolvedBy"] = a.ResolvedBy
	}
	if a.TokenExpiresAt != nil {
		m["tokenExpiresAt"] = vaultcrux.FormatTime(*a.TokenExpiresAt)
	}
	return m
}

// Approval is an approval request as the API shows it.
type Approval struct {
	ID             string          `json:"id"`
	Status         string          `json:"status"`
	Server         string          `json:"server"`
	Tool           string          `json:"tool"`
	Args           json.RawMessage `json:"args"` // null when it can no longer be opened
	ArgsHash       string          `json:"argsHash"`
	ManifestHash   string          `json:"manifestHash"`
	Reason         string          `json:"reason"`
	ProposedBy     string          `json:"proposedBy"`
	AgentID        string          `json:"agentId,omitempty"`
	DecisionID     string          `json:"decisionId,omitempty"`
	CreatedAt      string          `json:"createdAt"`
	ExpiresAt      string          `json:"expiresAt"`
	ResolvedAt     *string         `json:"resolvedAt"`
	ResolvedBy     string          `json:"resolvedBy,omitempty"`
	Note           string          `json:"note,omitempty"`
	TokenExpiresAt *string         `json:"tokenExpiresAt"`
	ExecutedAt     *string         `json:"executedAt"`
	ReceiptID      string          `json:"receiptId,omitempty"`
}

func optTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := vaultcrux.FormatTime(*t)
	return &s
}

func (g *Gate) view(ctx context.Context, t vaultcrux.TenantID, a *store.ShieldApproval) *Approval {
	v := &Approval{
		ID: a.ID, Status: a.Status, Server: a.Server, Tool: a.Tool, ArgsHash: a.ArgsHash, ManifestHash: a.ManifestHash,
		Reason: a.Reason, ProposedBy: a.ProposedBy, AgentID: a.AgentID, DecisionID: a.DecisionID,
		CreatedAt: vaultcrux.FormatTime(a.CreatedAt), ExpiresAt: vaultcrux.FormatTime(a.ExpiresAt),
		ResolvedAt: optTime(a.ResolvedAt), ResolvedBy: a.ResolvedBy, Note: a.Note,
		TokenExpiresAt: optTime(a.TokenExpiresAt), ExecutedAt: optTime(a.ExecutedAt),
		Args: json.RawMessage("null"),
	}
	if args, err := g.sealer.Open(ctx, t, approvalPurpose, a.Args); err == nil {
		v.Args = args
	}
	return v
}

// ProposeRequest is the body of POST /v1/shield/approvals/propose.
type ProposeRequest struct {
	Server string          `json:"server"`
	Tool   string          `json:"tool"`
	Args   json.RawMessage `json:"args"`
	Reason string          `json:"reason"`
}

// Propose files an approval request for a call the principal means to
// make, bound to the current manifest. The tool must be in it.
func (g *Gate) Propose(ctx context.Context, p vaultcrux.Principal, r *ProposeRequest) (_ *Approval, err error) {
	defer vaultcrux.Wrap(&err, "gate.Propose")
	if r.Tool == "" || len(r.Tool) > 200 || len(r.Server) > 200 || len(r.Reason) > 2000 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "tool is required (at most 200 bytes); server at most 200 bytes; reason at most 2000 bytes")
	}
	argsHash, err := shield.ArgsHash(r.Args)
	if err != nil {
		return nil, vaultcrux.E(vaultcrux.Invalid, "args must be strict JSON")
	}
	st, err := g.state(ctx, p.Tenant)
	if err != nil {
		return nil, err
	}
	if st.manifest == nil {
		return nil, vaultcrux.Ef(vaultcrux.Conflict, "the tenant's manifest is broken: %s", st.broken)
	}
	e, ok := st.manifest.Lookup(r.Server, r.Tool)
	if !ok {
		return nil, vaultcrux.E(vaultcrux.Invalid, "the tool is not in the effective manifest (name its server if two servers share the name)")
	}
	id, err := g.newID()
	if err != nil {
		return nil, err
	}
	now := g.clock()
	d := &shield.Decision{Server: e.Server, Tool: r.Tool, ArgsHash: argsHash, ManifestHash: st.manifest.Hash()}
	reason := r.Reason
	if reason == "" {
		reason = "proposed"
	}
	a, err := g.newApproval(ctx, &Call{Principal: p, Args: r.Args}, id, "", d, reason, now)
	if err != nil {
		return nil, err
	}
	rc, err := g.led.Event(p.Tenant, "shield.approval.proposed", p, "shield-approval:"+id, approvalDetails(a))
	if err != nil {
		return nil, err
	}
	issued, err := g.led.Commit(ctx, &ledger.Item{Tenant: p.Tenant, Apply: func(tx store.TenantTx) error { return tx.CreateApproval(a) }, Receipts: []*receipt.Doc{rc}})
	if err != nil {
		return nil, err
	}
	v := g.view(ctx, p.Tenant, a)
	v.ReceiptID = issued[0].ID
	return v, nil
}

// GetApproval returns an approval request of the tenant.
func (g *Gate) GetApproval(ctx context.Context, t vaultcrux.TenantID, id string) (_ *Approval, err error) {
	defer vaultcrux.Wrap(&err, "gate.GetApproval")
	var a *store.ShieldApproval
	if err := g.st.ForTenant(t).Tx(ctx, func(tx store.TenantTx) (err error) {
		a, err = tx.GetApproval(id)
		return err
	}); err != nil {
		if vaultcrux.ErrorKind(err) == vaultcrux.NotFound {
			return nil, vaultcrux.E(vaultcrux.NotFound, "approval request not found")
		}
		return nil, err
	}
	return g.view(ctx, t, a), nil
}

// Resolution is the answer to a resolve: the approval and, for an
// approve, its token, shown once.
type Resolution struct {
	Approval      *Approval `json:"approval"`
	ApprovalToken string    `json:"approvalToken,omitempty"`
	ExpiresAt     string    `json:"expiresAt,omitempty"`
	ReceiptID     string    `json:"receiptId"`
}

// Resolve approves or denies a pending request. Only a person resolves:
// the principal must be an owner or admin signed in by a frontdoor
// session (an API key, which an agent may hold, cannot approve).
func (g *Gate) Resolve(ctx context.Context, p vaultcrux.Principal, id, decision, note string) (_ *Resolution, err error) {
	defer vaultcrux.Wrap(&err, "gate.Resolve")
	if p.SessionID == "" {
		return nil, vaultcrux.E(vaultcrux.Forbidden, "approvals are resolved by an owner or admin in a browser session, never with an API key")
	}
	if p.Role != vaultcrux.RoleOwner && p.Role != vaultcrux.RoleAdmin {
		return nil, vaultcrux.Ef(vaultcrux.Forbidden, "role %s may not resolve approvals", p.Role)
	}
	if len(note) > 2000 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "note is at most 2000 bytes")
	}
	status := ""
	switch decision {
	case "approve":
		status = "approved"
	case "deny":
		status = "denied"
	default:
		return nil, vaultcrux.E(vaultcrux.Invalid, `decision must be "approve" or "deny"`)
	}
	now := g.clock()
	var token string
	var tokenHash []byte
	var tokenExp *time.Time
	if status == "approved" {
		if token, err = g.newToken(); err != nil {
			return nil, err
		}
		tokenHash = hashToken(token)
		exp := now.Add(g.cfg.TokenTTL)
		tokenExp = &exp
	}
	var current *store.ShieldApproval
	if err := g.st.ForTenant(p.Tenant).Tx(ctx, func(tx store.TenantTx) (err error) {
		current, err = tx.GetApproval(id)
		return err
	}); err != nil {
		if vaultcrux.ErrorKind(err) == vaultcrux.NotFound {
			return nil, vaultcrux.E(vaultcrux.NotFound, "approval request not found")
		}
		return nil, err
	}
	if current.Status != "pending" || !now.Before(current.ExpiresAt) {
		return nil, vaultcrux.Ef(vaultcrux.Conflict, "the approval request is %s, not pending", statusOrExpired(current, now))
	}
	preview := *current
	preview.Status, preview.ResolvedBy, preview.ResolvedAt, preview.Note, preview.TokenExpiresAt = status, p.ID, &now, note, tokenExp
	rc, err := g.led.Event(p.Tenant, "shield.approval.resolved", p, "shield-approval:"+id, approvalDetails(&preview))
	if err != nil {
		return nil, err
	}
	var resolved *store.ShieldApproval
	issued, err := g.led.Commit(ctx, &ledger.Item{Tenant: p.Tenant, Apply: func(tx store.TenantTx) (err error) {
		resolved, err = tx.ResolveApproval(id, status, p.ID, note, tokenHash, tokenExp, now)
		return err
	}, Receipts: []*receipt.Doc{rc}})
	if err != nil {
		if vaultcrux.ErrorKind(err) == vaultcrux.Conflict {
			return nil, vaultcrux.E(vaultcrux.Conflict, "the approval request is no longer pending")
		}
		return nil, err
	}
	out := &Resolution{Approval: g.view(ctx, p.Tenant, resolved), ReceiptID: issued[0].ID}
	if token != "" {
		out.ApprovalToken, out.ExpiresAt = token, vaultcrux.FormatTime(*tokenExp)
	}
	return out, nil
}

func statusOrExpired(a *store.ShieldApproval, now time.Time) string {
	if a.Status == "pending" && !now.Before(a.ExpiresAt) {
		return "expired"
	}
	return a.Status
}

// newToken returns "vcapt_" and 256 random bits.
func (g *Gate) newToken() (string, error) {
	var b [32]byte
	g.randMu.Lock()
	_, err := io.ReadFull(g.rand, b[:])
	g.randMu.Unlock()
	if err != nil {
		return "", err
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// ExpireApprovals marks every pending request past its expiry expired and
// records, for each, a deny decision and a receipt: a request that times
// out unresolved is an observable deny. It returns how many it expired.
func (g *Gate) ExpireApprovals(ctx context.Context) (n int, err error) {
	defer vaultcrux.Wrap(&err, "gate.ExpireApprovals")
	now := g.clock()
	var tenants []vaultcrux.TenantID
	if err := g.st.Tx(ctx, func(tx store.SystemTx) (err error) {
		tenants, err = tx.TenantsWithExpiredApprovals(now)
		return err
	}); err != nil {
		return 0, err
	}
	for _, t := range tenants {
		k, err := g.expireTenant(ctx, t, now)
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (g *Gate) expireTenant(ctx context.Context, t vaultcrux.TenantID, now time.Time) (int, error) {
	var due []*store.ShieldApproval
	if err := g.st.ForTenant(t).Tx(ctx, func(tx store.TenantTx) error {
		after := ""
		for {
			page, err := tx.ListApprovals("pending", after, 500)
			if err != nil {
				return err
			}
			for _, a := range page {
				if !a.ExpiresAt.After(now) {
					due = append(due, a)
				}
			}
			if len(page) < 500 {
				return nil
			}
			after = page[len(page)-1].ID
		}
	}); err != nil || len(due) == 0 {
		return 0, err
	}
	system := vaultcrux.Principal{Tenant: t, ID: "system:shield"}
	var receipts []*receipt.Doc
	var rows []*store.ShieldDecision
	var events []*store.OutboxEvent
	want := map[string]bool{}
	for _, a := range due {
		want[a.ID] = true
		id, err := g.newID()
		if err != nil {
			return 0, err
		}
		d := &shield.Decision{
			Outcome: shield.OutcomeDeny, Verdict: shield.OutcomeDeny, Stage: shield.StageApproval,
			DenialType: shield.DenialApprovalTokenExpired, Enforced: true, WouldBlock: true,
			Mode: "enforce", Tool: a.Tool, Server: a.Server, ArgsHash: a.ArgsHash, ManifestHash: a.ManifestHash, ApprovalID: a.ID,
		}
		details := decisionDetails(id, d, "", "")
		details["reason"] = "the approval request expired unresolved"
		dr, err := g.led.Event(t, "shield.decision", system, "shield-decision:"+id, details)
		if err != nil {
			return 0, err
		}
		ex := *a
		ex.Status = "expired"
		er, err := g.led.Event(t, "shield.approval.expired", system, "shield-approval:"+a.ID, approvalDetails(&ex))
		if err != nil {
			return 0, err
		}
		receipts = append(receipts, dr, er)
		rows = append(rows, &store.ShieldDecision{
			ID: id, Tool: a.Tool, Server: a.Server, Outcome: "deny", Stage: string(shield.StageApproval),
			DenialType: string(shield.DenialApprovalTokenExpired), Mode: "enforce", Verdict: "deny", Enforced: true, WouldBlock: true,
			ManifestHash: a.ManifestHash, ArgsHash: a.ArgsHash, ApprovalID: a.ID, AgentID: a.AgentID, Actor: system.ID,
			ReceiptID: dr.ID(), Inputs: []byte("[]"), CreatedAt: now,
		})
		payload, err := json.Marshal(map[string]any{"decisionId": id, "receiptId": dr.ID(), "tenantId": string(t), "decision": details})
		if err != nil {
			return 0, err
		}
		events = append(events, &store.OutboxEvent{ID: id, Kind: "shield.decision", Payload: payload, CreatedAt: now})
	}
	_, err := g.led.Commit(ctx, &ledger.Item{Tenant: t, Apply: func(tx store.TenantTx) error {
		expired, err := tx.ExpireApprovals(now)
		if err != nil {
			return err
		}
		if len(expired) != len(want) {
			return vaultcrux.E(vaultcrux.Conflict, "approvals changed while expiring them")
		}
		for _, a := range expired {
			if !want[a.ID] {
				return vaultcrux.E(vaultcrux.Conflict, "approvals changed while expiring them")
			}
		}
		for i := range rows {
			if err := tx.RecordDecision(rows[i], events[i]); err != nil {
				return err
			}
		}
		return nil
	}, Receipts: receipts})
	if err != nil {
		return 0, err
	}
	return len(due), nil
}
