package gate_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/gate"
	"github.com/vaultcrux/vaultcrux/internal/shield"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/store/postgres"
	"github.com/vaultcrux/vaultcrux/internal/store/postgres/pgtest"
	"github.com/vaultcrux/vaultcrux/internal/vctest"
)

// twoProcesses returns two vaultcrux processes sharing one database:
// each with its own store handle, ledger and gate, as two replicas (or
// the server and the CLI) would be. Their gates never poll on their own
// (StaleAfter is long), so that only Tick brings in the other's changes.
func twoProcesses(t *testing.T, backend string) (a, b *env) {
	t.Helper()
	var open func() store.Store
	switch backend {
	case "sqlite":
		path := filepath.Join(t.TempDir(), "shared.db")
		open = func() store.Store { return vctest.OpenAt(t, path) }
	case "postgres":
		dsn := pgtest.DSN(t) // skips, loudly, without PostgreSQL
		open = func() store.Store {
			db, err := postgres.Open(context.Background(), dsn)
			if err != nil {
				t.Fatalf("open postgres: %v", err)
			}
			t.Cleanup(func() { db.Close() })
			if err := db.Migrate(context.Background()); err != nil {
				t.Fatalf("migrate: %v", err)
			}
			return db
		}
	}
	sh, clk := newShared(t), newClock()
	slow := func(c *gate.Config) { c.StaleAfter = time.Hour }
	a = newEnv(t, envOpts{st: open(), shared: sh, clock: clk, gate: slow})
	b = newEnv(t, envOpts{st: open(), shared: sh, clock: clk, gate: slow})
	return a, b
}

func TestKillSwitchAcrossProcesses(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			a, b := twoProcesses(t, backend)
			owner := a.tenant("acme")
			other := a.tenant("bravo")
			srv := a.registerPinned(owner, "mail", tool("send_mail", "Sends a mail.", shield.ClassEgress, shield.RiskLow))
			agent := asAgent(owner, "agent-7")

			cases := []struct {
				scope, target string
				call          *gate.Call // stopped by the switch
				spared        *gate.Call // not stopped by it
			}{
				{"agent", "agent-7", call(agent, gate.ToolQueryVault, `{}`), call(asAgent(owner, "agent-8"), gate.ToolQueryVault, `{}`)},
				{"tool", gate.ToolQueryVault, call(agent, gate.ToolQueryVault, `{}`), call(agent, gate.ToolCite, `{}`)},
				{"server", srv.ID, &gate.Call{Principal: agent, Tool: "send_mail", Args: []byte(`{}`)}, call(agent, gate.ToolQueryVault, `{}`)},
				{"server", shield.BuiltinServerID, call(agent, gate.ToolIngestDocument, `{}`), &gate.Call{Principal: agent, Tool: "send_mail", Args: []byte(`{}`)}},
				{"capability_class", "egress", &gate.Call{Principal: agent, Server: srv.ID, Tool: "send_mail", Args: []byte(`{}`)}, call(agent, gate.ToolIngestDocument, `{}`)},
				{"capability_class", "read", call(owner, gate.ToolCite, `{}`), call(owner, gate.ToolIngestDocument, `{}`)},
				{"tenant", "acme", call(owner, gate.ToolQueryVault, `{}`), call(other, gate.ToolQueryVault, `{}`)},
			}
			for _, c := range cases {
				t.Run(c.scope+"="+c.target, func(t *testing.T) {
					want(t, "B before", b.decide(c.call), shield.OutcomeAllow, "")
					want(t, "B spared before", b.decide(c.spared), shield.OutcomeAllow, "")
					ks, err := a.g.EngageKillSwitch(ctx, owner, c.scope, c.target, "incident 42")
					if err != nil {
						t.Fatal(err)
					}
					// A applies its own change at once; B holds its snapshot
					// until it polls, then one poll suffices.
					if r := a.decide(c.call); r.Decision.DenialType != shield.DenialKillSwitchActive || r.Decision.KillSwitchID != ks.ID {
						t.Fatalf("A after engage: %+v", r.Decision)
					}
					want(t, "B before its poll", b.decide(c.call), shield.OutcomeAllow, "")
					if err := b.g.Tick(ctx); err != nil {
						t.Fatal(err)
					}
					r := b.decide(c.call)
					want(t, "B after engage", r, shield.OutcomeDeny, shield.DenialKillSwitchActive)
					if r.Decision.KillSwitchID != ks.ID || r.Decision.Stage != shield.StageKillSwitch || !r.Recorded {
						t.Fatalf("B deny: switch %q stage %s recorded %v, want %s", r.Decision.KillSwitchID, r.Decision.Stage, r.Recorded, ks.ID)
					}
					if det := details(t, b.receipt(owner.Tenant, r.ReceiptID)); det["killSwitchId"] != ks.ID {
						t.Fatalf("deny receipt names switch %v", det["killSwitchId"])
					}
					want(t, "B spared", b.decide(c.spared), shield.OutcomeAllow, "")

					rel, err := a.g.ReleaseKillSwitch(ctx, owner, ks.ID)
					if err != nil || rel.Active || rel.ReleasedAt == nil {
						t.Fatalf("release: %+v, %v", rel, err)
					}
					if err := b.g.Tick(ctx); err != nil {
						t.Fatal(err)
					}
					want(t, "B after release", b.decide(c.call), shield.OutcomeAllow, "")

					// Audit rows and receipts for engage and release.
					var audit []*store.KillSwitchAudit
					if err := b.st.ForTenant(owner.Tenant).Tx(ctx, func(tx store.TenantTx) (err error) {
						audit, err = tx.ListKillSwitchAudit(ks.ID)
						return err
					}); err != nil {
						t.Fatal(err)
					}
					if len(audit) != 2 || audit[0].Action != "engage" || audit[1].Action != "release" || audit[0].Reason != "incident 42" {
						t.Fatalf("audit %+v", audit)
					}
					for id, kind := range map[string]string{ks.ReceiptID: "shield.kill_switch.engaged", rel.ReceiptID: "shield.kill_switch.released"} {
						l := b.receipt(owner.Tenant, id)
						if l.Doc.Kind() != kind || details(t, l)["killSwitchId"] != ks.ID || details(t, l)["scope"] != c.scope {
							t.Fatalf("receipt %s: kind %s details %v", id, l.Doc.Kind(), details(t, l))
						}
					}
				})
			}

			t.Run("global", func(t *testing.T) {
				receiptsBefore := map[vaultcrux.TenantID]int{}
				for _, tn := range []vaultcrux.TenantID{"acme", "bravo"} {
					want(t, "B before", b.decide(call(vaultcrux.Principal{Tenant: tn, ID: "key:x"}, gate.ToolQueryVault, `{}`)), shield.OutcomeAllow, "")
					receiptsBefore[tn] = len(b.receipts(tn, "shield.kill_switch.engaged"))
				}
				ks, err := a.g.EngageGlobalKillSwitch(ctx, "ops", "all stop")
				if err != nil {
					t.Fatal(err)
				}
				if ks.Scope != "global" || !ks.Active {
					t.Fatalf("global switch %+v", ks)
				}
				if err := b.g.Tick(ctx); err != nil {
					t.Fatal(err)
				}
				for _, tn := range []vaultcrux.TenantID{"acme", "bravo"} {
					p := vaultcrux.Principal{Tenant: tn, ID: "key:x", AgentID: "any"}
					for _, tl := range []string{gate.ToolQueryVault, gate.ToolIngestDocument, "no_such_tool"} {
						r := b.decide(call(p, tl, `{}`))
						want(t, string(tn)+" "+tl, r, shield.OutcomeDeny, shield.DenialKillSwitchActive)
						if r.Decision.KillSwitchID != ks.ID {
							t.Fatalf("switch %q, want %q", r.Decision.KillSwitchID, ks.ID)
						}
					}
					if rk := b.g.ReadKilled(ctx, call(p, gate.ToolQueryVault, `{}`)); rk == nil || rk.Decision.KillSwitchID != ks.ID {
						t.Fatalf("ReadKilled under a global switch: %+v", rk)
					}
					// A receipt in every tenant's log.
					var found bool
					for _, rc := range b.receipts(tn, "shield.kill_switch.engaged") {
						det := details(t, b.receipt(tn, rc.ID))
						found = found || (det["killSwitchId"] == ks.ID && det["scope"] == "global")
					}
					if !found || len(b.receipts(tn, "shield.kill_switch.engaged")) != receiptsBefore[tn]+1 {
						t.Fatalf("%s: no receipt of the global switch", tn)
					}
				}
				if gl, err := b.g.ListGlobalKillSwitches(ctx, true); err != nil || len(gl) != 1 || gl[0].ID != ks.ID || gl[0].EngagedBy != "ops" {
					t.Fatalf("global switches: %+v, %v", gl, err)
				}
				list, err := b.g.ListKillSwitches(ctx, "bravo", true)
				if err != nil || len(list) != 1 || list[0].ID != ks.ID || list[0].EngagedBy != "operator" {
					t.Fatalf("bravo's active switches: %+v, %v", list, err)
				}
				// A tenant cannot engage or release a global switch.
				_, err = a.g.EngageKillSwitch(ctx, owner, "global", "", "no")
				wantKind(t, "tenant engages global", err, vaultcrux.Forbidden)
				_, err = a.g.ReleaseKillSwitch(ctx, owner, ks.ID)
				wantKind(t, "tenant releases global", err, vaultcrux.NotFound)

				if _, err := a.g.ReleaseGlobalKillSwitch(ctx, "ops", ks.ID); err != nil {
					t.Fatal(err)
				}
				if err := b.g.Tick(ctx); err != nil {
					t.Fatal(err)
				}
				for _, tn := range []vaultcrux.TenantID{"acme", "bravo"} {
					want(t, string(tn)+" after release", b.decide(call(vaultcrux.Principal{Tenant: tn, ID: "key:x"}, gate.ToolQueryVault, `{}`)), shield.OutcomeAllow, "")
					if n := len(b.receipts(tn, "shield.kill_switch.released")); n < 1 {
						t.Fatalf("%s: no release receipt", tn)
					}
				}
			})

			t.Run("a process that has not loaded the tenant", func(t *testing.T) {
				ks, err := a.g.EngageKillSwitch(ctx, owner, "agent", "agent-late", "")
				if err != nil {
					t.Fatal(err)
				}
				c := b.newGate() // loads on first use, after the engage
				r := c.Decide(ctx, call(asAgent(owner, "agent-late"), gate.ToolQueryVault, `{}`))
				if r.Decision.KillSwitchID != ks.ID {
					t.Fatalf("fresh process: %+v", r.Decision)
				}
			})
		})
	}
}

func TestKillSwitchControlPlane(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{})
	owner := e.tenant("acme")
	for _, c := range []struct{ scope, target string }{
		{"planet", "x"},
		{"agent", ""},
		{"agent", "has space"},
		{"capability_class", "telepathy"},
		{"tenant", "bravo"}, // another tenant
	} {
		_, err := e.g.EngageKillSwitch(ctx, owner, c.scope, c.target, "")
		wantKind(t, c.scope+"="+c.target, err, vaultcrux.Invalid)
	}
	_, err := e.g.ReleaseKillSwitch(ctx, owner, "01NOSUCHSWITCH000000000000")
	wantKind(t, "release unknown", err, vaultcrux.NotFound)

	ks, err := e.g.EngageKillSwitch(ctx, owner, "agent", "a1", "why")
	if err != nil {
		t.Fatal(err)
	}
	if rk := e.g.ReadKilled(ctx, call(asAgent(owner, "a2"), gate.ToolQueryVault, `{}`)); rk != nil {
		t.Fatalf("ReadKilled for an agent without a switch: %+v", rk.Decision)
	}
	rk := e.g.ReadKilled(ctx, call(asAgent(owner, "a1"), gate.ToolQueryVault, `{}`))
	if rk == nil || rk.Decision.KillSwitchID != ks.ID || !rk.Recorded {
		t.Fatalf("ReadKilled for the killed agent: %+v", rk)
	}
	// Releasing twice is not an error and writes no second receipt.
	if _, err := e.g.ReleaseKillSwitch(ctx, owner, ks.ID); err != nil {
		t.Fatal(err)
	}
	again, err := e.g.ReleaseKillSwitch(ctx, owner, ks.ID)
	if err != nil || again.Active || again.ReceiptID != "" {
		t.Fatalf("second release: %+v, %v", again, err)
	}
	if n := len(e.receipts(owner.Tenant, "shield.kill_switch.released")); n != 1 {
		t.Fatalf("%d release receipts, want 1", n)
	}
	if rk := e.g.ReadKilled(ctx, call(asAgent(owner, "a1"), gate.ToolQueryVault, `{}`)); rk != nil {
		t.Fatalf("ReadKilled after release: %+v", rk.Decision)
	}

	// Kill switches apply in observe mode too: killing must work during
	// an incident whatever the mode.
	if _, err := e.g.SetSetting(ctx, owner, "SHIELD_MODE", "observe"); err != nil {
		t.Fatal(err)
	}
	ks2, err := e.g.EngageKillSwitch(ctx, owner, "tool", gate.ToolCite, "")
	if err != nil {
		t.Fatal(err)
	}
	r := e.decide(call(owner, gate.ToolCite, `{}`))
	want(t, "observe + kill switch", r, shield.OutcomeDeny, shield.DenialKillSwitchActive)
	if r.Decision.KillSwitchID != ks2.ID || !r.Decision.Enforced {
		t.Fatalf("%+v", r.Decision)
	}
	// With FEATURE_KILL_SWITCHES off the switch is recorded, not applied.
	if _, err := e.g.SetSetting(ctx, owner, "FEATURE_KILL_SWITCHES", "false"); err != nil {
		t.Fatal(err)
	}
	r = e.decide(call(owner, gate.ToolCite, `{}`))
	if r.Decision.Outcome != shield.OutcomeAllow || r.Decision.Verdict != shield.OutcomeDeny || r.Decision.DenialType != shield.DenialKillSwitchActive || r.Decision.Enforced {
		t.Fatalf("switch with the flag off: %+v", r.Decision)
	}
}

// Run keeps a process current on its own: a switch engaged by another
// process reaches it through Run's polls alone (its decisions never poll
// themselves here).
func TestRunPollsForChanges(t *testing.T) {
	a, b := twoProcesses(t, "sqlite")
	owner := a.tenant("acme")
	c := call(asAgent(owner, "agent-r"), gate.ToolQueryVault, `{}`)
	want(t, "before", b.decide(c), shield.OutcomeAllow, "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.g.Run(ctx) }()
	defer func() { cancel(); <-done }()

	ks, err := a.g.EngageKillSwitch(ctx, owner, "agent", "agent-r", "")
	if err != nil {
		t.Fatal(err)
	}
	// No timing is asserted: the deadline only bounds a broken Run.
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := b.decide(c)
		if r.Decision.KillSwitchID == ks.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run never brought in the kill switch")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
