// Package server is the HTTP surface of vaultcrux. It owns the one route
// table (routes.go), the request pipeline (request id, access log, metrics,
// panic recovery, authentication, permission check, body limits, strict
// JSON, idempotency) and the single adapter from errors to responses.
//
// Invariants:
//   - Only routes.go registers routes, and every route names a permission;
//     a route without one is refused when the table is built.
//   - The tenant of a request is the tenant of its credential; headers and
//     body fields are only compared against it.
//   - A client sees an error's message only when the error was built as
//     user-safe (vaultcrux.E); everything else is "internal error" plus the
//     request id, with the cause in the log.
package server

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/apikey"
	"github.com/vaultcrux/vaultcrux/internal/config"
	"github.com/vaultcrux/vaultcrux/internal/evidence"
	"github.com/vaultcrux/vaultcrux/internal/gate"
	"github.com/vaultcrux/vaultcrux/internal/keyring"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/tenancy"
)

// Options are the dependencies of a Server. Store, Ledger, Hasher, Config
// and SessionSecret are required; the rest have defaults.
type Options struct {
	Config *config.Config
	Store  store.Store
	Ledger *ledger.Ledger
	Hasher *apikey.Hasher
	// SessionSecret keys the MAC of frontdoor session cookies (at least
	// 32 bytes; replicas must share it).
	SessionSecret keyring.Secret
	Evidence      *evidence.Service // the evidence plane
	Gate          *gate.Gate        // Shield: the mutation guard and /v1/shield/*
	Logger        *slog.Logger      // access log and errors; default discards
	BuildInfo     vaultcrux.BuildInfo
	// KeyCheck reports whether the key provider answers (readyz).
	KeyCheck func(context.Context) error
	Now      func() time.Time
	Rand     io.Reader
}

// Server serves the vaultcrux HTTP API.
type Server struct {
	cfg            *config.Config
	store          store.Store
	ledger         *ledger.Ledger
	evidence       *evidence.Service
	gate           *gate.Gate
	hasher         *apikey.Hasher
	log            *slog.Logger
	build          vaultcrux.BuildInfo
	keyCheck       func(context.Context) error
	now            func() time.Time
	rand           io.Reader
	prov           *tenancy.Provisioner
	metrics        *metrics
	metricsHandler http.Handler
	auth           *authCache
	cookies        *cookieSigner
	limits         *authLimiter
	csrf           *http.CrossOriginProtection
	handler        http.Handler
	routes         []route
	closeOnce      sync.Once
	done           chan struct{}
}

// New builds a Server. It starts no goroutines; call Run for the
// background work (last-used flushing, idempotency purging).
func New(o Options) (*Server, error) {
	if o.Config == nil || o.Store == nil || o.Ledger == nil || o.Hasher == nil || o.Evidence == nil || o.Gate == nil {
		return nil, vaultcrux.E(vaultcrux.Internal, "server.New: Config, Store, Ledger, Hasher, Evidence and Gate are required")
	}
	s := &Server{
		cfg:      o.Config,
		store:    o.Store,
		ledger:   o.Ledger,
		evidence: o.Evidence,
		gate:     o.Gate,
		hasher:   o.Hasher,
		log:      o.Logger,
		build:    o.BuildInfo,
		keyCheck: o.KeyCheck,
		now:      o.Now,
		rand:     o.Rand,
		done:     make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.keyCheck == nil {
		s.keyCheck = func(context.Context) error { return nil }
	}
	s.prov = &tenancy.Provisioner{Store: s.store, Ledger: s.ledger, Hasher: s.hasher, Now: s.now, Rand: s.rand, TenantSetup: s.evidence.SetupTenant}
	s.metrics = newMetrics(s.ledger)
	s.metricsHandler = promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
	s.auth = newAuthCache(s.cfg.AuthCacheTTL, s.now)
	cookies, err := newCookieSigner(o.SessionSecret)
	if err != nil {
		return nil, &vaultcrux.Error{Op: "server.New", Err: err}
	}
	s.cookies = cookies
	s.limits = newAuthLimiter(max(s.cfg.AuthFailuresPerAddress, 1), max(s.cfg.AuthFailuresPerTenant, 1))
	s.csrf = http.NewCrossOriginProtection()
	s.routes = s.routeTable()
	h, err := s.buildMux(s.routes)
	if err != nil {
		return nil, err
	}
	s.handler = s.outer(h)
	return s, nil
}

// Handler returns the root handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Registry returns the Prometheus registry the server reports to.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }

// Run does the background work until ctx ends or Close is called: it
// flushes API key last-use times and purges expired idempotency records.
// It returns after a last flush.
func (s *Server) Run(ctx context.Context) {
	flush := time.NewTicker(5 * time.Second)
	purge := time.NewTicker(10 * time.Minute)
	defer flush.Stop()
	defer purge.Stop()
	for {
		select {
		case <-ctx.Done():
			s.FlushLastUsed(context.WithoutCancel(ctx))
			return
		case <-s.done:
			s.FlushLastUsed(context.Background())
			return
		case <-flush.C:
			s.FlushLastUsed(ctx)
		case <-purge.C:
			s.purgeIdempotency(ctx)
		}
	}
}

// Close makes Run return (after its last flush).
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
}

// FlushLastUsed writes the buffered last-use times of API keys.
func (s *Server) FlushLastUsed(ctx context.Context) {
	batch := s.auth.takeLastUsed()
	if len(batch) == 0 {
		return
	}
	err := s.store.Tx(ctx, func(tx store.SystemTx) error { return tx.TouchAPIKeys(batch) })
	if err != nil {
		s.metrics.storeErrors.WithLabelValues("touch_api_keys").Inc()
		s.log.LogAttrs(ctx, slog.LevelError, "flush last_used_at", slog.String("error", err.Error()))
		s.auth.restoreLastUsed(batch)
	}
}

func (s *Server) purgeIdempotency(ctx context.Context) {
	var n int
	err := s.store.Tx(ctx, func(tx store.SystemTx) (err error) {
		n, err = tx.PurgeIdempotency(s.now())
		return err
	})
	if err != nil {
		s.metrics.storeErrors.WithLabelValues("purge_idempotency").Inc()
		s.log.LogAttrs(ctx, slog.LevelError, "purge idempotency records", slog.String("error", err.Error()))
		return
	}
	if n > 0 {
		s.log.LogAttrs(ctx, slog.LevelDebug, "purged idempotency records", slog.Int("count", n))
	}
}
