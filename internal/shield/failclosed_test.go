package shield

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// policyError is an enforced policy_error deny at stage s.
func policyError(s Stage) brief { return denied(s, DenialPolicyError) }

func TestFailClosedPolicy(t *testing.T) {
	m := mustManifest(t, builtins(), pinned(t, acme()))
	r := &Request{Tenant: "t1", Server: "acme", Tool: "lookup", Args: []byte(`{"to":"bob@example.com"}`), Now: now}
	bad := map[string]*Policy{
		"nil":                      nil,
		"zero":                     {},
		"unknown mode":             {Mode: "permissive", Flags: allOn()},
		"unknown mode, shield off": {Mode: "permissive"},
		"unknown taint action":     {Mode: ModeObserve, Flags: allOn(), TaintAction: "log"},
		"unknown tier":             {Mode: ModeEnforce, Flags: allOn(), ApprovalTiers: []RiskTier{"extreme"}},
		"sampling window":          {Mode: ModeEnforce, Flags: allOn(), Sampling: []SamplingPolicy{{ID: "s", MaxCalls: 1, Per: PerAgent}}},
	}
	for name, p := range bad {
		t.Run(name, func(t *testing.T) {
			d := Evaluate(p, m, nil, r)
			// A policy that cannot be read cannot say Shield is off or
			// observing: it is enforced whatever its flags.
			if got := briefOf(d); got != policyError(StagePolicy) {
				t.Errorf("Evaluate = %+v, want %+v", got, policyError(StagePolicy))
			}
			if !strings.HasPrefix(d.Detail, "invalid policy") {
				t.Errorf("Detail = %q", d.Detail)
			}
		})
	}
}

func TestFailClosedInputs(t *testing.T) {
	badPattern := acme()
	badPattern.Tools[0].ArgRules = []ArgRule{{Arg: "to", Pattern: "([a-z"}}
	badPattern.Tools[1].ArgRules = []ArgRule{{Arg: "to", Type: "email"}}
	badPattern.Tools[2].Class = "exec"
	badPattern.Tools[3].ArgRules = []ArgRule{{Arg: "to", Required: true, Forbidden: true}}
	badPattern.Tools[4].ArgRules = []ArgRule{{Pattern: "x"}}
	mBad := mustManifest(t, builtins(), pinned(t, badPattern))
	m := mustManifest(t, builtins(), pinned(t, acme()))
	good := []byte(`{"to":"bob@example.com"}`)
	observeCapOff := observeAll()
	observeCapOff.Flags.EnforceCapability = false

	tests := []struct {
		name string
		p    *Policy
		m    *Manifest
		r    *Request
		want brief
	}{
		{"invalid pattern", enforceAll(), mBad, &Request{Server: "acme", Tool: "lookup", Args: good}, policyError(StageCapability)},
		{"invalid pattern, observe, capability off", observeCapOff, mBad, &Request{Server: "acme", Tool: "lookup", Args: good}, policyError(StageCapability)},
		{"unknown rule type", enforceAll(), mBad, &Request{Server: "acme", Tool: "send", Args: good}, policyError(StageCapability)},
		{"unknown class", enforceAll(), mBad, &Request{Server: "acme", Tool: "shell", Args: good}, policyError(StageCapability)},
		{"required and forbidden", enforceAll(), mBad, &Request{Server: "acme", Tool: "wire", Args: good}, policyError(StageCapability)},
		{"rule without argument", enforceAll(), mBad, &Request{Server: "acme", Tool: "flagged", Args: good}, policyError(StageCapability)},
		{"args not JSON", enforceAll(), m, &Request{Server: "acme", Tool: "lookup", Args: []byte(`{"to":`)}, policyError(StagePolicy)},
		{"args not JSON, observe", observeAll(), m, &Request{Server: "acme", Tool: "lookup", Args: []byte(`to=bob`)}, policyError(StagePolicy)},
		{"args with duplicate keys", enforceAll(), m, &Request{Server: "acme", Tool: "lookup", Args: []byte(`{"to":"bob@example.com","to":"x@evil.example"}`)}, policyError(StagePolicy)},
		{"args not an object", enforceAll(), m, &Request{Server: "acme", Tool: "lookup", Args: []byte(`["bob@example.com"]`)}, denied(StageCapability, DenialArgumentRuleViolation)},
		{"args null", enforceAll(), m, &Request{Server: "acme", Tool: "lookup", Args: []byte(`null`)}, denied(StageCapability, DenialArgumentRuleViolation)},
		{"nil manifest", enforceAll(), nil, &Request{Server: "acme", Tool: "lookup", Args: good}, policyError(StagePolicy)},
		{"nil manifest, observe", observeAll(), nil, &Request{Server: "acme", Tool: "lookup", Args: good}, policyError(StagePolicy)},
		{"nil request", enforceAll(), m, nil, policyError(StagePolicy)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.r != nil {
				tt.r.Tenant, tt.r.Now = "t1", now
			}
			if got := briefOf(Evaluate(tt.p, tt.m, nil, tt.r)); got != tt.want {
				t.Errorf("Evaluate = %+v, want %+v", got, tt.want)
			}
		})
	}

	for _, e := range mBad.Entries() {
		if e.Server == "acme" && e.Unusable == "" {
			t.Errorf("%s: Unusable is empty for a broken rule", e.Tool.Name)
		}
	}

	// Shield off is the way back from a Shield that misbehaves: even a
	// policy_error is then recorded, not applied.
	off := enforceAll()
	off.Flags.Enabled = false
	d := Evaluate(off, mBad, nil, &Request{Server: "acme", Tool: "lookup", Args: good})
	if got := briefOf(d); got != observed(StageCapability, DenialPolicyError) {
		t.Errorf("shield off: %+v, want the policy_error recorded but not enforced", got)
	}
}

// TestFailClosedPanic injects faults that make the evaluation panic: the
// panic is recovered as an enforced policy_error, in every mode.
func TestFailClosedPanic(t *testing.T) {
	good := []byte(`{"to":"bob@example.com"}`)
	tests := []struct {
		name    string
		corrupt func(*Manifest)
		r       Request
		stage   Stage
	}{
		{"nil entry in the name index", func(m *Manifest) { m.trusted["boom"] = []*entry{nil} }, Request{Tool: "boom"}, StagePolicy},
		{"zero regexp in a rule", func(m *Manifest) {
			e := m.servers["acme"].tools["send"]
			e.rules = []compiledRule{{ArgRule: ArgRule{Arg: "to", Pattern: "x"}, re: new(regexp.Regexp)}}
		}, Request{Server: "acme", Tool: "send", Args: good}, StageCapability},
	}
	for _, tt := range tests {
		for _, p := range []*Policy{enforceAll(), observeAll()} {
			t.Run(tt.name+"/"+string(p.Mode), func(t *testing.T) {
				m := mustManifest(t, builtins(), pinned(t, acme()))
				tt.corrupt(m)
				r := tt.r
				r.Tenant, r.Now = "t1", now
				var d Decision
				func() {
					defer func() {
						if x := recover(); x != nil {
							t.Fatalf("Evaluate panicked: %v", x)
						}
					}()
					d = Evaluate(p, m, nil, &r)
				}()
				if got := briefOf(d); got != policyError(tt.stage) {
					t.Errorf("Evaluate = %+v, want %+v", got, policyError(tt.stage))
				}
				if d.Detail != "panic during evaluation" {
					t.Errorf("Detail = %q", d.Detail)
				}
			})
		}
	}
}

// TestFailClosedUnknownTool: what the engine cannot classify is treated as
// the most dangerous class and the highest risk by the later stages, so
// that a stage that is not enforced cannot open a path around one that is.
func TestFailClosedUnknownTool(t *testing.T) {
	m := mustManifest(t, builtins(), pinned(t, acme()))
	p := enforceAll()
	p.Flags.EnforceCapability = false
	r := &Request{Tenant: "t1", Server: "acme", Tool: "nosuch", Args: []byte(`{}`), Now: now,
		Inputs: []Input{{Ref: "ch_1", Kind: InputChunk, Trust: TrustUntrusted}}}
	if got := briefOf(Evaluate(p, m, nil, r)); got != denied(StageTaint, DenialTaintBlocked) {
		t.Errorf("tainted unknown tool: %+v, want taint_blocked_dangerous_action", got)
	}
	r.Inputs = nil
	want := brief{Outcome: OutcomeApprovalRequired, Verdict: OutcomeApprovalRequired, Stage: StageApproval, Enforced: true, WouldBlock: true}
	if got := briefOf(Evaluate(p, m, nil, r)); got != want {
		t.Errorf("unknown tool: %+v, want %+v", got, want)
	}
	p.Sampling = []SamplingPolicy{{ID: "egress", Class: ClassEgress, MaxCalls: 0, Window: time.Minute, Per: PerAgent}}
	p.Flags.EnforceApprovals = false
	r.RecentCalls = map[string]int{"egress": 0}
	if got := briefOf(Evaluate(p, m, nil, r)); got != denied(StageSampling, DenialSamplingPolicyViolation) {
		t.Errorf("unknown tool under an egress sampling policy: %+v, want sampling_policy_violation", got)
	}
}
