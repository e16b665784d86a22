package server_test

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vaultcrux/vaultcrux/internal/vctest"
)

// BenchmarkAuthenticatedRequest measures one authenticated request through
// the whole handler stack (request id, auth with a warm key cache, role
// check, handler, JSON envelope, metrics, access log to a discarding
// handler), excluding the network.
func BenchmarkAuthenticatedRequest(b *testing.B) {
	b.Run("warm-cache", func(b *testing.B) { benchWhoami(b, time.Second) })
	// Every request reads its key from SQLite: the cost of a cache miss.
	b.Run("no-cache", func(b *testing.B) { benchWhoami(b, 0) })
}

func benchWhoami(b *testing.B, ttl time.Duration) {
	// A real JSON access log, written to nowhere: its cost is counted.
	e := vctest.New(b, func(s *vctest.Setup) {
		s.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
		s.Config.AuthCacheTTL = ttl
	})
	key := e.Tenant("acme")
	req := vctest.Build(vctest.Request{Method: "GET", Path: "/v1/auth/whoami", Tenant: "acme", Key: key})
	w := httptest.NewRecorder()
	e.Handler.ServeHTTP(w, req)
	if w.Code != 200 {
		b.Fatalf("warm-up: %d %s", w.Code, w.Body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		e.Handler.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
