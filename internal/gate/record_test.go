package gate_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/gate"
	"github.com/vaultcrux/vaultcrux/internal/shield"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// Every decision, allow and deny alike, is a shield_decisions row, a
// shield.decision outbox event of the same id and a signed receipt whose
// details match the decision.
func TestDecideRecordsEveryDecision(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	owner := e.tenant("acme")
	// The agent's key is its own: its tainted read (an agent cannot
	// declare a "user" source) must not taint the owner's key.
	agent := asAgent(asKey(owner, "k-agent", vaultcrux.RoleMember), "agent-1")
	caps, err := e.g.Capabilities(ctx, owner.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(caps.ManifestHash, "blake3:") || len(caps.Tools) != len(gate.BuiltinTools()) {
		t.Fatalf("capabilities: hash %q, %d tools, want blake3 and %d", caps.ManifestHash, len(caps.Tools), len(gate.BuiltinTools()))
	}

	cases := []struct {
		name     string
		call     *gate.Call
		outcome  shield.Outcome
		stage    shield.Stage
		denial   shield.DenialType
		enforced bool
	}{
		{"allow", &gate.Call{Principal: agent, Tool: gate.ToolQueryVault, Args: json.RawMessage(`{"query":"q3 revenue","topK":3}`),
			Inputs: []gate.InputRef{{Source: "user"}}, Route: "POST /v1/retrieve"}, shield.OutcomeAllow, "", "", true},
		{"deny unknown tool", &gate.Call{Principal: agent, Tool: "send_email", Args: json.RawMessage(`{"to":"x@example.com"}`)},
			shield.OutcomeDeny, shield.StageCapability, shield.DenialUnknownTool, true},
		{"deny args not an object", &gate.Call{Principal: owner, Tool: gate.ToolCite, Args: json.RawMessage(`[1,2]`)},
			shield.OutcomeDeny, shield.StageCapability, shield.DenialArgumentRuleViolation, true},
		{"deny args not JSON", &gate.Call{Principal: owner, Tool: gate.ToolCite, Args: json.RawMessage(`{"a":1,"a":2}`)},
			shield.OutcomeDeny, shield.StagePolicy, shield.DenialPolicyError, true},
		{"approval required", &gate.Call{Principal: owner, Tool: gate.ToolCryptoShred, Args: json.RawMessage(`{"confirm":"acme"}`)},
			shield.OutcomeApprovalRequired, shield.StageApproval, "", true},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.g.Decide(ctx, c.call)
			d := r.Decision
			if d.Outcome != c.outcome || d.Stage != c.stage || d.DenialType != c.denial || d.Enforced != c.enforced {
				t.Fatalf("decision %s/%s/%q enforced=%v, want %s/%s/%q enforced=%v (detail %q)",
					d.Outcome, d.Stage, d.DenialType, d.Enforced, c.outcome, c.stage, c.denial, c.enforced, d.Detail)
			}
			if !r.Recorded || r.DecisionID == "" || r.ReceiptID == "" || seen[r.DecisionID] {
				t.Fatalf("recorded %v, decision %q, receipt %q", r.Recorded, r.DecisionID, r.ReceiptID)
			}
			seen[r.DecisionID] = true
			if got := r.Blocked(); got != (c.outcome != shield.OutcomeAllow) {
				t.Errorf("Blocked() = %v", got)
			}
			var de *gate.DecisionError
			if err := r.Err(); (err == nil) != (c.outcome == shield.OutcomeAllow) || (err != nil && !errors.As(err, &de)) {
				t.Errorf("Err() = %v", err)
			}
			wantArgs, argsErr := shield.ArgsHash(c.call.Args)
			if argsErr != nil {
				wantArgs = ""
			}
			if d.ArgsHash != wantArgs || d.ManifestHash != caps.ManifestHash {
				t.Errorf("decision hashes args %q manifest %q, want %q %q", d.ArgsHash, d.ManifestHash, wantArgs, caps.ManifestHash)
			}

			// The row.
			row := e.row(owner.Tenant, r.DecisionID)
			if row.Outcome != string(c.outcome) || row.Stage != string(c.stage) || row.DenialType != string(c.denial) ||
				row.Enforced != c.enforced || row.WouldBlock != (c.outcome != shield.OutcomeAllow) || row.Mode != "enforce" ||
				row.ReceiptID != r.ReceiptID || row.ArgsHash != wantArgs || row.ManifestHash != caps.ManifestHash ||
				row.Tool != c.call.Tool || row.Actor != c.call.Principal.ID || row.AgentID != c.call.Principal.AgentID {
				t.Errorf("row %+v does not match the decision %+v", row, d)
			}
			var inputs []gate.InputRef
			if err := json.Unmarshal(row.Inputs, &inputs); err != nil || len(inputs) != len(c.call.Inputs) {
				t.Errorf("row inputs %s (%v), want %d", row.Inputs, err, len(c.call.Inputs))
			}

			// The outbox event, same id, same decision.
			var ev *store.OutboxEvent
			for _, o := range e.outbox(owner.Tenant) {
				if o.ID == r.DecisionID {
					ev = o
				}
			}
			if ev == nil || ev.Kind != "shield.decision" {
				t.Fatalf("no shield.decision outbox event %s: %+v", r.DecisionID, ev)
			}
			var payload struct {
				DecisionID string         `json:"decisionId"`
				ReceiptID  string         `json:"receiptId"`
				TenantID   string         `json:"tenantId"`
				Decision   map[string]any `json:"decision"`
			}
			if err := json.Unmarshal(ev.Payload, &payload); err != nil {
				t.Fatal(err)
			}
			if payload.DecisionID != r.DecisionID || payload.ReceiptID != r.ReceiptID || payload.TenantID != "acme" ||
				payload.Decision["outcome"] != string(c.outcome) {
				t.Errorf("outbox payload %s", ev.Payload)
			}

			// The receipt: signed, verifying, details matching.
			l := e.receipt(owner.Tenant, r.ReceiptID)
			if l.Status != "signed" || l.Doc.Kind() != "shield.decision" || l.Doc.Field("subject") != "shield-decision:"+r.DecisionID {
				t.Fatalf("receipt status %s kind %s subject %v", l.Status, l.Doc.Kind(), l.Doc.Field("subject"))
			}
			det := details(t, l)
			wantDet := map[string]any{
				"decisionId": r.DecisionID, "outcome": string(c.outcome), "stage": string(c.stage),
				"shieldManifestHash": caps.ManifestHash, "argsHash": wantArgs, "tool": c.call.Tool, "enforced": c.enforced,
			}
			for k, v := range wantDet {
				if det[k] != v {
					t.Errorf("receipt details[%s] = %v, want %v", k, det[k], v)
				}
			}
			if dt, ok := det["denialType"]; (c.denial == "" && ok) || (c.denial != "" && dt != string(c.denial)) {
				t.Errorf("receipt denialType %v, want %q", dt, c.denial)
			}
			if c.call.Route != "" && det["route"] != c.call.Route {
				t.Errorf("receipt route %v", det["route"])
			}
			for _, secret := range []string{"q3 revenue", "x@example.com"} {
				if body := string(l.Record.Body); strings.Contains(body, secret) {
					t.Errorf("receipt holds argument value %q: %s", secret, body)
				}
			}

			if c.outcome == shield.OutcomeApprovalRequired {
				if r.ApprovalRequestID == "" || det["approvalRequestId"] != r.ApprovalRequestID || row.ApprovalID != r.ApprovalRequestID {
					t.Fatalf("approval request %q, details %v, row %q", r.ApprovalRequestID, det["approvalRequestId"], row.ApprovalID)
				}
				a := e.approvalRow(owner.Tenant, r.ApprovalRequestID)
				if a.Status != "pending" || a.DecisionID != r.DecisionID || a.Tool != gate.ToolCryptoShred || a.ArgsHash != wantArgs {
					t.Errorf("approval %+v", a)
				}
				found := false
				for _, rc := range e.receipts(owner.Tenant, "shield.approval.proposed") {
					if pl := e.receipt(owner.Tenant, rc.ID); details(t, pl)["approvalId"] == r.ApprovalRequestID {
						found = true
					}
				}
				if !found {
					t.Error("no shield.approval.proposed receipt for the approval request")
				}
			}
		})
	}

	// The list shows every decision, newest first.
	ds, err := e.g.ListDecisions(ctx, owner.Tenant, store.DecisionFilter{}, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != len(cases) {
		t.Fatalf("ListDecisions: %d decisions, want %d", len(ds), len(cases))
	}
	for _, d := range ds {
		if !seen[d.ID] {
			t.Errorf("unexpected decision %s", d.ID)
		}
	}
	if n := len(e.receipts(owner.Tenant, "shield.decision")); n != len(cases) {
		t.Errorf("%d shield.decision receipts, want %d", n, len(cases))
	}
	denies, err := e.g.ListDecisions(ctx, owner.Tenant, store.DecisionFilter{Outcome: "deny"}, "", 100)
	if err != nil || len(denies) != 3 {
		t.Errorf("ListDecisions(deny): %d (%v), want 3", len(denies), err)
	}
}

// A decision of one tenant is not visible in another.
func TestDecisionsAreTenantScoped(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	a, b := e.tenant("acme"), e.tenant("bravo")
	r := e.decide(call(a, gate.ToolQueryVault, `{}`))
	want(t, "acme query", r, shield.OutcomeAllow, "")
	ds, err := e.g.ListDecisions(ctx, b.Tenant, store.DecisionFilter{}, "", 10)
	if err != nil || len(ds) != 0 {
		t.Fatalf("bravo sees %d decisions (%v)", len(ds), err)
	}
	if _, err := e.led.GetReceipt(ctx, b.Tenant, r.ReceiptID); err == nil {
		t.Fatal("bravo can load acme's decision receipt")
	}
}
