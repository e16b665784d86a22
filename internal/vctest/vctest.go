// Package vctest holds test helpers: a real server over a real SQLite
// database in a temporary directory, tenants and keys made through the
// same code the product uses, and a small client that speaks the
// envelope. Nothing here mocks the store.
package vctest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/apikey"
	"github.com/vaultcrux/vaultcrux/internal/config"
	"github.com/vaultcrux/vaultcrux/internal/envelope"
	"github.com/vaultcrux/vaultcrux/internal/evidence"
	"github.com/vaultcrux/vaultcrux/internal/gate"
	"github.com/vaultcrux/vaultcrux/internal/keyring"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/server"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/store/sqlite"
	"github.com/vaultcrux/vaultcrux/internal/tenancy"
)

// Clock is a settable clock for tests.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts a clock at a fixed instant.
func NewClock() *Clock { return &Clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)} }

// Now returns the current test time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Env is a server under test and what it stands on.
type Env struct {
	T      testing.TB
	Config *config.Config
	Store  store.Store
	Hasher *apikey.Hasher
	Server *server.Server
	Ledger *ledger.Ledger
	Keys   *ledger.Keys
	Prov   *tenancy.Provisioner
	Clock  *Clock
	// Evidence is the evidence plane; its ingest worker does not run on
	// its own: Drain runs it.
	Evidence *evidence.Service
	// Provider is the local key provider the evidence plane uses.
	Provider envelope.Provider
	// Gate is Shield; its background loop does not run (decisions poll
	// the store when their state is older than its StaleAfter).
	Gate *gate.Gate
	// Handler is the server's root handler; requests made through Do
	// come from RemoteAddr 192.0.2.1 (not on any allowlist) unless set.
	Handler http.Handler
}

// Setup is what an Option may change before the server is built.
type Setup struct {
	Config *config.Config
	Logger *slog.Logger // default: discard
}

// Option adjusts the setup.
type Option func(*Setup)

// Open opens a fresh SQLite store in t.TempDir().
func Open(t testing.TB) store.Store {
	t.Helper()
	return OpenAt(t, filepath.Join(t.TempDir(), "vaultcrux.db"))
}

// OpenAt opens (and migrates) the SQLite file at path, closed when the
// test ends: several opens of one path stand for processes sharing it.
func OpenAt(t testing.TB, path string) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// New starts a server over a fresh SQLite store.
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	return NewWithStore(t, Open(t), opts...)
}

// NewWithStore starts a server over st.
func NewWithStore(t testing.TB, st store.Store, opts ...Option) *Env {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	setup := &Setup{Config: &cfg}
	for _, o := range opts {
		o(setup)
	}
	pepper := make([]byte, 32)
	if _, err := rand.Read(pepper); err != nil {
		t.Fatal(err)
	}
	hasher, err := apikey.NewHasher(keyring.NewSecret(pepper))
	if err != nil {
		t.Fatal(err)
	}
	clock := NewClock()
	keys, _, err := ledger.OpenKeys(context.Background(), ledger.KeysConfig{
		Store: st, SeedPath: cfg.SigningKeyPath(), Now: clock.Now, Rand: rand.Reader, Logger: setup.Logger,
	})
	if err != nil {
		t.Fatalf("signing keys: %v", err)
	}
	led := ledger.New(ledger.Config{Store: st, Keys: keys, Now: clock.Now, Rand: rand.Reader, Logger: setup.Logger})
	t.Cleanup(led.Close)
	master := make([]byte, envelope.KeySize)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	provider, err := envelope.NewLocal(keyring.NewSecret(master), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ev := evidence.New(evidence.Config{Store: st, Ledger: led, Keys: provider, Now: clock.Now, Logger: setup.Logger})
	sessionSecret := make([]byte, 32)
	if _, err := rand.Read(sessionSecret); err != nil {
		t.Fatal(err)
	}
	mode, flags, taintAction := gate.Defaults(&cfg)
	gt, err := gate.New(gate.Config{
		Store: st, Ledger: led, Sealer: ev, Mode: mode, Flags: flags, TaintAction: taintAction,
		Builtin: gate.BuiltinTools(), Now: clock.Now, Logger: setup.Logger,
	})
	if err != nil {
		t.Fatalf("gate.New: %v", err)
	}
	srv, err := server.New(server.Options{
		Config: &cfg, Store: st, Ledger: led, Hasher: hasher, Evidence: ev, Gate: gt, Now: clock.Now, Logger: setup.Logger,
		BuildInfo: vaultcrux.BuildInfo{Service: "vaultcrux", Version: "test", Commit: "abc123", GoVersion: "go"},

		SessionSecret: keyring.NewSecret(sessionSecret),
	})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	t.Cleanup(srv.Close)
	return &Env{
		T: t, Config: &cfg, Store: st, Hasher: hasher, Server: srv, Clock: clock, Ledger: led, Keys: keys,
		Evidence: ev, Provider: provider, Gate: gt,
		Prov:    &tenancy.Provisioner{Store: st, Ledger: led, Hasher: hasher, Now: clock.Now, Rand: rand.Reader, TenantSetup: ev.SetupTenant},
		Handler: srv.Handler(),
	}
}

// Drain processes queued ingest jobs until none is left.
func (e *Env) Drain() {
	e.T.Helper()
	for {
		n, err := e.Evidence.RunOnce(context.Background())
		if err != nil {
			e.T.Fatalf("ingest worker: %v", err)
		}
		if n == 0 {
			return
		}
	}
}

// Operator is the actor of changes the helpers make.
var Operator = vaultcrux.Principal{ID: "operator:test"}

// Tenant creates a tenant and returns its owner key.
func (e *Env) Tenant(id string) string {
	e.T.Helper()
	_, _, tok, _, err := e.Prov.CreateTenant(context.Background(), Operator, vaultcrux.TenantID(id), "")
	if err != nil {
		e.T.Fatalf("create tenant %s: %v", id, err)
	}
	return tok.Reveal()
}

// Key issues a key with role in tenant and returns it with its id.
func (e *Env) Key(tenant string, role vaultcrux.Role) (key, id string) {
	e.T.Helper()
	k, tok, _, err := e.Prov.IssueKey(context.Background(), Operator, vaultcrux.TenantID(tenant), "test "+string(role), role)
	if err != nil {
		e.T.Fatalf("issue key: %v", err)
	}
	return tok.Reveal(), k.ID
}

// Request describes one call.
type Request struct {
	Method, Path string
	Tenant, Key  string // x-tenant-id, x-api-key ("" omits)
	Idem         string // x-idempotency-key
	Body         any    // marshalled as JSON unless []byte or string
	Header       map[string]string
	RemoteAddr   string
}

// Response is a decoded answer.
type Response struct {
	Status int
	Header http.Header
	Raw    []byte
	OK     bool            `json:"ok"`
	Data   json.RawMessage `json:"data"`
	Error  *struct {
		Type      string         `json:"type"`
		Code      string         `json:"code"`
		Message   string         `json:"message"`
		RequestID string         `json:"requestId"`
		Checks    map[string]any `json:"checks"`
		// Shield's fields of a blocked call.
		DecisionID        string `json:"decisionId"`
		Stage             string `json:"stage"`
		ApprovalRequestID string `json:"approvalRequestId"`
		ReceiptID         string `json:"receiptId"`
	} `json:"error"`
}

// Code is the error code, or "" on success.
func (r *Response) Code() string {
	if r.Error == nil {
		return ""
	}
	return r.Error.Code
}

// Into decodes data into v.
func (r *Response) Into(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Data, v); err != nil {
		t.Fatalf("decode data %s: %v", r.Data, err)
	}
}

// Build makes the *http.Request of q.
func Build(q Request) *http.Request {
	var body io.Reader
	switch b := q.Body.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(b)
	case string:
		body = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			panic(err)
		}
		body = bytes.NewReader(j)
	}
	r := httptest.NewRequest(q.Method, q.Path, body)
	if body != nil {
		r.Header.Set("content-type", "application/json")
	}
	if q.Tenant != "" {
		r.Header.Set("x-tenant-id", q.Tenant)
	}
	if q.Key != "" {
		r.Header.Set("x-api-key", q.Key)
	}
	if q.Idem != "" {
		r.Header.Set("x-idempotency-key", q.Idem)
	}
	for k, v := range q.Header {
		r.Header.Set(k, v)
	}
	r.RemoteAddr = "192.0.2.1:4711"
	if q.RemoteAddr != "" {
		r.RemoteAddr = q.RemoteAddr
	}
	return r
}

// Do runs q through the handler.
func (e *Env) Do(q Request) *Response {
	e.T.Helper()
	w := httptest.NewRecorder()
	e.Handler.ServeHTTP(w, Build(q))
	resp := &Response{Status: w.Code, Header: w.Header(), Raw: w.Body.Bytes()}
	if ct := w.Header().Get("content-type"); ct == "application/json" {
		if err := json.Unmarshal(resp.Raw, resp); err != nil {
			e.T.Fatalf("%s %s: response is not JSON: %v: %s", q.Method, q.Path, err, resp.Raw)
		}
	}
	return resp
}

// Connect opens a frontdoor session with key and returns its cookie
// ("vc_session=…").
func (e *Env) Connect(tenant, key string) string {
	e.T.Helper()
	r := e.Do(Request{Method: "POST", Path: "/frontdoor/auth/connect", Body: map[string]string{"tenantId": tenant, "apiKey": key}})
	if r.Status != 200 {
		e.T.Fatalf("connect: %d %s", r.Status, r.Raw)
	}
	for _, v := range r.Header.Values("Set-Cookie") {
		if c, err := http.ParseSetCookie(v); err == nil && c.Name == "vc_session" && c.Value != "" {
			return c.Name + "=" + c.Value
		}
	}
	e.T.Fatalf("connect set no vc_session cookie: %v", r.Header.Values("Set-Cookie"))
	return ""
}

// WithCookie makes q a same-origin browser request carrying cookie.
func WithCookie(q Request, cookie string) Request {
	h := map[string]string{"Cookie": cookie, "Sec-Fetch-Site": "same-origin"}
	for k, v := range q.Header {
		h[k] = v
	}
	q.Header = h
	q.Tenant, q.Key = "", ""
	return q
}

// Approve resolves the approval request id with "approve" in a
// frontdoor session of ownerKey and returns the approval token.
func (e *Env) Approve(tenant, ownerKey, id string) string {
	e.T.Helper()
	cookie := e.Connect(tenant, ownerKey)
	r := e.Do(WithCookie(Request{Method: "POST", Path: "/v1/shield/approvals/" + id + "/resolve", Idem: "approve-" + id,
		Body: map[string]string{"decision": "approve", "note": "test approval"}}, cookie))
	if r.Status != 200 {
		e.T.Fatalf("resolve approval %s: %d %s", id, r.Status, r.Raw)
	}
	var out struct {
		ApprovalToken string `json:"approvalToken"`
	}
	r.Into(e.T, &out)
	if out.ApprovalToken == "" {
		e.T.Fatalf("resolve approval %s gave no token: %s", id, r.Raw)
	}
	return out.ApprovalToken
}
