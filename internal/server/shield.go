package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/authz"
	"github.com/vaultcrux/vaultcrux/internal/gate"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
	"github.com/vaultcrux/vaultcrux/internal/shield"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// shieldRoutes are Shield's own routes (contract §7). They are not
// guarded by the mutation guard: they are how Shield itself is operated
// (a kill switch must be releasable while everything else is stopped),
// and each of their changes is receipted.
func (s *Server) shieldRoutes() []route {
	w := authz.ShieldWrite
	return []route{
		{method: "POST", path: "/v1/shield/evaluate", perm: authz.Read, idem: idemOptional, body: bodyJSON, handler: s.handleEvaluate},
		{method: "GET", path: "/v1/shield/capabilities", perm: authz.Read, handler: s.handleCapabilities},
		{method: "GET", path: "/v1/shield/decisions", perm: authz.Read, handler: s.handleListDecisions},

		{method: "POST", path: "/v1/shield/approvals/propose", perm: authz.Read, idem: idemRequired, body: bodyJSON, sealed: true, handler: s.handlePropose},
		{method: "POST", path: "/v1/shield/approvals/{id}/resolve", perm: w, idem: idemRequired, body: bodyJSON, sealed: true, sessionOnly: true, handler: s.handleResolve},
		{method: "GET", path: "/v1/shield/approvals/{id}", perm: authz.Read, handler: s.handleGetApproval},

		{method: "GET", path: "/v1/shield/kill-switches", perm: authz.Read, handler: s.handleListKillSwitches},
		{method: "POST", path: "/v1/shield/kill-switches", perm: w, idem: idemRequired, body: bodyJSON, tool: gate.ToolEngageKillSwitch, handler: s.handleEngageKillSwitch},
		{method: "DELETE", path: "/v1/shield/kill-switches/{id}", perm: w, idem: idemRequired, tool: gate.ToolReleaseKillSwitch, handler: s.handleReleaseKillSwitch},

		{method: "GET", path: "/v1/shield/trust/publishers", perm: authz.Read, handler: s.handleListPublishers},
		{method: "POST", path: "/v1/shield/trust/publishers", perm: w, idem: idemRequired, body: bodyJSON, tool: gate.ToolTrustPublisher, handler: s.handleAddPublisher},
		{method: "GET", path: "/v1/shield/trust/digests", perm: authz.Read, handler: s.handleListPins},
		{method: "POST", path: "/v1/shield/trust/digests", perm: w, idem: idemRequired, body: bodyJSON, tool: gate.ToolPinDigest, handler: s.handlePinDigest},
		{method: "POST", path: "/v1/shield/trust/digests/revoke", perm: w, idem: idemRequired, body: bodyJSON, tool: gate.ToolRevokeDigest, handler: s.handleRevokeDigest},
		{method: "GET", path: "/v1/shield/servers", perm: authz.Read, handler: s.handleListServers},
		{method: "POST", path: "/v1/shield/servers", perm: w, idem: idemRequired, body: bodyJSON, tool: gate.ToolRegisterServer, handler: s.handleRegisterServer},
		{method: "POST", path: "/v1/shield/servers/{id}/status", perm: w, idem: idemRequired, body: bodyJSON, tool: gate.ToolSetServerStatus, handler: s.handleServerStatus},

		{method: "GET", path: "/v1/shield/settings", perm: authz.Read, handler: s.handleSettings},
		{method: "PUT", path: "/v1/shield/settings/{name}", perm: w, idem: idemRequired, body: bodyJSON, tool: gate.ToolChangeSetting, handler: s.handleSetSetting},
		{method: "DELETE", path: "/v1/shield/settings/{name}", perm: w, idem: idemRequired, tool: gate.ToolChangeSetting, handler: s.handleDeleteSetting},

		{method: "GET", path: "/v1/shield/sampling-policies", perm: authz.Read, handler: s.handleListSampling},
		{method: "POST", path: "/v1/shield/sampling-policies", perm: w, idem: idemRequired, body: bodyJSON, tool: gate.ToolChangeSampling, handler: s.handleCreateSampling},
		{method: "DELETE", path: "/v1/shield/sampling-policies/{id}", perm: w, idem: idemRequired, tool: gate.ToolChangeSampling, handler: s.handleDeleteSampling},

		{method: "GET", path: "/v1/shield/ui-integrity-sessions", perm: authz.Read, handler: s.handleListUISessions},
		{method: "POST", path: "/v1/shield/ui-integrity-sessions", perm: w, idem: idemRequired, body: bodyJSON, tool: gate.ToolChangeUISession, handler: s.handleCreateUISession},
		{method: "DELETE", path: "/v1/shield/ui-integrity-sessions/{id}", perm: w, idem: idemRequired, tool: gate.ToolChangeUISession, handler: s.handleRevokeUISession},

		{method: "GET", path: "/v1/shield/incident-drills", perm: authz.Read, handler: s.handleListDrills},
		{method: "POST", path: "/v1/shield/incident-drills", perm: w, idem: idemRequired, body: bodyJSON, tool: gate.ToolRunDrill, handler: s.handleRunDrill},
	}
}

// The mutation guard. Every mutating /v1/* route outside /v1/shield names
// the built-in tool it performs; before its handler runs, Shield decides
// the call. A blocked call answers 403 and its idempotency key is
// released, so that the retry with x-shield-approval-token runs anew.

// guard decides a guarded route's call.
func (s *Server) guard(rt route, req *request) error {
	args, shown, err := routeArgs(rt, req)
	if err != nil {
		return err
	}
	res := s.gate.Decide(req.ctx, &gate.Call{
		Principal:     *req.principal,
		Server:        shield.BuiltinServerID,
		Tool:          rt.tool,
		Args:          args,
		ApprovalArgs:  shown,
		ApprovalToken: req.http.Header.Get("x-shield-approval-token"),
		Route:         rt.pattern(),
	})
	s.metrics.shieldDecisions.WithLabelValues(string(res.Decision.Outcome)).Inc()
	return res.Err()
}

// routeArgs are a guarded call's arguments: the body's fields and the
// path's parameters (which win). What an approval shows and stores is the
// same, except that document content is replaced by its hash and size.
func routeArgs(rt route, req *request) (args, shown json.RawMessage, err error) {
	m := map[string]any{}
	if len(req.body) > 0 {
		v, err := receipt.ParseJSON(req.body)
		if err != nil {
			return nil, nil, vaultcrux.E(vaultcrux.Invalid, "the request body is not strict JSON")
		}
		if obj, ok := v.(map[string]any); ok {
			m = obj
		}
	}
	for _, name := range pathParams(rt.path) {
		m[name] = req.http.PathValue(name)
	}
	full, err := receipt.Canonical(m)
	if err != nil {
		return nil, nil, vaultcrux.E(vaultcrux.Invalid, "the request cannot be canonicalised")
	}
	if c, ok := m["content"].(string); ok {
		m["content"] = map[string]any{"blake3": receipt.Hash([]byte(c)), "bytes": float64(len(c))}
		shownB, err := receipt.Canonical(m)
		if err != nil {
			return nil, nil, err
		}
		return full, shownB, nil
	}
	return full, full, nil
}

func pathParams(p string) []string {
	var out []string
	for _, seg := range strings.Split(p, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(seg, "{"), "}"))
		}
	}
	return out
}

// readGuard stops a killed agent's reads (see gate.ReadKilled).
func (s *Server) readGuard(req *request, tool string) error {
	if res := s.gate.ReadKilled(req.ctx, &gate.Call{Principal: *req.principal, Server: shield.BuiltinServerID, Tool: tool, Route: req.state.route}); res != nil {
		s.metrics.shieldDecisions.WithLabelValues(string(res.Decision.Outcome)).Inc()
		return res.Err()
	}
	return nil
}

// shieldErrorBody renders a blocked call: 403 shield_denied with the
// denial type as its code, or 403 approval_required.
func shieldErrorBody(de *gate.DecisionError, requestID string) map[string]any {
	r := de.Result
	obj := map[string]any{
		"type":       "shield_denied",
		"code":       string(r.Decision.DenialType),
		"message":    de.Message(),
		"requestId":  requestID,
		"decisionId": nullable(r.DecisionID, r.Recorded),
		"stage":      string(r.Decision.Stage),
		"receiptId":  nullable(r.ReceiptID, r.Recorded),
	}
	if r.Decision.Outcome == shield.OutcomeApprovalRequired {
		obj["type"], obj["code"] = "approval_required", "approval_required"
		obj["approvalRequestId"] = r.ApprovalRequestID
	}
	return obj
}

func nullable(v string, ok bool) any {
	if !ok || v == "" {
		return nil
	}
	return v
}

func asDecisionError(err error) (*gate.DecisionError, bool) {
	var de *gate.DecisionError
	ok := errors.As(err, &de)
	return de, ok
}

// Evaluate.

type evaluateBody struct {
	tenantRef
	Tool          string          `json:"tool"`
	Server        string          `json:"server"`
	Args          json.RawMessage `json:"args"`
	Inputs        []gate.InputRef `json:"inputs"`
	ApprovalToken string          `json:"approvalToken"`
	// UI, when present, says that the call comes from a tool's UI.
	UI *struct {
		SessionID string `json:"sessionId"`
		Origin    string `json:"origin"`
	} `json:"ui"`
}

func (s *Server) handleEvaluate(req *request) (*response, error) {
	var in evaluateBody
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if in.Tool == "" || len(in.Tool) > 200 || len(in.Server) > 200 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "tool is required (at most 200 bytes); server at most 200 bytes")
	}
	if len(in.Args) > 0 {
		if _, err := shield.ArgsHash(in.Args); err != nil {
			return nil, vaultcrux.E(vaultcrux.Invalid, "args must be strict JSON")
		}
	}
	if len(in.Inputs) > gate.MaxInputs {
		return nil, vaultcrux.Ef(vaultcrux.Invalid, "at most %d inputs", gate.MaxInputs)
	}
	for _, x := range in.Inputs {
		if err := x.Validate(); err != nil {
			return nil, err
		}
	}
	token := in.ApprovalToken
	if h := req.http.Header.Get("x-shield-approval-token"); h != "" {
		if token != "" && token != h {
			return nil, vaultcrux.E(vaultcrux.Invalid, "approvalToken and x-shield-approval-token differ")
		}
		token = h
	}
	call := &gate.Call{Principal: *req.principal, Server: in.Server, Tool: in.Tool, Args: in.Args, Inputs: in.Inputs, ApprovalToken: token, Route: "POST /v1/shield/evaluate"}
	if in.UI != nil {
		call.FromToolUI, call.UISessionID, call.UIOrigin = true, in.UI.SessionID, in.UI.Origin
	}
	res := s.gate.Decide(req.ctx, call)
	s.metrics.shieldDecisions.WithLabelValues(string(res.Decision.Outcome)).Inc()
	d := res.Decision
	out := map[string]any{
		"decisionId":        nullable(res.DecisionID, res.Recorded),
		"outcome":           d.Outcome,
		"verdict":           d.Verdict,
		"stage":             nullable(string(d.Stage), true),
		"denialType":        nullable(string(d.DenialType), true),
		"approvalRequestId": nullable(res.ApprovalRequestID, true),
		"enforced":          d.Enforced,
		"wouldBlock":        d.WouldBlock,
		"mode":              d.Mode,
		"tainted":           d.Tainted,
		"taintSources":      d.TaintSources,
		"server":            d.Server,
		"tool":              d.Tool,
		"manifestHash":      d.ManifestHash,
		"argsHash":          d.ArgsHash,
		"approvalId":        nullable(d.ApprovalID, true),
		"killSwitchId":      nullable(d.KillSwitchID, true),
		"detail":            d.Detail,
		"recorded":          res.Recorded,
		"receiptId":         nullable(res.ReceiptID, res.Recorded),
	}
	if d.TaintSources == nil {
		out["taintSources"] = []string{}
	}
	return &response{data: out, receiptID: res.ReceiptID}, nil
}

func (s *Server) handleCapabilities(req *request) (*response, error) {
	c, err := s.gate.Capabilities(req.ctx, req.principal.Tenant)
	if err != nil {
		return nil, err
	}
	return &response{data: c}, nil
}

func (s *Server) handleListDecisions(req *request) (*response, error) {
	limit, before, err := pageParams(req.http)
	if err != nil {
		return nil, err
	}
	q := req.http.URL.Query()
	f := store.DecisionFilter{Outcome: q.Get("outcome"), Tool: q.Get("tool")}
	switch f.Outcome {
	case "", "allow", "deny", "approval_required":
	default:
		return nil, vaultcrux.E(vaultcrux.Invalid, `outcome must be "allow", "deny" or "approval_required"`)
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return nil, vaultcrux.E(vaultcrux.Invalid, "since must be an RFC 3339 time")
		}
		f.Since = t
	}
	ds, err := s.gate.ListDecisions(req.ctx, req.principal.Tenant, f, before, limit+1)
	if err != nil {
		return nil, err
	}
	var next *string
	if len(ds) > limit {
		ds = ds[:limit]
		c := encodeCursor(ds[limit-1].ID)
		next = &c
	}
	return &response{data: map[string]any{"items": ds, "nextCursor": next}}, nil
}

// Approvals.

type proposeBody struct {
	tenantRef
	gate.ProposeRequest
}

func (s *Server) handlePropose(req *request) (*response, error) {
	var in proposeBody
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	a, err := s.gate.Propose(req.ctx, *req.principal, &in.ProposeRequest)
	if err != nil {
		return nil, err
	}
	return &response{status: http.StatusCreated, data: a, receiptID: a.ReceiptID}, nil
}

type resolveBody struct {
	tenantRef
	Decision string `json:"decision"`
	Note     string `json:"note"`
}

func (s *Server) handleResolve(req *request) (*response, error) {
	var in resolveBody
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	r, err := s.gate.Resolve(req.ctx, *req.principal, req.http.PathValue("id"), in.Decision, in.Note)
	if err != nil {
		return nil, err
	}
	return &response{data: r, receiptID: r.ReceiptID}, nil
}

func (s *Server) handleGetApproval(req *request) (*response, error) {
	a, err := s.gate.GetApproval(req.ctx, req.principal.Tenant, req.http.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return &response{data: a}, nil
}

// Kill switches.

type killBody struct {
	tenantRef
	Scope  string `json:"scope"`
	Target string `json:"target"`
	Reason string `json:"reason"`
}

func (s *Server) handleListKillSwitches(req *request) (*response, error) {
	active := req.http.URL.Query().Get("active") == "true"
	ks, err := s.gate.ListKillSwitches(req.ctx, req.principal.Tenant, active)
	if err != nil {
		return nil, err
	}
	return &response{data: map[string]any{"items": ks, "nextCursor": nil}}, nil
}

func (s *Server) handleEngageKillSwitch(req *request) (*response, error) {
	var in killBody
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	k, err := s.gate.EngageKillSwitch(req.ctx, *req.principal, in.Scope, in.Target, in.Reason)
	if err != nil {
		return nil, err
	}
	return &response{status: http.StatusCreated, data: k, receiptID: k.ReceiptID}, nil
}

func (s *Server) handleReleaseKillSwitch(req *request) (*response, error) {
	k, err := s.gate.ReleaseKillSwitch(req.ctx, *req.principal, req.http.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return &response{data: k, receiptID: k.ReceiptID}, nil
}

// Trust registry.

type publisherBody struct {
	tenantRef
	Name string `json:"name"`
	URL  string `json:"url"`
}

func (s *Server) handleListPublishers(req *request) (*response, error) {
	limit, after, err := pageParams(req.http)
	if err != nil {
		return nil, err
	}
	ps, err := s.gate.ListPublishers(req.ctx, req.principal.Tenant, after, limit+1)
	if err != nil {
		return nil, err
	}
	var next *string
	if len(ps) > limit {
		ps = ps[:limit]
		c := encodeCursor(ps[limit-1].ID)
		next = &c
	}
	return &response{data: map[string]any{"items": ps, "nextCursor": next}}, nil
}

func (s *Server) handleAddPublisher(req *request) (*response, error) {
	var in publisherBody
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	p, err := s.gate.AddPublisher(req.ctx, *req.principal, in.Name, in.URL)
	if err != nil {
		return nil, err
	}
	return &response{status: http.StatusCreated, data: p, receiptID: p.ReceiptID}, nil
}

type pinBody struct {
	tenantRef
	ServerID string `json:"serverId"`
	Digest   string `json:"digest"`
	Reason   string `json:"reason,omitempty"`
}

func (s *Server) handleListPins(req *request) (*response, error) {
	ps, err := s.gate.ListPins(req.ctx, req.principal.Tenant, req.http.URL.Query().Get("serverId"))
	if err != nil {
		return nil, err
	}
	return &response{data: map[string]any{"items": ps, "nextCursor": nil}}, nil
}

func (s *Server) handlePinDigest(req *request) (*response, error) {
	var in pinBody
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if in.Reason != "" {
		return nil, vaultcrux.E(vaultcrux.Invalid, `unknown field "reason"`)
	}
	p, err := s.gate.PinDigest(req.ctx, *req.principal, in.ServerID, in.Digest)
	if err != nil {
		return nil, err
	}
	return &response{status: http.StatusCreated, data: p, receiptID: p.ReceiptID}, nil
}

func (s *Server) handleRevokeDigest(req *request) (*response, error) {
	var in pinBody
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	p, err := s.gate.RevokeDigest(req.ctx, *req.principal, in.ServerID, in.Digest, in.Reason)
	if err != nil {
		return nil, err
	}
	return &response{data: p, receiptID: p.ReceiptID}, nil
}

type serverBody struct {
	tenantRef
	gate.ServerSpec
}

func (s *Server) handleListServers(req *request) (*response, error) {
	limit, after, err := pageParams(req.http)
	if err != nil {
		return nil, err
	}
	ss, err := s.gate.ListServers(req.ctx, req.principal.Tenant, after, limit+1)
	if err != nil {
		return nil, err
	}
	var next *string
	if len(ss) > limit {
		ss = ss[:limit]
		c := encodeCursor(ss[limit-1].ID)
		next = &c
	}
	return &response{data: map[string]any{"items": ss, "nextCursor": next}}, nil
}

func (s *Server) handleRegisterServer(req *request) (*response, error) {
	var in serverBody
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	sv, err := s.gate.RegisterServer(req.ctx, *req.principal, &in.ServerSpec)
	if err != nil {
		return nil, err
	}
	return &response{status: http.StatusCreated, data: sv, receiptID: sv.ReceiptID}, nil
}

type statusBody struct {
	tenantRef
	Status string `json:"status"`
}

func (s *Server) handleServerStatus(req *request) (*response, error) {
	var in statusBody
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	sv, err := s.gate.SetServerStatus(req.ctx, *req.principal, req.http.PathValue("id"), in.Status)
	if err != nil {
		return nil, err
	}
	return &response{data: sv, receiptID: sv.ReceiptID}, nil
}

// Settings.

type settingBody struct {
	tenantRef
	Value string `json:"value"`
}

func (s *Server) handleSettings(req *request) (*response, error) {
	set, err := s.gate.Settings(req.ctx, req.principal.Tenant)
	if err != nil {
		return nil, err
	}
	return &response{data: map[string]any{"items": set}}, nil
}

func (s *Server) handleSetSetting(req *request) (*response, error) {
	var in settingBody
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if in.Value == "" {
		return nil, vaultcrux.E(vaultcrux.Invalid, "value is required (DELETE removes an override)")
	}
	return s.changeSetting(req, in.Value)
}

func (s *Server) handleDeleteSetting(req *request) (*response, error) {
	return s.changeSetting(req, "")
}

func (s *Server) changeSetting(req *request, value string) (*response, error) {
	name := req.http.PathValue("name")
	rid, err := s.gate.SetSetting(req.ctx, *req.principal, name, value)
	if err != nil {
		return nil, err
	}
	set, err := s.gate.Settings(req.ctx, req.principal.Tenant)
	if err != nil {
		return nil, err
	}
	for _, x := range set {
		if x.Name == name {
			return &response{data: map[string]any{"setting": x, "receiptId": rid}, receiptID: rid}, nil
		}
	}
	return &response{data: map[string]any{"receiptId": rid}, receiptID: rid}, nil
}

// Sampling policies.

type samplingBody struct {
	tenantRef
	Scope    string `json:"scope"`
	Target   string `json:"target"`
	MaxCalls int    `json:"maxCalls"`
	WindowMs int64  `json:"windowMs"`
	Per      string `json:"per"`
}

func (s *Server) handleListSampling(req *request) (*response, error) {
	ps, err := s.gate.ListSamplingPolicies(req.ctx, req.principal.Tenant)
	if err != nil {
		return nil, err
	}
	return &response{data: map[string]any{"items": ps, "nextCursor": nil}}, nil
}

func (s *Server) handleCreateSampling(req *request) (*response, error) {
	var in samplingBody
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	p, err := s.gate.CreateSamplingPolicy(req.ctx, *req.principal, &gate.SamplingPolicy{Scope: in.Scope, Target: in.Target, MaxCalls: in.MaxCalls, WindowMs: in.WindowMs, Per: in.Per})
	if err != nil {
		return nil, err
	}
	return &response{status: http.StatusCreated, data: p, receiptID: p.ReceiptID}, nil
}

func (s *Server) handleDeleteSampling(req *request) (*response, error) {
	p, err := s.gate.DeleteSamplingPolicy(req.ctx, *req.principal, req.http.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return &response{data: p, receiptID: p.ReceiptID}, nil
}

// UI integrity sessions.

type uiSessionBody struct {
	tenantRef
	Origin     string   `json:"origin"`
	ToolAllow  []string `json:"toolAllow"`
	TTLSeconds int64    `json:"ttlSeconds"`
}

func (s *Server) handleListUISessions(req *request) (*response, error) {
	limit, after, err := pageParams(req.http)
	if err != nil {
		return nil, err
	}
	us, err := s.gate.ListUISessions(req.ctx, req.principal.Tenant, after, limit+1)
	if err != nil {
		return nil, err
	}
	var next *string
	if len(us) > limit {
		us = us[:limit]
		c := encodeCursor(us[limit-1].ID)
		next = &c
	}
	return &response{data: map[string]any{"items": us, "nextCursor": next}}, nil
}

func (s *Server) handleCreateUISession(req *request) (*response, error) {
	var in uiSessionBody
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if in.TTLSeconds == 0 {
		in.TTLSeconds = 3600
	}
	if in.TTLSeconds < 0 || in.TTLSeconds > 86400 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "ttlSeconds is 1 to 86400")
	}
	u, err := s.gate.CreateUISession(req.ctx, *req.principal, in.Origin, in.ToolAllow, time.Duration(in.TTLSeconds)*time.Second)
	if err != nil {
		return nil, err
	}
	return &response{status: http.StatusCreated, data: u, receiptID: u.ReceiptID}, nil
}

func (s *Server) handleRevokeUISession(req *request) (*response, error) {
	u, err := s.gate.RevokeUISession(req.ctx, *req.principal, req.http.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return &response{data: u, receiptID: u.ReceiptID}, nil
}

// Incident drills.

type drillBody struct {
	tenantRef
	Scenario string `json:"scenario"`
}

func (s *Server) handleListDrills(req *request) (*response, error) {
	limit, before, err := pageParams(req.http)
	if err != nil {
		return nil, err
	}
	ds, err := s.gate.ListDrills(req.ctx, req.principal.Tenant, before, limit+1)
	if err != nil {
		return nil, err
	}
	var next *string
	if len(ds) > limit {
		ds = ds[:limit]
		c := encodeCursor(ds[limit-1].ID)
		next = &c
	}
	return &response{data: map[string]any{"items": ds, "nextCursor": next}}, nil
}

func (s *Server) handleRunDrill(req *request) (*response, error) {
	var in drillBody
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	d, err := s.gate.RunDrill(req.ctx, *req.principal, in.Scenario)
	if err != nil {
		return nil, err
	}
	return &response{status: http.StatusCreated, data: d, receiptID: d.ReceiptID}, nil
}
