package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/config"
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
