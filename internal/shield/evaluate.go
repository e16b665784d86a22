package shield

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/vaultcrux/vaultcrux"
)

// Outcome is the answer to a call.
type Outcome string

// The outcomes.
const (
	OutcomeAllow            Outcome = "allow"
	OutcomeDeny             Outcome = "deny"
	OutcomeApprovalRequired Outcome = "approval_required"
)

// Stage is a stage of the policy stack, in the contract's order.
type Stage string

// The stages. StagePolicy is not a stage of the contract: it names
// evaluation failures that belong to no stage (an invalid policy, a missing
// manifest or request, arguments that are not JSON).
const (
	StageKillSwitch  Stage = "kill_switch"
	StageTrust       Stage = "trust_registry"
	StageCapability  Stage = "capability"
	StageTaint       Stage = "taint"
	StageApproval    Stage = "approval"
	StageSampling    Stage = "sampling"
	StageUIIntegrity Stage = "ui_integrity"
	StagePolicy      Stage = "policy"
)

// DenialType is the code of a deny, as the contract names it.
type DenialType string

// The denial types of the contract.
const (
	DenialKillSwitchActive         DenialType = "kill_switch_active"
	DenialUnknownTool              DenialType = "unknown_tool"
	DenialUnmanifestedTool         DenialType = "unmanifested_tool"
	DenialArgumentRuleViolation    DenialType = "argument_rule_violation"
	DenialDangerousLocalCapability DenialType = "dangerous_local_capability"
	DenialDigestNotTrusted         DenialType = "digest_not_trusted"
	DenialDigestRevoked            DenialType = "digest_revoked"
	DenialTaintBlocked             DenialType = "taint_blocked_dangerous_action"
	DenialApprovalTokenInvalid     DenialType = "approval_token_invalid"
	DenialApprovalTokenExpired     DenialType = "approval_token_expired"
	DenialSamplingPolicyViolation  DenialType = "sampling_policy_violation"
	DenialUIIntegrityViolation     DenialType = "ui_integrity_violation"
	DenialPolicyError              DenialType = "policy_error"
)

// TrustLabel is the provenance label of an input.
type TrustLabel string

// The labels. Anything but TrustTrusted, including the empty label and a
// misspelt one, counts as untrusted.
const (
	TrustTrusted   TrustLabel = "trusted"
	TrustUntrusted TrustLabel = "untrusted"
	TrustUnknown   TrustLabel = "unknown"
)

// InputKind is what an input of a call is.
type InputKind string

// The input kinds.
const (
	InputReceipt    InputKind = "receipt"
	InputChunk      InputKind = "chunk"
	InputSource     InputKind = "source"
	InputToolOutput InputKind = "tool_output"
)

// Input is something a call's arguments derive from, with the trust label
// the caller resolved for it.
type Input struct {
	Ref   string     `json:"ref"` // a receipt ID, chunk ID or declared source
	Kind  InputKind  `json:"kind"`
	Trust TrustLabel `json:"trust"`
}

// UISession is a live UI integrity session: a tool UI of Origin may call
// the tools of ToolAllow until ExpiresAt.
type UISession struct {
	ID        string    `json:"id"`
	Origin    string    `json:"origin"`
	ToolAllow []string  `json:"toolAllow"` // tool names, or "serverID/tool"
	ExpiresAt time.Time `json:"expiresAt"`
}

// Request is a call to decide, with everything the engine needs that lives
// in a store or a clock: the caller resolves it first.
type Request struct {
	Tenant    string
	AgentID   string
	SessionID string
	Server    string // the server ID; "" to resolve the tool by name
	Tool      string
	Args      json.RawMessage // the JSON arguments; empty means {}

	Inputs         []Input
	SessionTainted bool // the agent session has read untrusted content before

	Approval ApprovalCheck

	Now time.Time
	// RecentCalls holds, by sampling policy ID, the calls already made in
	// the policy's window (this one not included), for every policy that
	// Policy.SamplingFor returns for this call.
	RecentCalls map[string]int

	FromToolUI  bool   // the call comes from a tool's UI, not from the agent
	UISessionID string // the UI integrity session it claims
	UIOrigin    string // the origin the tool UI was served from
	UISessions  map[string]UISession
}

// Finding is the verdict of one stage that did not allow.
type Finding struct {
	Stage      Stage      `json:"stage"`
	Verdict    Outcome    `json:"verdict"`
	DenialType DenialType `json:"denialType,omitempty"`
	Enforced   bool       `json:"enforced"`
	Detail     string     `json:"detail,omitempty"`
}

// Decision is the answer to a call and its record.
//
// Verdict, Stage and DenialType are what the policy says of the call,
// before the mode and the flags decide whether it is applied; Outcome is
// what happens. The record is never rewritten: an observed deny is recorded
// as a deny with Outcome allow, Enforced false and WouldBlock true.
type Decision struct {
	Outcome    Outcome    `json:"outcome"`
	Verdict    Outcome    `json:"verdict"`
	Stage      Stage      `json:"stage,omitempty"`
	DenialType DenialType `json:"denialType,omitempty"`
	// Enforced reports that Outcome is the verdict of an enforcing stage
	// (for an allow without findings: that Shield is enabled in enforce
	// mode). WouldBlock reports that the verdict is not allow.
	Enforced   bool `json:"enforced"`
	WouldBlock bool `json:"wouldBlock"`
	Mode       Mode `json:"mode,omitempty"`
	// Detail says, for the operator, why the deciding stage found what
	// it found. It names rules and IDs, never argument values.
	Detail string `json:"detail,omitempty"`

	Server       string          `json:"server,omitempty"` // the resolved server ID: the one the call must go to
	Tool         string          `json:"tool"`
	Class        CapabilityClass `json:"class,omitempty"`
	Risk         RiskTier        `json:"risk,omitempty"`
	ManifestHash string          `json:"manifestHash,omitempty"`
	ArgsHash     string          `json:"argsHash,omitempty"`
	Tainted      bool            `json:"tainted"`
	TaintSources []string        `json:"taintSources,omitempty"`
	ApprovalID   string          `json:"approvalId,omitempty"`
	KillSwitchID string          `json:"killSwitchId,omitempty"`

	// Findings lists every stage that did not allow, in stage order, up to
	// and including the first enforced one (evaluation stops there).
	Findings []Finding `json:"findings,omitempty"`
}

// Evaluate decides a call. It is pure and deterministic: the same
// arguments give the same Decision. See the package documentation for the
// stages, the modes and flags, and the fail-closed rules. It never panics:
// a panic inside is recovered as a policy_error deny.
func Evaluate(p *Policy, m *Manifest, k *KillSet, r *Request) (d Decision) {
	e := evaluator{p: p, m: m, k: k, r: r, stage: StagePolicy}
	defer func() {
		if x := recover(); x != nil {
			// The panic value is not recorded: it may quote input.
			e.fail(e.stage, "panic during evaluation")
			d = e.finish()
		}
	}()
	e.run()
	return e.finish()
}

type evaluator struct {
	p        *Policy
	m        *Manifest
	k        *KillSet
	r        *Request
	policyOK bool
	stage    Stage // the stage running, for a recovered panic
	d        Decision
	findings []Finding
}

// find records a stage's verdict and reports whether it is enforced, which
// ends the evaluation.
func (e *evaluator) find(s Stage, v Outcome, t DenialType, detail string) bool {
	f := Finding{Stage: s, Verdict: v, DenialType: t, Enforced: e.enforces(s), Detail: detail}
	e.findings = append(e.findings, f)
	return f.Enforced
}

// fail records an evaluation failure. It ends the evaluation whether or not
// it is enforced: after a failure nothing can be judged.
func (e *evaluator) fail(s Stage, detail string) {
	enforced := !e.policyOK || e.p.Flags.Enabled
	e.findings = append(e.findings, Finding{Stage: s, Verdict: OutcomeDeny, DenialType: DenialPolicyError, Enforced: enforced, Detail: detail})
}

// enforces reports whether a finding of stage s is applied.
func (e *evaluator) enforces(s Stage) bool {
	f := &e.p.Flags
	if !f.Enabled {
		return false
	}
	if s == StageKillSwitch {
		return f.KillSwitches // in every mode: killing must work during an incident
	}
	if e.p.Mode != ModeEnforce {
		return false
	}
	switch s {
	case StageTrust:
		return f.EnforceDigest
	case StageCapability:
		return f.EnforceCapability
	case StageTaint:
		return f.EnforceTaint
	case StageApproval:
		return f.EnforceApprovals
	case StageSampling:
		return f.SamplingGuardian
	case StageUIIntegrity:
		return f.UIAppSandbox
	}
	return true
}

// run evaluates the stages until one enforces its finding.
func (e *evaluator) run() {
	p, m, r := e.p, e.m, e.r
	if err := p.Validate(); err != nil {
		e.fail(StagePolicy, "invalid policy: "+vaultcrux.ErrorMessage(err))
		return
	}
	e.policyOK = true
	e.d.Mode = p.Mode
	if r == nil {
		e.fail(StagePolicy, "no request")
		return
	}
	e.d.Tool = r.Tool
	if m == nil {
		e.fail(StagePolicy, "no manifest")
		return
	}
	e.d.ManifestHash = m.hash
	e.taint()
	if r.Approval.Presented {
		e.d.ApprovalID = r.Approval.ApprovalID
	}
	res := m.resolve(r.Server, r.Tool)
	e.d.Server = res.server
	var class CapabilityClass // "" while unknown: the later stages assume the worst
	if res.entry != nil {
		if t := &res.entry.Tool; t.Class.valid() && t.Risk.valid() {
			class = t.Class
			e.d.Class, e.d.Risk = t.Class, t.Risk
		}
	}
	args, argsHash, argsErr := parseArgs(r.Args)
	e.d.ArgsHash = argsHash

	e.stage = StageKillSwitch
	if s, ok := e.killMatch(&res, class); ok {
		e.d.KillSwitchID = s.ID
		if e.find(StageKillSwitch, OutcomeDeny, DenialKillSwitchActive, "kill switch "+s.ID+" ("+string(s.Scope)+")") {
			return
		}
	}

	if argsErr != nil {
		e.fail(StagePolicy, "arguments are not valid JSON")
		return
	}

	e.stage = StageTrust
	if res.trust != "" && e.find(StageTrust, OutcomeDeny, res.trust, trustDetail(res.trust)) {
		return
	}

	e.stage = StageCapability
	if stop := e.capability(&res, class, args); stop {
		return
	}

	e.stage = StageTaint
	if e.d.Tainted && class.taintSensitive() {
		if p.taintAction() == TaintBlock {
			if e.find(StageTaint, OutcomeDeny, DenialTaintBlocked, "tainted inputs may not trigger a "+classOrUnknown(class)+" action") {
				return
			}
		} else if v, t := r.Approval.verdict(true); v != OutcomeAllow {
			if e.find(StageTaint, v, t, "tainted inputs may trigger a "+classOrUnknown(class)+" action only with an approval") {
				return
			}
		}
	}

	e.stage = StageApproval
	need := class == "" // an unknown tool has an unknown risk: assume the worst
	if class != "" {
		need = res.entry.Tool.RequiresApproval || p.needsApproval(res.entry.Tool.Risk)
	}
	if v, t := r.Approval.verdict(need); v != OutcomeAllow {
		if e.find(StageApproval, v, t, approvalDetail(t)) {
			return
		}
	}

	e.stage = StageSampling
	if detail := e.sampling(class); detail != "" {
		if e.find(StageSampling, OutcomeDeny, DenialSamplingPolicyViolation, detail) {
			return
		}
	}

	e.stage = StageUIIntegrity
	if r.FromToolUI {
		if detail := e.uiViolation(); detail != "" {
			e.find(StageUIIntegrity, OutcomeDeny, DenialUIIntegrityViolation, detail)
		}
	}
}

// finish turns the findings into the decision: the first enforced finding
// decides; when none is enforced, the first finding is the recorded verdict
// and the call is allowed.
func (e *evaluator) finish() Decision {
	d := e.d
	d.Findings = e.findings
	if len(e.findings) == 0 {
		d.Outcome, d.Verdict = OutcomeAllow, OutcomeAllow
		d.Enforced = e.policyOK && e.p.Flags.Enabled && e.p.Mode == ModeEnforce
		return d
	}
	// Evaluation stops at the first enforced finding, so it can only be
	// the last.
	f := e.findings[0]
	if last := e.findings[len(e.findings)-1]; last.Enforced {
		f = last
	}
	d.Verdict, d.Stage, d.DenialType, d.Detail, d.Enforced = f.Verdict, f.Stage, f.DenialType, f.Detail, f.Enforced
	d.Outcome = OutcomeAllow
	if f.Enforced {
		d.Outcome = f.Verdict
	}
	d.WouldBlock = d.Verdict != OutcomeAllow
	return d
}

// taint records whether the call's inputs are tainted, and by what.
func (e *evaluator) taint() {
	r := e.r
	var sources []string
	for _, in := range r.Inputs {
		if in.Trust != TrustTrusted {
			sources = append(sources, string(in.Kind)+":"+in.Ref)
		}
	}
	if r.SessionTainted {
		sources = append(sources, "session:"+r.SessionID)
	}
	e.d.Tainted, e.d.TaintSources = len(sources) > 0, sources
}

// killMatch finds a kill switch for the call. The server is the one the
// call names, else the one it resolves to, else each server an ambiguous
// name could mean. A tool of unknown class is stopped by any
// capability_class switch.
func (e *evaluator) killMatch(res *resolution, class CapabilityClass) (KillSwitch, bool) {
	k, r := e.k, e.r
	if k.Len() == 0 {
		return KillSwitch{}, false
	}
	server := r.Server
	if server == "" {
		server = res.server
	}
	if s, ok := k.Match(r.Tenant, r.AgentID, server, r.Tool, class); ok {
		return s, true
	}
	if server == "" {
		for _, c := range res.candidates {
			if s, ok := k.Match(r.Tenant, r.AgentID, c.Server, r.Tool, class); ok {
				return s, true
			}
		}
	}
	if class == "" {
		return k.anyClass()
	}
	return KillSwitch{}, false
}

// capability runs the capability firewall and reports whether evaluation
// ends.
func (e *evaluator) capability(res *resolution, class CapabilityClass, args any) bool {
	if res.capability != "" {
		detail := "the tool is not in the manifest"
		switch {
		case res.capability == DenialUnknownTool:
			detail = "no known server has this tool"
		case res.candidates != nil:
			detail = "the tool name is ambiguous: name its server"
		}
		return e.find(StageCapability, OutcomeDeny, res.capability, detail)
	}
	ent := res.entry
	if ent.Unusable != "" {
		e.fail(StageCapability, "the tool's policy is unusable: "+ent.Unusable)
		return true
	}
	if class == ClassDangerousLocal && !e.p.Flags.SandboxRunner {
		return e.find(StageCapability, OutcomeDeny, DenialDangerousLocalCapability, "dangerous_local tools need the sandbox runner")
	}
	obj, ok := args.(map[string]any)
	if !ok {
		return e.find(StageCapability, OutcomeDeny, DenialArgumentRuleViolation, "the arguments are not a JSON object")
	}
	detail, err := checkArgs(ent.rules, obj)
	if err != nil {
		e.fail(StageCapability, "argument rules could not be applied")
		return true
	}
	if detail != "" {
		return e.find(StageCapability, OutcomeDeny, DenialArgumentRuleViolation, detail)
	}
	return false
}

// sampling returns why the call breaks a sampling policy, or "". A policy
// that covers the call but has no count in the request is broken: the
// engine cannot show the call is within its limit.
func (e *evaluator) sampling(class CapabilityClass) string {
	r := e.r
	for i := range e.p.Sampling {
		s := &e.p.Sampling[i]
		if !s.covers(e.d.Server, r.Tool, class) {
			continue
		}
		n, ok := r.RecentCalls[s.ID]
		if !ok {
			return fmt.Sprintf("no call count for sampling policy %q", s.ID)
		}
		if n >= s.MaxCalls {
			return fmt.Sprintf("sampling policy %q allows %d calls per %s", s.ID, s.MaxCalls, s.Window)
		}
	}
	return ""
}

// uiViolation returns why a call from a tool UI is not covered by a live UI
// session, or "".
func (e *evaluator) uiViolation() string {
	r := e.r
	if r.UISessionID == "" {
		return "a call from a tool UI must name its UI session"
	}
	s, ok := r.UISessions[r.UISessionID]
	switch {
	case !ok || (s.ID != "" && s.ID != r.UISessionID):
		return "unknown UI session"
	case r.Now.IsZero() || !r.Now.Before(s.ExpiresAt):
		return "the UI session is not live"
	case s.Origin == "" || r.UIOrigin != s.Origin:
		return "the UI origin is not the session's"
	case !allowsTool(s.ToolAllow, e.d.Server, r.Tool):
		return "the UI session does not allow this tool"
	}
	return ""
}

// allowsTool reports whether list names tool, by name or as server/tool.
func allowsTool(list []string, server, tool string) bool {
	for _, a := range list {
		if a == tool {
			return true
		}
		if server != "" && len(a) == len(server)+1+len(tool) &&
			a[:len(server)] == server && a[len(server)] == '/' && a[len(server)+1:] == tool {
			return true
		}
	}
	return false
}

func trustDetail(t DenialType) string {
	switch t {
	case DenialDigestRevoked:
		return "the server's current digest is revoked"
	case DenialDigestNotTrusted:
		return "the server's current digest is not pinned"
	}
	return "unknown server"
}

func approvalDetail(t DenialType) string {
	switch t {
	case DenialApprovalTokenExpired:
		return "the approval token is expired or already used"
	case DenialApprovalTokenInvalid:
		return "the approval token is not valid for this call"
	}
	return "the tool needs an approval"
}

func classOrUnknown(c CapabilityClass) string {
	if c == "" {
		return "unclassified"
	}
	return string(c)
}
