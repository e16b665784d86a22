package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/apikey"
	"github.com/vaultcrux/vaultcrux/internal/config"
	"github.com/vaultcrux/vaultcrux/internal/gate"
	"github.com/vaultcrux/vaultcrux/internal/keyring"
	"github.com/vaultcrux/vaultcrux/internal/server"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/tenancy"
)

// rlsChecker is implemented by the PostgreSQL store.
type rlsChecker interface {
	RLSBypassed(ctx context.Context) (bool, error)
}

func runServe(ctx context.Context, e *env, args []string) error {
	cfg, err := parseConfigNoArgs(e, flag.NewFlagSet("serve", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	log := newLogger(cfg, e.stderr)
	log.Info("starting", "config", cfg.Redacted(), "version", buildInfo().Version)

	pepper, err := loadPepper(cfg)
	if err != nil {
		return fmt.Errorf("API key pepper: %w", err)
	}
	hasher, err := apikey.NewHasher(pepper)
	if err != nil {
		return err
	}
	sessionSecret, err := loadSessionSecret(cfg)
	if err != nil {
		return fmt.Errorf("session secret: %w", err)
	}
	st, err := openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	if rc, ok := st.(rlsChecker); ok {
		if bypass, err := rc.RLSBypassed(ctx); err != nil || bypass {
			log.Warn("the database role bypasses row-level security (superuser or BYPASSRLS): tenant isolation rests on the application alone; connect as an ordinary role")
		}
	}

	led, _, closeLedger, err := openLedger(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	defer closeLedger()
	ev, master, err := openEvidence(cfg, st, led, log)
	if err != nil {
		return err
	}

	if err := bootstrap(ctx, e, cfg.BootstrapTenant, cfg.Listen, &tenancy.Provisioner{
		Store: st, Ledger: led, Hasher: hasher, Now: time.Now, Rand: rand.Reader, TenantSetup: ev.SetupTenant,
	}); err != nil {
		return err
	}
	if err := ev.Warm(ctx); err != nil {
		return fmt.Errorf("load the search index: %w", err)
	}

	mode, flags, taintAction := gate.Defaults(cfg)
	gt, err := gate.New(gate.Config{
		Store: st, Ledger: led, Sealer: ev, Mode: mode, Flags: flags, TaintAction: taintAction,
		Builtin: gate.BuiltinTools(), Logger: log,
	})
	if err != nil {
		return fmt.Errorf("shield: %w", err)
	}
	srv, err := server.New(server.Options{
		Gate:      gt,
		Config:    cfg,
		Store:     st,
		Ledger:    led,
		Hasher:    hasher,
		Evidence:  ev,
		Logger:    log,
		BuildInfo: buildInfo(),
		KeyCheck:  keyCheck(cfg, pepper, master, sessionSecret),

		SessionSecret: sessionSecret,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Background work (last-use flushing, purging) outlives ctx until the
	// drain is over, then gets its last flush in before the store closes.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	bgDone := make(chan struct{})
	go func() { srv.Run(bg); close(bgDone) }()
	ledgerDone := make(chan struct{})
	go func() { led.RunBackground(bg, time.Second); close(ledgerDone) }()
	// The ingest worker resumes queued jobs at once: the queue is durable.
	ingestDone := make(chan struct{})
	go func() { ev.Run(bg); close(ingestDone) }()
	// Shield polls the store for changes made by other processes (kill
	// switches within a second) and expires approval requests.
	gateDone := make(chan struct{})
	go func() { gt.Run(bg); close(gateDone) }()
	stopBackground := func() { stopBG(); <-bgDone; <-ingestDone; <-ledgerDone; <-gateDone }

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	fmt.Fprintf(e.stdout, "vaultcrux listening on http://%s\n", ln.Addr())
	log.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		stopBackground()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = hs.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		log.Error("serve", "error", serr.Error())
	}
	stopBackground()
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	log.Info("stopped")
	return nil
}

// bootstrap creates the first tenant when the store has none, and prints
// its owner key once. Concurrent replicas race on the tenant's primary
// key; the loser finds the tenant and prints nothing.
func bootstrap(ctx context.Context, e *env, id vaultcrux.TenantID, listen string, prov *tenancy.Provisioner) error {
	var n int
	err := prov.Store.Tx(ctx, func(tx store.SystemTx) error {
		ts, err := tx.ListTenants()
		n = len(ts)
		return err
	})
	if err != nil || n > 0 {
		return err
	}
	_, k, tok, _, err := prov.CreateTenant(ctx, vaultcrux.Principal{ID: "operator:bootstrap"}, id, "")
	if vaultcrux.ErrorKind(err) == vaultcrux.Conflict {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bootstrap tenant: %w", err)
	}
	fmt.Fprintf(e.stdout, `
First start: created tenant %q with an owner API key (id %s).
It is shown this once and stored only as a keyed hash; keep it somewhere safe:

    %s

Try it:

    curl -s http://%s/v1/auth/whoami \
      -H 'x-tenant-id: %s' -H 'x-api-key: %s'

`, id, k.ID, tok.Reveal(), listen, id, tok.Reveal())
	return nil
}

// keyCheck makes /readyz prove that the key material still answers: the
// pepper, master key and session secret files are readable and still hold
// the keys in use.
func keyCheck(cfg *config.Config, pepper, master, session keyring.Secret) func(context.Context) error {
	return func(context.Context) error {
		for _, k := range []struct {
			name, path string
			inUse      keyring.Secret
		}{{"pepper", cfg.PepperFile(), pepper}, {"master key", cfg.MasterKeyPath(), master}, {"session secret", cfg.SessionSecretPath(), session}} {
			cur, err := keyring.ReadSecretFile(k.path)
			if err != nil {
				return err
			}
			if !cur.Equal(k.inUse) {
				return fmt.Errorf("%s file changed since start", k.name)
			}
		}
		return nil
	}
}
