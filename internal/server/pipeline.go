package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/authz"
	"github.com/vaultcrux/vaultcrux/internal/ident"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// reqState is what the outer middleware and the route handler share about
// one request: set on the way in, read by the access log on the way out.
type reqState struct {
	id        string
	ip        netip.Addr
	route     string
	principal *vaultcrux.Principal
}

type stateKey struct{}

func stateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

// request is what a handler sees.
type request struct {
	ctx       context.Context
	http      *http.Request
	state     *reqState
	principal *vaultcrux.Principal // nil on Public and allowlisted Ops routes
	body      []byte               // the validated JSON body, if the route takes one
	bodyKeys  []string             // its top-level keys
}

// decode reads the validated body into v.
func (q *request) decode(v any) error { return decode(q.body, q.bodyKeys, v) }

// tenant is the tenant-scoped store handle of the authenticated principal.
func (q *request) tenant(s *Server) store.TenantStore { return s.store.ForTenant(q.principal.Tenant) }

// response is what a handler returns on success.
type response struct {
	status    int
	data      any
	receiptID string
	headers   map[string]string // extra response headers
	raw       *rendered         // a non-JSON body (the Prometheus exposition, COSE)
}

// recorder notes the status and size of what was written.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// outer wraps every request: request id, client address, in-flight gauge,
// panic recovery, access log and metrics.
func (s *Server) outer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		st := &reqState{id: s.requestID(r), ip: s.clientIP(r), route: "unmatched"}
		w.Header().Set("X-Request-Id", st.id)
		rec := &recorder{ResponseWriter: w}
		s.metrics.inFlight.Inc()
		defer func() {
			p := recover()
			if p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.LogAttrs(r.Context(), slog.LevelError, "panic",
					slog.String("request_id", st.id), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
				if rec.status == 0 {
					s.writeError(rec, st, errors.New("panic"))
				}
			}
			s.metrics.inFlight.Dec()
			s.observe(r, st, rec, time.Since(start))
		}()
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
	})
}

// observe writes the access log line and the request metrics.
func (s *Server) observe(r *http.Request, st *reqState, rec *recorder, elapsed time.Duration) {
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	code := statusText(status)
	s.metrics.requests.WithLabelValues(st.route, code).Inc()
	s.metrics.latency.WithLabelValues(st.route, code).Observe(elapsed.Seconds())

	var tenant, principal string
	if st.principal != nil {
		tenant, principal = string(st.principal.Tenant), st.principal.ID
	}
	ua := r.UserAgent()
	if len(ua) > 256 {
		ua = ua[:256]
	}
	// Never a key, cookie, token or body: only these fields.
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("request_id", st.id),
		slog.String("tenant", tenant),
		slog.String("principal", principal),
		slog.String("method", r.Method),
		slog.String("route", st.route),
		slog.Int("status", status),
		slog.Int64("bytes", rec.bytes),
		slog.Float64("latency_ms", float64(elapsed.Microseconds())/1000),
		slog.String("ip", st.ip.String()),
		slog.String("user_agent", ua),
	)
}

// statusText avoids an allocation per request for the common codes.
func statusText(code int) string {
	switch code {
	case 200:
		return "200"
	case 201:
		return "201"
	case 202:
		return "202"
	case 400:
		return "400"
	case 401:
		return "401"
	case 403:
		return "403"
	case 404:
		return "404"
	}
	return strconv.Itoa(code)
}

// requestID echoes a sane client x-request-id, or makes one.
func (s *Server) requestID(r *http.Request) string {
	if v := r.Header.Get("x-request-id"); validToken(v, 128) {
		return v
	}
	id, err := ident.New(s.now(), s.rand)
	if err != nil {
		return "unavailable"
	}
	return id
}

// validToken accepts 1..max characters of A-Z a-z 0-9 and ._:-
func validToken(v string, max int) bool {
	if len(v) == 0 || len(v) > max {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// routeHandler runs the pipeline of one route: access check, body,
// idempotency, handler, response.
func (s *Server) routeHandler(rt route) http.Handler {
	pattern := rt.pattern()
	if rt.method == "*" {
		pattern = "unmatched"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateFrom(r.Context())
		st.route = pattern
		req := &request{ctx: r.Context(), http: r, state: st}
		if !s.featureOn(rt.feature) {
			s.writeError(w, st, errFeatureDisabled)
			return
		}
		if err := s.admit(rt, req); err != nil {
			s.writeError(w, st, err)
			return
		}
		if err := s.readBody(rt, w, req); err != nil {
			s.writeError(w, st, err)
			return
		}
		s.runIdempotent(rt, w, req)
	})
}

var errFeatureDisabled = vaultcrux.E(vaultcrux.FeatureDisabled, "this feature is not enabled on this server")

// admit authenticates and authorizes the request for rt.
func (s *Server) admit(rt route, req *request) error {
	switch rt.perm {
	case authz.Public:
		return nil
	case authz.Ops:
		return s.opsAccess(req)
	}
	p, err := s.authenticateRequest(req)
	if err != nil {
		return err
	}
	req.principal, req.state.principal = p, p
	if err := authz.Check(p, rt.perm); err != nil {
		return err
	}
	if rt.sessionOnly && p.SessionID == "" {
		return vaultcrux.E(vaultcrux.Forbidden, "this action is taken by a person in a browser session, never with an API key")
	}
	return nil
}

// opsAccess lets allowlisted addresses in, and otherwise asks for a key.
func (s *Server) opsAccess(req *request) error {
	for _, p := range s.cfg.OpsAllowlist {
		if p.Contains(req.state.ip) {
			return nil
		}
	}
	if req.http.Header.Get("x-api-key") == "" {
		return vaultcrux.E(vaultcrux.Forbidden, "this endpoint is served to the ops allowlist or with an API key")
	}
	if wait := s.limits.blocked(req.state.ip, s.now()); wait > 0 {
		return s.rateLimited(wait, "address")
	}
	p, err := s.authenticate(req.http, false)
	if err == errBadKey {
		return s.authFailed(req, claimedTenant(req.http), "api_key", err)
	}
	if err != nil {
		return err
	}
	req.principal, req.state.principal = p, p
	return nil
}

// readBody enforces the route's body rule: size limit, content type,
// strict JSON, and the body's tenantId against the principal. It runs
// before idempotency so that a refused body leaves no record behind.
func (s *Server) readBody(rt route, w http.ResponseWriter, req *request) error {
	r := req.http
	if rt.body == bodyNone {
		if r.ContentLength > 0 {
			return vaultcrux.E(vaultcrux.Invalid, "this route takes no request body")
		}
		if r.ContentLength < 0 {
			var one [1]byte
			if n, _ := io.ReadFull(http.MaxBytesReader(w, r.Body, 1), one[:]); n > 0 {
				return vaultcrux.E(vaultcrux.Invalid, "this route takes no request body")
			}
		}
		return nil
	}
	limit := s.cfg.BodyLimit
	if rt.body == bodyIngest {
		limit = s.cfg.IngestBodyLimit
	}
	if r.ContentLength > limit {
		return vaultcrux.Ef(vaultcrux.TooLarge, "request body exceeds the limit of %d bytes", limit)
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("content-type")); err != nil || mt != "application/json" {
		return vaultcrux.E(vaultcrux.Invalid, "content-type must be application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return vaultcrux.Ef(vaultcrux.TooLarge, "request body exceeds the limit of %d bytes", limit)
		}
		return vaultcrux.E(vaultcrux.Invalid, "could not read the request body")
	}
	info, err := checkJSON(body)
	if err != nil {
		return err
	}
	if info.tenantID != nil && req.principal != nil && *info.tenantID != string(req.principal.Tenant) {
		s.logMismatch(req, "body")
		return errTenantMismatch
	}
	req.body, req.bodyKeys = body, info.keys
	return nil
}

var errTenantMismatch = vaultcrux.E(vaultcrux.TenantMismatch, "the request names a tenant other than the credential's")

func (s *Server) logMismatch(req *request, where string) {
	attrs := []slog.Attr{
		slog.String("request_id", req.state.id),
		slog.String("where", where),
		slog.String("ip", req.state.ip.String()),
	}
	if req.principal != nil {
		attrs = append(attrs, slog.String("tenant", string(req.principal.Tenant)), slog.String("principal", req.principal.ID))
	}
	s.log.LogAttrs(req.ctx, slog.LevelWarn, "tenant_mismatch", attrs...)
}

const (
	idempotencyTTL = 24 * time.Hour
	// A pending record older than this belongs to a request that died;
	// it is far longer than any request may run (WriteTimeout).
	idempotencyStale = 10 * time.Minute
)

// runIdempotent runs the handler under the route's idempotency rule and
// writes the response.
func (s *Server) runIdempotent(rt route, w http.ResponseWriter, req *request) {
	key := req.http.Header.Get("x-idempotency-key")
	switch rt.idem {
	case idemNone, idemExempt:
		key = ""
	case idemRequired:
		if key == "" {
			s.writeError(w, req.state, vaultcrux.E(vaultcrux.IdempotencyKeyRequired, "x-idempotency-key header is required on this request"))
			return
		}
	}
	if key == "" || req.principal == nil {
		resp, err := s.call(rt, req)
		s.writeRendered(w, s.render(req.state, resp, err))
		return
	}
	if !validIdemKey(key) {
		s.writeError(w, req.state, vaultcrux.E(vaultcrux.Invalid, "x-idempotency-key must be 1-255 visible ASCII characters"))
		return
	}
	scope := store.IdempotencyScope{Method: rt.method, Route: rt.path, Key: key}
	now := s.now().UTC().Truncate(time.Millisecond) // stores keep ms: the claim is matched by it
	rec := &store.IdempotencyRecord{
		Scope:       scope,
		RequestHash: requestHash(req.http, req.body),
		CreatedAt:   now,
		ExpiresAt:   now.Add(idempotencyTTL),
	}
	ts := req.tenant(s)
	var existing *store.IdempotencyRecord
	var claimed bool
	err := ts.Tx(req.ctx, func(tx store.TenantTx) (err error) {
		existing, claimed, err = tx.ClaimIdempotency(rec, now, now.Add(-idempotencyStale))
		return err
	})
	switch {
	case err != nil:
		s.metrics.storeErrors.WithLabelValues("claim_idempotency").Inc()
		s.writeError(w, req.state, err)
		return
	case !claimed && !bytes.Equal(existing.RequestHash, rec.RequestHash):
		s.writeError(w, req.state, vaultcrux.E(vaultcrux.IdempotencyKeyReused, "this idempotency key was used with a different request"))
		return
	case !claimed && existing.Response == nil:
		s.writeError(w, req.state, vaultcrux.E(vaultcrux.Conflict, "a request with this idempotency key is still in progress; retry later"))
		return
	case !claimed:
		body := existing.Response.Body
		if rt.sealed && existing.Response.Status < 300 {
			if body, err = s.evidence.OpenReplay(req.ctx, req.principal.Tenant, body); err != nil {
				s.writeError(w, req.state, err)
				return
			}
		}
		w.Header().Set("Idempotent-Replay", "true")
		s.writeRendered(w, rendered{status: existing.Response.Status, header: existing.Response.Header, body: body})
		return
	}

	resp, herr := s.call(rt, req)
	out := s.render(req.state, resp, herr)
	// A 5xx means the handler failed and its transaction rolled back:
	// release the key so that the client may retry. So does a Shield
	// block: nothing ran, and the retry (with an approval token, or after
	// a kill switch is released) must run, not replay the 403. Anything
	// else is the answer to this request and is kept for replay.
	ctx := context.WithoutCancel(req.ctx)
	_, blocked := asDecisionError(herr)
	stored, release := out.body, out.status >= 500 || blocked
	if rt.sealed && out.status < 300 && !release {
		// The response holds tenant content: its copy for replay is sealed
		// like content, or not kept at all.
		var serr error
		if stored, serr = s.evidence.SealReplay(ctx, req.principal.Tenant, out.body); serr != nil {
			release = true
		}
	}
	err = ts.Tx(ctx, func(tx store.TenantTx) error {
		if release {
			return tx.ReleaseIdempotency(rec)
		}
		return tx.FinishIdempotency(rec, &store.IdempotencyResponse{Status: out.status, Header: out.header, Body: stored})
	})
	if err != nil {
		// The operation itself is done; the client gets its answer. A
		// retry within the stale window sees "in progress".
		s.metrics.storeErrors.WithLabelValues("finish_idempotency").Inc()
		s.log.LogAttrs(ctx, slog.LevelError, "store idempotent response",
			slog.String("request_id", req.state.id), slog.String("error", err.Error()))
	}
	s.writeRendered(w, out)
}

// call runs the handler, turning a panic into an error so that the
// idempotency record is released rather than left pending.
func (s *Server) call(rt route, req *request) (resp *response, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.LogAttrs(req.ctx, slog.LevelError, "panic",
				slog.String("request_id", req.state.id), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			resp, err = nil, errors.New("handler panic")
		}
	}()
	if rt.tool != "" && (req.principal.AgentID != "" || !agentGuardOnly(rt)) {
		if err := s.guard(rt, req); err != nil {
			return nil, err
		}
	}
	return rt.handler(req)
}

func validIdemKey(k string) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// requestHash binds an idempotency key to the exact request: method,
// path, query and body, each length-prefixed so no two requests collide
// by concatenation.
func requestHash(r *http.Request, body []byte) []byte {
	h := sha256.New()
	var n [8]byte
	for _, part := range [][]byte{[]byte(r.Method), []byte(r.URL.EscapedPath()), []byte(r.URL.RawQuery), body} {
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	return h.Sum(nil)
}
