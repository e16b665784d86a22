package shield

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vaultcrux/vaultcrux"
)

func TestParsePolicy(t *testing.T) {
	got, err := ParsePolicy([]byte(`{
		"mode": "enforce",
		"flags": {"enabled": true, "enforceCapability": true, "killSwitches": true},
		"taintAction": "approval",
		"approvalTiers": ["critical"],
		"sampling": [{"id": "p1", "tool": "send", "class": "egress", "maxCalls": 10, "window": "1h", "per": "agent"}]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{
		Mode:          ModeEnforce,
		Flags:         Flags{Enabled: true, EnforceCapability: true, KillSwitches: true},
		TaintAction:   TaintApproval,
		ApprovalTiers: []RiskTier{RiskCritical},
		Sampling:      []SamplingPolicy{{ID: "p1", Tool: "send", Class: ClassEgress, MaxCalls: 10, Window: time.Hour, Per: PerAgent}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParsePolicy (-want +got):\n%s", diff)
	}
	// MarshalJSON writes what ParsePolicy reads.
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParsePolicy(b)
	if err != nil {
		t.Fatalf("ParsePolicy(%s): %v", b, err)
	}
	if diff := cmp.Diff(got, again); diff != "" {
		t.Errorf("round trip through %s (-want +got):\n%s", b, diff)
	}
}

func TestParsePolicyApprovalTiers(t *testing.T) {
	for _, tt := range []struct {
		name string
		json string
		want []RiskTier // of the tiers low..critical, those that need approval
	}{
		{"absent means the default", `{"mode":"observe","flags":{}}`, []RiskTier{RiskHigh, RiskCritical}},
		{"null means the default", `{"mode":"observe","flags":{},"approvalTiers":null}`, []RiskTier{RiskHigh, RiskCritical}},
		{"empty means none", `{"mode":"observe","flags":{},"approvalTiers":[]}`, nil},
		{"explicit", `{"mode":"observe","flags":{},"approvalTiers":["medium"]}`, []RiskTier{RiskMedium}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			var got []RiskTier
			for _, r := range []RiskTier{RiskLow, RiskMedium, RiskHigh, RiskCritical} {
				if p.needsApproval(r) {
					got = append(got, r)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("tiers needing approval (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePolicyRejects(t *testing.T) {
	for name, in := range map[string]string{
		"not JSON":            `{"mode":`,
		"not an object":       `["enforce"]`,
		"empty":               ``,
		"unknown mode":        `{"mode":"block","flags":{}}`,
		"no mode":             `{"flags":{"enabled":true}}`,
		"misspelt flag":       `{"mode":"enforce","flags":{"enforceCapabilty":true}}`,
		"unknown field":       `{"mode":"enforce","flags":{},"strict":true}`,
		"duplicate key":       `{"mode":"observe","flags":{},"mode":"enforce"}`,
		"trailing data":       `{"mode":"observe","flags":{}} {}`,
		"flag not a bool":     `{"mode":"observe","flags":{"enabled":"yes"}}`,
		"unknown taint":       `{"mode":"observe","flags":{},"taintAction":"warn"}`,
		"unknown tier":        `{"mode":"observe","flags":{},"approvalTiers":["severe"]}`,
		"sampling no id":      `{"mode":"observe","flags":{},"sampling":[{"maxCalls":1,"window":"1m","per":"agent"}]}`,
		"sampling dup id":     `{"mode":"observe","flags":{},"sampling":[{"id":"a","maxCalls":1,"window":"1m","per":"agent"},{"id":"a","maxCalls":1,"window":"1m","per":"agent"}]}`,
		"sampling bad window": `{"mode":"observe","flags":{},"sampling":[{"id":"a","maxCalls":1,"window":"soon","per":"agent"}]}`,
		"sampling no window":  `{"mode":"observe","flags":{},"sampling":[{"id":"a","maxCalls":1,"per":"agent"}]}`,
		"sampling negative":   `{"mode":"observe","flags":{},"sampling":[{"id":"a","maxCalls":-1,"window":"1m","per":"agent"}]}`,
		"sampling bad per":    `{"mode":"observe","flags":{},"sampling":[{"id":"a","maxCalls":1,"window":"1m","per":"user"}]}`,
		"sampling bad class":  `{"mode":"observe","flags":{},"sampling":[{"id":"a","class":"exec","maxCalls":1,"window":"1m","per":"agent"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(in))
			if err == nil {
				t.Fatalf("ParsePolicy(%s) = %+v, want an error", in, p)
			}
			if k := vaultcrux.ErrorKind(err); k != vaultcrux.Invalid {
				t.Errorf("error %v has kind %v, want invalid_request", err, k)
			}
		})
	}
}

func TestFlagNames(t *testing.T) {
	names := FlagNames()
	if len(names) != 9 || names[0] != "FEATURE_SHIELD_ENABLED" || names[8] != "FEATURE_KILL_SWITCHES" {
		t.Fatalf("FlagNames() = %v", names)
	}
	var f Flags
	for _, n := range names {
		if err := f.Set(n, true); err != nil {
			t.Fatalf("Set(%q): %v", n, err)
		}
		if on, ok := f.Get(n); !on || !ok {
			t.Errorf("Get(%q) = %v, %v after Set(true)", n, on, ok)
		}
	}
	if f != allOn() {
		t.Errorf("setting every name gave %+v, want every flag on", f)
	}
	if err := f.Set("FEATURE_SHIELD_ENFORCE", false); err == nil {
		t.Error("Set of an unknown name succeeded")
	}
	if f != allOn() {
		t.Error("a failed Set changed the flags")
	}
	if _, ok := f.Get("SHIELD_MODE"); ok {
		t.Error("Get of an unknown name reported ok")
	}
}

func TestSamplingFor(t *testing.T) {
	p := &Policy{Mode: ModeEnforce, Sampling: []SamplingPolicy{
		{ID: "all", MaxCalls: 100, Window: time.Hour, Per: PerTenant},
		{ID: "send", Tool: "send", MaxCalls: 5, Window: time.Minute, Per: PerAgent},
		{ID: "acme-send", Server: "acme", Tool: "send", MaxCalls: 5, Window: time.Minute, Per: PerAgent},
		{ID: "egress", Class: ClassEgress, MaxCalls: 5, Window: time.Minute, Per: PerAgent},
		{ID: "write", Class: ClassWrite, MaxCalls: 5, Window: time.Minute, Per: PerAgent},
	}}
	ids := func(ps []SamplingPolicy) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out
	}
	for _, tt := range []struct {
		server, tool string
		class        CapabilityClass
		want         []string
	}{
		{"acme", "send", ClassEgress, []string{"all", "send", "acme-send", "egress"}},
		{"other", "send", ClassEgress, []string{"all", "send", "egress"}},
		{"acme", "lookup", ClassRead, []string{"all"}},
		{"acme", "wire", ClassWrite, []string{"all", "write"}},
		{"", "nosuch", "", []string{"all", "egress", "write"}}, // unknown class: every class policy
	} {
		if diff := cmp.Diff(tt.want, ids(p.SamplingFor(tt.server, tt.tool, tt.class))); diff != "" {
			t.Errorf("SamplingFor(%q, %q, %q) (-want +got):\n%s", tt.server, tt.tool, tt.class, diff)
		}
	}
}

func TestValidateNil(t *testing.T) {
	var p *Policy
	if err := p.Validate(); err == nil || !errors.As(err, new(*vaultcrux.Error)) {
		t.Errorf("nil policy: Validate() = %v, want an error", err)
	}
}
