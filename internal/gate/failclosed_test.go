package gate_test

import (
	"context"
	"testing"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/gate"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/shield"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/vctest"
)

// wantPolicyError checks a fail-closed deny.
func wantPolicyError(t *testing.T, what string, r *gate.Result, recorded bool) {
	t.Helper()
	d := r.Decision
	if d.Outcome != shield.OutcomeDeny || d.Verdict != shield.OutcomeDeny || d.DenialType != shield.DenialPolicyError ||
		d.Stage != shield.StagePolicy || !d.Enforced || !d.WouldBlock || !r.Blocked() || r.Err() == nil {
		t.Fatalf("%s: got %+v, want an enforced policy_error deny", what, d)
	}
	if r.Recorded != recorded || (r.ReceiptID != "") != recorded || r.DecisionID == "" {
		t.Fatalf("%s: recorded %v receipt %q decision %q, want recorded=%v", what, r.Recorded, r.ReceiptID, r.DecisionID, recorded)
	}
}

func TestFailClosedStoreError(t *testing.T) {
	ctx := context.Background()
	flaky := &flakyStore{Store: vctest.Open(t)}
	e := newEnv(t, envOpts{st: flaky})
	owner := e.tenant("acme")
	query := func() *gate.Call { return call(owner, gate.ToolQueryVault, `{"query":"x"}`) }
	want(t, "healthy store", e.decide(query()), shield.OutcomeAllow, "")

	t.Run("nothing works: an unrecorded deny", func(t *testing.T) {
		g := e.newGate() // has loaded nothing yet
		flaky.failTx.Store(true)
		flaky.failBatch.Store(true)
		r := g.Decide(ctx, query())
		flaky.failTx.Store(false)
		flaky.failBatch.Store(false)
		wantPolicyError(t, "store down", r, false)
		err := e.st.ForTenant(owner.Tenant).Tx(ctx, func(tx store.TenantTx) error {
			_, err := tx.GetDecision(r.DecisionID)
			return err
		})
		wantKind(t, "the unrecorded decision", err, vaultcrux.NotFound)
	})

	t.Run("state cannot be loaded: a recorded deny", func(t *testing.T) {
		g := e.newGate()
		flaky.failTx.Store(true)
		r := g.Decide(ctx, query())
		flaky.failTx.Store(false)
		wantPolicyError(t, "state unloadable", r, true)
		if row := e.row(owner.Tenant, r.DecisionID); row.Outcome != "deny" || row.DenialType != "policy_error" {
			t.Fatalf("row %+v", row)
		}
		if l := e.receipt(owner.Tenant, r.ReceiptID); details(t, l)["denialType"] != "policy_error" {
			t.Fatalf("receipt details %v", details(t, l))
		}
		// Once the store answers, the same gate decides again.
		want(t, "recovered", g.Decide(ctx, query()), shield.OutcomeAllow, "")
	})

	t.Run("loaded state, the token cannot be checked", func(t *testing.T) {
		g := e.newGate()
		want(t, "warm", g.Decide(ctx, query()), shield.OutcomeAllow, "")
		flaky.failTx.Store(true)
		c := query()
		c.ApprovalToken = gate.TokenPrefix + "whatever"
		r := g.Decide(ctx, c)
		flaky.failTx.Store(false)
		wantPolicyError(t, "token lookup fails", r, true)
	})

	t.Run("inputs cannot be resolved", func(t *testing.T) {
		g := e.newGate()
		want(t, "warm", g.Decide(ctx, query()), shield.OutcomeAllow, "")
		flaky.failTx.Store(true)
		c := query()
		c.Inputs = []gate.InputRef{{ChunkID: "doc#0"}}
		r := g.Decide(ctx, c)
		flaky.failTx.Store(false)
		wantPolicyError(t, "inputs", r, true)
	})

	t.Run("record fails: an unrecorded deny, never an allow", func(t *testing.T) {
		g := e.newGate()
		want(t, "warm", g.Decide(ctx, query()), shield.OutcomeAllow, "")
		flaky.failBatch.Store(true)
		r := g.Decide(ctx, query())
		flaky.failBatch.Store(false)
		wantPolicyError(t, "batch fails", r, false)
	})
}

// A stored override that does not parse makes every decision of the
// tenant a policy_error deny until an owner fixes it; other tenants are
// not affected.
func TestFailClosedMalformedPolicy(t *testing.T) {
	ctx := context.Background()
	cases := []struct{ name, value string }{
		{"FEATURE_SHIELD_ENABLED", "maybe"},
		{"SHIELD_MODE", "sometimes"},
		{"FEATURE_KILL_SWITCHES", ""},
		{"FEATURE_NOT_A_FLAG", "true"},
	}
	for _, c := range cases {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			owner, other := e.tenant("acme"), e.tenant("bravo")
			want(t, "before", e.decide(call(owner, gate.ToolQueryVault, `{}`)), shield.OutcomeAllow, "")
			// Written directly, as a bad migration or a hand edit would.
			if err := e.st.ForTenant(owner.Tenant).Tx(ctx, func(tx store.TenantTx) error {
				return tx.SetShieldSetting(&store.ShieldSetting{Name: c.name, Value: c.value, UpdatedBy: "test", UpdatedAt: e.clock.Now()})
			}); err != nil {
				t.Fatal(err)
			}
			if err := e.g.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			for _, tool := range []string{gate.ToolQueryVault, gate.ToolIngestDocument, "no_such_tool"} {
				r := e.decide(call(owner, tool, `{}`))
				wantPolicyError(t, tool, r, true)
				if r.Decision.Detail == "" {
					t.Errorf("%s: the deny does not say what is broken", tool)
				}
			}
			if _, _, _, err := e.g.Effective(ctx, owner.Tenant); vaultcrux.ErrorKind(err) != vaultcrux.Conflict {
				t.Errorf("Effective: %v, want Conflict", err)
			}
			want(t, "other tenant", e.decide(call(other, gate.ToolQueryVault, `{}`)), shield.OutcomeAllow, "")
			// A fresh process loads the same broken state.
			wantPolicyError(t, "fresh gate", e.newGate().Decide(ctx, call(owner, gate.ToolQueryVault, `{}`)), true)

			// Removing the override through the control plane repairs it
			// (a name that is not a setting can only be removed by hand).
			if c.name == "FEATURE_NOT_A_FLAG" {
				return
			}
			if _, err := e.g.SetSetting(ctx, owner, c.name, ""); err != nil {
				t.Fatalf("remove the override: %v", err)
			}
			want(t, "repaired", e.decide(call(owner, gate.ToolQueryVault, `{}`)), shield.OutcomeAllow, "")
		})
	}
}

// With the signer down an allow is not given: it becomes a policy_error
// deny stored with a pending receipt. A deny is recorded as it is.
func TestFailClosedSignerDown(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{})
	owner := e.tenant("acme")
	want(t, "signer up", e.decide(call(owner, gate.ToolQueryVault, `{}`)), shield.OutcomeAllow, "")

	e.keys.down.Store(true)
	r := e.decide(call(owner, gate.ToolQueryVault, `{"query":"x"}`))
	wantPolicyError(t, "allow without signer", r, true)
	if r.Decision.ArgsHash == "" || r.Decision.ManifestHash == "" {
		t.Errorf("the deny lost its hashes: %+v", r.Decision)
	}
	row := e.row(owner.Tenant, r.DecisionID)
	if row.Outcome != "deny" || row.DenialType != "policy_error" || row.ReceiptID != r.ReceiptID {
		t.Fatalf("row %+v", row)
	}
	l := e.receipt(owner.Tenant, r.ReceiptID)
	if l.Status != ledger.StatusPending || l.Doc.Signature() != nil {
		t.Fatalf("receipt status %s, want %s", l.Status, ledger.StatusPending)
	}
	if det := details(t, l); det["outcome"] != "deny" || det["denialType"] != "policy_error" {
		t.Fatalf("details %v", det)
	}

	d := e.decide(call(owner, "no_such_tool", `{}`))
	want(t, "deny without signer", d, shield.OutcomeDeny, shield.DenialUnknownTool)
	if !d.Recorded {
		t.Fatal("a deny must be recorded with the signer down")
	}
	if l := e.receipt(owner.Tenant, d.ReceiptID); l.Status != ledger.StatusPending || l.Doc.Kind() != "shield.decision" {
		t.Fatalf("deny receipt status %s kind %s", l.Status, l.Doc.Kind())
	}

	ar := e.decide(call(owner, gate.ToolCryptoShred, `{}`))
	want(t, "approval required without signer", ar, shield.OutcomeApprovalRequired, "")
	if !ar.Recorded || ar.ApprovalRequestID == "" {
		t.Fatalf("approval request not recorded: %+v", ar)
	}

	// Observe mode lets a would-be deny run: that allow needs a signature
	// too.
	e.keys.down.Store(false)
	if _, err := e.g.SetSetting(ctx, owner, "SHIELD_MODE", "observe"); err != nil {
		t.Fatal(err)
	}
	e.keys.down.Store(true)
	wantPolicyError(t, "observed allow without signer", e.decide(call(owner, "no_such_tool", `{}`)), true)

	e.keys.down.Store(false)
	if r := e.decide(call(owner, gate.ToolQueryVault, `{}`)); r.Decision.Outcome != shield.OutcomeAllow || e.receipt(owner.Tenant, r.ReceiptID).Status != ledger.StatusSigned {
		t.Fatalf("signer back: %+v", r.Decision)
	}
}

// A valid approval token presented while the signer is down is denied,
// and is not spent: nothing ran, so the approval still holds once the
// signer is back.
func TestFailClosedSignerDownKeepsApprovalToken(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{})
	owner := e.tenant("acme")
	shred := call(owner, gate.ToolCryptoShred, `{"confirm":"acme"}`)
	r := e.decide(shred)
	want(t, "propose", r, shield.OutcomeApprovalRequired, "")
	res, err := e.g.Resolve(ctx, inSession(owner, "sess-1"), r.ApprovalRequestID, "approve", "ok")
	if err != nil {
		t.Fatal(err)
	}
	withToken := call(owner, gate.ToolCryptoShred, `{"confirm":"acme"}`)
	withToken.ApprovalToken = res.ApprovalToken

	e.keys.down.Store(true)
	wantPolicyError(t, "token with signer down", e.decide(withToken), true)
	if a := e.approvalRow(owner.Tenant, r.ApprovalRequestID); a.Status != "approved" || a.ExecutedAt != nil {
		t.Fatalf("the approval was spent by a call that did not run: status %s executed %v", a.Status, a.ExecutedAt)
	}
	if n := len(e.receipts(owner.Tenant, "shield.approval.executed")); n != 0 {
		t.Fatalf("%d executed receipts for a call that did not run", n)
	}

	e.keys.down.Store(false)
	e.clock.Advance(time.Minute)
	ok := e.decide(withToken)
	want(t, "token with signer back", ok, shield.OutcomeAllow, "")
	if ok.Decision.ApprovalID != r.ApprovalRequestID {
		t.Errorf("allow approval id %q, want %q", ok.Decision.ApprovalID, r.ApprovalRequestID)
	}
	if a := e.approvalRow(owner.Tenant, r.ApprovalRequestID); a.Status != "executed" || a.ExecutedAt == nil {
		t.Fatalf("approval after use: %s", a.Status)
	}
}

// A stored server whose tool definitions do not parse leaves the tenant
// without a manifest: every decision is a policy_error deny.
func TestFailClosedBrokenManifest(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{})
	owner := e.tenant("acme")
	want(t, "before", e.decide(call(owner, gate.ToolQueryVault, `{}`)), shield.OutcomeAllow, "")
	now := e.clock.Now()
	if err := e.st.ForTenant(owner.Tenant).Tx(ctx, func(tx store.TenantTx) error {
		return tx.CreateServer(&store.ShieldServer{ID: "01BROKENSERVER000000000000", Name: "broken", URL: "https://b.example",
			Tools: []byte(`{"not":"a list"}`), Digest: "blake3:00", Status: "active", CreatedAt: now, UpdatedAt: now})
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.g.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	r := e.decide(call(owner, gate.ToolQueryVault, `{}`))
	wantPolicyError(t, "broken manifest", r, true)
	if _, err := e.g.Capabilities(ctx, owner.Tenant); vaultcrux.ErrorKind(err) != vaultcrux.Conflict {
		t.Fatalf("Capabilities: %v, want Conflict", err)
	}
	_, err := e.g.Propose(ctx, owner, &gate.ProposeRequest{Tool: gate.ToolCryptoShred})
	wantKind(t, "propose against a broken manifest", err, vaultcrux.Conflict)
}
