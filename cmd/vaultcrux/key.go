package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

func runKey(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: want create, list or revoke", errUsage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("key "+sub, flag.ContinueOnError)
	tenant := fs.String("tenant", "", "tenant id (required)")
	var role, label *string
	var force *bool
	switch sub {
	case "create":
		role = fs.String("role", "member", "owner, admin, member or viewer")
		label = fs.String("label", "cli", "label shown in key lists")
	case "revoke":
		force = fs.Bool("force", false, "revoke even the tenant's last active owner key")
	case "list":
	default:
		return fmt.Errorf("%w: unknown key subcommand %q", errUsage, sub)
	}
	cfg, pos, err := parseConfig(e, fs, args[1:])
	if err != nil {
		return err
	}
	if !vaultcrux.ValidTenantID(*tenant) {
		return fmt.Errorf("%w: --tenant must name a tenant", errUsage)
	}
	if sub != "revoke" && len(pos) > 0 {
		return errUsage
	}
	prov, closeStore, err := provisioner(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeStore()
	if err := requireTenant(ctx, prov.Store, vaultcrux.TenantID(*tenant)); err != nil {
		return err
	}
	ts := prov.Store.ForTenant(vaultcrux.TenantID(*tenant))
	switch sub {
	case "create":
		r, ok := vaultcrux.ParseRole(*role)
		if !ok {
			return fmt.Errorf("%w: --role must be owner, admin, member or viewer", errUsage)
		}
		k, tok, rid, err := prov.IssueKey(ctx, operator, ts.Tenant(), *label, r)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "API key %s (role %s) for tenant %s, shown once:\n%s\nreceipt %s\n", k.ID, k.Role, k.Tenant, tok.Reveal(), rid)
		return nil
	case "revoke":
		id, err := oneArg(pos, "key id")
		if err != nil {
			return err
		}
		k, rid, err := prov.RevokeKey(ctx, operator, ts.Tenant(), id, *force)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "API key %s revoked at %s\n", k.ID, vaultcrux.FormatTime(*k.RevokedAt))
		if rid != "" {
			fmt.Fprintf(e.stdout, "receipt %s\n", rid)
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROLE\tLABEL\tCREATED\tLAST USED\tREVOKED")
	after := ""
	for {
		var keys []*vaultcrux.APIKey
		err := ts.Tx(ctx, func(tx store.TenantTx) (err error) {
			keys, err = tx.ListAPIKeys(after, 500)
			return err
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Role, k.Label, vaultcrux.FormatTime(k.CreatedAt), optTime(k.LastUsedAt), optTime(k.RevokedAt))
		}
		if len(keys) < 500 {
			break
		}
		after = keys[len(keys)-1].ID
	}
	return tw.Flush()
}

func optTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return vaultcrux.FormatTime(*t)
}

// requireTenant refuses to act on a tenant that does not exist, so that a
// typo does not mint a key for nobody.
func requireTenant(ctx context.Context, st store.Store, id vaultcrux.TenantID) error {
	return st.Tx(ctx, func(tx store.SystemTx) error {
		_, err := tx.GetTenant(id)
		return err
	})
}
