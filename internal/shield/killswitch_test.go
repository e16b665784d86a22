package shield

import (
	"testing"

	"github.com/vaultcrux/vaultcrux"
)

func TestKillSetMatch(t *testing.T) {
	type call struct {
		tenant, agent, server, tool string
		class                       CapabilityClass
	}
	base := call{"t1", "agent1", "acme", "send", ClassEgress}
	// Each call differs from base in one field only, and names the other
	// fields' values in the one it changes, so that a switch matching the
	// wrong field is caught.
	calls := map[string]call{
		"base":         base,
		"other tenant": {"t2", "agent1", "acme", "send", ClassEgress},
		"other agent":  {"t1", "t1", "acme", "send", ClassEgress},
		"other server": {"t1", "agent1", "send", "send", ClassEgress},
		"other tool":   {"t1", "agent1", "acme", "acme", ClassEgress},
		"other class":  {"t1", "agent1", "acme", "send", ClassRead},
		"empty fields": {"", "", "", "", ""},
	}
	tests := []struct {
		sw      KillSwitch
		matches []string // the calls it stops
	}{
		{KillSwitch{ID: "g", Scope: ScopeGlobal}, []string{"base", "other tenant", "other agent", "other server", "other tool", "other class", "empty fields"}},
		{KillSwitch{ID: "g2", Scope: ScopeGlobal, Target: "*"}, []string{"base", "other tenant", "other agent", "other server", "other tool", "other class", "empty fields"}},
		{KillSwitch{ID: "t", Scope: ScopeTenant, Target: "t1"}, []string{"base", "other agent", "other server", "other tool", "other class"}},
		{KillSwitch{ID: "a", Scope: ScopeAgent, Target: "agent1"}, []string{"base", "other tenant", "other server", "other tool", "other class"}},
		{KillSwitch{ID: "s", Scope: ScopeServer, Target: "acme"}, []string{"base", "other tenant", "other agent", "other tool", "other class"}},
		{KillSwitch{ID: "o", Scope: ScopeTool, Target: "send"}, []string{"base", "other tenant", "other agent", "other server", "other class"}},
		{KillSwitch{ID: "c", Scope: ScopeCapabilityClass, Target: "egress"}, []string{"base", "other tenant", "other agent", "other server", "other tool"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.sw.Scope)+"/"+tt.sw.ID, func(t *testing.T) {
			k := mustKillSet(t, tt.sw)
			for name, c := range calls {
				want := false
				for _, m := range tt.matches {
					want = want || m == name
				}
				got, ok := k.Match(c.tenant, c.agent, c.server, c.tool, c.class)
				if ok != want || (ok && got.ID != tt.sw.ID) {
					t.Errorf("call %q: Match = %+v, %v; want match %v", name, got, ok, want)
				}
			}
		})
	}
}

func TestKillSetOrderAndDuplicates(t *testing.T) {
	k := mustKillSet(t,
		KillSwitch{ID: "z-tool", Scope: ScopeTool, Target: "send"},
		KillSwitch{ID: "b-tenant", Scope: ScopeTenant, Target: "t1"},
		KillSwitch{ID: "a-tenant", Scope: ScopeTenant, Target: "t1"},
		KillSwitch{ID: "c-tenant", Scope: ScopeTenant, Target: "t1"},
	)
	if k.Len() != 2 {
		t.Errorf("Len() = %d, want 2 distinct switches", k.Len())
	}
	if got, _ := k.Match("t1", "", "", "send", ""); got.ID != "a-tenant" {
		t.Errorf("Match = %q, want the tenant switch of the smallest ID (tenant before tool)", got.ID)
	}
	var none *KillSet
	if _, ok := none.Match("t1", "a", "s", "t", ClassRead); ok || none.Len() != 0 {
		t.Error("the nil KillSet matched")
	}
}

func TestNewKillSetRejects(t *testing.T) {
	for name, sw := range map[string]KillSwitch{
		"no id":         {Scope: ScopeTenant, Target: "t1"},
		"unknown scope": {ID: "x", Scope: "region", Target: "eu"},
		"empty scope":   {ID: "x", Target: "t1"},
		"no target":     {ID: "x", Scope: ScopeAgent},
		"unknown class": {ID: "x", Scope: ScopeCapabilityClass, Target: "exec"},
	} {
		if _, err := NewKillSet([]KillSwitch{sw}); err == nil || vaultcrux.ErrorKind(err) != vaultcrux.Invalid {
			t.Errorf("%s: NewKillSet error = %v, want Invalid", name, err)
		}
	}
}

func TestKillSwitchInEvaluate(t *testing.T) {
	m := mustManifest(t, builtins(), pinned(t, acme()))
	good := []byte(`{"to":"bob@example.com"}`)
	tests := []struct {
		name string
		p    *Policy
		sw   KillSwitch
		r    Request
		want brief
	}{
		{"server switch, enforce", enforceAll(), KillSwitch{ID: "k", Scope: ScopeServer, Target: "acme"},
			Request{Server: "acme", Tool: "lookup", Args: good}, denied(StageKillSwitch, DenialKillSwitchActive)},
		{"server switch, tool resolved by name", enforceAll(), KillSwitch{ID: "k", Scope: ScopeServer, Target: "acme"},
			Request{Tool: "lookup", Args: good}, denied(StageKillSwitch, DenialKillSwitchActive)},
		{"server switch on an unknown server", enforceAll(), KillSwitch{ID: "k", Scope: ScopeServer, Target: "ghost"},
			Request{Server: "ghost", Tool: "lookup", Args: good}, denied(StageKillSwitch, DenialKillSwitchActive)},
		{"class switch, observe", observeAll(), KillSwitch{ID: "k", Scope: ScopeCapabilityClass, Target: "egress"},
			Request{Server: "acme", Tool: "send", Args: good}, denied(StageKillSwitch, DenialKillSwitchActive)},
		{"class switch, other class", enforceAll(), KillSwitch{ID: "k", Scope: ScopeCapabilityClass, Target: "egress"},
			Request{Server: "acme", Tool: "lookup", Args: good}, allowed},
		{"class switch stops a tool of unknown class", observeAll(), KillSwitch{ID: "k", Scope: ScopeCapabilityClass, Target: "read"},
			Request{Server: "acme", Tool: "nosuch", Args: good}, denied(StageKillSwitch, DenialKillSwitchActive)},
		{"builtin tools too", enforceAll(), KillSwitch{ID: "k", Scope: ScopeServer, Target: BuiltinServerID},
			Request{Tool: "query_vault"}, denied(StageKillSwitch, DenialKillSwitchActive)},
		{"invalid args do not hide a kill switch", enforceAll(), KillSwitch{ID: "k", Scope: ScopeGlobal},
			Request{Tool: "query_vault", Args: []byte("{")}, denied(StageKillSwitch, DenialKillSwitchActive)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.r
			r.Tenant, r.Now = "t1", now
			d := Evaluate(tt.p, m, mustKillSet(t, tt.sw), &r)
			if got := briefOf(d); got != tt.want {
				t.Errorf("Evaluate = %+v, want %+v", got, tt.want)
			}
			if tt.want.DenialType == DenialKillSwitchActive && d.KillSwitchID != tt.sw.ID {
				t.Errorf("KillSwitchID = %q, want %q", d.KillSwitchID, tt.sw.ID)
			}
		})
	}
}
