// Package gate puts Shield (product contract §7) in front of every agent
// action: it holds each tenant's effective policy, manifest and kill
// switches in memory, resolves what a call's decision needs from the store
// (the trust of its inputs, its approval token, recent call counts, UI
// sessions), asks the pure engine (internal/shield) for the decision, and
// records it: a shield_decisions row, its shield.decision outbox event and
// its receipt, in one ledger commit. It also owns the control plane that
// changes that state (trust registry, kill switches, settings, sampling
// policies, UI integrity sessions, approvals, drills), each change
// receipted.
//
// Invariants:
//
//   - Fail closed. Any error on the way to a decision — a state that cannot
//     be loaded or refreshed, an input whose trust cannot be resolved, a
//     store error while checking a token or counting calls — is a deny with
//     policy_error. An allow is answered only once its record and its
//     signed receipt are durable: with the signer down the call is denied
//     (policy_error) and the deny is stored with a pending receipt; when the
//     record cannot be written at all the answer is an unrecorded deny.
//   - Kill switches and every other cached state are per-tenant immutable
//     snapshots swapped under a lock. Every change bumps a version in the
//     store in the same transaction; each process polls the versions (Run,
//     every Config.Poll, 250 ms by default) and reloads what changed, so a
//     kill switch engaged by any process sharing the store — another
//     replica on PostgreSQL included — stops calls here within a second. A
//     process whose last successful poll is older than Config.StaleAfter
//     polls before deciding, and denies if it cannot.
//   - An approval token is single-use: it is consumed (atomically, in the
//     store) in the transaction that records the allow it permits, so an
//     allow that cannot be recorded does not spend it; of two calls
//     presenting it, one is allowed and the other denied
//     approval_token_expired ("used").
package gate

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/config"
	"github.com/vaultcrux/vaultcrux/internal/ident"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/shield"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// Sealer seals records that must not hold plaintext at rest (the
// arguments of an approval request) under the tenant's keys.
type Sealer interface {
	Seal(ctx context.Context, tenant vaultcrux.TenantID, purpose string, body []byte) ([]byte, error)
	Open(ctx context.Context, tenant vaultcrux.TenantID, purpose string, rec []byte) ([]byte, error)
}

// Config configures a Gate.
type Config struct {
	Store  store.Store
	Ledger *ledger.Ledger
	Sealer Sealer
	// Mode and Flags are the defaults (SHIELD_MODE, FEATURE_*) that a
	// tenant's overrides replace one by one.
	Mode  shield.Mode
	Flags shield.Flags
	// TaintAction says what a tainted dangerous action gets: block
	// (default) or approval.
	TaintAction shield.TaintAction
	// Builtin is the built-in manifest: vaultcrux's own routes and tools.
	Builtin []shield.Tool

	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger

	// Poll is how often Run checks the store for changes (default 250 ms).
	Poll time.Duration
	// StaleAfter is how old the last successful check may be before a
	// decision checks first (default 2 s).
	StaleAfter time.Duration
	// ApprovalTTL is how long an approval request waits for a resolution
	// (default 1 h); TokenTTL how long an approval token lives (default
	// 15 min, contract §7); SessionTaintTTL how long an agent session
	// stays tainted after it last read untrusted content (default 1 h).
	ApprovalTTL, TokenTTL, SessionTaintTTL time.Duration
}

// Gate decides and records Shield decisions. Its methods are safe for
// concurrent use.
type Gate struct {
	st      store.Store
	led     *ledger.Ledger
	sealer  Sealer
	mode    shield.Mode
	flags   shield.Flags
	taintAc shield.TaintAction
	builtin []shield.Tool
	now     func() time.Time
	rand    io.Reader
	randMu  sync.Mutex
	log     *slog.Logger
	cfg     Config

	mu      sync.RWMutex
	tenants map[vaultcrux.TenantID]*tenantState
	global  *globalState

	loadMu sync.Mutex // serialises loads and reloads

	synced atomic.Int64 // monotonic nanoseconds (since start) of the last successful poll; 0 never
	start  time.Time

	taint      *taintTracker
	taintSince time.Time // the next poll of the store's session taint starts here; under loadMu
}

// tenantState is the immutable snapshot of one tenant's Shield state.
type tenantState struct {
	version  int64
	policy   *shield.Policy // nil when the stored settings are broken
	broken   string         // why, when policy is nil or the manifest is
	manifest *shield.Manifest
	kills    *shield.KillSet // the tenant's switches and the global ones
	own      []shield.KillSwitch
	settings map[string]string
}

type globalState struct {
	version int64
	kills   []shield.KillSwitch
}

// New builds a Gate. It reads nothing until the first decision or Tick.
func New(cfg Config) (*Gate, error) {
	if cfg.Store == nil || cfg.Ledger == nil || cfg.Sealer == nil {
		return nil, vaultcrux.E(vaultcrux.Internal, "gate.New: Store, Ledger and Sealer are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Mode == "" {
		cfg.Mode = shield.ModeEnforce
	}
	if cfg.TaintAction == "" {
		cfg.TaintAction = shield.TaintBlock
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = 2 * time.Second
	}
	if cfg.ApprovalTTL <= 0 {
		cfg.ApprovalTTL = time.Hour
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 15 * time.Minute
	}
	if cfg.SessionTaintTTL <= 0 {
		cfg.SessionTaintTTL = time.Hour
	}
	// The defaults must make a valid policy, or nothing could be decided.
	p := &shield.Policy{Mode: cfg.Mode, Flags: cfg.Flags, TaintAction: cfg.TaintAction}
	if err := p.Validate(); err != nil {
		return nil, &vaultcrux.Error{Op: "gate.New", Err: err}
	}
	if _, err := shield.BuildManifest(cfg.Builtin, nil); err != nil {
		return nil, &vaultcrux.Error{Op: "gate.New", Err: err}
	}
	return &Gate{
		st: cfg.Store, led: cfg.Ledger, sealer: cfg.Sealer,
		mode: cfg.Mode, flags: cfg.Flags, taintAc: cfg.TaintAction, builtin: cfg.Builtin,
		now: cfg.Now, rand: cfg.Rand, log: cfg.Logger, cfg: cfg,
		tenants: map[vaultcrux.TenantID]*tenantState{},
		start:   time.Now(),
		taint:   newTaintTracker(cfg.SessionTaintTTL),
	}, nil
}

// Run keeps the state current and expires approval requests until ctx
// ends.
func (g *Gate) Run(ctx context.Context) {
	poll := time.NewTicker(g.cfg.Poll)
	expire := time.NewTicker(time.Second)
	prune := time.NewTicker(time.Minute)
	defer poll.Stop()
	defer expire.Stop()
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			if err := g.Tick(ctx); err != nil && ctx.Err() == nil {
				g.log.LogAttrs(ctx, slog.LevelError, "shield state refresh", slog.String("error", err.Error()))
			}
		case <-expire.C:
			if _, err := g.ExpireApprovals(ctx); err != nil && ctx.Err() == nil {
				g.log.LogAttrs(ctx, slog.LevelError, "expire approvals", slog.String("error", err.Error()))
			}
			g.taint.sweep(g.now())
		case <-prune.C:
			if _, err := g.PruneSessionTaint(ctx); err != nil && ctx.Err() == nil {
				g.log.LogAttrs(ctx, slog.LevelError, "prune session taint", slog.String("error", err.Error()))
			}
		}
	}
}

func (g *Gate) newID() (string, error) {
	g.randMu.Lock()
	defer g.randMu.Unlock()
	return ident.New(g.now(), g.rand)
}

func (g *Gate) clock() time.Time { return g.now().UTC().Truncate(time.Millisecond) }

// Tick checks the store's Shield versions and reloads what changed: the
// global kill switches, and every loaded tenant whose version moved.
func (g *Gate) Tick(ctx context.Context) (err error) {
	defer vaultcrux.Wrap(&err, "gate.Tick")
	g.loadMu.Lock()
	defer g.loadMu.Unlock()
	return g.tickLocked(ctx)
}

func (g *Gate) tickLocked(ctx context.Context) error {
	var versions map[vaultcrux.TenantID]int64
	var gv int64
	if err := g.st.Tx(ctx, func(tx store.SystemTx) (err error) {
		if versions, gv, err = tx.ShieldVersions(); err != nil {
			return err
		}
		return g.pollTaint(tx)
	}); err != nil {
		return err
	}
	g.mu.RLock()
	glob := g.global
	var stale []vaultcrux.TenantID
	for t, s := range g.tenants {
		if versions[t] != s.version {
			stale = append(stale, t)
		}
	}
	g.mu.RUnlock()
	if glob == nil || glob.version != gv {
		ng, err := g.loadGlobal(ctx)
		if err != nil {
			return err
		}
		g.mu.Lock()
		g.global = ng
		for t, s := range g.tenants {
			c := *s
			c.kills = mergeKills(ng, s.own)
			g.tenants[t] = &c
		}
		g.mu.Unlock()
	}
	for _, t := range stale {
		s, err := g.loadTenant(ctx, t)
		if err != nil {
			return err
		}
		g.mu.Lock()
		g.tenants[t] = s
		g.mu.Unlock()
	}
	g.synced.Store(int64(time.Since(g.start)) | 1)
	return nil
}

// fresh reports whether the last successful poll is recent enough.
func (g *Gate) fresh() bool {
	last := g.synced.Load()
	return last != 0 && time.Duration(int64(time.Since(g.start))-last) <= g.cfg.StaleAfter
}

// state returns the tenant's snapshot, loading it (and polling first when
// the last poll is stale).
func (g *Gate) state(ctx context.Context, t vaultcrux.TenantID) (*tenantState, error) {
	if g.fresh() {
		g.mu.RLock()
		s := g.tenants[t]
		g.mu.RUnlock()
		if s != nil {
			return s, nil
		}
	}
	g.loadMu.Lock()
	defer g.loadMu.Unlock()
	if !g.fresh() {
		if err := g.tickLocked(ctx); err != nil {
			return nil, err
		}
	}
	g.mu.RLock()
	s := g.tenants[t]
	g.mu.RUnlock()
	if s != nil {
		return s, nil
	}
	s, err := g.loadTenant(ctx, t)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.tenants[t] = s
	g.mu.Unlock()
	return s, nil
}

// refresh reloads the tenant now (after a change made by this process),
// so that the change applies to the next decision without waiting for a
// poll.
func (g *Gate) refresh(ctx context.Context, t vaultcrux.TenantID, global bool) {
	g.loadMu.Lock()
	defer g.loadMu.Unlock()
	var err error
	if global {
		err = g.tickLocked(ctx)
	} else {
		var s *tenantState
		if s, err = g.loadTenant(ctx, t); err == nil {
			g.mu.Lock()
			g.tenants[t] = s
			g.mu.Unlock()
		}
	}
	if err != nil {
		// The next poll retries; until then decisions use the state they
		// had, and a state older than StaleAfter polls before deciding.
		g.log.LogAttrs(ctx, slog.LevelError, "shield state reload", slog.String("tenant", string(t)), slog.String("error", err.Error()))
	}
}

func (g *Gate) loadGlobal(ctx context.Context) (*globalState, error) {
	ng := &globalState{}
	err := g.st.Tx(ctx, func(tx store.SystemTx) error {
		_, gv, err := tx.ShieldVersions()
		if err != nil {
			return err
		}
		ng.version = gv
		ks, err := tx.ListGlobalKillSwitches(true)
		if err != nil {
			return err
		}
		for _, k := range ks {
			ng.kills = append(ng.kills, shield.KillSwitch{ID: k.ID, Scope: shield.ScopeGlobal})
		}
		return nil
	})
	return ng, err
}

func mergeKills(glob *globalState, own []shield.KillSwitch) *shield.KillSet {
	var all []shield.KillSwitch
	if glob != nil {
		all = append(all, glob.kills...)
	}
	all = append(all, own...)
	k, err := shield.NewKillSet(all)
	if err != nil {
		// Only valid switches are stored (the control plane checks them);
		// should one be invalid, stop everything rather than skip it.
		k, _ = shield.NewKillSet([]shield.KillSwitch{{ID: "invalid-kill-switch", Scope: shield.ScopeGlobal}})
	}
	return k
}

// loadTenant reads a tenant's Shield state: the version first, the state
// after it, so that a change committed in between is seen again at the
// next poll, never missed.
func (g *Gate) loadTenant(ctx context.Context, t vaultcrux.TenantID) (*tenantState, error) {
	s := &tenantState{settings: map[string]string{}}
	var servers []*store.ShieldServer
	var pins []*store.ShieldPin
	var sampling []*store.SamplingPolicy
	err := g.st.ForTenant(t).Tx(ctx, func(tx store.TenantTx) error {
		v, err := tx.ShieldVersion()
		if err != nil {
			return err
		}
		s.version = v
		after := ""
		for {
			page, err := tx.ListServers(after, 500)
			if err != nil {
				return err
			}
			servers = append(servers, page...)
			if len(page) < 500 {
				break
			}
			after = page[len(page)-1].ID
		}
		if pins, err = tx.ListPins(""); err != nil {
			return err
		}
		sets, err := tx.ListShieldSettings()
		if err != nil {
			return err
		}
		for _, x := range sets {
			s.settings[x.Name] = x.Value
		}
		ks, err := tx.ListKillSwitches(true)
		if err != nil {
			return err
		}
		for _, k := range ks {
			s.own = append(s.own, shield.KillSwitch{ID: k.ID, Scope: shield.KillScope(k.Scope), Target: k.Target})
		}
		sampling, err = tx.ListSamplingPolicies()
		return err
	})
	if err != nil {
		return nil, err
	}
	g.mu.RLock()
	glob := g.global
	g.mu.RUnlock()
	s.kills = mergeKills(glob, s.own)
	s.policy, s.broken = g.policyFor(s.settings, sampling)

	states := make([]shield.ServerState, 0, len(servers))
	byServer := map[string][]shield.Pin{}
	for _, p := range pins {
		byServer[p.ServerID] = append(byServer[p.ServerID], shield.Pin{Digest: p.Digest, Revoked: p.RevokedAt != nil})
	}
	for _, sv := range servers {
		var tools []shield.Tool
		if err := json.Unmarshal(sv.Tools, &tools); err != nil {
			s.broken = "server " + sv.ID + ": stored tool definitions do not parse"
			s.manifest = nil
			return s, nil
		}
		states = append(states, shield.ServerState{
			Server: shield.Server{ID: sv.ID, Name: sv.Name, URL: sv.URL, Command: sv.Command, PublisherID: sv.PublisherID, Tools: tools},
			Status: shield.ServerStatus(sv.Status), PinnedDigests: byServer[sv.ID],
		})
	}
	m, err := shield.BuildManifest(g.builtin, states)
	if err != nil {
		s.broken = "the manifest cannot be built: " + vaultcrux.ErrorMessage(err)
		return s, nil
	}
	s.manifest = m
	return s, nil
}

// policyFor applies a tenant's overrides to the defaults. A stored value
// that does not parse makes the policy nil: every decision is then a
// policy_error deny until an owner fixes the setting.
func (g *Gate) policyFor(settings map[string]string, sampling []*store.SamplingPolicy) (*shield.Policy, string) {
	p := &shield.Policy{Mode: g.mode, Flags: g.flags, TaintAction: g.taintAc}
	for name, v := range settings {
		if name == "SHIELD_MODE" {
			p.Mode = shield.Mode(v)
			continue
		}
		on, err := strconv.ParseBool(v)
		if err != nil {
			return nil, "setting " + name + " is not a boolean"
		}
		if err := p.Flags.Set(name, on); err != nil {
			return nil, "setting " + name + " is not a Shield flag"
		}
	}
	for _, sp := range sampling {
		x := shield.SamplingPolicy{ID: sp.ID, MaxCalls: sp.MaxCalls, Window: time.Duration(sp.WindowMs) * time.Millisecond, Per: shield.SamplingPer(sp.Per)}
		switch sp.Scope {
		case "tool":
			x.Tool = sp.Target
		case "class":
			x.Class = shield.CapabilityClass(sp.Target)
		default:
			return nil, "sampling policy " + sp.ID + " has an unknown scope"
		}
		p.Sampling = append(p.Sampling, x)
	}
	if err := p.Validate(); err != nil {
		return nil, "the effective policy is invalid: " + vaultcrux.ErrorMessage(err)
	}
	return p, ""
}

// Effective returns the tenant's effective mode and flags, and the
// overrides they come from.
func (g *Gate) Effective(ctx context.Context, t vaultcrux.TenantID) (mode shield.Mode, flags shield.Flags, overrides map[string]string, err error) {
	s, err := g.state(ctx, t)
	if err != nil {
		return "", shield.Flags{}, nil, err
	}
	if s.policy == nil {
		return "", shield.Flags{}, s.settings, vaultcrux.Ef(vaultcrux.Conflict, "the tenant's Shield policy is broken: %s", s.broken)
	}
	return s.policy.Mode, s.policy.Flags, s.settings, nil
}

// Capabilities is the effective manifest of a tenant.
type Capabilities struct {
	ManifestHash string                 `json:"manifestHash"`
	Tools        []shield.ManifestEntry `json:"tools"`
	Excluded     []shield.Exclusion     `json:"excluded"`
}

// Capabilities returns the tenant's effective manifest and its hash.
func (g *Gate) Capabilities(ctx context.Context, t vaultcrux.TenantID) (*Capabilities, error) {
	s, err := g.state(ctx, t)
	if err != nil {
		return nil, err
	}
	if s.manifest == nil {
		return nil, vaultcrux.Ef(vaultcrux.Conflict, "the tenant's manifest is broken: %s", s.broken)
	}
	c := &Capabilities{ManifestHash: s.manifest.Hash(), Tools: s.manifest.Entries(), Excluded: s.manifest.Exclusions()}
	if c.Excluded == nil {
		c.Excluded = []shield.Exclusion{}
	}
	return c, nil
}

// Defaults maps the server configuration to a Config's defaults.
func Defaults(c *config.Config) (shield.Mode, shield.Flags, shield.TaintAction) {
	f := c.Shield
	return shield.Mode(c.ShieldMode), shield.Flags{
		Enabled: f.Enabled, EnforceCapability: f.EnforceCapability, EnforceDigest: f.EnforceDigest,
		SandboxRunner: f.SandboxRunner, EnforceTaint: f.EnforceTaint, EnforceApprovals: f.EnforceApprovals,
		SamplingGuardian: f.SamplingGuardian, UIAppSandbox: f.UIAppSandbox, KillSwitches: f.KillSwitches,
	}, shield.TaintAction(c.ShieldTaintAction)
}
