package shield

import (
	"slices"
	"strings"

	"github.com/vaultcrux/vaultcrux"
)

// KillScope is what a kill switch stops.
type KillScope string

// The kill switch scopes, in the order Match checks them.
const (
	ScopeGlobal          KillScope = "global"           // every call (operator only); the target is ignored
	ScopeTenant          KillScope = "tenant"           // the calls of one tenant ID
	ScopeAgent           KillScope = "agent"            // the calls of one agent ID
	ScopeServer          KillScope = "server"           // the tools of one server ID
	ScopeTool            KillScope = "tool"             // a tool name, on whatever server
	ScopeCapabilityClass KillScope = "capability_class" // every tool of one class
)

var killScopes = [...]KillScope{ScopeGlobal, ScopeTenant, ScopeAgent, ScopeServer, ScopeTool, ScopeCapabilityClass}

// KillSwitch is an engaged kill switch.
type KillSwitch struct {
	ID     string    `json:"id"`
	Scope  KillScope `json:"scope"`
	Target string    `json:"target"`
}

type killKey struct {
	scope  KillScope
	target string
}

// KillSet is an immutable snapshot of the engaged kill switches, with O(1)
// lookup: one map probe per scope. The nil *KillSet holds no switch. It is
// safe for concurrent use; to engage or release a switch, build a new set
// and swap it in.
type KillSet struct {
	byKey map[killKey]KillSwitch
	// classes holds the capability_class switches by ID: a tool whose
	// class is unknown is stopped by any of them (see Evaluate).
	classes []KillSwitch
}

// NewKillSet builds a snapshot of switches. A switch must have an ID, a
// known scope and, unless global, a target (an empty target would match
// every call that lacks the field, such as a call without an agent ID); a
// capability_class target must be a known class. Where two switches share a
// scope and target, the one of the smallest ID is reported.
func NewKillSet(switches []KillSwitch) (k *KillSet, err error) {
	defer vaultcrux.Wrap(&err, "shield.NewKillSet")
	k = &KillSet{byKey: make(map[killKey]KillSwitch, len(switches))}
	for i, s := range switches {
		switch {
		case s.ID == "":
			return nil, vaultcrux.Ef(vaultcrux.Invalid, "kill switch %d has no id", i)
		case !slices.Contains(killScopes[:], s.Scope):
			return nil, vaultcrux.Ef(vaultcrux.Invalid, "kill switch %q: unknown scope %q", s.ID, s.Scope)
		case s.Scope == ScopeGlobal:
			s.Target = ""
		case s.Target == "":
			return nil, vaultcrux.Ef(vaultcrux.Invalid, "kill switch %q has no target", s.ID)
		case s.Scope == ScopeCapabilityClass && !CapabilityClass(s.Target).valid():
			return nil, vaultcrux.Ef(vaultcrux.Invalid, "kill switch %q: unknown capability class %q", s.ID, s.Target)
		}
		key := killKey{s.Scope, s.Target}
		if old, ok := k.byKey[key]; ok && old.ID <= s.ID {
			continue
		}
		k.byKey[key] = s
	}
	for _, s := range k.byKey {
		if s.Scope == ScopeCapabilityClass {
			k.classes = append(k.classes, s)
		}
	}
	slices.SortFunc(k.classes, func(a, b KillSwitch) int { return strings.Compare(a.ID, b.ID) })
	return k, nil
}

// Len returns the number of distinct (scope, target) switches in the set.
func (k *KillSet) Len() int {
	if k == nil {
		return 0
	}
	return len(k.byKey)
}

// Match returns the switch that stops a call by tenant and agent of tool on
// server, of class class: the first match in the order global, tenant,
// agent, server, tool, capability_class. Each scope matches exactly its
// target; an empty field matches nothing.
func (k *KillSet) Match(tenant, agent, server, tool string, class CapabilityClass) (KillSwitch, bool) {
	if k == nil || len(k.byKey) == 0 {
		return KillSwitch{}, false
	}
	probe := [...]killKey{
		{ScopeGlobal, ""},
		{ScopeTenant, tenant},
		{ScopeAgent, agent},
		{ScopeServer, server},
		{ScopeTool, tool},
		{ScopeCapabilityClass, string(class)},
	}
	for i, key := range probe {
		if i > 0 && key.target == "" {
			continue
		}
		if s, ok := k.byKey[key]; ok {
			return s, true
		}
	}
	return KillSwitch{}, false
}

// anyClass returns the capability_class switch of the smallest ID, if any.
func (k *KillSet) anyClass() (KillSwitch, bool) {
	if k == nil || len(k.classes) == 0 {
		return KillSwitch{}, false
	}
	return k.classes[0], true
}
