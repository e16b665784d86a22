package shield

import (
	"regexp"
	"slices"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
)

// BuiltinServerID is the server ID (and name) of vaultcrux's own routes and
// MCP tools. No registered server may take it.
const BuiltinServerID = "vaultcrux"

// ServerStatus is the lifecycle state of a registered server.
type ServerStatus string

// The server states. Registering makes a server pending; pinning its digest
// makes it active; an operator may disable it.
const (
	StatusPending  ServerStatus = "pending"
	StatusActive   ServerStatus = "active"
	StatusDisabled ServerStatus = "disabled"
)

// Pin is a digest pinned for a server in the trust registry.
type Pin struct {
	Digest  string `json:"digest"`
	Revoked bool   `json:"revoked,omitempty"`
}

// ServerState is a registered server as the store holds it.
type ServerState struct {
	Server        Server       `json:"server"`
	Status        ServerStatus `json:"status"`
	PinnedDigests []Pin        `json:"pinnedDigests,omitempty"`
}

// ManifestEntry is one tool of a server, with the digest of that server.
type ManifestEntry struct {
	Server     string `json:"server"`
	ServerName string `json:"serverName"`
	Digest     string `json:"digest"`
	Tool       Tool   `json:"tool"`
	// Unusable, when set, says why the local policy of the tool is broken
	// (an unknown class or risk tier, an invalid argument rule or pattern):
	// every call of the tool is then denied with policy_error.
	Unusable string `json:"unusable,omitempty"`
}

// ExclusionReason says why a registered server's tools are not in the
// manifest.
type ExclusionReason string

// The reasons, in the order of precedence in which one is chosen when
// several hold.
const (
	ExcludedInvalid          ExclusionReason = "invalid_definition" // the server has no digest (see ServerDigest)
	ExcludedDigestRevoked    ExclusionReason = "digest_revoked"     // its current digest is pinned, but revoked
	ExcludedDigestNotTrusted ExclusionReason = "digest_not_trusted" // its current digest is not pinned
	ExcludedNotActive        ExclusionReason = "not_active"         // pinned, but pending or disabled
)

// Exclusion records a registered server whose tools are not in the manifest.
type Exclusion struct {
	Server     string          `json:"server"`
	ServerName string          `json:"serverName"`
	Digest     string          `json:"digest,omitempty"` // "" when the server has none
	Status     ServerStatus    `json:"status"`
	Reason     ExclusionReason `json:"reason"`
}

// entry is a manifest entry with its compiled rules.
type entry struct {
	ManifestEntry
	rules []compiledRule
}

func (e *entry) public() ManifestEntry {
	c := e.ManifestEntry
	c.Tool = e.Tool.clone()
	return c
}

// serverInfo is what the evaluator needs to know of a server.
type serverInfo struct {
	id string
	// trust is the trust registry's finding: "", DenialDigestNotTrusted
	// or DenialDigestRevoked.
	trust DenialType
	// inactive: the status keeps the tools out of the manifest for a reason
	// the trust finding does not explain (disabled; or pending although
	// pinned). A pending server without a pin is explained by trust alone.
	inactive bool
	// invalid: the server has no digest; none of its tools can be judged.
	invalid bool
	tools   map[string]*entry
}

// Manifest is the effective manifest: the built-in tools and the tools of
// active servers whose current digest is pinned and not revoked. It also
// remembers every other registered server and why it is out, so that a
// decision can name the right denial. A Manifest is immutable and safe for
// concurrent use.
type Manifest struct {
	servers    map[string]*serverInfo
	trusted    map[string][]*entry // tool name → entries in the manifest
	declared   map[string][]*entry // tool name → entries of servers not in it
	entries    []*entry            // in the manifest, by server then tool
	exclusions []Exclusion
	hash       string
}

// BuildManifest builds the manifest from the built-in tools and the
// registered servers. A server is in the manifest only if its status is
// active and its current digest (ServerDigest) equals a pinned digest that
// is not revoked; a digest pinned both revoked and not counts as revoked.
// The built-in tools form the server BuiltinServerID and are always trusted.
//
// A registered server that is out, or that has no digest, is recorded with
// its reason, not refused. A tool whose local policy is broken stays listed
// and is marked Unusable. The errors are for what cannot be a manifest at
// all: an invalid built-in tool list, a server without an ID or with the
// built-in ID, or two servers of one ID.
func BuildManifest(builtin []Tool, servers []ServerState) (m *Manifest, err error) {
	defer vaultcrux.Wrap(&err, "shield.BuildManifest")
	m = &Manifest{
		servers:  make(map[string]*serverInfo, len(servers)+1),
		trusted:  make(map[string][]*entry),
		declared: make(map[string][]*entry),
	}
	patterns := make(map[string]*regexp.Regexp)
	self := Server{ID: BuiltinServerID, Name: BuiltinServerID, Tools: builtin}
	digest, err := ServerDigest(&self)
	if err != nil {
		return nil, err
	}
	m.add(&self, digest, &serverInfo{id: BuiltinServerID}, patterns)
	for i := range servers {
		st := &servers[i]
		s := &st.Server
		switch {
		case s.ID == "":
			return nil, vaultcrux.Ef(vaultcrux.Invalid, "server %d has no id", i)
		case s.ID == BuiltinServerID:
			return nil, vaultcrux.Ef(vaultcrux.Invalid, "server id %q is reserved", BuiltinServerID)
		case m.servers[s.ID] != nil:
			return nil, vaultcrux.Ef(vaultcrux.Invalid, "two servers have id %q", s.ID)
		}
		info := &serverInfo{id: s.ID}
		digest, err := ServerDigest(s)
		if err != nil {
			info.invalid, info.trust = true, DenialDigestNotTrusted
			m.servers[s.ID] = info
			m.exclusions = append(m.exclusions, Exclusion{Server: s.ID, ServerName: s.Name, Status: st.Status, Reason: ExcludedInvalid})
			continue
		}
		pinned, revoked := false, false
		for _, p := range st.PinnedDigests {
			if p.Digest == digest {
				revoked = revoked || p.Revoked
				pinned = pinned || !p.Revoked
			}
		}
		switch {
		case revoked:
			info.trust = DenialDigestRevoked
		case !pinned:
			info.trust = DenialDigestNotTrusted
		}
		// An unknown status is treated as disabled.
		info.inactive = st.Status != StatusActive && !(st.Status == StatusPending && info.trust != "")
		var reason ExclusionReason
		switch {
		case revoked:
			reason = ExcludedDigestRevoked
		case !pinned:
			reason = ExcludedDigestNotTrusted
		case st.Status != StatusActive:
			reason = ExcludedNotActive
		}
		if reason != "" {
			m.exclusions = append(m.exclusions, Exclusion{Server: s.ID, ServerName: s.Name, Digest: digest, Status: st.Status, Reason: reason})
		}
		m.add(s, digest, info, patterns)
	}
	slices.SortFunc(m.entries, func(a, b *entry) int {
		if c := compareUTF16(a.Server, b.Server); c != 0 {
			return c
		}
		return compareUTF16(a.Tool.Name, b.Tool.Name)
	})
	slices.SortFunc(m.exclusions, func(a, b Exclusion) int { return compareUTF16(a.Server, b.Server) })
	if m.hash, err = m.computeHash(); err != nil {
		return nil, err
	}
	return m, nil
}

// add indexes the tools of s, whose digest is digest. Tools are copied, so
// that the caller's later edits cannot change the manifest.
func (m *Manifest) add(s *Server, digest string, info *serverInfo, patterns map[string]*regexp.Regexp) {
	m.servers[s.ID] = info
	info.tools = make(map[string]*entry, len(s.Tools))
	in := info.trust == "" && !info.inactive
	for i := range s.Tools {
		e := &entry{ManifestEntry: ManifestEntry{Server: s.ID, ServerName: s.Name, Digest: digest, Tool: s.Tools[i].clone()}}
		rules, err := compileTool(&e.Tool, patterns)
		if err != nil {
			e.Unusable = err.Error()
		}
		e.rules = rules
		info.tools[e.Tool.Name] = e
		if in {
			m.trusted[e.Tool.Name] = append(m.trusted[e.Tool.Name], e)
			m.entries = append(m.entries, e)
		} else {
			m.declared[e.Tool.Name] = append(m.declared[e.Tool.Name], e)
		}
	}
}

// computeHash hashes what the manifest lets run and under which local
// policy: per entry the server, its digest, the tool name, class, risk,
// approval flag and argument rules.
func (m *Manifest) computeHash() (string, error) {
	list := make([]any, len(m.entries))
	for i, e := range m.entries {
		rules := make([]any, len(e.Tool.ArgRules))
		for j, r := range e.Tool.ArgRules {
			allowed := make([]any, len(r.AllowedValues))
			for k, v := range r.AllowedValues {
				allowed[k] = v
			}
			rules[j] = map[string]any{
				"arg": r.Arg, "required": r.Required, "forbidden": r.Forbidden, "allowedValues": allowed,
				"pattern": r.Pattern, "maxLen": r.MaxLen, "type": r.Type,
			}
		}
		list[i] = map[string]any{
			"server": e.Server, "digest": e.Digest, "tool": e.Tool.Name,
			"class": string(e.Tool.Class), "risk": string(e.Tool.Risk),
			"requiresApproval": e.Tool.RequiresApproval, "argRules": rules,
		}
	}
	b, err := receipt.Canonical(map[string]any{"version": 1, "entries": list})
	if err != nil {
		return "", err
	}
	return receipt.Hash(b), nil
}

// Hash returns the manifest hash, "blake3:<hex>", that receipts carry as
// shieldManifestHash and approval tokens are bound to.
func (m *Manifest) Hash() string { return m.hash }

// Entries returns the effective manifest, ordered by server then tool.
func (m *Manifest) Entries() []ManifestEntry {
	out := make([]ManifestEntry, len(m.entries))
	for i, e := range m.entries {
		out[i] = e.public()
	}
	return out
}

// Exclusions returns the registered servers that are not in the manifest,
// ordered by server ID.
func (m *Manifest) Exclusions() []Exclusion { return slices.Clone(m.exclusions) }

// Lookup returns the manifest entry that a call of tool on server would
// run, as Evaluate resolves it (see the package documentation), or false
// when the call names no tool of the manifest.
func (m *Manifest) Lookup(server, tool string) (ManifestEntry, bool) {
	r := m.resolve(server, tool)
	if r.entry == nil || r.trust != "" || r.capability != "" {
		return ManifestEntry{}, false
	}
	return r.entry.public(), true
}

// resolution is what the manifest knows of a call's tool.
type resolution struct {
	// entry is the definition the later stages judge the call by: the
	// manifest's, or, for a server the trust registry does not (yet)
	// trust, the one it declared. nil when there is none.
	entry *entry
	// server is the server the call goes to, "" when unresolved.
	server string
	// trust and capability are the findings of the trust registry
	// (unknown_tool, digest_not_trusted, digest_revoked) and of the
	// capability firewall's manifest check (unknown_tool,
	// unmanifested_tool); "" for none.
	trust, capability DenialType
	// candidates are the entries an ambiguous tool name could mean.
	candidates []*entry
}

// resolve finds the tool of a call. With a server, it looks there. Without
// one, the name must be unique within the manifest; failing that, unique
// among the registered servers that are out of it; a name found twice is
// ambiguous and resolves to nothing (the caller must then name the server).
func (m *Manifest) resolve(server, tool string) resolution {
	if server != "" {
		return m.resolveOn(server, tool)
	}
	switch c := m.trusted[tool]; len(c) {
	case 0:
	case 1:
		return resolution{entry: c[0], server: c[0].Server}
	default:
		return resolution{capability: DenialUnmanifestedTool, candidates: c}
	}
	switch c := m.declared[tool]; len(c) {
	case 0:
		return resolution{capability: DenialUnknownTool}
	case 1:
		return m.resolveOn(c[0].Server, tool)
	default:
		return resolution{capability: DenialUnmanifestedTool, candidates: c}
	}
}

func (m *Manifest) resolveOn(server, tool string) resolution {
	si := m.servers[server]
	if si == nil {
		return resolution{server: server, trust: DenialUnknownTool, capability: DenialUnknownTool}
	}
	r := resolution{server: server, trust: si.trust}
	e := si.tools[tool]
	switch {
	case si.invalid || e == nil:
		r.capability = DenialUnmanifestedTool
	case si.inactive:
		r.entry, r.capability = e, DenialUnmanifestedTool
	default:
		r.entry = e
	}
	return r
}
