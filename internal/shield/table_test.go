package shield

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// The truth table: every single finding and every pair of findings, under
// both modes and all 512 settings of the flags, against an oracle written
// from the contract's rules rather than from the engine's code.

// world is one scenario of the table: each field is a dimension whose first
// value is the baseline, under which the call is clean.
type world struct {
	kill     string // "", "tenant": a tenant kill switch is engaged
	tool     string // lookup (read), send (egress), shell (dangerous_local), wire (write, high), flagged (read, requiresApproval), nosuch (unmanifested), ghost (unknown server)
	trust    string // ok, unpinned, revoked: the acme server's pin
	args     string // good, bad: breaks the "to" rule
	inputs   string // trusted, untrusted, unknown, session
	taintAct string // block, approval
	token    string // "" (none), valid, invalid, expired, used
	sampling string // under, over, missing
	ui       string // none, good, bad
}

type dimension struct {
	name   string
	values []string
	set    func(*world, string)
}

var dimensions = []dimension{
	{"kill", []string{"", "tenant"}, func(w *world, v string) { w.kill = v }},
	{"tool", []string{"lookup", "send", "shell", "wire", "flagged", "nosuch", "ghost"}, func(w *world, v string) { w.tool = v }},
	{"trust", []string{"ok", "unpinned", "revoked"}, func(w *world, v string) { w.trust = v }},
	{"args", []string{"good", "bad"}, func(w *world, v string) { w.args = v }},
	{"inputs", []string{"trusted", "untrusted", "unknown", "session"}, func(w *world, v string) { w.inputs = v }},
	{"taintAct", []string{"block", "approval"}, func(w *world, v string) { w.taintAct = v }},
	{"token", []string{"", "valid", "invalid", "expired", "used"}, func(w *world, v string) { w.token = v }},
	{"sampling", []string{"under", "over", "missing"}, func(w *world, v string) { w.sampling = v }},
	{"ui", []string{"none", "good", "bad"}, func(w *world, v string) { w.ui = v }},
}

func baseline() world {
	var w world
	for _, d := range dimensions {
		d.set(&w, d.values[0])
	}
	return w
}

// worlds returns the baseline, every single change and every pair of
// changes of two dimensions.
func worlds() []world {
	out := []world{baseline()}
	for i, a := range dimensions {
		for _, av := range a.values[1:] {
			w := baseline()
			a.set(&w, av)
			out = append(out, w)
			for _, b := range dimensions[i+1:] {
				for _, bv := range b.values[1:] {
					w2 := w
					b.set(&w2, bv)
					out = append(out, w2)
				}
			}
		}
	}
	return out
}

// build turns a world into the engine's inputs (the policy's mode and flags
// are set by the caller).
func (w world) build(t testing.TB) (*Policy, *Manifest, *KillSet, *Request) {
	s := acme()
	st := pinned(t, s)
	switch w.trust {
	case "unpinned":
		st.PinnedDigests = []Pin{{Digest: "blake3:" + strings.Repeat("0", 64)}}
	case "revoked":
		st.PinnedDigests[0].Revoked = true
	}
	m := mustManifest(t, builtins(), st)
	var k *KillSet
	if w.kill == "tenant" {
		k = mustKillSet(t, KillSwitch{ID: "ks1", Scope: ScopeTenant, Target: "t1"})
	}
	p := &Policy{
		TaintAction: TaintAction(w.taintAct),
		Sampling:    []SamplingPolicy{{ID: "s1", MaxCalls: 3, Window: time.Minute, Per: PerAgent}},
	}
	r := &Request{Tenant: "t1", AgentID: "agent1", SessionID: "sess1", Server: "acme", Tool: w.tool, Now: now,
		Args: []byte(`{"to":"bob@example.com"}`)}
	if w.tool == "ghost" {
		r.Server, r.Tool = "ghost", "send"
	}
	if w.args == "bad" {
		r.Args = []byte(`{"to":"exfil@attacker.example"}`)
	}
	r.Inputs = []Input{{Ref: "rcpt_1", Kind: InputReceipt, Trust: TrustTrusted}}
	switch w.inputs {
	case "untrusted":
		r.Inputs = append(r.Inputs, Input{Ref: "ch_9", Kind: InputChunk, Trust: TrustUntrusted})
	case "unknown":
		r.Inputs = append(r.Inputs, Input{Ref: "web", Kind: InputSource, Trust: TrustUnknown})
	case "session":
		r.SessionTainted = true
	}
	if w.token != "" {
		r.Approval = ApprovalCheck{Presented: true, Status: ApprovalStatus(w.token), ApprovalID: "ap_1"}
	}
	switch w.sampling {
	case "under":
		r.RecentCalls = map[string]int{"s1": 2}
	case "over":
		r.RecentCalls = map[string]int{"s1": 3}
	}
	switch w.ui {
	case "good":
		r.FromToolUI, r.UISessionID, r.UIOrigin = true, "ui1", "https://app.acme.example"
		r.UISessions = map[string]UISession{"ui1": {ID: "ui1", Origin: "https://app.acme.example",
			ToolAllow: []string{"lookup", "send", "shell", "wire", "flagged", "nosuch"}, ExpiresAt: now.Add(time.Minute)}}
	case "bad":
		r.FromToolUI, r.UISessionID, r.UIOrigin = true, "ui1", "https://app.acme.example"
	}
	return p, m, k, r
}

// oFinding is a finding as the oracle predicts it.
type oFinding struct {
	stage   Stage
	verdict Outcome
	denial  DenialType
}

// tokenOutcome is the contract's rule for a presented approval token.
func tokenOutcome(token string, needed bool) (Outcome, DenialType, bool) {
	switch token {
	case "":
		if needed {
			return OutcomeApprovalRequired, "", true
		}
		return "", "", false
	case "valid":
		return "", "", false
	case "expired", "used":
		return OutcomeDeny, DenialApprovalTokenExpired, true
	default:
		return OutcomeDeny, DenialApprovalTokenInvalid, true
	}
}

// findings predicts the verdict of every stage for w, in stage order.
func (w world) findings(f Flags) []oFinding {
	var out []oFinding
	deny := func(s Stage, t DenialType) { out = append(out, oFinding{s, OutcomeDeny, t}) }
	if w.kill != "" {
		deny(StageKillSwitch, DenialKillSwitchActive)
	}
	switch {
	case w.tool == "ghost":
		deny(StageTrust, DenialUnknownTool)
	case w.trust == "unpinned":
		deny(StageTrust, DenialDigestNotTrusted)
	case w.trust == "revoked":
		deny(StageTrust, DenialDigestRevoked)
	}
	switch {
	case w.tool == "ghost":
		deny(StageCapability, DenialUnknownTool)
	case w.tool == "nosuch":
		deny(StageCapability, DenialUnmanifestedTool)
	case w.tool == "shell" && !f.SandboxRunner:
		deny(StageCapability, DenialDangerousLocalCapability)
	case w.args == "bad":
		deny(StageCapability, DenialArgumentRuleViolation)
	}
	// Unknown tools have no class and no risk: the worst is assumed.
	unknown := w.tool == "nosuch" || w.tool == "ghost"
	dangerous := unknown || w.tool == "send" || w.tool == "shell" || w.tool == "wire"
	if w.inputs != "trusted" && dangerous {
		if w.taintAct == "block" {
			deny(StageTaint, DenialTaintBlocked)
		} else if v, t, ok := tokenOutcome(w.token, true); ok {
			out = append(out, oFinding{StageTaint, v, t})
		}
	}
	needed := unknown || w.tool == "wire" || w.tool == "flagged"
	if v, t, ok := tokenOutcome(w.token, needed); ok {
		out = append(out, oFinding{StageApproval, v, t})
	}
	if w.sampling != "under" {
		deny(StageSampling, DenialSamplingPolicyViolation)
	}
	if w.ui == "bad" {
		deny(StageUIIntegrity, DenialUIIntegrityViolation)
	}
	return out
}

// oracleEnforced is the contract's table of which flag makes which stage
// block.
func oracleEnforced(mode Mode, f Flags, s Stage) bool {
	if !f.Enabled {
		return false
	}
	if s == StageKillSwitch {
		return f.KillSwitches
	}
	flag := map[Stage]bool{
		StageTrust:       f.EnforceDigest,
		StageCapability:  f.EnforceCapability,
		StageTaint:       f.EnforceTaint,
		StageApproval:    f.EnforceApprovals,
		StageSampling:    f.SamplingGuardian,
		StageUIIntegrity: f.UIAppSandbox,
	}
	return mode == ModeEnforce && flag[s]
}

// expected is the oracle's decision: findings are kept up to the first
// enforced one, which decides; if none is enforced the first is the
// recorded verdict and the call runs.
type expected struct {
	brief
	findings []Finding
}

func oracle(mode Mode, f Flags, w world) expected {
	var e expected
	var decisive *Finding
	for _, o := range w.findings(f) {
		e.findings = append(e.findings, Finding{Stage: o.stage, Verdict: o.verdict, DenialType: o.denial, Enforced: oracleEnforced(mode, f, o.stage)})
		if e.findings[len(e.findings)-1].Enforced {
			break
		}
	}
	for i := range e.findings {
		if e.findings[i].Enforced {
			decisive = &e.findings[i]
		}
	}
	if decisive == nil && len(e.findings) > 0 {
		decisive = &e.findings[0]
	}
	if decisive == nil {
		e.brief = brief{Outcome: OutcomeAllow, Verdict: OutcomeAllow, Enforced: f.Enabled && mode == ModeEnforce}
		return e
	}
	e.brief = brief{Outcome: OutcomeAllow, Verdict: decisive.Verdict, Stage: decisive.Stage, DenialType: decisive.DenialType,
		Enforced: decisive.Enforced, WouldBlock: true}
	if decisive.Enforced {
		e.Outcome = decisive.Verdict
	}
	return e
}

// flagSettings returns all 512 settings of the nine flags.
func flagSettings() []Flags {
	out := make([]Flags, 0, 512)
	for bits := range 1 << 9 {
		b := func(i int) bool { return bits&(1<<i) != 0 }
		out = append(out, Flags{Enabled: b(0), EnforceCapability: b(1), EnforceDigest: b(2), SandboxRunner: b(3),
			EnforceTaint: b(4), EnforceApprovals: b(5), SamplingGuardian: b(6), UIAppSandbox: b(7), KillSwitches: b(8)})
	}
	return out
}

func TestTruthTable(t *testing.T) {
	ws := worlds()
	if len(ws) != 227 {
		t.Fatalf("built %d worlds, want 227 (baseline, singles and pairs)", len(ws))
	}
	settings := flagSettings()
	for _, w := range ws {
		name := fmt.Sprintf("%+v", w)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, m, k, r := w.build(t)
			fails := 0
			for _, mode := range []Mode{ModeObserve, ModeEnforce} {
				for _, f := range settings {
					p.Mode, p.Flags = mode, f
					got := Evaluate(p, m, k, r)
					want := oracle(mode, f, w)
					gotFindings := slices.Clone(got.Findings)
					for i := range gotFindings {
						gotFindings[i].Detail = ""
					}
					if briefOf(got) != want.brief || !slices.Equal(gotFindings, want.findings) {
						t.Errorf("mode %s, flags %+v:\n got %+v\n     %+v\nwant %+v\n     %+v", mode, f, briefOf(got), gotFindings, want.brief, want.findings)
						if fails++; fails == 5 {
							t.FailNow()
						}
					}
					if got.Mode != mode {
						t.Fatalf("Mode = %q, want %q", got.Mode, mode)
					}
				}
			}
		})
	}
}

// TestTruthTableSpotChecks pins a few rows of the table by hand, so that a
// wrong oracle cannot hide a wrong engine.
func TestTruthTableSpotChecks(t *testing.T) {
	flags := func(edit func(*Flags)) Flags { f := allOn(); edit(&f); return f }
	tests := []struct {
		name  string
		mode  Mode
		flags Flags
		w     func(*world)
		want  brief
	}{
		{"clean call, enforce", ModeEnforce, allOn(), func(*world) {}, allowed},
		{"clean call, observe", ModeObserve, allOn(), func(*world) {}, brief{Outcome: OutcomeAllow, Verdict: OutcomeAllow}},
		{"bad args, enforce", ModeEnforce, allOn(), func(w *world) { w.args = "bad" }, denied(StageCapability, DenialArgumentRuleViolation)},
		{"bad args, observe", ModeObserve, allOn(), func(w *world) { w.args = "bad" }, observed(StageCapability, DenialArgumentRuleViolation)},
		{"bad args, capability not enforced", ModeEnforce, flags(func(f *Flags) { f.EnforceCapability = false }),
			func(w *world) { w.args = "bad" }, observed(StageCapability, DenialArgumentRuleViolation)},
		{"shield disabled", ModeEnforce, flags(func(f *Flags) { f.Enabled = false }),
			func(w *world) { w.kill = "tenant" }, observed(StageKillSwitch, DenialKillSwitchActive)},
		{"kill switch in observe mode still kills", ModeObserve, allOn(), func(w *world) { w.kill = "tenant"; w.args = "bad" },
			denied(StageKillSwitch, DenialKillSwitchActive)},
		{"kill switch flag off: recorded only", ModeEnforce, flags(func(f *Flags) { f.KillSwitches = false }),
			func(w *world) { w.kill = "tenant" }, observed(StageKillSwitch, DenialKillSwitchActive)},
		{"first non-allow wins: trust before capability", ModeEnforce, allOn(), func(w *world) { w.trust = "revoked"; w.args = "bad" },
			denied(StageTrust, DenialDigestRevoked)},
		{"an unenforced stage does not hide an enforced later one", ModeEnforce, flags(func(f *Flags) { f.EnforceDigest = false }),
			func(w *world) { w.trust = "unpinned"; w.args = "bad" }, denied(StageCapability, DenialArgumentRuleViolation)},
		{"digest not enforced: the declared tool is usable", ModeEnforce, flags(func(f *Flags) { f.EnforceDigest = false }),
			func(w *world) { w.trust = "unpinned" }, observed(StageTrust, DenialDigestNotTrusted)},
		{"high risk asks for approval", ModeEnforce, allOn(), func(w *world) { w.tool = "wire" },
			brief{Outcome: OutcomeApprovalRequired, Verdict: OutcomeApprovalRequired, Stage: StageApproval, Enforced: true, WouldBlock: true}},
		{"high risk with a valid token", ModeEnforce, allOn(), func(w *world) { w.tool = "wire"; w.token = "valid" }, allowed},
		{"used token", ModeEnforce, allOn(), func(w *world) { w.tool = "wire"; w.token = "used" }, denied(StageApproval, DenialApprovalTokenExpired)},
		{"bad token where none is needed", ModeEnforce, allOn(), func(w *world) { w.token = "invalid" }, denied(StageApproval, DenialApprovalTokenInvalid)},
		{"taint sent to approval", ModeEnforce, allOn(), func(w *world) { w.tool = "send"; w.inputs = "untrusted"; w.taintAct = "approval" },
			brief{Outcome: OutcomeApprovalRequired, Verdict: OutcomeApprovalRequired, Stage: StageTaint, Enforced: true, WouldBlock: true}},
		{"sandbox off", ModeEnforce, flags(func(f *Flags) { f.SandboxRunner = false }), func(w *world) { w.tool = "shell" },
			denied(StageCapability, DenialDangerousLocalCapability)},
		{"missing sampling count", ModeEnforce, allOn(), func(w *world) { w.sampling = "missing" }, denied(StageSampling, DenialSamplingPolicyViolation)},
		{"ui without session", ModeEnforce, allOn(), func(w *world) { w.ui = "bad" }, denied(StageUIIntegrity, DenialUIIntegrityViolation)},
		{"unknown server", ModeEnforce, allOn(), func(w *world) { w.tool = "ghost" }, denied(StageTrust, DenialUnknownTool)},
		{"unknown tool of a known server", ModeEnforce, allOn(), func(w *world) { w.tool = "nosuch" }, denied(StageCapability, DenialUnmanifestedTool)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := baseline()
			tt.w(&w)
			p, m, k, r := w.build(t)
			p.Mode, p.Flags = tt.mode, tt.flags
			if got := briefOf(Evaluate(p, m, k, r)); got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
