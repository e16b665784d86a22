package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
)

func runConfig(ctx context.Context, e *env, args []string) error {
	cfg, err := parseConfigNoArgs(e, flag.NewFlagSet("config", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(cfg.Redacted())
}

func runMigrate(ctx context.Context, e *env, args []string) error {
	cfg, err := parseConfigNoArgs(e, flag.NewFlagSet("migrate", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	applied, latest, err := st.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s schema at version %d of %d\n", st.Dialect(), applied, latest)
	return err
}
