package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/config"
	"github.com/vaultcrux/vaultcrux/internal/envelope"
	"github.com/vaultcrux/vaultcrux/internal/evidence"
	"github.com/vaultcrux/vaultcrux/internal/keyring"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// operator is the actor of changes made from the command line: whoever
// holds the data dir or the database credentials.
var operator = vaultcrux.Principal{ID: "operator:cli"}

// openLedger loads the signing key (registering it when new), starts the
// receipt ledger, and records a signing key rotation that the start
// itself caused (a new key file) in every tenant's log. The returned
// function closes the ledger after signing checkpoints for what it wrote.
func openLedger(ctx context.Context, cfg *config.Config, st store.Store, log *slog.Logger) (*ledger.Ledger, *ledger.Keys, func(), error) {
	keys, rot, err := ledger.OpenKeys(ctx, ledger.KeysConfig{
		Store: st, SeedPath: cfg.SigningKeyPath(), Managed: cfg.SigningKeyManaged(),
		Now: time.Now, Rand: rand.Reader, Logger: log,
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("receipt signing key: %w", err)
	}
	l := ledger.New(ledger.Config{Store: st, Keys: keys, Now: time.Now, Rand: rand.Reader, Logger: log})
	if rot != nil {
		if err := l.RecordKeyChange(ctx, operator, ledger.KindSigningKeyRotated, rot.From, rot.To); err != nil {
			l.Close()
			return nil, nil, nil, err
		}
	}
	closeFn := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := l.CheckpointAll(cctx); err != nil {
			log.Warn("signing checkpoints before exit", "error", err.Error())
		}
		l.Close()
	}
	return l, keys, closeFn, nil
}

// loadMasterKey returns the local key provider's master key. The default
// file in the data dir is created 0600 on first use; a file named by
// configuration (rendered by a secrets agent) must exist.
func loadMasterKey(cfg *config.Config) (keyring.Secret, error) {
	if cfg.MasterKeyManaged() {
		return keyring.ReadSecretFile(cfg.MasterKeyPath())
	}
	sec, _, err := keyring.LoadOrCreateSecret(cfg.MasterKeyPath(), envelope.KeySize, rand.Reader)
	return sec, err
}

// openEvidence builds the evidence plane over the local key provider.
func openEvidence(cfg *config.Config, st store.Store, l *ledger.Ledger, log *slog.Logger) (*evidence.Service, keyring.Secret, error) {
	master, err := loadMasterKey(cfg)
	if err != nil {
		return nil, master, fmt.Errorf("master key: %w", err)
	}
	if master.Len() != envelope.KeySize {
		return nil, master, fmt.Errorf("master key: %s holds %d bytes, want %d", cfg.MasterKeyPath(), master.Len(), envelope.KeySize)
	}
	provider, err := envelope.NewLocal(master, rand.Reader)
	if err != nil {
		return nil, master, err
	}
	return evidence.New(evidence.Config{Store: st, Ledger: l, Keys: provider, Logger: log}), master, nil
}
