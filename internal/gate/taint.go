package gate

import (
	"sync"
	"time"

	"github.com/vaultcrux/vaultcrux"
)

// SessionKey names the agent session a request belongs to, for taint
// propagation: the declared agent (x-agent-id) when there is one, else the
// credential itself. An agent cannot shed the taint of what it read by
// leaving its header off: the key it used carries the taint instead. A
// frontdoor browser session is a person, who reads untrusted content and
// approves actions; it is not tracked.
func SessionKey(p vaultcrux.Principal) string {
	switch {
	case p.AgentID != "":
		return "agent:" + p.AgentID
	case p.SessionID != "":
		return ""
	case p.KeyID != "":
		return "key:" + p.KeyID
	}
	return "principal:" + p.ID
}

// taintedSessions are the sessions that what p reads taints: its own
// and, when p declares an agent, the credential's too, so that the agent
// cannot shed the taint by leaving its header off later. Another agent
// declared on the same credential keeps its own session.
func taintedSessions(p vaultcrux.Principal) []string {
	own := SessionKey(p)
	if p.AgentID == "" {
		return []string{own}
	}
	bare := p
	bare.AgentID = ""
	if cred := SessionKey(bare); cred != "" {
		return []string{own, cred}
	}
	return []string{own}
}

// taintTracker remembers which agent sessions have read untrusted content,
// per tenant, for ttl after their last untrusted read. It lives in the
// process: see docs/design.md for what that means across replicas.
type taintTracker struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[taintKey]taintMark
}

type taintKey struct {
	tenant  vaultcrux.TenantID
	session string
}

type taintMark struct {
	until  time.Time
	source string // what tainted it first, as "kind:ref"
}

func newTaintTracker(ttl time.Duration) *taintTracker {
	return &taintTracker{ttl: ttl, m: map[taintKey]taintMark{}}
}

func (t *taintTracker) mark(tenant vaultcrux.TenantID, session, source string, now time.Time) {
	if session == "" {
		return
	}
	t.mu.Lock()
	k := taintKey{tenant, session}
	m, ok := t.m[k]
	if !ok || now.After(m.until) {
		m.source = source
	}
	m.until = now.Add(t.ttl)
	t.m[k] = m
	t.mu.Unlock()
}

func (t *taintTracker) tainted(tenant vaultcrux.TenantID, session string, now time.Time) (string, bool) {
	if session == "" {
		return "", false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.m[taintKey{tenant, session}]
	if !ok || now.After(m.until) {
		return "", false
	}
	return m.source, true
}

func (t *taintTracker) sweep(now time.Time) {
	t.mu.Lock()
	for k, m := range t.m {
		if now.After(m.until) {
			delete(t.m, k)
		}
	}
	t.mu.Unlock()
}

// NoteRead records that the principal's session read content: when any of
// it was untrusted (from the answer receipt receiptID), the session is
// tainted from now on.
func (g *Gate) NoteRead(p vaultcrux.Principal, untrusted bool, receiptID string) {
	if untrusted {
		for _, s := range taintedSessions(p) {
			g.taint.mark(p.Tenant, s, "receipt:"+receiptID, g.now())
		}
	}
}

// SessionTainted reports whether the principal's session is tainted.
func (g *Gate) SessionTainted(p vaultcrux.Principal) bool {
	_, ok := g.taint.tainted(p.Tenant, SessionKey(p), g.now())
	return ok
}
