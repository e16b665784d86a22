package shield

import (
	"encoding/json"
	"testing"
	"time"
)

// now is the fixed clock of the tests.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// toRule is the argument rule every tool of the acme server carries.
var toRule = ArgRule{Arg: "to", Required: true, Pattern: `[a-z]+@example\.com`, MaxLen: 64, Type: "string"}

// acme is a registered server with one tool of each kind the tests need.
func acme() Server {
	tool := func(name string, c CapabilityClass, r RiskTier, approval bool) Tool {
		return Tool{
			Name: name, Description: "the " + name + " tool",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"to":{"type":"string"}}}`),
			Class:       c, Risk: r, RequiresApproval: approval,
			ArgRules: []ArgRule{toRule},
		}
	}
	return Server{
		ID: "acme", Name: "acme-mail", URL: "https://mcp.acme.example/mcp", PublisherID: "pub_acme",
		Tools: []Tool{
			tool("lookup", ClassRead, RiskLow, false),
			tool("send", ClassEgress, RiskLow, false),
			tool("shell", ClassDangerousLocal, RiskLow, false),
			tool("wire", ClassWrite, RiskHigh, false),
			tool("flagged", ClassRead, RiskLow, true),
		},
	}
}

// builtins is a small built-in manifest.
func builtins() []Tool {
	return []Tool{
		{Name: "query_vault", Description: "retrieve evidence", InputSchema: json.RawMessage(`{"type":"object"}`), Class: ClassRead, Risk: RiskLow},
		{Name: "ingest_document", Description: "store a document", InputSchema: json.RawMessage(`{"type":"object"}`), Class: ClassWrite, Risk: RiskMedium},
	}
}

func mustDigest(t testing.TB, s *Server) string {
	t.Helper()
	d, err := ServerDigest(s)
	if err != nil {
		t.Fatalf("ServerDigest: %v", err)
	}
	return d
}

func mustManifest(t testing.TB, builtin []Tool, servers ...ServerState) *Manifest {
	t.Helper()
	m, err := BuildManifest(builtin, servers)
	if err != nil {
		t.Fatalf("BuildManifest: %v", err)
	}
	return m
}

// pinned returns s as an active server pinned to its current digest.
func pinned(t testing.TB, s Server) ServerState {
	t.Helper()
	return ServerState{Server: s, Status: StatusActive, PinnedDigests: []Pin{{Digest: mustDigest(t, &s)}}}
}

func mustKillSet(t testing.TB, switches ...KillSwitch) *KillSet {
	t.Helper()
	k, err := NewKillSet(switches)
	if err != nil {
		t.Fatalf("NewKillSet: %v", err)
	}
	return k
}

// allOn is every flag on.
func allOn() Flags {
	return Flags{Enabled: true, EnforceCapability: true, EnforceDigest: true, SandboxRunner: true, EnforceTaint: true,
		EnforceApprovals: true, SamplingGuardian: true, UIAppSandbox: true, KillSwitches: true}
}

func enforceAll() *Policy { return &Policy{Mode: ModeEnforce, Flags: allOn()} }

func observeAll() *Policy { return &Policy{Mode: ModeObserve, Flags: allOn()} }

// brief is the part of a decision most tests assert on.
type brief struct {
	Outcome    Outcome
	Verdict    Outcome
	Stage      Stage
	DenialType DenialType
	Enforced   bool
	WouldBlock bool
}

func briefOf(d Decision) brief {
	return brief{d.Outcome, d.Verdict, d.Stage, d.DenialType, d.Enforced, d.WouldBlock}
}

var (
	allowed = brief{Outcome: OutcomeAllow, Verdict: OutcomeAllow, Enforced: true}
)

// denied is an enforced deny at stage s.
func denied(s Stage, t DenialType) brief {
	return brief{Outcome: OutcomeDeny, Verdict: OutcomeDeny, Stage: s, DenialType: t, Enforced: true, WouldBlock: true}
}

// observed is a deny at stage s that was recorded but not applied.
func observed(s Stage, t DenialType) brief {
	return brief{Outcome: OutcomeAllow, Verdict: OutcomeDeny, Stage: s, DenialType: t, WouldBlock: true}
}
