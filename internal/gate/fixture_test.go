package gate_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/apikey"
	"github.com/vaultcrux/vaultcrux/internal/envelope"
	"github.com/vaultcrux/vaultcrux/internal/evidence"
	"github.com/vaultcrux/vaultcrux/internal/gate"
	"github.com/vaultcrux/vaultcrux/internal/keyring"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
	"github.com/vaultcrux/vaultcrux/internal/shield"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/store/postgres/pgtest"
	"github.com/vaultcrux/vaultcrux/internal/tenancy"
	"github.com/vaultcrux/vaultcrux/internal/vctest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// clock is the settable test clock of the server tests.
type clock = vctest.Clock

var newClock = vctest.NewClock

// switchKeys is the process's signing keys with a switch that takes the
// signer down, as an unreachable secrets agent would.
type switchKeys struct {
	keys ledger.KeySource
	down atomic.Bool
}

func (k *switchKeys) Current() (*keyring.SigningKey, error) {
	if k.down.Load() {
		return nil, fmt.Errorf("%w: test signer is down", keyring.ErrSignerUnavailable)
	}
	return k.keys.Current()
}

var errInjected = errors.New("injected store failure")

// flakyStore is a real store whose transactions can be made to fail: the
// system and tenant transactions (failTx) and the ledger's group commit
// (failBatch) separately.
type flakyStore struct {
	store.Store
	failTx, failBatch atomic.Bool
}

func (s *flakyStore) Tx(ctx context.Context, fn func(store.SystemTx) error) error {
	if s.failTx.Load() {
		return errInjected
	}
	return s.Store.Tx(ctx, fn)
}

func (s *flakyStore) ForTenant(id vaultcrux.TenantID) store.TenantStore {
	return flakyTenant{TenantStore: s.Store.ForTenant(id), s: s}
}

func (s *flakyStore) Batch(ctx context.Context, fn func(store.BatchTx) error) error {
	if s.failBatch.Load() {
		return errInjected
	}
	return s.Store.Batch(ctx, fn)
}

type flakyTenant struct {
	store.TenantStore
	s *flakyStore
}

func (t flakyTenant) Tx(ctx context.Context, fn func(store.TenantTx) error) error {
	if t.s.failTx.Load() {
		return errInjected
	}
	return t.TenantStore.Tx(ctx, fn)
}

// env is one vaultcrux process under test: a store, signing keys, a
// ledger, the evidence plane (the gate's sealer) and a gate.
type env struct {
	t     testing.TB
	st    store.Store
	keys  *switchKeys
	led   *ledger.Ledger
	ev    *evidence.Service
	prov  *tenancy.Provisioner
	clock *clock
	cfg   gate.Config
	g     *gate.Gate
}

// shared is what two processes of one deployment have in common: the
// signing key seed file and the master key of the key provider.
type shared struct {
	seedPath string
	master   []byte
}

func newShared(t testing.TB) *shared {
	master := make([]byte, envelope.KeySize)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	return &shared{seedPath: filepath.Join(t.TempDir(), "signing-key"), master: master}
}

type envOpts struct {
	st     store.Store // default: a fresh SQLite store
	shared *shared     // default: new
	clock  *clock      // default: new
	// realTime uses the wall clock instead (benchmarks).
	realTime bool
	gate     func(*gate.Config)
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	ctx := context.Background()
	if o.st == nil {
		o.st = vctest.Open(t)
	}
	if o.shared == nil {
		o.shared = newShared(t)
	}
	if o.clock == nil {
		o.clock = newClock()
	}
	now := o.clock.Now
	if o.realTime {
		now = time.Now
	}
	keys, _, err := ledger.OpenKeys(ctx, ledger.KeysConfig{Store: o.st, SeedPath: o.shared.seedPath, Now: now, Rand: rand.Reader})
	if err != nil {
		t.Fatalf("signing keys: %v", err)
	}
	sk := &switchKeys{keys: keys}
	led := ledger.New(ledger.Config{Store: o.st, Keys: sk, Now: now, Rand: rand.Reader})
	t.Cleanup(led.Close)
	provider, err := envelope.NewLocal(keyring.NewSecret(slices.Clone(o.shared.master)), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ev := evidence.New(evidence.Config{Store: o.st, Ledger: led, Keys: provider, Now: now})
	pepper := make([]byte, 32)
	if _, err := rand.Read(pepper); err != nil {
		t.Fatal(err)
	}
	hasher, err := apikey.NewHasher(keyring.NewSecret(pepper))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		t: t, st: o.st, keys: sk, led: led, ev: ev, clock: o.clock,
		prov: &tenancy.Provisioner{Store: o.st, Ledger: led, Hasher: hasher, Now: now, Rand: rand.Reader, TenantSetup: ev.SetupTenant},
	}
	e.cfg = gate.Config{
		Store: o.st, Ledger: led, Sealer: ev, Mode: shield.ModeEnforce, Flags: defaultFlags(),
		TaintAction: shield.TaintBlock, Builtin: gate.BuiltinTools(), Now: now,
	}
	if o.gate != nil {
		o.gate(&e.cfg)
	}
	e.g = e.newGate()
	return e
}

// defaultFlags are the shipped defaults (config.DefaultShieldFlags).
func defaultFlags() shield.Flags {
	return shield.Flags{
		Enabled: true, EnforceCapability: true, EnforceDigest: true, SandboxRunner: false, EnforceTaint: true,
		EnforceApprovals: true, SamplingGuardian: true, UIAppSandbox: false, KillSwitches: true,
	}
}

// newGate builds another gate over the env's store and ledger.
func (e *env) newGate(mods ...func(*gate.Config)) *gate.Gate {
	e.t.Helper()
	cfg := e.cfg
	for _, m := range mods {
		m(&cfg)
	}
	g, err := gate.New(cfg)
	if err != nil {
		e.t.Fatalf("gate.New: %v", err)
	}
	return g
}

// tenant creates a tenant and returns its owner principal, as an API key
// authenticates it.
func (e *env) tenant(id string) vaultcrux.Principal {
	e.t.Helper()
	_, k, _, _, err := e.prov.CreateTenant(context.Background(), vaultcrux.Principal{ID: "operator:test"}, vaultcrux.TenantID(id), "")
	if err != nil {
		e.t.Fatalf("create tenant %s: %v", id, err)
	}
	return vaultcrux.Principal{Tenant: k.Tenant, ID: "key:" + k.ID, KeyID: k.ID, Role: vaultcrux.RoleOwner}
}

// asAgent is p declaring agent id.
func asAgent(p vaultcrux.Principal, agent string) vaultcrux.Principal {
	p.AgentID = agent
	return p
}

// asKey is a principal of another API key of p's tenant, with role.
func asKey(p vaultcrux.Principal, keyID string, role vaultcrux.Role) vaultcrux.Principal {
	return vaultcrux.Principal{Tenant: p.Tenant, ID: "key:" + keyID, KeyID: keyID, Role: role}
}

// inSession is p signed in through a frontdoor session.
func inSession(p vaultcrux.Principal, sid string) vaultcrux.Principal {
	return vaultcrux.Principal{Tenant: p.Tenant, ID: "session:" + sid, SessionID: sid, KeyID: p.KeyID, Role: p.Role}
}

func (e *env) decide(c *gate.Call) *gate.Result {
	e.t.Helper()
	return e.g.Decide(context.Background(), c)
}

// call is a call of a built-in tool with args.
func call(p vaultcrux.Principal, tool, args string) *gate.Call {
	c := &gate.Call{Principal: p, Tool: tool}
	if args != "" {
		c.Args = json.RawMessage(args)
	}
	return c
}

// want checks a result's outcome and denial type.
func want(t testing.TB, what string, r *gate.Result, outcome shield.Outcome, denial shield.DenialType) {
	t.Helper()
	if r.Decision.Outcome != outcome || r.Decision.DenialType != denial {
		t.Fatalf("%s: got %s/%q (stage %s, detail %q), want %s/%q", what, r.Decision.Outcome, r.Decision.DenialType,
			r.Decision.Stage, r.Decision.Detail, outcome, denial)
	}
}

// row returns the stored decision id of tenant.
func (e *env) row(tenant vaultcrux.TenantID, id string) *store.ShieldDecision {
	e.t.Helper()
	var d *store.ShieldDecision
	if err := e.st.ForTenant(tenant).Tx(context.Background(), func(tx store.TenantTx) (err error) {
		d, err = tx.GetDecision(id)
		return err
	}); err != nil {
		e.t.Fatalf("decision %s: %v", id, err)
	}
	return d
}

// approvalRow returns the stored approval id of tenant.
func (e *env) approvalRow(tenant vaultcrux.TenantID, id string) *store.ShieldApproval {
	e.t.Helper()
	var a *store.ShieldApproval
	if err := e.st.ForTenant(tenant).Tx(context.Background(), func(tx store.TenantTx) (err error) {
		a, err = tx.GetApproval(id)
		return err
	}); err != nil {
		e.t.Fatalf("approval %s: %v", id, err)
	}
	return a
}

// outbox returns the tenant's outbox.
func (e *env) outbox(tenant vaultcrux.TenantID) []*store.OutboxEvent {
	e.t.Helper()
	var out []*store.OutboxEvent
	if err := e.st.ForTenant(tenant).Tx(context.Background(), func(tx store.TenantTx) (err error) {
		out, err = tx.ListOutbox(false, 10000)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// receipts returns the tenant's receipts of kind, newest first.
func (e *env) receipts(tenant vaultcrux.TenantID, kind string) []*store.ReceiptRecord {
	e.t.Helper()
	var out []*store.ReceiptRecord
	if err := e.st.ForTenant(tenant).Tx(context.Background(), func(tx store.TenantTx) (err error) {
		out, err = tx.ListReceipts(store.ReceiptFilter{Kind: kind, BeforeIndex: -1, Limit: 10000})
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// receipt loads a receipt; a signed one must verify against the
// registered keys.
func (e *env) receipt(tenant vaultcrux.TenantID, id string) *ledger.Loaded {
	e.t.Helper()
	ctx := context.Background()
	l, err := e.led.GetReceipt(ctx, tenant, id)
	if err != nil {
		e.t.Fatalf("receipt %s: %v", id, err)
	}
	if l.Status == ledger.StatusSigned {
		keys, err := e.led.KeySet(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if err := receipt.Verify(l.Doc, keys); err != nil {
			e.t.Fatalf("receipt %s does not verify: %v", id, err)
		}
	}
	return l
}

// details returns the details of an event receipt.
func details(t testing.TB, l *ledger.Loaded) map[string]any {
	t.Helper()
	m, ok := l.Doc.Field("details").(map[string]any)
	if !ok {
		t.Fatalf("receipt %s has no details object", l.Doc.ID())
	}
	return m
}

// wantKind checks that err is a vaultcrux error of kind.
func wantKind(t testing.TB, what string, err error, kind vaultcrux.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %s", what, kind)
	}
	if got := vaultcrux.ErrorKind(err); got != kind {
		t.Fatalf("%s: error %v of kind %s, want %s", what, err, got, kind)
	}
}

// registerPinned registers a server with tools and pins its digest.
func (e *env) registerPinned(p vaultcrux.Principal, name string, tools ...shield.Tool) *gate.Server {
	e.t.Helper()
	ctx := context.Background()
	s, err := e.g.RegisterServer(ctx, p, &gate.ServerSpec{Name: name, URL: "https://" + name + ".example/mcp", Tools: tools})
	if err != nil {
		e.t.Fatalf("register %s: %v", name, err)
	}
	if _, err := e.g.PinDigest(ctx, p, s.ID, s.Digest); err != nil {
		e.t.Fatalf("pin %s: %v", name, err)
	}
	return s
}

func tool(name, desc string, class shield.CapabilityClass, risk shield.RiskTier) shield.Tool {
	return shield.Tool{Name: name, Description: desc, Class: class, Risk: risk, InputSchema: json.RawMessage(`{"type":"object"}`)}
}

// ingest stores a document through the evidence plane and indexes it.
func (e *env) ingest(p vaultcrux.Principal, doc *evidence.IngestRequest) {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.ev.Submit(ctx, p, doc); err != nil {
		e.t.Fatalf("ingest %s: %v", doc.DocID, err)
	}
	for {
		n, err := e.ev.RunOnce(ctx)
		if err != nil {
			e.t.Fatalf("ingest worker: %v", err)
		}
		if n == 0 {
			return
		}
	}
}

// noteRead is Gate.NoteRead, which must succeed.
func (e *env) noteRead(p vaultcrux.Principal, untrusted bool, receiptID string) {
	e.t.Helper()
	if err := e.g.NoteRead(context.Background(), p, untrusted, receiptID); err != nil {
		e.t.Fatalf("NoteRead: %v", err)
	}
}
