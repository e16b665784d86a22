package shield_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/vaultcrux/vaultcrux/internal/shield"
)

// A gateway asks Shield about a call that an agent makes after reading a
// chunk that an outsider wrote.
func ExampleEvaluate() {
	mail := shield.Server{ID: "srv_mail", Name: "mail", Command: "mail-mcp", Tools: []shield.Tool{{
		Name: "send_email", Description: "Send an email", InputSchema: json.RawMessage(`{"type":"object"}`),
		Class: shield.ClassEgress, Risk: shield.RiskMedium,
		ArgRules: []shield.ArgRule{{Arg: "to", Required: true, Pattern: `[a-z.]+@example\.com`}},
	}}}
	digest, _ := shield.ServerDigest(&mail)
	m, _ := shield.BuildManifest(nil, []shield.ServerState{{
		Server: mail, Status: shield.StatusActive, PinnedDigests: []shield.Pin{{Digest: digest}},
	}})
	p, _ := shield.ParsePolicy([]byte(`{"mode":"enforce","flags":{"enabled":true,"enforceCapability":true,
		"enforceDigest":true,"enforceTaint":true,"enforceApprovals":true,"killSwitches":true}}`))

	call := shield.Request{Tenant: "t1", AgentID: "agent-7", Tool: "send_email",
		Args: []byte(`{"to":"ops@example.com"}`), Now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	d := shield.Evaluate(p, m, nil, &call)
	fmt.Println(d.Outcome, d.Server)

	call.Inputs = []shield.Input{{Ref: "ch_42", Kind: shield.InputChunk, Trust: shield.TrustUntrusted}}
	d = shield.Evaluate(p, m, nil, &call)
	fmt.Println(d.Outcome, d.Stage, d.DenialType, d.TaintSources)

	p.Mode = shield.ModeObserve
	d = shield.Evaluate(p, m, nil, &call)
	fmt.Println(d.Outcome, d.Verdict, d.DenialType, d.Enforced, d.WouldBlock)
	// Output:
	// allow srv_mail
	// deny taint taint_blocked_dangerous_action [chunk:ch_42]
	// allow deny taint_blocked_dangerous_action false true
}
