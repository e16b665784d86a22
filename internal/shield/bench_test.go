package shield

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"
)

// benchServers returns 10 servers of 20 tools each: 200 tools, every one
// with three argument rules, one of them a pattern.
func benchServers(tb testing.TB) []ServerState {
	classes := []CapabilityClass{ClassRead, ClassWrite, ClassEgress, ClassEconomy, ClassDangerousLocal}
	var out []ServerState
	for s := range 10 {
		srv := Server{ID: fmt.Sprintf("srv%02d", s), Name: fmt.Sprintf("server %d", s), URL: fmt.Sprintf("https://mcp%d.example/mcp", s)}
		for i := range 20 {
			srv.Tools = append(srv.Tools, Tool{
				Name:        fmt.Sprintf("tool_%02d", i),
				Description: fmt.Sprintf("Tool %d of server %d: does a thing with a recipient and a body.", i, s),
				InputSchema: json.RawMessage(`{"type":"object","properties":{"to":{"type":"string"},"body":{"type":"string"},"mode":{"enum":["draft","send"]}},"required":["to"]}`),
				Class:       classes[i%len(classes)], Risk: RiskMedium,
				ArgRules: []ArgRule{
					{Arg: "to", Required: true, Pattern: `[a-z0-9.]+@(example|acme)\.com`, Type: "string"},
					{Arg: "body", MaxLen: 4096},
					{Arg: "mode", AllowedValues: []string{"draft", "send"}},
				},
			})
		}
		out = append(out, pinned(tb, srv))
	}
	return out
}

func benchKillSet(tb testing.TB) *KillSet {
	var sw []KillSwitch
	scopes := []KillScope{ScopeTenant, ScopeAgent, ScopeServer, ScopeTool}
	for i := range 50 {
		sw = append(sw, KillSwitch{ID: fmt.Sprintf("ks%02d", i), Scope: scopes[i%len(scopes)], Target: fmt.Sprintf("target-%d", i)})
	}
	return mustKillSet(tb, sw...)
}

// BenchmarkEvaluate decides a call that passes all seven stages, with
// every flag on in enforce mode, and reports the median and 99th
// percentile of single calls besides the mean.
func BenchmarkEvaluate(b *testing.B) {
	m := mustManifest(b, builtins(), benchServers(b)...)
	k := benchKillSet(b)
	p := enforceAll()
	p.Sampling = []SamplingPolicy{
		{ID: "s-tool", Server: "srv07", Tool: "tool_02", MaxCalls: 100, Window: time.Minute, Per: PerAgent},
		{ID: "s-egress", Class: ClassEgress, MaxCalls: 1000, Window: time.Hour, Per: PerTenant},
	}
	r := &Request{
		Tenant: "t1", AgentID: "agent1", SessionID: "sess1", Server: "srv07", Tool: "tool_02",
		Args: []byte(`{"to":"alice.smith@example.com","body":"Quarterly numbers attached, see the cited receipts.","mode":"draft"}`),
		Inputs: []Input{
			{Ref: "rcpt_01", Kind: InputReceipt, Trust: TrustTrusted},
			{Ref: "ch_02", Kind: InputChunk, Trust: TrustTrusted},
			{Ref: "ch_03", Kind: InputChunk, Trust: TrustTrusted},
		},
		Now: now, RecentCalls: map[string]int{"s-tool": 3, "s-egress": 40},
		FromToolUI: true, UISessionID: "ui1", UIOrigin: "https://app.example",
		UISessions: map[string]UISession{"ui1": {ID: "ui1", Origin: "https://app.example", ToolAllow: []string{"srv07/tool_01", "srv07/tool_02"}, ExpiresAt: now.Add(time.Hour)}},
	}
	if d := Evaluate(p, m, k, r); d.Outcome != OutcomeAllow || !d.Enforced || d.Class != ClassEgress {
		b.Fatalf("the benchmark call is not a clean enforced egress allow: %+v", d)
	}
	lat := make([]time.Duration, 0, 1<<20)
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		d := Evaluate(p, m, k, r)
		lat = append(lat, time.Since(t0))
		if d.Outcome != OutcomeAllow {
			b.Fatal(d.Outcome)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

func BenchmarkBuildManifest(b *testing.B) {
	servers, builtin := benchServers(b), builtins()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildManifest(builtin, servers); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkServerDigest(b *testing.B) {
	s := benchServers(b)[0].Server
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ServerDigest(&s); err != nil {
			b.Fatal(err)
		}
	}
}
