package shield

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// FuzzEvaluate feeds the engine arbitrary arguments, names, labels and
// token states. Evaluate must never panic (not even a recovered one), must
// be deterministic, must never allow a call of a tool outside the manifest
// when everything is enforced, and must record the same verdict in observe
// mode as it applies in enforce mode.
func FuzzEvaluate(f *testing.F) {
	pending := acme()
	pending.ID, pending.Name = "pending", "pending"
	pending.Tools = append(pending.Tools, Tool{Name: "only_pending", Class: ClassRead, Risk: RiskLow})
	m := mustManifest(f, builtins(), pinned(f, acme()), ServerState{Server: pending, Status: StatusPending})
	k := mustKillSet(f, KillSwitch{ID: "k1", Scope: ScopeAgent, Target: "rogue"}, KillSwitch{ID: "k2", Scope: ScopeTool, Target: "shell"})
	sampling := []SamplingPolicy{{ID: "s1", Tool: "send", MaxCalls: 5, Window: time.Minute, Per: PerAgent}}
	enforce, observe := enforceAll(), observeAll()
	enforce.Sampling, observe.Sampling = sampling, sampling
	sessions := map[string]UISession{"ui1": {ID: "ui1", Origin: "https://app.example", ToolAllow: []string{"lookup"}, ExpiresAt: now.Add(time.Hour)}}

	f.Add([]byte(`{"to":"bob@example.com"}`), "acme", "lookup", "agent1", "trusted", false, false, "")
	f.Add([]byte(`{"to":"bob@example.com"}`), "", "send", "agent1", "untrusted", false, false, "")
	f.Add([]byte(`{"to":"bob@example.com","to":"x"}`), "acme", "wire", "agent1", "trusted", false, false, "valid")
	f.Add([]byte(`[1,2,3]`), "vaultcrux", "query_vault", "rogue", "", true, true, "used")
	f.Add([]byte(``), "pending", "only_pending", "", "unknown", false, true, "invalid")
	f.Fuzz(func(t *testing.T, args []byte, server, tool, agent, trust string, sessionTainted, fromUI bool, token string) {
		r := &Request{
			Tenant: "t1", AgentID: agent, SessionID: "s1", Server: server, Tool: tool, Args: args,
			Inputs:         []Input{{Ref: "in1", Kind: InputChunk, Trust: TrustLabel(trust)}},
			SessionTainted: sessionTainted, Now: now, RecentCalls: map[string]int{"s1": 1},
			FromToolUI: fromUI, UISessionID: "ui1", UIOrigin: "https://app.example", UISessions: sessions,
		}
		if token != "" {
			r.Approval = ApprovalCheck{Presented: true, Status: ApprovalStatus(token), ApprovalID: "ap"}
		}
		d := Evaluate(enforce, m, k, r)
		if d.Detail == "panic during evaluation" {
			t.Fatalf("Evaluate panicked: %+v", d)
		}
		if _, ok := m.Lookup(server, tool); !ok && d.Outcome == OutcomeAllow {
			t.Fatalf("allowed %q on %q, which is not in the manifest: %+v", tool, server, d)
		}
		if _, err := ArgsHash(args); err != nil && d.Outcome == OutcomeAllow {
			t.Fatalf("allowed arguments that are not JSON: %+v", d)
		}
		// Everything is enforced: the verdict is the outcome.
		if d.Outcome != d.Verdict || !d.Enforced || d.WouldBlock != (d.Verdict != OutcomeAllow) {
			t.Fatalf("enforce: outcome %s, verdict %s, enforced %v, wouldBlock %v", d.Outcome, d.Verdict, d.Enforced, d.WouldBlock)
		}
		if (d.Verdict == OutcomeAllow) != (d.Stage == "" && d.DenialType == "" && len(d.Findings) == 0) {
			t.Fatalf("verdict %s with stage %q, denial %q, findings %+v", d.Verdict, d.Stage, d.DenialType, d.Findings)
		}
		if (d.Verdict == OutcomeDeny) != (d.DenialType != "") {
			t.Fatalf("verdict %s with denial %q", d.Verdict, d.DenialType)
		}
		if again := Evaluate(enforce, m, k, r); !cmp.Equal(d, again) {
			t.Fatalf("not deterministic:\n%+v\n%+v", d, again)
		}

		o := Evaluate(observe, m, k, r)
		if o.Detail == "panic during evaluation" {
			t.Fatalf("Evaluate panicked in observe mode: %+v", o)
		}
		if o.Enforced {
			// Only kill switches and evaluation failures bind in observe mode.
			if o.Stage != StageKillSwitch && o.DenialType != DenialPolicyError {
				t.Fatalf("observe enforced %+v", o)
			}
			return
		}
		if o.Outcome != OutcomeAllow || o.WouldBlock != (o.Verdict != OutcomeAllow) {
			t.Fatalf("observe: outcome %s, verdict %s, wouldBlock %v", o.Outcome, o.Verdict, o.WouldBlock)
		}
		if o.Verdict != d.Verdict || o.Stage != d.Stage || o.DenialType != d.DenialType {
			t.Fatalf("observe recorded %s/%s/%s, enforce applied %s/%s/%s", o.Verdict, o.Stage, o.DenialType, d.Verdict, d.Stage, d.DenialType)
		}
	})
}
