package shield

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
)

// Mode is SHIELD_MODE: whether the stages that have their flag on block.
type Mode string

// The modes.
const (
	ModeObserve Mode = "observe" // compute and record every decision, let the call run
	ModeEnforce Mode = "enforce" // block on the findings of stages whose flag is on
)

// Flags are the nine feature flags of Shield, in the contract's promotion
// order. Each flag but SandboxRunner makes one stage enforce; SandboxRunner
// says that a sandbox exists to run dangerous_local tools in.
type Flags struct {
	Enabled           bool `json:"enabled"`           // FEATURE_SHIELD_ENABLED: the master switch
	EnforceCapability bool `json:"enforceCapability"` // FEATURE_SHIELD_ENFORCE_CAPABILITY
	EnforceDigest     bool `json:"enforceDigest"`     // FEATURE_TRUST_REGISTRY_ENFORCE_DIGEST
	SandboxRunner     bool `json:"sandboxRunner"`     // FEATURE_SANDBOX_RUNNER
	EnforceTaint      bool `json:"enforceTaint"`      // FEATURE_SHIELD_ENFORCE_TAINT
	EnforceApprovals  bool `json:"enforceApprovals"`  // FEATURE_SHIELD_ENFORCE_APPROVALS
	SamplingGuardian  bool `json:"samplingGuardian"`  // FEATURE_SAMPLING_GUARDIAN
	UIAppSandbox      bool `json:"uiAppSandbox"`      // FEATURE_UI_APP_SANDBOX
	KillSwitches      bool `json:"killSwitches"`      // FEATURE_KILL_SWITCHES
}

// flagNames lists the contract's flag names in promotion order.
var flagNames = [...]string{
	"FEATURE_SHIELD_ENABLED",
	"FEATURE_SHIELD_ENFORCE_CAPABILITY",
	"FEATURE_TRUST_REGISTRY_ENFORCE_DIGEST",
	"FEATURE_SANDBOX_RUNNER",
	"FEATURE_SHIELD_ENFORCE_TAINT",
	"FEATURE_SHIELD_ENFORCE_APPROVALS",
	"FEATURE_SAMPLING_GUARDIAN",
	"FEATURE_UI_APP_SANDBOX",
	"FEATURE_KILL_SWITCHES",
}

// FlagNames returns the contract's names of the flags, in promotion order.
func FlagNames() []string { return flagNames[:] }

func (f *Flags) field(name string) *bool {
	switch name {
	case "FEATURE_SHIELD_ENABLED":
		return &f.Enabled
	case "FEATURE_SHIELD_ENFORCE_CAPABILITY":
		return &f.EnforceCapability
	case "FEATURE_TRUST_REGISTRY_ENFORCE_DIGEST":
		return &f.EnforceDigest
	case "FEATURE_SANDBOX_RUNNER":
		return &f.SandboxRunner
	case "FEATURE_SHIELD_ENFORCE_TAINT":
		return &f.EnforceTaint
	case "FEATURE_SHIELD_ENFORCE_APPROVALS":
		return &f.EnforceApprovals
	case "FEATURE_SAMPLING_GUARDIAN":
		return &f.SamplingGuardian
	case "FEATURE_UI_APP_SANDBOX":
		return &f.UIAppSandbox
	case "FEATURE_KILL_SWITCHES":
		return &f.KillSwitches
	}
	return nil
}

// Set sets the flag of the contract's name (as FlagNames spells it), for the
// environment and the per-tenant override table. An unknown name is an
// Invalid error and changes nothing.
func (f *Flags) Set(name string, on bool) error {
	p := f.field(name)
	if p == nil {
		return vaultcrux.Ef(vaultcrux.Invalid, "unknown Shield flag %q", name)
	}
	*p = on
	return nil
}

// Get reports the flag of the contract's name, and false for an unknown one.
func (f Flags) Get(name string) (on, ok bool) {
	p := f.field(name)
	if p == nil {
		return false, false
	}
	return *p, true
}

// TaintAction is what the taint stage does with a dangerous action that
// tainted inputs would trigger.
type TaintAction string

// The taint actions. The empty TaintAction means TaintBlock.
const (
	TaintBlock    TaintAction = "block"    // deny taint_blocked_dangerous_action
	TaintApproval TaintAction = "approval" // send to the approval gate
)

// SamplingPer says over whose calls a sampling policy counts.
type SamplingPer string

// The counting scopes.
const (
	PerAgent  SamplingPer = "agent"
	PerTenant SamplingPer = "tenant"
)

// SamplingPolicy limits how often a tool, a server's tools or a capability
// class may be called: at most MaxCalls calls per Window, counted Per agent
// or tenant. The caller counts (the engine has no store and no clock) and
// passes in Request.RecentCalls, under the policy's ID, the calls already
// made in the window, not counting the one being decided.
//
// The scope is the conjunction of the fields that are set: Tool (a tool
// name), Server (a server ID) and Class. A policy with none set covers every
// call.
type SamplingPolicy struct {
	ID       string
	Server   string
	Tool     string
	Class    CapabilityClass
	MaxCalls int
	Window   time.Duration
	Per      SamplingPer
}

// covers reports whether the policy applies to a call. An unknown class
// ("") is covered by every class-scoped policy: what cannot be classified
// is counted against every class, not against none.
func (s *SamplingPolicy) covers(server, tool string, class CapabilityClass) bool {
	if s.Tool != "" && s.Tool != tool {
		return false
	}
	if s.Server != "" && s.Server != server {
		return false
	}
	return s.Class == "" || class == "" || s.Class == class
}

// Policy is the configuration that Evaluate applies: the mode, the flags,
// and the few choices the contract leaves to the operator. A Policy that
// fails Validate makes every decision a deny with policy_error.
//
// Its JSON form is the one ParsePolicy reads and MarshalJSON writes.
type Policy struct {
	Mode        Mode
	Flags       Flags
	TaintAction TaintAction
	// ApprovalTiers lists the risk tiers whose tools need an approval. Nil
	// means the default, high and critical; an empty non-nil slice means
	// that no tier does (tools may still set RequiresApproval).
	ApprovalTiers []RiskTier
	Sampling      []SamplingPolicy
}

// defaultApprovalTiers applies when Policy.ApprovalTiers is nil.
var defaultApprovalTiers = [...]RiskTier{RiskHigh, RiskCritical}

// needsApproval reports whether tools of risk tier r need an approval.
func (p *Policy) needsApproval(r RiskTier) bool {
	tiers := p.ApprovalTiers
	if tiers == nil {
		tiers = defaultApprovalTiers[:]
	}
	for _, t := range tiers {
		if t == r {
			return true
		}
	}
	return false
}

func (p *Policy) taintAction() TaintAction {
	if p.TaintAction == "" {
		return TaintBlock
	}
	return p.TaintAction
}

// SamplingFor returns the sampling policies that cover a call of tool of
// server, of capability class class (the resolved values of a Decision, or
// of Manifest.Lookup), in policy order: the caller counts the recent calls
// of each and passes them in Request.RecentCalls. Pass class "" when the
// tool is unknown; every class-scoped policy then applies, as it does in
// Evaluate.
func (p *Policy) SamplingFor(server, tool string, class CapabilityClass) []SamplingPolicy {
	var out []SamplingPolicy
	for i := range p.Sampling {
		if p.Sampling[i].covers(server, tool, class) {
			out = append(out, p.Sampling[i])
		}
	}
	return out
}

func invalidPolicy(format string, args ...any) error {
	return &vaultcrux.Error{Op: "shield.Policy.Validate", Err: vaultcrux.Ef(vaultcrux.Invalid, format, args...)}
}

// Validate reports the first value of p that is not one the contract
// knows: a mode, taint action, risk tier, capability class or counting
// scope that is misspelt, a sampling policy without an ID or a positive
// window, a negative call limit, or two sampling policies with one ID. The
// error is of kind Invalid.
func (p *Policy) Validate() error {
	if p == nil {
		return invalidPolicy("no policy")
	}
	switch p.Mode {
	case ModeObserve, ModeEnforce:
	default:
		return invalidPolicy("unknown mode %q", p.Mode)
	}
	switch p.TaintAction {
	case "", TaintBlock, TaintApproval:
	default:
		return invalidPolicy("unknown taint action %q", p.TaintAction)
	}
	for _, t := range p.ApprovalTiers {
		if !t.valid() {
			return invalidPolicy("unknown risk tier %q in approvalTiers", t)
		}
	}
	for i := range p.Sampling {
		s := &p.Sampling[i]
		switch {
		case s.ID == "":
			return invalidPolicy("sampling policy %d has no id", i)
		case s.Class != "" && !s.Class.valid():
			return invalidPolicy("sampling policy %q: unknown capability class %q", s.ID, s.Class)
		case s.MaxCalls < 0:
			return invalidPolicy("sampling policy %q: maxCalls is negative", s.ID)
		case s.Window <= 0:
			return invalidPolicy("sampling policy %q: window must be positive", s.ID)
		case s.Per != PerAgent && s.Per != PerTenant:
			return invalidPolicy("sampling policy %q: unknown per %q", s.ID, s.Per)
		}
		// Policies are few (a handful per tenant); a quadratic check
		// allocates nothing on the hot path of Evaluate.
		for j := range i {
			if p.Sampling[j].ID == s.ID {
				return invalidPolicy("two sampling policies have id %q", s.ID)
			}
		}
	}
	return nil
}

// policyJSON is the wire form of Policy: the sampling window is a Go
// duration string ("10m") rather than nanoseconds.
type policyJSON struct {
	Mode          Mode           `json:"mode"`
	Flags         Flags          `json:"flags"`
	TaintAction   TaintAction    `json:"taintAction,omitempty"`
	ApprovalTiers []RiskTier     `json:"approvalTiers"`
	Sampling      []samplingJSON `json:"sampling"`
}

type samplingJSON struct {
	ID       string          `json:"id"`
	Server   string          `json:"server,omitempty"`
	Tool     string          `json:"tool,omitempty"`
	Class    CapabilityClass `json:"class,omitempty"`
	MaxCalls int             `json:"maxCalls"`
	Window   string          `json:"window"`
	Per      SamplingPer     `json:"per"`
}

func (s *SamplingPolicy) wire() samplingJSON {
	return samplingJSON{ID: s.ID, Server: s.Server, Tool: s.Tool, Class: s.Class,
		MaxCalls: s.MaxCalls, Window: s.Window.String(), Per: s.Per}
}

// MarshalJSON writes the form ParsePolicy reads, the window as a Go
// duration string.
func (s SamplingPolicy) MarshalJSON() ([]byte, error) { return json.Marshal(s.wire()) }

// MarshalJSON writes the form ParsePolicy reads.
func (p Policy) MarshalJSON() ([]byte, error) {
	w := policyJSON{Mode: p.Mode, Flags: p.Flags, TaintAction: p.TaintAction, ApprovalTiers: p.ApprovalTiers}
	for i := range p.Sampling {
		w.Sampling = append(w.Sampling, p.Sampling[i].wire())
	}
	return json.Marshal(w)
}

// ParsePolicy reads a policy from JSON:
//
//	{"mode":"enforce","flags":{"enabled":true,"enforceCapability":true,…},
//	 "taintAction":"block","approvalTiers":["high","critical"],
//	 "sampling":[{"id":"p1","tool":"send_email","maxCalls":10,"window":"1h","per":"agent"}]}
//
// It is strict, as a security policy must be: the text must be one JSON
// object without duplicate keys, unknown fields are rejected (a misspelt
// flag would otherwise silently stay off), and the result must pass
// Validate. An absent approvalTiers means the default; [] means none.
func ParsePolicy(data []byte) (p *Policy, err error) {
	defer vaultcrux.Wrap(&err, "shield.ParsePolicy")
	// encoding/json keeps the last of duplicate keys and reads one value
	// off a stream; the strict parser refuses duplicates and trailing data,
	// so that no reader sees a different policy.
	v, err := receipt.ParseJSON(data)
	if err != nil {
		return nil, err
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, vaultcrux.E(vaultcrux.Invalid, "policy must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w policyJSON
	if err := dec.Decode(&w); err != nil {
		return nil, vaultcrux.E(vaultcrux.Invalid, "policy does not match the policy schema")
	}
	p = &Policy{Mode: w.Mode, Flags: w.Flags, TaintAction: w.TaintAction, ApprovalTiers: w.ApprovalTiers}
	for i, s := range w.Sampling {
		d, err := time.ParseDuration(s.Window)
		if err != nil {
			return nil, vaultcrux.Ef(vaultcrux.Invalid, "sampling policy %d: window is not a duration", i)
		}
		p.Sampling = append(p.Sampling, SamplingPolicy{ID: s.ID, Server: s.Server, Tool: s.Tool, Class: s.Class,
			MaxCalls: s.MaxCalls, Window: d, Per: s.Per})
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}
