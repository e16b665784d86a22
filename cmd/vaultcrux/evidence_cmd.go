package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/config"
	"github.com/vaultcrux/vaultcrux/internal/evidence"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// withEvidence opens the store, the ledger and the evidence plane, checks
// that tenant exists, and runs fn.
func withEvidence(ctx context.Context, cfg *config.Config, tenant vaultcrux.TenantID, fn func(*evidence.Service) error) error {
	st, err := openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	err = st.Tx(ctx, func(tx store.SystemTx) error {
		_, err := tx.GetTenant(tenant)
		return err
	})
	if vaultcrux.ErrorKind(err) == vaultcrux.NotFound {
		return fmt.Errorf("tenant %q does not exist", tenant)
	}
	if err != nil {
		return err
	}
	l, _, closeLedger, err := openLedger(ctx, cfg, st, newLogger(cfg, io.Discard))
	if err != nil {
		return err
	}
	defer closeLedger()
	ev, _, err := openEvidence(cfg, st, l, newLogger(cfg, io.Discard))
	if err != nil {
		return err
	}
	return fn(ev)
}

// runRotateTenant is `vaultcrux keys rotate-tenant TENANT`.
func runRotateTenant(ctx context.Context, e *env, args []string) error {
	cfg, pos, err := parseConfig(e, flag.NewFlagSet("keys rotate-tenant", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	id, err := oneArg(pos, "tenant id")
	if err != nil {
		return err
	}
	return withEvidence(ctx, cfg, vaultcrux.TenantID(id), func(ev *evidence.Service) error {
		r, err := ev.RotateTenantKey(ctx, operator, vaultcrux.TenantID(id))
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "tenant key %s rotated: v%d is active, v%d retired and erased; %d data keys re-wrapped\nreceipt %s\n",
			r.KEKID, r.ToVersion, r.FromVersion, r.Rewrapped, r.ReceiptID)
		return nil
	})
}

// runShred is `vaultcrux tenant shred TENANT --confirm TENANT`.
func runShred(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("tenant shred", flag.ContinueOnError)
	confirm := fs.String("confirm", "", "repeat the tenant id: crypto-shredding cannot be undone")
	cfg, pos, err := parseConfig(e, fs, args)
	if err != nil {
		return err
	}
	id, err := oneArg(pos, "tenant id")
	if err != nil {
		return err
	}
	if *confirm != id {
		return fmt.Errorf("%w: crypto-shredding cannot be undone: pass --confirm %s", errUsage, id)
	}
	return withEvidence(ctx, cfg, vaultcrux.TenantID(id), func(ev *evidence.Service) error {
		r, err := ev.ShredTenant(ctx, operator, vaultcrux.TenantID(id))
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "tenant %s crypto-shredded at %s: %d key versions destroyed; its content can no longer be decrypted\nerasure receipt %s\n",
			id, r.ShreddedAt, r.Destroyed, r.ReceiptID)
		return nil
	})
}
