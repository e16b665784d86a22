package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/apikey"
	"github.com/vaultcrux/vaultcrux/internal/config"
	"github.com/vaultcrux/vaultcrux/internal/keyring"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/store/postgres"
	"github.com/vaultcrux/vaultcrux/internal/store/sqlite"
	"github.com/vaultcrux/vaultcrux/internal/tenancy"
)

// env is what a subcommand runs with: everything it may read of the
// process is here, so that tests run the real program in-process.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

type command struct {
	name, usage string
	run         func(ctx context.Context, e *env, args []string) error
}

var commands = []command{
	{"serve", "run the server", runServe},
	{"tenant", "tenant create ID [--name NAME] | tenant list | tenant shred ID --confirm ID", runTenant},
	{"key", "key create --tenant T [--role R] [--label L] | key list --tenant T | key revoke --tenant T [--force] ID", runKey},
	{"keys", "keys list-signing | keys rotate-signing | keys revoke-signing VERSION | keys rotate-tenant ID", runKeys},
	{"shield", "shield kill-switch engage --reason R | shield kill-switch release ID | shield kill-switch list [--all]", runShield},
	{"verify", "verify [--json] [--keys FILE] FILE... (- for stdin): receipts, proofpacks, chains, checkpoints, offline", runVerify},
	{"migrate", "apply pending database migrations", runMigrate},
	{"config", "print the effective configuration, secrets redacted", runConfig},
	{"version", "print the version", runVersion},
}

// errUsage marks a command-line mistake (exit status 2).
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, errVerifyFailed):
			return 1 // the report says why
		case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
			if !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(stderr, "vaultcrux %s: %v\nusage: vaultcrux %s\n", c.name, err, c.usage)
			}
			return 2
		default:
			fmt.Fprintf(stderr, "vaultcrux %s: %s\n", c.name, cliMessage(err))
			return 1
		}
	}
	fmt.Fprintf(stderr, "vaultcrux: unknown command %q\n", args[0])
	printUsage(stderr)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: vaultcrux COMMAND [flags]")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.usage)
	}
	fmt.Fprintln(w, "Run 'vaultcrux COMMAND -h' for a command's flags.")
}

// cliMessage is what an operator sees: the user-safe message of a
// classified error, else the error itself (the operator owns the machine;
// unlike an API client, they may see causes).
func cliMessage(err error) string {
	if msg := vaultcrux.ErrorMessage(err); msg != "" {
		return msg
	}
	return err.Error()
}

// parseConfig parses the common settings plus the command's own flags.
func parseConfig(e *env, fs *flag.FlagSet, args []string) (*config.Config, []string, error) {
	fs.SetOutput(e.stderr)
	cfg, pos, err := config.Parse(fs, args, e.getenv, os.ReadFile)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return cfg, pos, nil
}

// parseConfigNoArgs is parseConfig for commands that take no positional arguments.
func parseConfigNoArgs(e *env, fs *flag.FlagSet, args []string) (*config.Config, error) {
	cfg, pos, err := parseConfig(e, fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) > 0 {
		return nil, fmt.Errorf("%w: %s takes no arguments", errUsage, fs.Name())
	}
	return cfg, nil
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// openStore opens and migrates the configured backend.
func openStore(ctx context.Context, cfg *config.Config, migrate bool) (store.Store, error) {
	var st store.Store
	var err error
	switch cfg.Backend() {
	case "postgres":
		var db *postgres.DB
		db, err = postgres.Open(ctx, cfg.DatabaseURL)
		st = db
	default:
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		var db *sqlite.DB
		db, err = sqlite.Open(ctx, cfg.SQLitePath())
		st = db
	}
	if err != nil {
		return nil, fmt.Errorf("open %s store: %w", cfg.Backend(), err)
	}
	if migrate {
		if err := st.Migrate(ctx); err != nil {
			st.Close()
			return nil, fmt.Errorf("migrate: %w", err)
		}
	} else if applied, latest, err := st.MigrationStatus(ctx); err != nil || applied != latest {
		st.Close()
		if err != nil {
			return nil, fmt.Errorf("migration status: %w", err)
		}
		return nil, fmt.Errorf("database schema is at version %d, this binary needs %d: run 'vaultcrux migrate'", applied, latest)
	}
	return st, nil
}

// loadPepper returns the API key pepper. The default file in the data
// dir is created on first use; a file named by configuration (rendered by
// a secrets agent) must exist.
func loadPepper(cfg *config.Config) (keyring.Secret, error) {
	if cfg.APIKeyPepperFile != "" {
		return keyring.ReadSecretFile(cfg.APIKeyPepperFile)
	}
	sec, _, err := keyring.LoadOrCreateSecret(cfg.PepperFile(), 32, rand.Reader)
	return sec, err
}

// loadSessionSecret reads the secret that authenticates session cookies:
// a configured file must exist (a secrets agent renders it, the same for
// every replica); the default one is created 0600 on first start.
func loadSessionSecret(cfg *config.Config) (keyring.Secret, error) {
	if cfg.SessionSecretManaged() {
		return keyring.ReadSecretFile(cfg.SessionSecretPath())
	}
	sec, _, err := keyring.LoadOrCreateSecret(cfg.SessionSecretPath(), 32, rand.Reader)
	return sec, err
}

// provisioner opens everything the tenant and key commands need.
func provisioner(ctx context.Context, cfg *config.Config) (*tenancy.Provisioner, func(), error) {
	pepper, err := loadPepper(cfg)
	if err != nil {
		return nil, nil, err
	}
	hasher, err := apikey.NewHasher(pepper)
	if err != nil {
		return nil, nil, err
	}
	st, err := openStore(ctx, cfg, true)
	if err != nil {
		return nil, nil, err
	}
	l, _, closeLedger, err := openLedger(ctx, cfg, st, newLogger(cfg, io.Discard))
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	ev, _, err := openEvidence(cfg, st, l, newLogger(cfg, io.Discard))
	if err != nil {
		closeLedger()
		st.Close()
		return nil, nil, err
	}
	p := &tenancy.Provisioner{Store: st, Ledger: l, Hasher: hasher, Now: time.Now, Rand: rand.Reader, TenantSetup: ev.SetupTenant}
	return p, func() { closeLedger(); st.Close() }, nil
}

func oneArg(pos []string, what string) (string, error) {
	if len(pos) != 1 {
		return "", fmt.Errorf("%w: want exactly one %s", errUsage, what)
	}
	return strings.TrimSpace(pos[0]), nil
}
