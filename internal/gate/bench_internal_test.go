package gate

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/shield"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/store/sqlite"
)

// BenchmarkDecideInMemory measures the part of Decide that runs from
// memory once the tenant's state is loaded — a decision id, the state
// snapshot, the session taint, prepare (which reads nothing for this
// call) and the seven-stage evaluation — over a manifest of the built-in
// tools and 5 pinned servers of 20 tools (3 argument rules each, one a
// pattern) with 50 kill switches engaged on other targets. Recording
// (BenchmarkDecideRecorded) is left out. It reports the p50/p99 latency.
func BenchmarkDecideInMemory(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	const tenant = vaultcrux.TenantID("bench")
	now := time.Now()
	if err := st.Tx(ctx, func(tx store.SystemTx) error {
		return tx.CreateTenant(&vaultcrux.Tenant{ID: tenant, Name: "bench", CreatedAt: now}, nil)
	}); err != nil {
		b.Fatal(err)
	}
	classes := []shield.CapabilityClass{shield.ClassRead, shield.ClassWrite, shield.ClassEgress, shield.ClassEconomy}
	err = st.ForTenant(tenant).Tx(ctx, func(tx store.TenantTx) error {
		for s := range 5 {
			srv := shield.Server{ID: fmt.Sprintf("srv%02d", s), Name: fmt.Sprintf("server-%d", s), URL: fmt.Sprintf("https://mcp%d.example/mcp", s)}
			for i := range 20 {
				srv.Tools = append(srv.Tools, shield.Tool{
					Name: fmt.Sprintf("tool_%02d", i), Description: fmt.Sprintf("Tool %d of server %d.", i, s),
					InputSchema: json.RawMessage(`{"type":"object","properties":{"to":{"type":"string"},"body":{"type":"string"}}}`),
					Class:       classes[i%len(classes)], Risk: shield.RiskMedium,
					ArgRules: []shield.ArgRule{
						{Arg: "to", Required: true, Pattern: `[a-z0-9.]+@(example|acme)\.com`, Type: "string"},
						{Arg: "body", MaxLen: 4096},
						{Arg: "mode", AllowedValues: []string{"draft", "send"}},
					},
				})
			}
			digest, err := shield.ServerDigest(&srv)
			if err != nil {
				return err
			}
			tools, err := json.Marshal(srv.Tools)
			if err != nil {
				return err
			}
			if err := tx.CreateServer(&store.ShieldServer{ID: srv.ID, Name: srv.Name, URL: srv.URL, Tools: tools, Digest: digest, Status: "active", CreatedAt: now, UpdatedAt: now}); err != nil {
				return err
			}
			if err := tx.PinDigest(&store.ShieldPin{ServerID: srv.ID, Digest: digest, PinnedBy: "bench", PinnedAt: now}); err != nil {
				return err
			}
		}
		scopes := []string{"agent", "server", "tool"}
		for i := range 50 {
			if err := tx.EngageKillSwitch(&store.KillSwitch{ID: fmt.Sprintf("ks%02d", i), Tenant: tenant, Scope: scopes[i%3],
				Target: fmt.Sprintf("other-%d", i), EngagedBy: "bench", EngagedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	led := ledger.New(ledger.Config{Store: st, Keys: noKeys{}, Now: time.Now, Rand: rand.Reader})
	defer led.Close()
	// StaleAfter: measure memory alone (Run polls in the background in a
	// server; a decision would poll itself only if Run stopped).
	g, err := New(Config{Store: st, Ledger: led, Sealer: nopSealer{}, Flags: shield.Flags{
		Enabled: true, EnforceCapability: true, EnforceDigest: true, EnforceTaint: true, EnforceApprovals: true,
		SamplingGuardian: true, UIAppSandbox: true, KillSwitches: true,
	}, Builtin: BuiltinTools(), StaleAfter: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	p := vaultcrux.Principal{Tenant: tenant, ID: "key:k1", KeyID: "k1", Role: vaultcrux.RoleMember, AgentID: "agent-1"}
	c := &Call{Principal: p, Server: "srv03", Tool: "tool_02",
		Args: json.RawMessage(`{"to":"alice.smith@example.com","body":"Quarterly numbers attached, see the cited receipts.","mode":"draft"}`)}
	decide := func() shield.Decision {
		if _, err := g.newID(); err != nil {
			b.Fatal(err)
		}
		s, err := g.state(ctx, p.Tenant)
		if err != nil {
			b.Fatal(err)
		}
		req := &shield.Request{
			Tenant: string(p.Tenant), AgentID: p.AgentID, SessionID: SessionKey(p),
			Server: c.Server, Tool: c.Tool, Args: c.Args, Now: g.clock(),
		}
		if _, ok := g.taint.tainted(p.Tenant, req.SessionID, g.now()); ok {
			req.SessionTainted = true
		}
		var approval *store.ShieldApproval
		if err := g.prepare(ctx, s, c, req, &approval); err != nil {
			b.Fatal(err)
		}
		return g.evaluate(s, req)
	}
	if d := decide(); d.Outcome != shield.OutcomeAllow || !d.Enforced || d.Class != shield.ClassEgress {
		b.Fatalf("the benchmark call is not a clean enforced egress allow: %+v", d)
	}
	lat := make([]time.Duration, 0, 1<<20)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		d := decide()
		lat = append(lat, time.Since(t0))
		if d.Outcome != shield.OutcomeAllow {
			b.Fatal(d.Outcome)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}
