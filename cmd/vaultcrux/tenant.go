package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

func runTenant(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: want create, list or shred", errUsage)
	}
	if args[0] == "shred" {
		return runShred(ctx, e, args[1:])
	}
	fs := flag.NewFlagSet("tenant "+args[0], flag.ContinueOnError)
	switch args[0] {
	case "create":
		name := fs.String("name", "", "display name (default: the id)")
		cfg, pos, err := parseConfig(e, fs, args[1:])
		if err != nil {
			return err
		}
		id, err := oneArg(pos, "tenant id")
		if err != nil {
			return err
		}
		prov, closeStore, err := provisioner(ctx, cfg)
		if err != nil {
			return err
		}
		defer closeStore()
		t, k, tok, rid, err := prov.CreateTenant(ctx, operator, vaultcrux.TenantID(id), *name)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "tenant %s created\nowner API key %s (shown once, store it now):\n%s\nreceipt %s\n", t.ID, k.ID, tok.Reveal(), rid)
		return nil
	case "list":
		cfg, err := parseConfigNoArgs(e, fs, args[1:])
		if err != nil {
			return err
		}
		st, err := openStore(ctx, cfg, true)
		if err != nil {
			return err
		}
		defer st.Close()
		var ts []*vaultcrux.Tenant
		err = st.Tx(ctx, func(tx store.SystemTx) (err error) {
			ts, err = tx.ListTenants()
			return err
		})
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED")
		for _, t := range ts {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", t.ID, t.Name, vaultcrux.FormatTime(t.CreatedAt))
		}
		return tw.Flush()
	}
	return fmt.Errorf("%w: unknown tenant subcommand %q", errUsage, args[0])
}
