package gate

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
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
// per tenant, for ttl after their last untrusted read. The process decides
// from it; the store holds a copy (store.SessionTaint), written when a
// session is tainted and polled by every process, so that the taint
// survives a restart and reaches the other replicas within a poll.
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
	source string    // what tainted it first, as "kind:ref"
	stored time.Time // the expiry the store is known to hold (zero: none)
}

// taintRefresh bounds how often a session's stored mark is rewritten: an
// untrusted read extends it only when the stored expiry is more than this
// short of the new one. A restarted process may so see a mark expire up to
// this much early — after an hour of taint.
const taintRefresh = time.Minute

// taintPollMargin is how far behind the database's clock the next poll of
// session taint starts, for transactions that commit after the poll read
// the clock.
const taintPollMargin = 5 * time.Second

func newTaintTracker(ttl time.Duration) *taintTracker {
	return &taintTracker{ttl: ttl, m: map[taintKey]taintMark{}}
}

// mark taints session until now+ttl. It returns the mark (its expiry and
// first source) and whether the store must be told: its copy is missing or
// more than taintRefresh short.
func (t *taintTracker) mark(tenant vaultcrux.TenantID, session, source string, now time.Time) (until time.Time, first string, persist bool) {
	if session == "" {
		return time.Time{}, "", false
	}
	m := t.put(taintKey{tenant, session}, source, now.Add(t.ttl), now, false)
	return m.until, m.source, m.stored.Add(taintRefresh).Before(m.until)
}

// merge takes a mark from the store (this process's or another's).
func (t *taintTracker) merge(tenant vaultcrux.TenantID, session, source string, until, now time.Time) {
	if session == "" || !until.After(now) {
		return
	}
	t.put(taintKey{tenant, session}, source, until, now, true)
}

// put extends k's mark to until (a mark that had ended at now starts
// anew, with source), noting that the store holds it when stored.
func (t *taintTracker) put(k taintKey, source string, until, now time.Time, stored bool) taintMark {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.m[k]
	if !ok || now.After(m.until) {
		m.source = source
	}
	if until.After(m.until) {
		m.until = until
	}
	if stored && until.After(m.stored) {
		m.stored = until
	}
	t.m[k] = m
	return m
}

// needsStore reports whether a mark of session until until must be
// written to the store (see mark).
func (t *taintTracker) needsStore(tenant vaultcrux.TenantID, session string, until time.Time) bool {
	if session == "" {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[taintKey{tenant, session}].stored.Add(taintRefresh).Before(until)
}

// stored notes that the store holds the mark of session until until.
func (t *taintTracker) storedUntil(tenant vaultcrux.TenantID, session string, until time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := taintKey{tenant, session}
	if m, ok := t.m[k]; ok && until.After(m.stored) {
		m.stored = until
		t.m[k] = m
	}
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

// sessionMark is a session taint the store must be told of.
type sessionMark struct {
	session, source string
	until           time.Time
}

// markSessions taints the sessions that what p did taints (see
// taintedSessions) and returns those whose stored copy must be written.
func (g *Gate) markSessions(p vaultcrux.Principal, source string) []sessionMark {
	var out []sessionMark
	for _, s := range taintedSessions(p) {
		if until, first, persist := g.taint.mark(p.Tenant, s, source, g.now()); persist {
			out = append(out, sessionMark{s, first, until})
		}
	}
	return out
}

// storeMarks writes marks in tx.
func storeMarks(tx store.TenantTx, marks []sessionMark) error {
	for _, m := range marks {
		if err := tx.MarkSessionTaint(m.session, m.source, m.until); err != nil {
			return err
		}
	}
	return nil
}

func (g *Gate) markedStored(t vaultcrux.TenantID, marks []sessionMark) {
	for _, m := range marks {
		g.taint.storedUntil(t, m.session, m.until)
	}
}

// NoteRead records that the principal's session read content: when any of
// it was untrusted (from the answer receipt receiptID), the session is
// tainted from now on, in this process at once and in the store. An error
// means the store could not be told: the caller must not hand the content
// out (fail closed: another replica, or this one after a restart, would not
// know of the taint).
func (g *Gate) NoteRead(ctx context.Context, p vaultcrux.Principal, untrusted bool, receiptID string) error {
	if !untrusted {
		return nil
	}
	marks := g.markSessions(p, "receipt:"+receiptID)
	if len(marks) == 0 {
		return nil
	}
	err := g.st.ForTenant(p.Tenant).Tx(ctx, func(tx store.TenantTx) error { return storeMarks(tx, marks) })
	if err != nil {
		g.log.LogAttrs(ctx, slog.LevelError, "store session taint", slog.String("tenant", string(p.Tenant)), slog.String("error", err.Error()))
		return vaultcrux.E(vaultcrux.Unavailable, "the session's taint could not be recorded; the content is withheld")
	}
	g.markedStored(p.Tenant, marks)
	return nil
}

// pollTaint merges the session taint marked in the store since the last
// poll (all of it on the first), in the system transaction tx.
func (g *Gate) pollTaint(tx store.SystemTx) error {
	marks, dbNow, err := tx.RecentSessionTaint(g.taintSince)
	if err != nil {
		return err
	}
	now := g.now()
	for _, m := range marks {
		g.taint.merge(m.Tenant, m.Session, m.Source, m.ExpiresAt, now)
	}
	g.taintSince = dbNow.Add(-taintPollMargin)
	return nil
}

// PruneSessionTaint deletes the store's expired session taint.
func (g *Gate) PruneSessionTaint(ctx context.Context) (n int, err error) {
	err = g.st.Tx(ctx, func(tx store.SystemTx) (err error) {
		n, err = tx.PruneSessionTaint(g.now())
		return err
	})
	return n, err
}

// SessionTainted reports whether the principal's session is tainted.
func (g *Gate) SessionTainted(p vaultcrux.Principal) bool {
	_, ok := g.taint.tainted(p.Tenant, SessionKey(p), g.now())
	return ok
}
