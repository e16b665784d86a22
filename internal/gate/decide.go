package gate

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
	"github.com/vaultcrux/vaultcrux/internal/shield"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// InputRef is one input a call's arguments derive from (contract §7):
// exactly one of a receipt id, a chunk id or a declared source.
type InputRef struct {
	ReceiptID string `json:"receiptId,omitempty"`
	ChunkID   string `json:"chunkId,omitempty"`
	Source    string `json:"source,omitempty"`
}

// Validate checks that exactly one field is set and that it is sane.
func (in InputRef) Validate() error {
	n := 0
	for _, v := range []string{in.ReceiptID, in.ChunkID, in.Source} {
		if v != "" {
			n++
			if len(v) > 512 || strings.ContainsAny(v, "\x00\r\n") {
				return vaultcrux.E(vaultcrux.Invalid, "an input reference is at most 512 bytes, on one line")
			}
		}
	}
	if n != 1 {
		return vaultcrux.E(vaultcrux.Invalid, "each input must have exactly one of receiptId, chunkId and source")
	}
	return nil
}

// MaxInputs bounds the inputs of one call.
const MaxInputs = 100

// Call is an action to decide.
type Call struct {
	Principal vaultcrux.Principal
	Server    string // "" to resolve the tool by name
	Tool      string
	Args      json.RawMessage // JSON object; empty means {}
	// ApprovalArgs, when set, is what an approval request shows and
	// stores (sealed) instead of Args: the built-in routes pass a digest of
	// content rather than the content. The binding is always over Args.
	ApprovalArgs  json.RawMessage
	Inputs        []InputRef
	ApprovalToken string
	Route         string // the HTTP route or MCP method guarded, recorded
	FromToolUI    bool
	UISessionID   string
	UIOrigin      string
}

// Result is a recorded (or, when Recorded is false, unrecordable)
// decision.
type Result struct {
	DecisionID        string          `json:"decisionId"`
	Decision          shield.Decision `json:"decision"`
	ApprovalRequestID string          `json:"approvalRequestId,omitempty"`
	ReceiptID         string          `json:"receiptId"`
	Recorded          bool            `json:"recorded"`

	inputs      []shield.Input // the inputs as resolved, for the record
	storedMarks []sessionMark  // session taint the record wrote
	// redecide evaluates the call again with the approval token's status
	// changed: for a token found spent or expired when it is consumed.
	redecide func(shield.ApprovalStatus) shield.Decision
}

// Blocked reports whether the call must not run.
func (r *Result) Blocked() bool { return r.Decision.Outcome != shield.OutcomeAllow }

// Err returns the error a guarded route or tool call answers with: nil
// for an allow, else a Forbidden error that carries the decision (see
// DecisionError).
func (r *Result) Err() error {
	if !r.Blocked() {
		return nil
	}
	return &DecisionError{Result: r}
}

// DecisionError is the error of a blocked call: 403 shield_denied with the
// denial type as code, or 403 approval_required.
type DecisionError struct{ Result *Result }

func (e *DecisionError) Error() string {
	d := e.Result.Decision
	if d.Outcome == shield.OutcomeApprovalRequired {
		return "approval required"
	}
	return "shield denied: " + string(d.DenialType)
}

// Message is the user-safe message.
func (e *DecisionError) Message() string {
	d := e.Result.Decision
	if d.Outcome == shield.OutcomeApprovalRequired {
		return "this action needs an approval: resolve approval request " + e.Result.ApprovalRequestID + " and retry with its token in x-shield-approval-token"
	}
	return "Shield denied this action at stage " + string(d.Stage) + ": " + string(d.DenialType)
}

// policyError is a deny that no stage reached: the decision could not be
// made.
func policyError(call *Call, detail string) shield.Decision {
	return shield.Decision{
		Outcome: shield.OutcomeDeny, Verdict: shield.OutcomeDeny, Stage: shield.StagePolicy,
		DenialType: shield.DenialPolicyError, Enforced: true, WouldBlock: true, Detail: detail,
		Server: call.Server, Tool: call.Tool,
		Findings: []shield.Finding{{Stage: shield.StagePolicy, Verdict: shield.OutcomeDeny, DenialType: shield.DenialPolicyError, Enforced: true, Detail: detail}},
	}
}

// Decide decides a call and records the decision. It never returns an
// error: whatever goes wrong is a deny (policy_error), recorded when it
// can be. A blocked call's Result.Err is the error to answer with.
func (g *Gate) Decide(ctx context.Context, call *Call) *Result {
	ctx = context.WithoutCancel(ctx) // a decision, once begun, is recorded
	p := call.Principal
	now := g.clock()
	id, err := g.newID()
	if err != nil {
		return &Result{Decision: policyError(call, "no decision id")}
	}
	res := &Result{DecisionID: id}

	st, err := g.state(ctx, p.Tenant)
	if err != nil {
		g.log.LogAttrs(ctx, slog.LevelError, "shield state", slog.String("tenant", string(p.Tenant)), slog.String("error", err.Error()))
		res.Decision = policyError(call, "the Shield state could not be loaded")
		return g.record(ctx, call, res, nil, now, nil)
	}
	inputs, err := g.resolveInputs(ctx, p, call.Inputs)
	if err == nil {
		res.inputs = inputs
	}
	if err != nil {
		g.log.LogAttrs(ctx, slog.LevelError, "shield inputs", slog.String("tenant", string(p.Tenant)), slog.String("error", err.Error()))
		res.Decision = policyError(call, "the inputs' trust could not be resolved")
		return g.record(ctx, call, res, st, now, nil)
	}
	req := &shield.Request{
		Tenant: string(p.Tenant), AgentID: p.AgentID, SessionID: SessionKey(p),
		Server: call.Server, Tool: call.Tool, Args: call.Args, Inputs: inputs, Now: now,
		FromToolUI: call.FromToolUI, UISessionID: call.UISessionID, UIOrigin: call.UIOrigin,
	}
	if src, ok := g.taint.tainted(p.Tenant, req.SessionID, g.now()); ok {
		req.SessionTainted = true
		_ = src
	}
	var approval *store.ShieldApproval
	if err := g.prepare(ctx, st, call, req, &approval); err != nil {
		g.log.LogAttrs(ctx, slog.LevelError, "shield prepare", slog.String("tenant", string(p.Tenant)), slog.String("error", err.Error()))
		res.Decision = policyError(call, "the decision's inputs could not be read")
		return g.record(ctx, call, res, st, now, nil)
	}
	res.Decision = g.evaluate(st, req)

	// A valid token permits the call only once. The record of the allow
	// consumes it, in the same transaction (see decisionItem), so that an
	// allow that is not recorded — the signer down, the store failing —
	// does not spend it; when a concurrent call spent it first, or it
	// expired since, record decides again without it.
	if res.Decision.Outcome == shield.OutcomeAllow && req.Approval.Status == shield.ApprovalValid && req.Approval.Presented {
		res.Decision.ApprovalID = approval.ID
	} else {
		approval = nil
	}
	res.redecide = func(s shield.ApprovalStatus) shield.Decision {
		req.Approval.Status = s
		return g.evaluate(st, req)
	}
	out := g.record(ctx, call, res, st, now, approval)
	if out.Recorded && out.Decision.Outcome == shield.OutcomeAllow && out.Decision.Tainted {
		// The action ran on tainted inputs: whatever it produces for this
		// session is tainted too. The record stored the marks that the
		// store lacked (see decisionItem).
		g.markSessions(p, "decision:"+out.DecisionID)
		g.markedStored(p.Tenant, out.storedMarks)
	}
	return out
}

func (g *Gate) evaluate(st *tenantState, req *shield.Request) shield.Decision {
	if st.policy == nil || st.manifest == nil {
		d := shield.Evaluate(nil, st.manifest, st.kills, req)
		d.Detail = st.broken
		return d
	}
	return shield.Evaluate(st.policy, st.manifest, st.kills, req)
}

// prepare resolves what the engine needs from the store: the approval
// token's state, recent call counts for sampling, UI sessions.
func (g *Gate) prepare(ctx context.Context, st *tenantState, call *Call, req *shield.Request, approval **store.ShieldApproval) error {
	if st.manifest == nil || st.policy == nil {
		return nil // the engine denies policy_error; nothing to read
	}
	entry, known := st.manifest.Lookup(call.Server, call.Tool)
	server := call.Server
	if known {
		server = entry.Server
	}
	argsHash, argsErr := shield.ArgsHash(call.Args)
	var samp []shield.SamplingPolicy
	if known {
		samp = st.policy.SamplingFor(server, call.Tool, entry.Tool.Class)
	} else {
		samp = st.policy.SamplingFor(server, call.Tool, "")
	}
	if call.ApprovalToken == "" && len(samp) == 0 && !(call.FromToolUI && call.UISessionID != "") {
		return nil // nothing to read: no transaction
	}
	return g.st.ForTenant(call.Principal.Tenant).Tx(ctx, func(tx store.TenantTx) error {
		if call.ApprovalToken != "" {
			req.Approval.Presented = true
			req.Approval.Status = shield.ApprovalInvalid
			a, err := tx.FindApprovalByToken(hashToken(call.ApprovalToken))
			switch {
			case vaultcrux.ErrorKind(err) == vaultcrux.NotFound:
			case err != nil:
				return err
			default:
				req.Approval.ApprovalID = a.ID
				bound := known && argsErr == nil &&
					a.Binding == shield.ApprovalBinding(string(call.Principal.Tenant), a.ID, server, call.Tool, argsHash, st.manifest.Hash())
				switch {
				case !bound:
				case a.Status == "executed":
					req.Approval.Status = shield.ApprovalUsed
				case a.Status == "approved" && a.TokenExpiresAt != nil && req.Now.Before(*a.TokenExpiresAt):
					req.Approval.Status = shield.ApprovalValid
					*approval = a
				case a.Status == "approved":
					req.Approval.Status = shield.ApprovalExpired
				}
			}
		}
		if len(samp) > 0 {
			req.RecentCalls = map[string]int{}
			for _, sp := range samp {
				agent := ""
				if sp.Per == shield.PerAgent {
					agent = call.Principal.AgentID
				}
				tools := []string{call.Tool}
				if sp.Tool == "" && sp.Class != "" {
					tools = toolsOfClass(st.manifest, sp.Class)
				}
				n := 0
				for _, tool := range tools {
					c, err := tx.CountRecentDecisions(tool, agent, req.Now.Add(-sp.Window))
					if err != nil {
						return err
					}
					n += c
				}
				req.RecentCalls[sp.ID] = n
			}
		}
		if call.FromToolUI && call.UISessionID != "" {
			u, err := tx.GetUISession(call.UISessionID)
			switch {
			case vaultcrux.ErrorKind(err) == vaultcrux.NotFound:
			case err != nil:
				return err
			case u.RevokedAt == nil:
				req.UISessions = map[string]shield.UISession{u.ID: {ID: u.ID, Origin: u.Origin, ToolAllow: u.ToolAllow, ExpiresAt: u.ExpiresAt}}
			}
		}
		return nil
	})
}

func toolsOfClass(m *shield.Manifest, class shield.CapabilityClass) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range m.Entries() {
		if e.Tool.Class == class && !seen[e.Tool.Name] {
			seen[e.Tool.Name] = true
			out = append(out, e.Tool.Name)
		}
	}
	return out
}

// resolveInputs labels each input by its provenance: a chunk by its stored
// trust label, an answer receipt by the chunks it cites, a declared source
// as evidence.Provenance would label it. What cannot be found is unknown,
// which taints.
func (g *Gate) resolveInputs(ctx context.Context, p vaultcrux.Principal, refs []InputRef) ([]shield.Input, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	out := make([]shield.Input, len(refs))
	var chunkIDs []string
	for i, in := range refs {
		switch {
		case in.Source != "":
			out[i] = shield.Input{Ref: in.Source, Kind: shield.InputSource, Trust: sourceTrust(in.Source, p)}
		case in.ChunkID != "":
			out[i] = shield.Input{Ref: in.ChunkID, Kind: shield.InputChunk, Trust: shield.TrustUnknown}
			chunkIDs = append(chunkIDs, in.ChunkID)
		default:
			out[i] = shield.Input{Ref: in.ReceiptID, Kind: shield.InputReceipt, Trust: shield.TrustUnknown}
		}
	}
	err := g.st.ForTenant(p.Tenant).Tx(ctx, func(tx store.TenantTx) error {
		receiptChunks := map[int][]string{}
		for i, in := range refs {
			if in.ReceiptID == "" {
				continue
			}
			rec, err := tx.GetReceipt(in.ReceiptID)
			if vaultcrux.ErrorKind(err) == vaultcrux.NotFound {
				continue
			}
			if err != nil {
				return err
			}
			ids, ok := answerChunks(rec.Body)
			if !ok {
				continue // not an answer receipt: its trust is unknown
			}
			receiptChunks[i] = ids
			chunkIDs = append(chunkIDs, ids...)
		}
		trust := map[string]string{}
		if len(chunkIDs) > 0 {
			cs, err := tx.GetChunks(chunkIDs)
			if err != nil {
				return err
			}
			for _, c := range cs {
				trust[c.ID] = c.Trust
			}
		}
		for i, in := range refs {
			switch {
			case in.ChunkID != "":
				if tr, ok := trust[in.ChunkID]; ok {
					out[i].Trust = shield.TrustLabel(tr)
				}
			case in.ReceiptID != "":
				ids, ok := receiptChunks[i]
				if !ok {
					continue
				}
				label := shield.TrustTrusted
				for _, id := range ids {
					if trust[id] != string(shield.TrustTrusted) {
						label = shield.TrustUntrusted
						break
					}
				}
				out[i].Trust = label
			}
		}
		return nil
	})
	return out, err
}

// answerChunks returns the chunk ids an answer receipt cites, and false for
// a receipt that is not an answer or cites evidence without a chunk id.
func answerChunks(body []byte) ([]string, bool) {
	var doc struct {
		AnswerID string `json:"answerId"`
		Evidence []struct {
			ChunkID string `json:"chunkId"`
		} `json:"evidence"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.AnswerID == "" {
		return nil, false
	}
	ids := make([]string, 0, len(doc.Evidence))
	for _, e := range doc.Evidence {
		if e.ChunkID == "" {
			return nil, false
		}
		ids = append(ids, e.ChunkID)
	}
	return ids, true
}

// sourceTrust labels a declared source: only "user" is trusted, and only
// when no agent declares it (an agent cannot vouch that its input is the
// user's; see evidence.Provenance).
func sourceTrust(source string, p vaultcrux.Principal) shield.TrustLabel {
	if source == "user" && p.AgentID == "" {
		return shield.TrustTrusted
	}
	return shield.TrustUntrusted
}

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// record writes the decision, its outbox event, its receipt and what goes
// with it (a taint event, a new approval request, the execution of an
// approval) in one ledger commit. An allow must be signed: with no signer
// it is turned into a policy_error deny, stored with a pending receipt.
func (g *Gate) record(ctx context.Context, call *Call, res *Result, st *tenantState, now time.Time, consumed *store.ShieldApproval) *Result {
	p := call.Principal
	d := &res.Decision
	if d.Tool == "" {
		d.Tool = call.Tool
	}
	if d.ManifestHash == "" && st != nil && st.manifest != nil {
		d.ManifestHash = st.manifest.Hash()
	}
	if d.ArgsHash == "" {
		if h, err := shield.ArgsHash(call.Args); err == nil {
			d.ArgsHash = h
		}
	}
	unsigned := false
	for {
		item, err := g.decisionItem(ctx, call, res, now, consumed)
		if err != nil {
			g.log.LogAttrs(ctx, slog.LevelError, "shield record", slog.String("tenant", string(p.Tenant)), slog.String("error", err.Error()))
			return g.unrecorded(call, res, "the decision could not be recorded")
		}
		issued, err := g.led.Commit(ctx, item)
		if err == nil {
			res.ReceiptID = issued[0].ID
			res.Recorded = true
			return res
		}
		var spent *spentToken
		if consumed != nil && errors.As(err, &spent) && res.redecide != nil {
			// Nothing of the item was written: decide again without the
			// token, which another call spent or which expired meanwhile.
			consumed = nil
			res.Decision = res.redecide(spent.status)
			res.ApprovalRequestID = ""
			continue
		}
		if errors.Is(err, ledger.ErrUnsigned) && !unsigned {
			// Fail closed: an allow without a signed receipt is not given.
			// Nothing was written, the approval token (if any) included.
			unsigned = true
			manifestHash, argsHash := d.ManifestHash, d.ArgsHash // d is &res.Decision
			res.Decision = policyError(call, "the receipt signer is unavailable")
			res.Decision.ManifestHash, res.Decision.ArgsHash = manifestHash, argsHash
			res.ApprovalRequestID = ""
			consumed = nil
			continue
		}
		g.log.LogAttrs(ctx, slog.LevelError, "shield record", slog.String("tenant", string(p.Tenant)), slog.String("error", err.Error()))
		return g.unrecorded(call, res, "the decision could not be recorded")
	}
}

func (g *Gate) unrecorded(call *Call, res *Result, why string) *Result {
	d := policyError(call, why)
	d.ManifestHash, d.ArgsHash = res.Decision.ManifestHash, res.Decision.ArgsHash
	return &Result{DecisionID: res.DecisionID, Decision: d}
}

func (g *Gate) decisionItem(ctx context.Context, call *Call, res *Result, now time.Time, consumed *store.ShieldApproval) (*ledger.Item, error) {
	p := call.Principal
	d := res.Decision
	d.Mode = orMode(d.Mode)
	inputs, err := json.Marshal(decisionInputs(call.Inputs, res.inputs))
	if err != nil {
		return nil, err
	}
	var receipts []*receiptDoc
	var approval *store.ShieldApproval
	if d.Outcome == shield.OutcomeApprovalRequired {
		if res.ApprovalRequestID == "" {
			if res.ApprovalRequestID, err = g.newID(); err != nil {
				return nil, err
			}
		}
		approval, err = g.newApproval(ctx, call, res.ApprovalRequestID, res.DecisionID, &d, "required by Shield at stage "+string(d.Stage), now)
		if err != nil {
			return nil, err
		}
		d.ApprovalID = approval.ID
	}
	details := decisionDetails(res.DecisionID, &d, call.Route, res.ApprovalRequestID)
	dr, err := g.led.Event(p.Tenant, "shield.decision", p, "shield-decision:"+res.DecisionID, details)
	if err != nil {
		return nil, err
	}
	receipts = append(receipts, dr)
	if approval != nil {
		r, err := g.led.Event(p.Tenant, "shield.approval.proposed", p, "shield-approval:"+approval.ID, approvalDetails(approval))
		if err != nil {
			return nil, err
		}
		receipts = append(receipts, r)
	}
	if consumed != nil {
		r, err := g.led.Event(p.Tenant, "shield.approval.executed", p, "shield-approval:"+consumed.ID,
			map[string]any{"approvalId": consumed.ID, "decisionId": res.DecisionID, "tool": d.Tool, "server": d.Server, "argsHash": d.ArgsHash, "manifestHash": d.ManifestHash})
		if err != nil {
			return nil, err
		}
		receipts = append(receipts, r)
	}
	row := &store.ShieldDecision{
		ID: res.DecisionID, Tool: d.Tool, Server: d.Server, Outcome: string(d.Outcome), Stage: string(d.Stage),
		DenialType: string(d.DenialType), Mode: string(d.Mode), Verdict: string(d.Verdict), Enforced: d.Enforced,
		WouldBlock: d.WouldBlock, Tainted: d.Tainted, ManifestHash: d.ManifestHash, ArgsHash: d.ArgsHash,
		ApprovalID: d.ApprovalID, AgentID: p.AgentID, Actor: p.ID, ReceiptID: dr.ID(), Inputs: inputs, CreatedAt: now,
	}
	payload, err := json.Marshal(map[string]any{"decisionId": res.DecisionID, "receiptId": dr.ID(), "tenantId": string(p.Tenant), "decision": details})
	if err != nil {
		return nil, err
	}
	event := &store.OutboxEvent{ID: res.DecisionID, Kind: "shield.decision", Payload: payload, CreatedAt: now}
	var taintEv *store.TaintEvent
	if d.Stage == shield.StageTaint && d.Verdict != shield.OutcomeAllow {
		sources, _ := json.Marshal(d.TaintSources)
		taintEv = &store.TaintEvent{ID: res.DecisionID, DecisionID: res.DecisionID, Class: "shield.taint.blocked", Tool: d.Tool, Sources: sources, AgentID: p.AgentID, At: now}
	}
	// An allowed action on tainted inputs taints the session: the store
	// learns it with the decision (see NoteRead).
	var marks []sessionMark
	if d.Outcome == shield.OutcomeAllow && d.Tainted {
		until := now.Add(g.taint.ttl)
		for _, s := range taintedSessions(p) {
			if g.taint.needsStore(p.Tenant, s, until) {
				marks = append(marks, sessionMark{s, "decision:" + res.DecisionID, until})
			}
		}
	}
	res.storedMarks = marks
	res.Decision = d
	return &ledger.Item{
		Tenant: p.Tenant,
		Signed: d.Outcome == shield.OutcomeAllow,
		Apply: func(tx store.TenantTx) error {
			if consumed != nil {
				if _, err := tx.ConsumeApprovalToken(hashToken(call.ApprovalToken), now); err != nil {
					switch vaultcrux.ErrorKind(err) {
					case vaultcrux.NotFound:
						return &spentToken{status: shield.ApprovalUsed}
					case vaultcrux.Invalid:
						return &spentToken{status: shield.ApprovalExpired}
					}
					return err
				}
			}
			if err := tx.RecordDecision(row, event); err != nil {
				return err
			}
			if taintEv != nil {
				if err := tx.AddTaintEvent(taintEv); err != nil {
					return err
				}
			}
			if err := storeMarks(tx, marks); err != nil {
				return err
			}
			if approval != nil {
				return tx.CreateApproval(approval)
			}
			return nil
		},
		Receipts: receipts,
	}, nil
}

// spentToken is the error of a record whose approval token could not be
// consumed: used by another call (ApprovalUsed) or expired (ApprovalExpired).
type spentToken struct{ status shield.ApprovalStatus }

func (e *spentToken) Error() string { return "approval token " + string(e.status) }

type receiptDoc = receipt.Doc

func orMode(m shield.Mode) shield.Mode {
	if m == "" {
		return "unknown"
	}
	return m
}

// decisionInput is the recorded form of an input: its reference and the
// trust label it was resolved to ("unresolved" when resolution failed).
type decisionInput struct {
	InputRef
	Trust string `json:"trust"`
}

func decisionInputs(refs []InputRef, resolved []shield.Input) []decisionInput {
	out := make([]decisionInput, len(refs))
	for i, r := range refs {
		out[i] = decisionInput{InputRef: r, Trust: "unresolved"}
		if len(resolved) == len(refs) {
			out[i].Trust = string(resolved[i].Trust)
		}
	}
	return out
}

// decisionDetails is the decision as its receipt and outbox event carry
// it: ids, hashes and verdicts, never argument values.
func decisionDetails(id string, d *shield.Decision, route, approvalRequestID string) map[string]any {
	m := map[string]any{
		"decisionId": id, "outcome": string(d.Outcome), "verdict": string(d.Verdict), "stage": string(d.Stage),
		"mode": string(d.Mode), "enforced": d.Enforced, "wouldBlock": d.WouldBlock, "tainted": d.Tainted,
		"tool": d.Tool, "server": d.Server, "shieldManifestHash": d.ManifestHash, "argsHash": d.ArgsHash,
	}
	if d.DenialType != "" {
		m["denialType"] = string(d.DenialType)
	}
	if d.Class != "" {
		m["class"] = string(d.Class)
	}
	if d.Risk != "" {
		m["risk"] = string(d.Risk)
	}
	if len(d.TaintSources) > 0 {
		src := make([]any, len(d.TaintSources))
		for i, s := range d.TaintSources {
			src[i] = s
		}
		m["taintSources"] = src
	}
	if d.ApprovalID != "" {
		m["approvalId"] = d.ApprovalID
	}
	if approvalRequestID != "" {
		m["approvalRequestId"] = approvalRequestID
	}
	if d.KillSwitchID != "" {
		m["killSwitchId"] = d.KillSwitchID
	}
	if route != "" {
		m["route"] = route
	}
	return m
}
