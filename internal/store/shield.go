package store

import (
	"strings"
	"time"

	"github.com/vaultcrux/vaultcrux"
)

// Shield storage (contract §7). The records are plain data: the engine
// that evaluates calls lives elsewhere and hands the store canonical JSON
// it produced ([]byte fields), which is stored and returned byte for
// byte, never re-encoded.
//
// Cross-process propagation: every change that a process caches for its
// evaluations (servers, pins, kill switches, settings, sampling
// policies) bumps the changed tenant's shield version in the same
// transaction; global kill switches bump the global version. A process
// polls SystemShieldTx.ShieldVersions about once a second and reloads
// only the tenants whose version differs from the one it loaded. To load
// a consistent pair, read the version first and the state after it: a
// change committed in between is then seen again at the next poll,
// never missed.

// ShieldTx is the Shield part of a TenantTx.
type ShieldTx interface {
	// Trust registry: publishers.

	// CreatePublisher stores p. Conflict if its id or its name exists.
	CreatePublisher(p *ShieldPublisher) error
	// GetPublisher returns the publisher; NotFound if absent.
	GetPublisher(id string) (*ShieldPublisher, error)
	// ListPublishers returns up to limit publishers ordered by id, after
	// the id `after` ("" for the first page).
	ListPublishers(after string, limit int) ([]*ShieldPublisher, error)

	// Trust registry: servers. Every write bumps the shield version.

	// CreateServer stores s. Conflict if its id or its name exists (a
	// disabled server keeps its name); NotFound if s.PublisherID names no
	// publisher; Invalid for an unknown status.
	CreateServer(s *ShieldServer) error
	// GetServer returns the server; NotFound if absent.
	GetServer(id string) (*ShieldServer, error)
	// ListServers returns up to limit servers ordered by id, after the id
	// `after`.
	ListServers(after string, limit int) ([]*ShieldServer, error)
	// UpdateServerTools replaces the tool definitions and the computed
	// digest of a re-registered server, at now; its status is kept.
	// NotFound if absent.
	UpdateServerTools(id string, tools []byte, digest string, now time.Time) (*ShieldServer, error)
	// SetServerStatus sets the status at now. NotFound if absent, Invalid
	// for an unknown status.
	SetServerStatus(id, status string, now time.Time) (*ShieldServer, error)

	// Trust registry: pinned digests. Every change bumps the shield version.

	// PinDigest stores p (RevokedAt nil). Conflict if the server has that
	// digest pinned already, revoked or not: revocation is final.
	// NotFound if the server does not exist.
	PinDigest(p *ShieldPin) error
	// RevokeDigest marks a pin revoked at `at` by `by`. Revoking a revoked
	// pin keeps the first revocation, changes nothing and is not an error.
	// NotFound if the digest is not pinned for the server.
	RevokeDigest(serverID, digest, by, reason string, at time.Time) (*ShieldPin, error)
	// ListPins returns the pins of serverID ("" for every server), by
	// server id, then pin time, then digest.
	ListPins(serverID string) ([]*ShieldPin, error)

	// Kill switches of the tenant (every scope but global). Engaging and
	// releasing append to the audit in the same transaction, with the
	// ids KillSwitchAuditID gives, and bump the shield version.

	// EngageKillSwitch stores k (ReleasedAt nil) and its "engage" audit
	// row. Conflict if its id exists (switch ids are unique across
	// tenants and global switches); Invalid for scope global or an
	// unknown scope.
	EngageKillSwitch(k *KillSwitch) error
	// ReleaseKillSwitch marks the switch released at `at` by `by` and
	// writes its "release" audit row. Releasing a released switch keeps
	// the first release and writes nothing. NotFound if absent.
	ReleaseKillSwitch(id, by string, at time.Time) (*KillSwitch, error)
	// GetKillSwitch returns the switch; NotFound if absent.
	GetKillSwitch(id string) (*KillSwitch, error)
	// ListKillSwitches returns the tenant's switches (only unreleased ones
	// when activeOnly) by engage time, then id.
	ListKillSwitches(activeOnly bool) ([]*KillSwitch, error)
	// ListKillSwitchAudit returns the audit rows of switchID ("" for all
	// of the tenant's), oldest first.
	ListKillSwitchAudit(switchID string) ([]*KillSwitchAudit, error)

	// ShieldVersion returns the tenant's shield version (0 before its
	// first change).
	ShieldVersion() (int64, error)

	// Per-tenant overrides of SHIELD_MODE and the FEATURE_* flags. Every
	// change bumps the shield version.

	// SetShieldSetting creates or replaces the setting s.Name. Invalid
	// for a name that is neither SHIELD_MODE nor FEATURE_*.
	SetShieldSetting(s *ShieldSetting) error
	// DeleteShieldSetting removes an override; NotFound if absent.
	DeleteShieldSetting(name string) error
	// ListShieldSettings returns the overrides by name.
	ListShieldSettings() ([]*ShieldSetting, error)

	// Approvals: propose → resolve → execute.

	// CreateApproval stores a (Status pending, nothing resolved).
	// Conflict if its id exists.
	CreateApproval(a *ShieldApproval) error
	// GetApproval returns the approval; NotFound if absent.
	GetApproval(id string) (*ShieldApproval, error)
	// FindApprovalByToken returns the approval whose token hash is
	// tokenHash, whatever its status (the caller checks the binding
	// before consuming); NotFound when this tenant has none.
	FindApprovalByToken(tokenHash []byte) (*ShieldApproval, error)
	// ResolveApproval sets status ("approved" or "denied"), ResolvedAt
	// `at`, ResolvedBy and Note; an approval also stores tokenHash and
	// tokenExpiresAt (a denial takes neither). Conflict unless the
	// approval is pending and `at` is before its ExpiresAt; NotFound if
	// absent. Of two concurrent resolutions one wins.
	ResolveApproval(id, status, by, note string, tokenHash []byte, tokenExpiresAt *time.Time, at time.Time) (*ShieldApproval, error)
	// ConsumeApprovalToken marks the approved approval whose token hash
	// is tokenHash executed at `at` and returns it, atomically: of two
	// concurrent consumers one wins. NotFound when no approval has that
	// hash or its token was used already; Invalid ("approval token
	// expired") when TokenExpiresAt <= at.
	ConsumeApprovalToken(tokenHash []byte, at time.Time) (*ShieldApproval, error)
	// ExpireApprovals marks every pending approval whose ExpiresAt is at
	// or before now expired (ResolvedAt now) and returns them by id, so
	// that the caller records their denials.
	ExpireApprovals(now time.Time) ([]*ShieldApproval, error)
	// ListApprovals returns up to limit approvals of status ("" for
	// every status) ordered by id, after the id `after`.
	ListApprovals(status, after string, limit int) ([]*ShieldApproval, error)

	// Decisions. The decision table and the taint events are append-only.

	// RecordDecision stores d and its outbox event atomically: both or
	// neither. It runs in the ledger's group commit, so it only inserts.
	// Conflict if the decision id or the event id exists.
	RecordDecision(d *ShieldDecision, event *OutboxEvent) error
	// GetDecision returns the decision; NotFound if absent.
	GetDecision(id string) (*ShieldDecision, error)
	// ListDecisions returns up to limit decisions that pass f, newest
	// (highest id) first, before the id `before` ("" for the newest).
	ListDecisions(f DecisionFilter, before string, limit int) ([]*ShieldDecision, error)
	// CountRecentDecisions counts the decisions on tool created at or
	// after since, of agentID ("" for every agent of the tenant): the
	// call count of a sampling window. Denied calls count too.
	CountRecentDecisions(tool, agentID string, since time.Time) (int, error)
	// AddTaintEvent appends e. Conflict if its id exists.
	AddTaintEvent(e *TaintEvent) error
	// ListTaintEvents returns up to limit events newest (highest id)
	// first, before the id `before` ("" for the newest).
	ListTaintEvents(before string, limit int) ([]*TaintEvent, error)
	// MarkSessionTaint records that an agent session read untrusted
	// content, so that every process sharing the store (and this one after
	// a restart) treats it as tainted until expiresAt. An upsert on
	// (tenant, session): ExpiresAt becomes the later of the stored and the
	// new one; Source is replaced only when the stored mark had expired at
	// the new mark's time, so it names what tainted the session first;
	// UpdatedAt is set from the database's clock (not the caller's), so
	// that pollers on other machines see the change by a time they can
	// compare. NotFound when the tenant does not exist; Invalid for an
	// empty session or source.
	MarkSessionTaint(session, source string, expiresAt time.Time) error

	// The event outbox.

	// ListOutbox returns up to limit events (only undelivered ones when
	// undeliveredOnly), oldest (lowest id) first.
	ListOutbox(undeliveredOnly bool, limit int) ([]*OutboxEvent, error)
	// MarkDelivered sets DeliveredAt of the given events to `at`, keeping
	// an earlier delivery, and returns how many it marked. Unknown ids are
	// ignored.
	MarkDelivered(ids []string, at time.Time) (int, error)

	// Sampling policies. Every change bumps the shield version.

	// CreateSamplingPolicy stores p (DeletedAt nil). Conflict if its id
	// exists; Invalid for an unknown scope or per, a negative MaxCalls or
	// a WindowMs that is not positive.
	CreateSamplingPolicy(p *SamplingPolicy) error
	// ListSamplingPolicies returns the undeleted policies by id.
	ListSamplingPolicies() ([]*SamplingPolicy, error)
	// DeleteSamplingPolicy marks the policy deleted at `at` (keeping an
	// earlier deletion). NotFound if absent.
	DeleteSamplingPolicy(id string, at time.Time) (*SamplingPolicy, error)

	// UI integrity sessions.

	// CreateUISession stores s. Conflict if its id exists.
	CreateUISession(s *UISession) error
	// GetUISession returns the session, revoked or expired ones included;
	// NotFound if absent.
	GetUISession(id string) (*UISession, error)
	// ListUISessions returns up to limit sessions ordered by id, after
	// the id `after`.
	ListUISessions(after string, limit int) ([]*UISession, error)
	// RevokeUISession marks the session revoked at `at`, keeping an
	// earlier revocation. NotFound if absent.
	RevokeUISession(id string, at time.Time) (*UISession, error)

	// Incident drills.

	// CreateIncidentDrill stores a started drill (Result "", FinishedAt
	// nil). Conflict if its id exists.
	CreateIncidentDrill(d *IncidentDrill) error
	// FinishIncidentDrill records the result ("passed" or "failed") and
	// details at `at`. NotFound if absent; Conflict if finished already.
	FinishIncidentDrill(id, result string, details []byte, at time.Time) (*IncidentDrill, error)
	// ListIncidentDrills returns up to limit drills newest (highest id)
	// first, before the id `before` ("" for the newest).
	ListIncidentDrills(before string, limit int) ([]*IncidentDrill, error)
}

// SystemShieldTx is the Shield part of a SystemTx: global kill switches
// (operator only) and what a process needs to keep its in-memory state
// current.
type SystemShieldTx interface {
	// EngageGlobalKillSwitch stores k, whose Scope must be "global" and
	// Tenant "", with its "engage" audit row, and bumps the global
	// version. Conflict if its id exists.
	EngageGlobalKillSwitch(k *KillSwitch) error
	// ReleaseGlobalKillSwitch is ReleaseKillSwitch for a global switch;
	// NotFound for a switch that is not global.
	ReleaseGlobalKillSwitch(id, by string, at time.Time) (*KillSwitch, error)
	// ListGlobalKillSwitches returns the global switches (only unreleased
	// ones when activeOnly) by engage time, then id.
	ListGlobalKillSwitches(activeOnly bool) ([]*KillSwitch, error)
	// ListGlobalKillSwitchAudit returns the audit rows of the global
	// switch switchID ("" for every global switch), oldest first.
	ListGlobalKillSwitchAudit(switchID string) ([]*KillSwitchAudit, error)
	// AllActiveKillSwitches returns every unreleased switch, global ones
	// (Tenant "") first, then by tenant and id: the in-memory set.
	AllActiveKillSwitches() ([]*KillSwitch, error)
	// ShieldVersions returns the shield version of every tenant that has
	// one and the global version.
	ShieldVersions() (tenants map[vaultcrux.TenantID]int64, global int64, err error)
	// RecentSessionTaint returns the session taint marks of every tenant
	// whose UpdatedAt is at or after since (the zero time: all of them),
	// by tenant then session, and the database's clock now, the time to
	// compare the next since with. Callers keep a margin below it for
	// transactions that committed after they read the clock.
	RecentSessionTaint(since time.Time) (marks []*SessionTaint, dbNow time.Time, err error)
	// PruneSessionTaint deletes the marks whose ExpiresAt is at or before
	// now and returns how many it deleted.
	PruneSessionTaint(now time.Time) (int, error)
	// TenantsWithExpiredApprovals returns the tenants that have pending
	// approvals whose ExpiresAt is at or before now.
	TenantsWithExpiredApprovals(now time.Time) ([]vaultcrux.TenantID, error)
	// TenantsWithUndeliveredEvents returns the tenants whose outbox has
	// undelivered events.
	TenantsWithUndeliveredEvents() ([]vaultcrux.TenantID, error)
}

// ShieldPublisher is a publisher of MCP servers in the trust registry.
type ShieldPublisher struct {
	ID        string
	Name      string
	URL       string
	CreatedAt time.Time
}

// ShieldServer is a registered MCP server. Tools is the canonical JSON
// array of its tool definitions (name, description, inputSchema,
// capabilityClass, riskTier, requiresApproval, argRules); Digest is the
// digest computed over its identity and tools at the latest
// registration.
type ShieldServer struct {
	ID          string
	Name        string
	URL         string
	Command     string
	PublisherID string // "" for none
	Tools       []byte
	Digest      string
	Status      string // "pending", "active", "disabled"
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// ShieldPin is a digest pinned for a server. A revoked pin stays (with
// its revocation) so that the digest cannot be pinned again.
type ShieldPin struct {
	ServerID     string
	Digest       string
	PinnedBy     string
	PinnedAt     time.Time
	RevokedAt    *time.Time
	RevokedBy    string
	RevokeReason string
}

// KillSwitch is an engaged (ReleasedAt nil) or released kill switch.
// Scope is "global" (Tenant "", operator only), "tenant", "agent",
// "server", "tool" or "capability_class"; Target names what it stops
// within the scope.
type KillSwitch struct {
	ID         string
	Tenant     vaultcrux.TenantID // "" for a global switch
	Scope      string
	Target     string
	Reason     string
	EngagedBy  string
	EngagedAt  time.Time
	ReleasedAt *time.Time
	ReleasedBy string
}

// KillSwitchAudit is one append-only audit row of a kill switch. A switch
// is engaged once and released at most once, so (SwitchID, Action)
// identifies the row; ID is KillSwitchAuditID of the two. Reason is the
// switch's reason for "engage", "" for "release".
type KillSwitchAudit struct {
	ID       string
	SwitchID string
	Action   string // "engage", "release"
	Actor    string
	At       time.Time
	Reason   string
}

// KillSwitchAuditID is the id of the audit row of action on a switch.
func KillSwitchAuditID(switchID, action string) string { return switchID + ":" + action }

// ShieldSetting is a per-tenant override of SHIELD_MODE or of a
// FEATURE_* flag.
type ShieldSetting struct {
	Name      string
	Value     string
	UpdatedBy string
	UpdatedAt time.Time
}

// ShieldApproval is an approval request. Args is the canonical JSON of the
// call's arguments, shown to the approver; Binding is what the token is
// bound to (the caller's digest of tenant, approval id, tool, ArgsHash
// and ManifestHash). TokenHash and TokenExpiresAt are set when the
// request is approved; ExecutedAt when its token is consumed. DecisionID
// is the decision that asked for the approval.
type ShieldApproval struct {
	ID             string
	Server         string
	Tool           string
	ArgsHash       string
	ManifestHash   string
	Binding        string
	Args           []byte
	Reason         string
	ProposedBy     string
	AgentID        string
	Status         string // "pending", "approved", "denied", "expired", "executed"
	CreatedAt      time.Time
	ExpiresAt      time.Time // the request times out, unresolved
	ResolvedAt     *time.Time
	ResolvedBy     string
	Note           string
	TokenHash      []byte
	TokenExpiresAt *time.Time
	ExecutedAt     *time.Time
	DecisionID     string
}

// ShieldDecision is one evaluation of the Shield. Inputs is the JSON of
// the inputs that the call's arguments derive from.
type ShieldDecision struct {
	ID           string
	Tool         string
	Server       string
	Outcome      string // "allow", "deny", "approval_required"
	Stage        string
	DenialType   string
	Mode         string
	Verdict      string
	Enforced     bool
	WouldBlock   bool
	Tainted      bool
	ManifestHash string
	ArgsHash     string
	ApprovalID   string
	AgentID      string
	Actor        string
	ReceiptID    string
	Inputs       []byte
	CreatedAt    time.Time
}

// DecisionFilter selects decisions for ListDecisions; zero fields select
// everything.
type DecisionFilter struct {
	Outcome string
	Tool    string
	Since   time.Time // CreatedAt at or after
}

// OutboxEvent is an event waiting in the outbox for delivery (Kind
// "shield.decision", …); Payload is its JSON.
type OutboxEvent struct {
	ID          string
	Kind        string
	Payload     []byte
	CreatedAt   time.Time
	DeliveredAt *time.Time
}

// TaintEvent records that tainted input was kept from triggering an
// action (Class "shield.taint.blocked", …). Sources is the JSON of the
// tainted inputs.
type TaintEvent struct {
	ID         string
	DecisionID string
	Class      string
	Tool       string
	Sources    []byte
	AgentID    string
	At         time.Time
}

// SessionTaint is an agent session that read untrusted content: the
// store's copy of a process's in-memory taint (see ShieldTx.MarkSessionTaint).
type SessionTaint struct {
	Tenant    vaultcrux.TenantID
	Session   string // "agent:<id>" or "key:<id>" (gate.SessionKey)
	Source    string // what tainted it first, "kind:ref"
	ExpiresAt time.Time
	UpdatedAt time.Time // the database's clock at the latest mark
}

// SamplingPolicy limits calls of a tool (Scope "tool") or of a capability
// class (Scope "class") to MaxCalls per window of WindowMs milliseconds,
// counted per agent or per tenant.
type SamplingPolicy struct {
	ID        string
	Scope     string // "tool", "class"
	Target    string
	MaxCalls  int
	WindowMs  int64
	Per       string // "agent", "tenant"
	CreatedBy string
	CreatedAt time.Time
	DeletedAt *time.Time
}

// UISession is a UI integrity session: a tool UI of Origin may call the
// tools in ToolAllow until ExpiresAt, unless revoked.
type UISession struct {
	ID        string
	Origin    string
	ToolAllow []string
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt *time.Time
}

// IncidentDrill is a containment drill: started, then finished with a
// Result ("passed" or "failed") and Details (JSON).
type IncidentDrill struct {
	ID           string
	Scenario     string
	KillSwitchID string // "" for none
	Result       string // "" while running
	Details      []byte
	StartedBy    string
	StartedAt    time.Time
	FinishedAt   *time.Time
}

// ValidServerStatus reports whether s is a server status.
func ValidServerStatus(s string) bool {
	return s == "pending" || s == "active" || s == "disabled"
}

// ValidKillSwitchScope reports whether s is a kill switch scope, global
// included.
func ValidKillSwitchScope(s string) bool {
	switch s {
	case "global", "tenant", "agent", "server", "tool", "capability_class":
		return true
	}
	return false
}

// ValidShieldSettingName reports whether name may be overridden per
// tenant: SHIELD_MODE or a FEATURE_* flag.
func ValidShieldSettingName(name string) bool {
	return name == "SHIELD_MODE" || (strings.HasPrefix(name, "FEATURE_") && len(name) > len("FEATURE_"))
}

// ValidSamplingPolicy reports whether p's scope, per, limit and window
// are acceptable.
func ValidSamplingPolicy(p *SamplingPolicy) bool {
	return (p.Scope == "tool" || p.Scope == "class") && (p.Per == "agent" || p.Per == "tenant") &&
		p.Target != "" && p.MaxCalls >= 0 && p.WindowMs > 0
}
