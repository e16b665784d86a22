package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
)

// runKeys manages the receipt signing keys. The registry of versions is in
// the store, so these commands act for every process sharing it; a
// running server follows within a second.
func runKeys(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: keys needs a subcommand", errUsage)
	}
	sub := args[0]
	if sub == "rotate-tenant" {
		return runRotateTenant(ctx, e, args[1:])
	}
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	switch sub {
	case "list-signing", "rotate-signing", "revoke-signing":
	default:
		return fmt.Errorf("%w: unknown keys subcommand %q", errUsage, sub)
	}
	cfg, pos, err := parseConfig(e, fs, args[1:])
	if err != nil {
		return err
	}
	var version int
	switch sub {
	case "revoke-signing":
		v, err := oneArg(pos, "signing key version (a number, or vaultcrux-signing:v<n>)")
		if err != nil {
			return err
		}
		v = strings.TrimPrefix(v, "vaultcrux-signing:")
		v = strings.TrimPrefix(v, "v")
		if version, err = strconv.Atoi(v); err != nil || version < 1 {
			return fmt.Errorf("%w: %q is not a signing key version", errUsage, pos[0])
		}
	default:
		if len(pos) > 0 {
			return fmt.Errorf("%w: keys %s takes no arguments", errUsage, sub)
		}
	}
	st, err := openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	if sub == "list-signing" {
		keys, err := ledger.List(ctx, st)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KID\tSTATUS\tCREATED\tPUBLIC KEY")
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.KID, k.Status, vaultcrux.FormatTime(k.CreatedAt), base64.StdEncoding.EncodeToString(k.Public))
		}
		return tw.Flush()
	}
	l, keys, closeLedger, err := openLedger(ctx, cfg, st, newLogger(cfg, io.Discard))
	if err != nil {
		return err
	}
	defer closeLedger()
	switch sub {
	case "rotate-signing":
		rot, err := keys.Rotate(ctx)
		if err != nil {
			return err
		}
		if err := l.RecordKeyChange(ctx, operator, ledger.KindSigningKeyRotated, rot.From, rot.To); err != nil {
			return err
		}
		from := "none"
		if rot.From != nil {
			from = rot.From.KID
		}
		fmt.Fprintf(e.stdout, "signing key rotated: %s is active, %s retired\n", rot.To.KID, from)
	case "revoke-signing":
		k, err := ledger.RevokeSigningKey(ctx, st, version, time.Now())
		if err != nil {
			return err
		}
		if err := keys.Refresh(ctx); err != nil {
			return err
		}
		if err := l.RecordKeyChange(ctx, operator, ledger.KindSigningKeyRevoked, nil, k); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "signing key %s revoked: verifiers now reject its signatures\n", k.KID)
		if _, err := keys.Current(); err != nil {
			fmt.Fprintln(e.stdout, "no signing key is active: receipts are stored pending_signature until you run: vaultcrux keys rotate-signing")
		}
	}
	return nil
}
