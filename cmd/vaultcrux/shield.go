package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/vaultcrux/vaultcrux/internal/config"
	"github.com/vaultcrux/vaultcrux/internal/gate"
)

// withGate opens the store, the ledger, the evidence plane (the sealer)
// and Shield, and runs fn.
func withGate(ctx context.Context, cfg *config.Config, fn func(*gate.Gate) error) error {
	st, err := openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	log := newLogger(cfg, io.Discard)
	l, _, closeLedger, err := openLedger(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	defer closeLedger()
	ev, _, err := openEvidence(cfg, st, l, log)
	if err != nil {
		return err
	}
	mode, flags, taint := gate.Defaults(cfg)
	g, err := gate.New(gate.Config{Store: st, Ledger: l, Sealer: ev, Mode: mode, Flags: flags, TaintAction: taint, Builtin: gate.BuiltinTools(), Logger: log})
	if err != nil {
		return err
	}
	return fn(g)
}

// runShield is `vaultcrux shield kill-switch engage --reason R | release ID | list`:
// the operator's global kill switch, which stops every call of every
// tenant on every process sharing the store within a second.
func runShield(ctx context.Context, e *env, args []string) error {
	if len(args) < 2 || args[0] != "kill-switch" {
		return fmt.Errorf("%w: want kill-switch engage|release|list", errUsage)
	}
	sub, rest := args[1], args[2:]
	fs := flag.NewFlagSet("shield kill-switch "+sub, flag.ContinueOnError)
	var reason *string
	var all *bool
	switch sub {
	case "engage":
		reason = fs.String("reason", "", "why every call is being stopped (recorded in the audit and the receipts)")
	case "list":
		all = fs.Bool("all", false, "include released switches")
	case "release":
	default:
		return fmt.Errorf("%w: unknown kill-switch command %q", errUsage, sub)
	}
	cfg, pos, err := parseConfig(e, fs, rest)
	if err != nil {
		return err
	}
	switch sub {
	case "engage":
		if len(pos) != 0 {
			return fmt.Errorf("%w: engage takes no arguments", errUsage)
		}
		if *reason == "" {
			return fmt.Errorf("%w: --reason is required", errUsage)
		}
		return withGate(ctx, cfg, func(g *gate.Gate) error {
			k, err := g.EngageGlobalKillSwitch(ctx, "cli", *reason)
			if k != nil {
				fmt.Fprintf(e.stdout, "global kill switch %s engaged: every call of every tenant is denied (kill_switch_active)\n", k.ID)
			}
			return err
		})
	case "release":
		id, err := oneArg(pos, "kill switch id")
		if err != nil {
			return err
		}
		return withGate(ctx, cfg, func(g *gate.Gate) error {
			k, err := g.ReleaseGlobalKillSwitch(ctx, "cli", id)
			if k != nil {
				fmt.Fprintf(e.stdout, "global kill switch %s released\n", k.ID)
			}
			return err
		})
	default:
		if len(pos) != 0 {
			return fmt.Errorf("%w: list takes no arguments", errUsage)
		}
		return withGate(ctx, cfg, func(g *gate.Gate) error {
			ks, err := g.ListGlobalKillSwitches(ctx, !*all)
			if err != nil {
				return err
			}
			if len(ks) == 0 {
				fmt.Fprintln(e.stdout, "no global kill switch")
			}
			for _, k := range ks {
				state := "ENGAGED"
				if !k.Active {
					state = "released " + *k.ReleasedAt
				}
				fmt.Fprintf(e.stdout, "%s\t%s\tengaged %s by %s\t%q\n", k.ID, state, k.EngagedAt, k.EngagedBy, k.Reason)
			}
			return nil
		})
	}
}
