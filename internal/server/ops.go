package server

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/vaultcrux/vaultcrux"
)

func (s *Server) handleLive(*request) (*response, error) {
	return &response{data: map[string]string{"status": "ok"}}, nil
}

// handleReady answers 200 only when the store answers, its migrations are
// current and the key provider answers; otherwise 503 with the status of
// each check. Check results name no hosts, paths or errors.
func (s *Server) handleReady(req *request) (*response, error) {
	ctx, cancel := context.WithTimeout(req.ctx, 2*time.Second)
	defer cancel()
	checks := map[string]string{"store": "ok", "migrations": "ok", "keys": "ok"}
	ready := true
	fail := func(name, status string) { checks[name], ready = status, false }

	if err := s.store.Ping(ctx); err != nil {
		s.metrics.storeErrors.WithLabelValues("ping").Inc()
		fail("store", "unreachable")
		fail("migrations", "unknown")
	} else if applied, latest, err := s.store.MigrationStatus(ctx); err != nil {
		s.metrics.storeErrors.WithLabelValues("migration_status").Inc()
		fail("migrations", "unknown")
	} else if applied != latest {
		fail("migrations", "pending")
	}
	if err := s.keyCheck(ctx); err != nil {
		fail("keys", "unavailable")
	}
	if !ready {
		return nil, &fieldsError{err: vaultcrux.E(vaultcrux.Unavailable, "not ready"), fields: map[string]any{"checks": checks}}
	}
	return &response{data: map[string]any{"status": "ready", "checks": checks}}, nil
}

func (s *Server) handleBuildInfo(*request) (*response, error) {
	return &response{data: s.build}, nil
}

// handleMetrics renders the Prometheus exposition through the route
// pipeline, so that the access check and the access log apply to it.
func (s *Server) handleMetrics(req *request) (*response, error) {
	rec := &rawRecorder{header: http.Header{}}
	s.metricsHandler.ServeHTTP(rec, req.http)
	out := &rendered{status: rec.status, header: map[string]string{}, body: rec.body.Bytes()}
	for _, h := range []string{"Content-Type", "Content-Encoding"} {
		if v := rec.header.Get(h); v != "" {
			out.header[h] = v
		}
	}
	return &response{raw: out}, nil
}

func (s *Server) handleNotFound(*request) (*response, error) {
	return nil, vaultcrux.E(vaultcrux.NotFound, "no such route")
}

// clientIP is the address of the peer, or, when the peer is a configured
// trusted proxy, the right-most address of X-Forwarded-For that is not
// itself a trusted proxy. Forwarded headers from anyone else are ignored.
func (s *Server) clientIP(r *http.Request) netip.Addr {
	peer := addrOf(r.RemoteAddr)
	if !s.trusted(peer) {
		return peer
	}
	xff := r.Header.Values("x-forwarded-for")
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return peer // a garbled chain is not believed past this point
			}
			a = a.Unmap()
			if !s.trusted(a) {
				return a
			}
		}
	}
	return peer
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func addrOf(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// rawRecorder captures a raw handler's output as a rendered response.
type rawRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *rawRecorder) Header() http.Header { return w.header }
func (w *rawRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *rawRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}
