package gate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/gate"
	"github.com/vaultcrux/vaultcrux/internal/shield"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

const shredArgs = `{"confirm":"acme-shred-secret-7731","reason":"offboarding"}`

// propose asks for a crypto-shred and returns the approval request id.
func (e *env) propose(p vaultcrux.Principal, args string) string {
	e.t.Helper()
	r := e.decide(call(p, gate.ToolCryptoShred, args))
	want(e.t, "propose "+args, r, shield.OutcomeApprovalRequired, "")
	if r.ApprovalRequestID == "" || r.Decision.Stage != shield.StageApproval {
		e.t.Fatalf("approval_required without a request id: %+v", r)
	}
	return r.ApprovalRequestID
}

// approve resolves id with approve in a frontdoor session of p.
func (e *env) approve(p vaultcrux.Principal, id string) *gate.Resolution {
	e.t.Helper()
	res, err := e.g.Resolve(context.Background(), inSession(p, "sess-"+id), id, "approve", "looked at it")
	if err != nil {
		e.t.Fatalf("resolve %s: %v", id, err)
	}
	return res
}

func withToken(c *gate.Call, tok string) *gate.Call {
	c.ApprovalToken = tok
	return c
}

func TestApprovalFlow(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{})
	owner := e.tenant("acme")
	id := e.propose(owner, shredArgs)

	// Stored sealed: the row holds none of the argument values; the API
	// view opens them.
	row := e.approvalRow(owner.Tenant, id)
	if row.Status != "pending" || len(row.Args) == 0 || bytes.Contains(row.Args, []byte("acme-shred-secret-7731")) ||
		bytes.Contains(row.Args, []byte("offboarding")) || bytes.Contains(row.Args, []byte("confirm")) {
		t.Fatalf("stored approval args are not sealed: status %s args %q", row.Status, row.Args)
	}
	if len(row.TokenHash) != 0 || row.TokenExpiresAt != nil {
		t.Fatal("a pending approval has a token")
	}
	view, err := e.g.GetApproval(ctx, owner.Tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if string(view.Args) != shredArgs || view.Status != "pending" || view.Tool != gate.ToolCryptoShred || view.Server != shield.BuiltinServerID {
		t.Fatalf("approval view %+v args %s", view, view.Args)
	}

	// Only a person in a browser session, owner or admin, resolves.
	for _, c := range []struct {
		name string
		p    vaultcrux.Principal
	}{
		{"owner API key", owner},
		{"admin API key", asKey(owner, "k-admin", vaultcrux.RoleAdmin)},
		{"member session", inSession(asKey(owner, "k-member", vaultcrux.RoleMember), "s-m")},
		{"viewer session", inSession(asKey(owner, "k-viewer", vaultcrux.RoleViewer), "s-v")},
	} {
		_, err := e.g.Resolve(ctx, c.p, id, "approve", "")
		wantKind(t, c.name, err, vaultcrux.Forbidden)
	}
	_, err = e.g.Resolve(ctx, inSession(owner, "s"), id, "maybe", "")
	wantKind(t, "bad decision", err, vaultcrux.Invalid)
	_, err = e.g.Resolve(ctx, inSession(owner, "s"), "01NOSUCHAPPROVAL0000000000", "approve", "")
	wantKind(t, "unknown approval", err, vaultcrux.NotFound)
	other := e.tenant("bravo")
	_, err = e.g.Resolve(ctx, inSession(other, "s"), id, "approve", "")
	wantKind(t, "another tenant's approval", err, vaultcrux.NotFound)
	_, err = e.g.GetApproval(ctx, other.Tenant, id)
	wantKind(t, "another tenant's approval", err, vaultcrux.NotFound)

	res := e.approve(asKey(owner, "k-admin", vaultcrux.RoleAdmin), id)
	tok := res.ApprovalToken
	if !strings.HasPrefix(tok, gate.TokenPrefix) || len(tok) < len(gate.TokenPrefix)+40 || res.Approval.Status != "approved" || res.ReceiptID == "" {
		t.Fatalf("resolution %+v", res)
	}
	if exp, err := time.Parse(time.RFC3339Nano, res.ExpiresAt); err != nil || !exp.Equal(e.clock.Now().Add(15*time.Minute)) {
		t.Fatalf("token expires %q (%v), want in 15 min", res.ExpiresAt, err)
	}
	if l := e.receipt(owner.Tenant, res.ReceiptID); l.Doc.Kind() != "shield.approval.resolved" || strings.Contains(string(l.Record.Body), tok) {
		t.Fatalf("resolved receipt kind %s (must not hold the token)", l.Doc.Kind())
	}
	// Stored hashed.
	if row := e.approvalRow(owner.Tenant, id); len(row.TokenHash) == 0 || bytes.Contains(row.TokenHash, []byte(tok)) {
		t.Fatalf("token hash %x", row.TokenHash)
	}
	_, err = e.g.Resolve(ctx, inSession(owner, "s"), id, "deny", "")
	wantKind(t, "resolve twice", err, vaultcrux.Conflict)

	// The same call with the token: allowed once.
	ok := e.decide(withToken(call(owner, gate.ToolCryptoShred, shredArgs), tok))
	want(t, "with token", ok, shield.OutcomeAllow, "")
	if ok.Decision.ApprovalID != id || e.row(owner.Tenant, ok.DecisionID).ApprovalID != id {
		t.Fatalf("allow approval id %q, want %q", ok.Decision.ApprovalID, id)
	}
	if a := e.approvalRow(owner.Tenant, id); a.Status != "executed" || a.ExecutedAt == nil {
		t.Fatalf("approval after use: %s", a.Status)
	}
	executed := e.receipts(owner.Tenant, "shield.approval.executed")
	if len(executed) != 1 {
		t.Fatalf("%d executed receipts, want 1", len(executed))
	}
	if det := details(t, e.receipt(owner.Tenant, executed[0].ID)); det["approvalId"] != id || det["decisionId"] != ok.DecisionID {
		t.Fatalf("executed receipt details %v", det)
	}

	// Reuse.
	again := e.decide(withToken(call(owner, gate.ToolCryptoShred, shredArgs), tok))
	want(t, "reuse", again, shield.OutcomeDeny, shield.DenialApprovalTokenExpired)
	if again.Decision.Stage != shield.StageApproval || again.Decision.ApprovalID != id {
		t.Fatalf("reuse: stage %s approval %q", again.Decision.Stage, again.Decision.ApprovalID)
	}
	// A spent token on a call that needs no approval is still refused:
	// it shows the caller acts on an approval that does not cover it.
	want(t, "token on another tool", e.decide(withToken(call(owner, gate.ToolQueryVault, `{}`), tok)), shield.OutcomeDeny, shield.DenialApprovalTokenInvalid)
}

func TestApprovalTokenAttacks(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{})
	owner := e.tenant("acme")
	other := e.tenant("bravo")

	fresh := func() string {
		t.Helper()
		return e.approve(owner, e.propose(owner, shredArgs)).ApprovalToken
	}

	t.Run("changed arguments", func(t *testing.T) {
		tok := fresh()
		for _, args := range []string{`{"confirm":"acme-shred-secret-7731","reason":"other"}`, `{"confirm":"acme-shred-secret-7731"}`, `{}`} {
			want(t, args, e.decide(withToken(call(owner, gate.ToolCryptoShred, args), tok)), shield.OutcomeDeny, shield.DenialApprovalTokenInvalid)
		}
		// Key order and whitespace are not a change: canonical args.
		want(t, "reordered", e.decide(withToken(call(owner, gate.ToolCryptoShred, `{ "reason":"offboarding", "confirm":"acme-shred-secret-7731" }`), tok)), shield.OutcomeAllow, "")
	})

	t.Run("another tool", func(t *testing.T) {
		tok := fresh()
		want(t, "rotate with a shred token", e.decide(withToken(call(owner, gate.ToolRotateTenant, shredArgs), tok)), shield.OutcomeDeny, shield.DenialApprovalTokenInvalid)
	})

	t.Run("another tenant", func(t *testing.T) {
		tok := fresh()
		want(t, "bravo", e.decide(withToken(call(other, gate.ToolCryptoShred, shredArgs), tok)), shield.OutcomeDeny, shield.DenialApprovalTokenInvalid)
		// Still good in its own tenant.
		want(t, "acme", e.decide(withToken(call(owner, gate.ToolCryptoShred, shredArgs), tok)), shield.OutcomeAllow, "")
	})

	t.Run("forged", func(t *testing.T) {
		tok := fresh()
		forged := tok[:len(tok)-2] + "AA"
		if forged == tok {
			forged = tok[:len(tok)-2] + "BB"
		}
		want(t, "forged", e.decide(withToken(call(owner, gate.ToolCryptoShred, shredArgs), forged)), shield.OutcomeDeny, shield.DenialApprovalTokenInvalid)
	})

	t.Run("manifest changed", func(t *testing.T) {
		tok := fresh()
		e.registerPinned(owner, "notes", tool("list_notes", "Lists notes.", shield.ClassRead, shield.RiskLow))
		want(t, "after a new server", e.decide(withToken(call(owner, gate.ToolCryptoShred, shredArgs), tok)), shield.OutcomeDeny, shield.DenialApprovalTokenInvalid)
	})

	t.Run("expired", func(t *testing.T) {
		tok := fresh()
		e.clock.Advance(15*time.Minute + time.Second)
		r := e.decide(withToken(call(owner, gate.ToolCryptoShred, shredArgs), tok))
		want(t, "expired", r, shield.OutcomeDeny, shield.DenialApprovalTokenExpired)
		if r.Decision.ApprovalID == "" {
			t.Fatal("the deny does not name the approval")
		}
		if a := e.approvalRow(owner.Tenant, r.Decision.ApprovalID); a.Status != "approved" || a.ExecutedAt != nil {
			t.Fatalf("an expired token's approval is %s", a.Status)
		}
	})

	t.Run("denied request", func(t *testing.T) {
		id := e.propose(owner, shredArgs)
		res, err := e.g.Resolve(ctx, inSession(owner, "s"), id, "deny", "no")
		if err != nil {
			t.Fatal(err)
		}
		if res.ApprovalToken != "" || res.Approval.Status != "denied" {
			t.Fatalf("deny resolution %+v", res)
		}
	})
}

// Of two calls presenting one valid token at once, exactly one is
// allowed; the other is denied approval_token_expired (used).
func TestApprovalTokenConcurrentUse(t *testing.T) {
	e := newEnv(t, envOpts{})
	owner := e.tenant("acme")
	for round := range 5 {
		tok := e.approve(owner, e.propose(owner, shredArgs)).ApprovalToken
		const n = 4
		results := make([]*gate.Result, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				results[i] = e.g.Decide(context.Background(), withToken(call(owner, gate.ToolCryptoShred, shredArgs), tok))
			})
		}
		close(start)
		wg.Wait()
		allowed := 0
		for _, r := range results {
			switch {
			case r.Decision.Outcome == shield.OutcomeAllow:
				allowed++
			case r.Decision.DenialType != shield.DenialApprovalTokenExpired:
				t.Errorf("round %d: a loser got %s/%s", round, r.Decision.Outcome, r.Decision.DenialType)
			}
			if !r.Recorded {
				t.Errorf("round %d: unrecorded %+v", round, r.Decision)
			}
		}
		if allowed != 1 {
			t.Fatalf("round %d: %d calls allowed with one token, want 1", round, allowed)
		}
	}
	if n := len(e.receipts(owner.Tenant, "shield.approval.executed")); n != 5 {
		t.Fatalf("%d executed receipts, want 5", n)
	}
}

func TestProposeAndExpire(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{})
	owner := e.tenant("acme")
	agent := asAgent(owner, "agent-9")

	// Propose files a request bound to the current manifest.
	a, err := e.g.Propose(ctx, agent, &gate.ProposeRequest{Tool: gate.ToolCryptoShred, Args: json.RawMessage(shredArgs), Reason: "cleanup"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != "pending" || a.ReceiptID == "" || string(a.Args) != shredArgs || a.AgentID != "agent-9" || a.Reason != "cleanup" {
		t.Fatalf("proposal %+v", a)
	}
	if l := e.receipt(owner.Tenant, a.ReceiptID); l.Doc.Kind() != "shield.approval.proposed" || details(t, l)["approvalId"] != a.ID {
		t.Fatalf("proposal receipt %s %v", l.Doc.Kind(), details(t, l))
	}
	_, err = e.g.Propose(ctx, owner, &gate.ProposeRequest{Tool: "no_such_tool"})
	wantKind(t, "unknown tool", err, vaultcrux.Invalid)
	_, err = e.g.Propose(ctx, owner, &gate.ProposeRequest{Tool: gate.ToolCryptoShred, Args: json.RawMessage(`{"a":1,"a":1}`)})
	wantKind(t, "args not strict JSON", err, vaultcrux.Invalid)
	// A token of a proposed request works like one of a decision.
	tok := e.approve(owner, a.ID).ApprovalToken
	want(t, "agent with token", e.decide(withToken(call(agent, gate.ToolCryptoShred, shredArgs), tok)), shield.OutcomeAllow, "")

	// An unresolved request past its TTL is an observable deny.
	id := e.propose(agent, shredArgs)
	if n, err := e.g.ExpireApprovals(ctx); n != 0 || err != nil {
		t.Fatalf("ExpireApprovals before the TTL: %d, %v", n, err)
	}
	e.clock.Advance(time.Hour)
	n, err := e.g.ExpireApprovals(ctx)
	if n != 1 || err != nil {
		t.Fatalf("ExpireApprovals: %d, %v; want 1", n, err)
	}
	if v, err := e.g.GetApproval(ctx, owner.Tenant, id); err != nil || v.Status != "expired" {
		t.Fatalf("approval after expiry: %+v, %v", v, err)
	}
	ds, err := e.g.ListDecisions(ctx, owner.Tenant, store.DecisionFilter{Outcome: "deny"}, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var expired *gate.Decision
	for _, d := range ds {
		if d.ApprovalID == id {
			expired = d
		}
	}
	if expired == nil || expired.Stage != "approval" || expired.DenialType != "approval_token_expired" || !expired.Enforced ||
		expired.Actor != "system:shield" || expired.AgentID != "agent-9" || expired.Tool != gate.ToolCryptoShred {
		t.Fatalf("expiry decision %+v", expired)
	}
	l := e.receipt(owner.Tenant, expired.ReceiptID)
	if l.Doc.Kind() != "shield.decision" || details(t, l)["approvalId"] != id || details(t, l)["denialType"] != "approval_token_expired" {
		t.Fatalf("expiry decision receipt %s %v", l.Doc.Kind(), details(t, l))
	}
	found := false
	for _, rc := range e.receipts(owner.Tenant, "shield.approval.expired") {
		if details(t, e.receipt(owner.Tenant, rc.ID))["approvalId"] == id {
			found = true
		}
	}
	if !found {
		t.Fatal("no shield.approval.expired receipt")
	}
	hasEvent := false
	for _, ev := range e.outbox(owner.Tenant) {
		hasEvent = hasEvent || ev.ID == expired.ID
	}
	if !hasEvent {
		t.Fatal("no outbox event for the expiry decision")
	}
	_, err = e.g.Resolve(ctx, inSession(owner, "s"), id, "approve", "")
	wantKind(t, "resolve an expired request", err, vaultcrux.Conflict)
	if n, err := e.g.ExpireApprovals(ctx); n != 0 || err != nil {
		t.Fatalf("ExpireApprovals again: %d, %v", n, err)
	}

	// Past its TTL but not yet swept: resolving is refused all the same.
	late := e.propose(owner, shredArgs)
	e.clock.Advance(time.Hour)
	_, err = e.g.Resolve(ctx, inSession(owner, "s"), late, "approve", "")
	wantKind(t, "resolve past the TTL", err, vaultcrux.Conflict)
}

// Two processes sweeping expired approvals at once record each expiry
// once.
func TestExpireApprovalsTwoProcesses(t *testing.T) {
	ctx := context.Background()
	a, b := twoProcesses(t, "sqlite")
	owner := a.tenant("acme")
	for range 3 {
		a.propose(owner, shredArgs)
	}
	a.clock.Advance(2 * time.Hour)
	var na, nb int
	var ea, eb error
	var wg sync.WaitGroup
	wg.Go(func() { na, ea = a.g.ExpireApprovals(ctx) })
	wg.Go(func() { nb, eb = b.g.ExpireApprovals(ctx) })
	wg.Wait()
	for _, err := range []error{ea, eb} {
		if err != nil && vaultcrux.ErrorKind(err) != vaultcrux.Conflict {
			t.Fatalf("ExpireApprovals: %v", err)
		}
	}
	if na+nb != 3 {
		t.Fatalf("expired %d + %d, want 3 in all", na, nb)
	}
	ds, err := a.g.ListDecisions(ctx, owner.Tenant, store.DecisionFilter{Outcome: "deny"}, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	expiries := 0
	for _, d := range ds {
		if d.Actor == "system:shield" {
			expiries++
		}
	}
	if expiries != 3 || len(a.receipts(owner.Tenant, "shield.approval.expired")) != 3 {
		t.Fatalf("%d expiry decisions, %d expired receipts; want 3 each", expiries, len(a.receipts(owner.Tenant, "shield.approval.expired")))
	}
}
