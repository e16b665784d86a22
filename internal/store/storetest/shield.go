package storetest

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// Shield storage (contract §7).

// shIn runs fn in a transaction of tenant and returns its result; an
// error fails t.
func shIn[T any](t *testing.T, st store.Store, tenant string, fn func(store.TenantTx) (T, error)) T {
	t.Helper()
	var v T
	tenTx(t, st, tenant, func(tx store.TenantTx) (err error) {
		v, err = fn(tx)
		return err
	})
	return v
}

// shSys is shIn for a system transaction.
func shSys[T any](t *testing.T, st store.Store, fn func(store.SystemTx) (T, error)) T {
	t.Helper()
	var v T
	sysTx(t, st, func(tx store.SystemTx) (err error) {
		v, err = fn(tx)
		return err
	})
	return v
}

// shErr runs fn in a transaction of tenant and returns its error.
func shErr(t *testing.T, st store.Store, tenant string, fn func(store.TenantTx) error) error {
	return st.ForTenant(vaultcrux.TenantID(tenant)).Tx(t.Context(), fn)
}

func shPublisher(id string) *store.ShieldPublisher {
	return &store.ShieldPublisher{ID: id, Name: "Publisher " + id, URL: "https://" + id + ".example.com", CreatedAt: t0}
}

func shServer(id, publisher string) *store.ShieldServer {
	return &store.ShieldServer{
		ID:          id,
		Name:        "server " + id,
		URL:         "https://mcp.example.com/" + id,
		Command:     "",
		PublisherID: publisher,
		Tools:       []byte(`[{"capabilityClass":"read","name":"read_file","riskTier":"low"}]`),
		Digest:      "blake3:digest-of-" + id,
		Status:      "pending",
		CreatedAt:   t0,
		UpdatedAt:   t0,
	}
}

func shPin(server, digest string) *store.ShieldPin {
	return &store.ShieldPin{ServerID: server, Digest: digest, PinnedBy: "seat-owner", PinnedAt: t0.Add(time.Minute)}
}

func shSwitch(tenant, id, scope string) *store.KillSwitch {
	return &store.KillSwitch{
		ID:        id,
		Tenant:    vaultcrux.TenantID(tenant),
		Scope:     scope,
		Target:    "target of " + id,
		Reason:    "reason for " + id,
		EngagedBy: "seat-admin",
		EngagedAt: t0.Add(time.Minute),
	}
}

func shAudit(k *store.KillSwitch, action, actor string, at time.Time, reason string) *store.KillSwitchAudit {
	return &store.KillSwitchAudit{
		ID:       store.KillSwitchAuditID(k.ID, action),
		SwitchID: k.ID,
		Action:   action,
		Actor:    actor,
		At:       at,
		Reason:   reason,
	}
}

func shApproval(id string, expires time.Time) *store.ShieldApproval {
	return &store.ShieldApproval{
		ID:           id,
		Server:       "files",
		Tool:         "write_file",
		ArgsHash:     "blake3:args-" + id,
		ManifestHash: "blake3:manifest",
		Binding:      "blake3:binding-" + id,
		Args:         []byte(`{"path":"/tmp/` + id + `"}`),
		Reason:       "risk tier high",
		ProposedBy:   "key-agent",
		AgentID:      "agent-7",
		Status:       "pending",
		CreatedAt:    t0,
		ExpiresAt:    expires,
		DecisionID:   "decision-of-" + id,
	}
}

// shApproved is a as ResolveApproval approves it.
func shApproved(a *store.ShieldApproval, token string, at, tokenExpires time.Time) *store.ShieldApproval {
	c := *a
	c.Status, c.ResolvedAt, c.ResolvedBy, c.Note = "approved", &at, "seat-owner", "looks fine"
	c.TokenHash, c.TokenExpiresAt = []byte(token), &tokenExpires
	return &c
}

func shDecision(id, tool, agent, outcome string, at time.Time) *store.ShieldDecision {
	return &store.ShieldDecision{
		ID:           id,
		Tool:         tool,
		Server:       "files",
		Outcome:      outcome,
		Stage:        "capability",
		DenialType:   map[string]string{"deny": "unmanifested_tool"}[outcome],
		Mode:         "enforce",
		Verdict:      outcome,
		Enforced:     true,
		WouldBlock:   outcome != "allow",
		Tainted:      outcome == "deny",
		ManifestHash: "blake3:manifest",
		ArgsHash:     "blake3:args-" + id,
		ApprovalID:   "",
		AgentID:      agent,
		Actor:        "key-agent",
		ReceiptID:    "receipt-" + id,
		Inputs:       []byte(`[{"chunkId":"d1#0"}]`),
		CreatedAt:    at,
	}
}

func shEvent(id string, at time.Time) *store.OutboxEvent {
	return &store.OutboxEvent{ID: id, Kind: "shield.decision", Payload: []byte(`{"decisionId":"` + id + `"}`), CreatedAt: at}
}

func shRecord(t *testing.T, st store.Store, tenant string, ds ...*store.ShieldDecision) {
	t.Helper()
	for _, d := range ds {
		tenTx(t, st, tenant, func(tx store.TenantTx) error { return tx.RecordDecision(d, shEvent("ev-"+d.ID, d.CreatedAt)) })
	}
}

func shDecisionIDs(ds []*store.ShieldDecision) []string {
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	return ids
}

func shEventIDs(es []*store.OutboxEvent) []string {
	var ids []string
	for _, e := range es {
		ids = append(ids, e.ID)
	}
	return ids
}

func shOutbox(t *testing.T, st store.Store, tenant string, undeliveredOnly bool) []*store.OutboxEvent {
	t.Helper()
	return shIn(t, st, tenant, func(tx store.TenantTx) ([]*store.OutboxEvent, error) { return tx.ListOutbox(undeliveredOnly, 100) })
}

func shVersions(t *testing.T, st store.Store) (map[vaultcrux.TenantID]int64, int64) {
	t.Helper()
	var m map[vaultcrux.TenantID]int64
	var g int64
	sysTx(t, st, func(tx store.SystemTx) (err error) {
		m, g, err = tx.ShieldVersions()
		return err
	})
	return m, g
}

func (s *suite) shieldTests() []test {
	return []test{
		{"Publishers", s.shieldPublishersTest},
		{"Servers", s.shieldServersTest},
		{"ServerUpdates", s.shieldServerUpdatesTest},
		{"Pins", s.shieldPinsTest},
		{"KillSwitches", s.shieldKillSwitchesTest},
		{"KillSwitchConcurrentRelease", s.shieldKillSwitchConcurrentReleaseTest},
		{"GlobalKillSwitches", s.shieldGlobalKillSwitchesTest},
		{"Versions", s.shieldVersionsTest},
		{"Settings", s.shieldSettingsTest},
		{"Approvals", s.shieldApprovalsTest},
		{"ResolveApproval", s.shieldResolveApprovalTest},
		{"ResolveApprovalConcurrent", s.shieldResolveConcurrentTest},
		{"ConsumeApprovalToken", s.shieldConsumeTest},
		{"ConsumeApprovalTokenConcurrent", s.shieldConsumeConcurrentTest},
		{"ExpireApprovals", s.shieldExpireApprovalsTest},
		{"ListApprovals", s.shieldListApprovalsTest},
		{"RecordDecision", s.shieldRecordDecisionTest},
		{"RecordDecisionAtomic", s.shieldRecordDecisionAtomicTest},
		{"RecordDecisionInBatch", s.shieldRecordDecisionBatchTest},
		{"ListDecisions", s.shieldListDecisionsTest},
		{"CountRecentDecisions", s.shieldCountDecisionsTest},
		{"Outbox", s.shieldOutboxTest},
		{"TaintEvents", s.shieldTaintEventsTest},
		{"SessionTaint", s.shieldSessionTaintTest},
		{"PruneSessionTaint", s.shieldPruneSessionTaintTest},
		{"SamplingPolicies", s.shieldSamplingTest},
		{"UISessions", s.shieldUISessionsTest},
		{"IncidentDrills", s.shieldDrillsTest},
		{"MillisecondsUTC", s.shieldTimeTest},
		{"CrossTenant", s.shieldCrossTenantTest},
	}
}

func (s *suite) shieldPublishersTest(t *testing.T) {
	st := s.fresh(t)
	p1, p2 := shPublisher("p1"), shPublisher("p2")
	p2.URL = ""
	for _, p := range []*store.ShieldPublisher{p2, p1} {
		tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.CreatePublisher(p) })
	}
	got := shIn(t, st, acme, func(tx store.TenantTx) (*store.ShieldPublisher, error) { return tx.GetPublisher("p1") })
	if diff := cmp.Diff(p1, got); diff != "" {
		t.Errorf("GetPublisher (-want +got):\n%s", diff)
	}
	dupID := shPublisher("p1")
	dupID.Name = "Another name"
	dupName := shPublisher("p3")
	dupName.Name = p1.Name
	for what, p := range map[string]*store.ShieldPublisher{"duplicate id": dupID, "duplicate name": dupName} {
		err := shErr(t, st, acme, func(tx store.TenantTx) error { return tx.CreatePublisher(p) })
		checkKind(t, "CreatePublisher("+what+")", err, vaultcrux.Conflict)
	}
	// Names and ids are per tenant.
	tenTx(t, st, bravo, func(tx store.TenantTx) error { return tx.CreatePublisher(shPublisher("p1")) })
	err := shErr(t, st, acme, func(tx store.TenantTx) error {
		_, err := tx.GetPublisher("p9")
		return err
	})
	checkKind(t, "GetPublisher(missing)", err, vaultcrux.NotFound)

	for _, id := range []string{"p5", "p4", "p3"} {
		tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.CreatePublisher(shPublisher(id)) })
	}
	all := []*store.ShieldPublisher{p1, p2, shPublisher("p3"), shPublisher("p4"), shPublisher("p5")}
	for _, p := range []struct {
		after string
		limit int
		want  []*store.ShieldPublisher
	}{
		{"", 2, all[:2]},
		{"p2", 2, all[2:4]},
		{"p4", 10, all[4:]},
		{"", 10, all},
		{"p5", 10, nil},
	} {
		got := shIn(t, st, acme, func(tx store.TenantTx) ([]*store.ShieldPublisher, error) { return tx.ListPublishers(p.after, p.limit) })
		if diff := cmp.Diff(p.want, got); diff != "" {
			t.Errorf("ListPublishers(%q, %d) (-want +got):\n%s", p.after, p.limit, diff)
		}
	}
	err = shErr(t, st, acme, func(tx store.TenantTx) error {
		_, err := tx.ListPublishers("", 0)
		return err
	})
	checkKind(t, "ListPublishers(limit 0)", err, vaultcrux.Invalid)
}

func (s *suite) shieldServersTest(t *testing.T) {
	st := s.fresh(t)
	tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.CreatePublisher(shPublisher("pub")) })
	s1 := shServer("s1", "pub")
	s2 := shServer("s2", "")
	s2.URL, s2.Command, s2.Tools, s2.Status = "", "npx some-mcp", nil, "active"
	for _, sv := range []*store.ShieldServer{s2, s1} {
		tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.CreateServer(sv) })
	}
	for _, want := range []*store.ShieldServer{s1, s2} {
		got := shIn(t, st, acme, func(tx store.TenantTx) (*store.ShieldServer, error) { return tx.GetServer(want.ID) })
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetServer(%s) (-want +got):\n%s", want.ID, diff)
		}
	}
	dupID := shServer("s1", "")
	dupID.Name = "other"
	dupName := shServer("s3", "")
	dupName.Name = s1.Name
	badStatus := shServer("s4", "")
	badStatus.Status = "trusted"
	for _, c := range []struct {
		what string
		sv   *store.ShieldServer
		want vaultcrux.Kind
	}{
		{"duplicate id", dupID, vaultcrux.Conflict},
		{"duplicate name", dupName, vaultcrux.Conflict},
		{"unknown publisher", shServer("s5", "nobody"), vaultcrux.NotFound},
		{"unknown status", badStatus, vaultcrux.Invalid},
	} {
		err := shErr(t, st, acme, func(tx store.TenantTx) error { return tx.CreateServer(c.sv) })
		checkKind(t, "CreateServer("+c.what+")", err, c.want)
	}
	// Another tenant's publisher is unknown too.
	err := shErr(t, st, bravo, func(tx store.TenantTx) error { return tx.CreateServer(shServer("s1", "pub")) })
	checkKind(t, "bravo CreateServer(acme's publisher)", err, vaultcrux.NotFound, acme)
	err = shErr(t, st, acme, func(tx store.TenantTx) error {
		_, err := tx.GetServer("s9")
		return err
	})
	checkKind(t, "GetServer(missing)", err, vaultcrux.NotFound)

	tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.CreateServer(shServer("s3", "")) })
	all := []*store.ShieldServer{s1, s2, shServer("s3", "")}
	for _, p := range []struct {
		after string
		limit int
		want  []*store.ShieldServer
	}{
		{"", 2, all[:2]},
		{"s2", 2, all[2:]},
		{"", 5, all},
		{"s3", 5, nil},
	} {
		got := shIn(t, st, acme, func(tx store.TenantTx) ([]*store.ShieldServer, error) { return tx.ListServers(p.after, p.limit) })
		if diff := cmp.Diff(p.want, got); diff != "" {
			t.Errorf("ListServers(%q, %d) (-want +got):\n%s", p.after, p.limit, diff)
		}
	}
	err = shErr(t, st, acme, func(tx store.TenantTx) error {
		_, err := tx.ListServers("", -1)
		return err
	})
	checkKind(t, "ListServers(limit -1)", err, vaultcrux.Invalid)
}

func (s *suite) shieldServerUpdatesTest(t *testing.T) {
	st := s.fresh(t)
	sv := shServer("s1", "")
	tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.CreateServer(sv) })

	// A re-registration changes tools and digest, not the status.
	later := t0.Add(time.Hour)
	want := *sv
	want.Tools, want.Digest, want.UpdatedAt = []byte(`[{"name":"read_file","riskTier":"high"}]`), "blake3:rug-pull", later
	got := shIn(t, st, acme, func(tx store.TenantTx) (*store.ShieldServer, error) {
		return tx.UpdateServerTools("s1", want.Tools, want.Digest, later)
	})
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("UpdateServerTools (-want +got):\n%s", diff)
	}
	for _, status := range []string{"active", "disabled", "active"} {
		later = later.Add(time.Minute)
		want.Status, want.UpdatedAt = status, later
		got = shIn(t, st, acme, func(tx store.TenantTx) (*store.ShieldServer, error) { return tx.SetServerStatus("s1", status, later) })
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("SetServerStatus(%s) (-want +got):\n%s", status, diff)
		}
	}
	got = shIn(t, st, acme, func(tx store.TenantTx) (*store.ShieldServer, error) { return tx.GetServer("s1") })
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("GetServer after the updates (-want +got):\n%s", diff)
	}
	err := shErr(t, st, acme, func(tx store.TenantTx) error {
		_, err := tx.SetServerStatus("s1", "revoked", later)
		return err
	})
	checkKind(t, "SetServerStatus(unknown status)", err, vaultcrux.Invalid)
	err = shErr(t, st, acme, func(tx store.TenantTx) error {
		_, err := tx.SetServerStatus("nope", "active", later)
		return err
	})
	checkKind(t, "SetServerStatus(missing)", err, vaultcrux.NotFound)
	err = shErr(t, st, acme, func(tx store.TenantTx) error {
		_, err := tx.UpdateServerTools("nope", nil, "blake3:x", later)
		return err
	})
	checkKind(t, "UpdateServerTools(missing)", err, vaultcrux.NotFound)
}

func (s *suite) shieldPinsTest(t *testing.T) {
	st := s.fresh(t)
	for _, id := range []string{"s1", "s2"} {
		tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.CreateServer(shServer(id, "")) })
	}
	pin := func(p *store.ShieldPin) error {
		return shErr(t, st, acme, func(tx store.TenantTx) error { return tx.PinDigest(p) })
	}
	pins := func(server string) []*store.ShieldPin {
		t.Helper()
		return shIn(t, st, acme, func(tx store.TenantTx) ([]*store.ShieldPin, error) { return tx.ListPins(server) })
	}
	revoke := func(server, digest string, at time.Time) (*store.ShieldPin, error) {
		var p *store.ShieldPin
		err := shErr(t, st, acme, func(tx store.TenantTx) (err error) {
			p, err = tx.RevokeDigest(server, digest, "seat-owner", "compromised", at)
			return err
		})
		return p, err
	}
	a, b, c := shPin("s1", "blake3:b"), shPin("s1", "blake3:a"), shPin("s2", "blake3:a")
	b.PinnedAt = t0 // pinned before a
	for _, p := range []*store.ShieldPin{a, b, c} {
		if err := pin(p); err != nil {
			t.Fatalf("PinDigest(%s, %s): %v", p.ServerID, p.Digest, err)
		}
	}
	if diff := cmp.Diff([]*store.ShieldPin{b, a}, pins("s1")); diff != "" {
		t.Errorf("ListPins(s1) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]*store.ShieldPin{b, a, c}, pins("")); diff != "" {
		t.Errorf("ListPins(all) (-want +got):\n%s", diff)
	}
	checkKind(t, "PinDigest(pinned again)", pin(shPin("s1", "blake3:b")), vaultcrux.Conflict)
	checkKind(t, "PinDigest(unknown server)", pin(shPin("s9", "blake3:b")), vaultcrux.NotFound)

	revokedAt := t0.Add(time.Hour)
	want := *a
	want.RevokedAt, want.RevokedBy, want.RevokeReason = &revokedAt, "seat-owner", "compromised"
	for i, at := range []time.Time{revokedAt, revokedAt.Add(time.Hour)} {
		got, err := revoke("s1", "blake3:b", at)
		if err != nil {
			t.Fatalf("RevokeDigest #%d: %v", i+1, err)
		}
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("RevokeDigest #%d (-want +got):\n%s", i+1, diff)
		}
	}
	if diff := cmp.Diff([]*store.ShieldPin{b, &want}, pins("s1")); diff != "" {
		t.Errorf("ListPins(s1) after the revocation (-want +got):\n%s", diff)
	}
	// Revocation is final.
	checkKind(t, "PinDigest(revoked digest)", pin(shPin("s1", "blake3:b")), vaultcrux.Conflict)
	_, err := revoke("s1", "blake3:zzz", revokedAt)
	checkKind(t, "RevokeDigest(not pinned)", err, vaultcrux.NotFound)
	_, err = revoke("s9", "blake3:b", revokedAt)
	checkKind(t, "RevokeDigest(unknown server)", err, vaultcrux.NotFound)
}

func (s *suite) shieldKillSwitchesTest(t *testing.T) {
	st := s.fresh(t)
	engage := func(k *store.KillSwitch) error {
		return shErr(t, st, acme, func(tx store.TenantTx) error { return tx.EngageKillSwitch(k) })
	}
	release := func(id string, at time.Time) (*store.KillSwitch, error) {
		var k *store.KillSwitch
		err := shErr(t, st, acme, func(tx store.TenantTx) (err error) {
			k, err = tx.ReleaseKillSwitch(id, "seat-owner", at)
			return err
		})
		return k, err
	}
	list := func(activeOnly bool) []*store.KillSwitch {
		t.Helper()
		return shIn(t, st, acme, func(tx store.TenantTx) ([]*store.KillSwitch, error) { return tx.ListKillSwitches(activeOnly) })
	}
	audit := func(id string) []*store.KillSwitchAudit {
		t.Helper()
		return shIn(t, st, acme, func(tx store.TenantTx) ([]*store.KillSwitchAudit, error) { return tx.ListKillSwitchAudit(id) })
	}

	k1, k2 := shSwitch(acme, "k1", "tool"), shSwitch(acme, "k2", "capability_class")
	k2.EngagedAt = t0.Add(2 * time.Minute)
	for _, k := range []*store.KillSwitch{k2, k1} {
		if err := engage(k); err != nil {
			t.Fatalf("EngageKillSwitch(%s): %v", k.ID, err)
		}
	}
	got := shIn(t, st, acme, func(tx store.TenantTx) (*store.KillSwitch, error) { return tx.GetKillSwitch("k1") })
	if diff := cmp.Diff(k1, got); diff != "" {
		t.Errorf("GetKillSwitch (-want +got):\n%s", diff)
	}
	wantAudit := []*store.KillSwitchAudit{shAudit(k1, "engage", k1.EngagedBy, k1.EngagedAt, k1.Reason)}
	if diff := cmp.Diff(wantAudit, audit("k1")); diff != "" {
		t.Errorf("audit of k1 after engage (-want +got):\n%s", diff)
	}

	releasedAt := t0.Add(time.Hour)
	want := *k1
	want.ReleasedAt, want.ReleasedBy = &releasedAt, "seat-owner"
	for i, at := range []time.Time{releasedAt, releasedAt.Add(time.Hour)} {
		got, err := release("k1", at)
		if err != nil {
			t.Fatalf("ReleaseKillSwitch #%d: %v", i+1, err)
		}
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("ReleaseKillSwitch #%d (-want +got):\n%s", i+1, diff)
		}
	}
	// The second release kept the first and wrote nothing.
	wantAudit = append(wantAudit, shAudit(k1, "release", "seat-owner", releasedAt, ""))
	if diff := cmp.Diff(wantAudit, audit("k1")); diff != "" {
		t.Errorf("audit of k1 after two releases (-want +got):\n%s", diff)
	}
	allAudit := []*store.KillSwitchAudit{wantAudit[0], shAudit(k2, "engage", k2.EngagedBy, k2.EngagedAt, k2.Reason), wantAudit[1]}
	if diff := cmp.Diff(allAudit, audit("")); diff != "" {
		t.Errorf("ListKillSwitchAudit(all) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]*store.KillSwitch{&want, k2}, list(false)); diff != "" {
		t.Errorf("ListKillSwitches(all) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]*store.KillSwitch{k2}, list(true)); diff != "" {
		t.Errorf("ListKillSwitches(active) (-want +got):\n%s", diff)
	}

	_, err := release("nope", releasedAt)
	checkKind(t, "ReleaseKillSwitch(missing)", err, vaultcrux.NotFound)
	global := shSwitch(acme, "k3", "global")
	badScope := shSwitch(acme, "k4", "planet")
	for _, c := range []struct {
		what string
		k    *store.KillSwitch
		want vaultcrux.Kind
	}{
		{"duplicate id", shSwitch(acme, "k2", "agent"), vaultcrux.Conflict},
		{"scope global", global, vaultcrux.Invalid},
		{"unknown scope", badScope, vaultcrux.Invalid},
	} {
		checkKind(t, "EngageKillSwitch("+c.what+")", engage(c.k), c.want)
	}
	// A switch id is unique across tenants.
	err = shErr(t, st, bravo, func(tx store.TenantTx) error { return tx.EngageKillSwitch(shSwitch(bravo, "k2", "tenant")) })
	checkKind(t, "bravo EngageKillSwitch(acme's id)", err, vaultcrux.Conflict, acme)
	if diff := cmp.Diff([]*store.KillSwitch{&want, k2}, list(false)); diff != "" {
		t.Errorf("ListKillSwitches after the refused engages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(allAudit, audit("")); diff != "" {
		t.Errorf("audit after the refused engages (-want +got):\n%s", diff)
	}
}

func (s *suite) shieldKillSwitchConcurrentReleaseTest(t *testing.T) {
	st := s.fresh(t)
	k := shSwitch(acme, "k1", "agent")
	tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.EngageKillSwitch(k) })
	const n = 8
	got := make([]*store.KillSwitch, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = shErr(t, st, acme, func(tx store.TenantTx) (err error) {
				got[i], err = tx.ReleaseKillSwitch("k1", fmt.Sprintf("actor-%d", i), t0.Add(time.Hour+time.Duration(i)*time.Second))
				return err
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("release %d: %v", i, err)
		}
	}
	// Everyone sees the one release that won.
	for i := range n {
		if diff := cmp.Diff(got[0], got[i]); diff != "" {
			t.Errorf("release %d saw another release than release 0 (-0 +%d):\n%s", i, i, diff)
		}
	}
	audit := shIn(t, st, acme, func(tx store.TenantTx) ([]*store.KillSwitchAudit, error) { return tx.ListKillSwitchAudit("k1") })
	want := []*store.KillSwitchAudit{
		shAudit(k, "engage", k.EngagedBy, k.EngagedAt, k.Reason),
		shAudit(k, "release", got[0].ReleasedBy, *got[0].ReleasedAt, ""),
	}
	if diff := cmp.Diff(want, audit); diff != "" {
		t.Errorf("audit after concurrent releases (-want +got):\n%s", diff)
	}
}

func (s *suite) shieldGlobalKillSwitchesTest(t *testing.T) {
	st := s.fresh(t)
	g1, g2 := shSwitch("", "g1", "global"), shSwitch("", "g2", "global")
	g2.EngagedAt = t0.Add(2 * time.Minute)
	for _, g := range []*store.KillSwitch{g1, g2} {
		sysTx(t, st, func(tx store.SystemTx) error { return tx.EngageGlobalKillSwitch(g) })
	}
	ka, kb := shSwitch(acme, "ka", "tool"), shSwitch(bravo, "kb", "server")
	tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.EngageKillSwitch(ka) })
	tenTx(t, st, bravo, func(tx store.TenantTx) error { return tx.EngageKillSwitch(kb) })

	all := shSys(t, st, func(tx store.SystemTx) ([]*store.KillSwitch, error) { return tx.AllActiveKillSwitches() })
	if diff := cmp.Diff([]*store.KillSwitch{g1, g2, ka, kb}, all); diff != "" {
		t.Errorf("AllActiveKillSwitches (-want +got):\n%s", diff)
	}
	// Tenants see none of the global switches.
	for _, c := range []struct {
		tenant string
		own    *store.KillSwitch
	}{{acme, ka}, {bravo, kb}} {
		got := shIn(t, st, c.tenant, func(tx store.TenantTx) ([]*store.KillSwitch, error) { return tx.ListKillSwitches(false) })
		if diff := cmp.Diff([]*store.KillSwitch{c.own}, got); diff != "" {
			t.Errorf("%s ListKillSwitches (-want +got):\n%s", c.tenant, diff)
		}
		audit := shIn(t, st, c.tenant, func(tx store.TenantTx) ([]*store.KillSwitchAudit, error) { return tx.ListKillSwitchAudit("") })
		if len(audit) != 1 || audit[0].SwitchID != c.own.ID {
			t.Errorf("%s ListKillSwitchAudit = %v, want only its own switch's", c.tenant, audit)
		}
		err := shErr(t, st, c.tenant, func(tx store.TenantTx) error {
			_, err := tx.GetKillSwitch("g1")
			return err
		})
		checkKind(t, c.tenant+" GetKillSwitch(global)", err, vaultcrux.NotFound)
		err = shErr(t, st, c.tenant, func(tx store.TenantTx) error {
			_, err := tx.ReleaseKillSwitch("g1", "intruder", t0)
			return err
		})
		checkKind(t, c.tenant+" ReleaseKillSwitch(global)", err, vaultcrux.NotFound)
	}
	// And the system handle cannot release a tenant's switch as global.
	err := st.Tx(t.Context(), func(tx store.SystemTx) error {
		_, err := tx.ReleaseGlobalKillSwitch("ka", "operator", t0)
		return err
	})
	checkKind(t, "ReleaseGlobalKillSwitch(tenant switch)", err, vaultcrux.NotFound)
	err = st.Tx(t.Context(), func(tx store.SystemTx) error { return tx.EngageGlobalKillSwitch(shSwitch("", "g3", "tool")) })
	checkKind(t, "EngageGlobalKillSwitch(scope tool)", err, vaultcrux.Internal)
	err = st.Tx(t.Context(), func(tx store.SystemTx) error { return tx.EngageGlobalKillSwitch(shSwitch("", "g1", "global")) })
	checkKind(t, "EngageGlobalKillSwitch(duplicate)", err, vaultcrux.Conflict)

	releasedAt := t0.Add(time.Hour)
	want := *g1
	want.ReleasedAt, want.ReleasedBy = &releasedAt, "operator"
	for i, at := range []time.Time{releasedAt, releasedAt.Add(time.Hour)} {
		got := shSys(t, st, func(tx store.SystemTx) (*store.KillSwitch, error) {
			return tx.ReleaseGlobalKillSwitch("g1", "operator", at)
		})
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("ReleaseGlobalKillSwitch #%d (-want +got):\n%s", i+1, diff)
		}
	}
	err = st.Tx(t.Context(), func(tx store.SystemTx) error {
		_, err := tx.ReleaseGlobalKillSwitch("nope", "operator", t0)
		return err
	})
	checkKind(t, "ReleaseGlobalKillSwitch(missing)", err, vaultcrux.NotFound)

	audit := shSys(t, st, func(tx store.SystemTx) ([]*store.KillSwitchAudit, error) { return tx.ListGlobalKillSwitchAudit("") })
	wantAudit := []*store.KillSwitchAudit{
		shAudit(g1, "engage", g1.EngagedBy, g1.EngagedAt, g1.Reason),
		shAudit(g2, "engage", g2.EngagedBy, g2.EngagedAt, g2.Reason),
		shAudit(g1, "release", "operator", releasedAt, ""),
	}
	if diff := cmp.Diff(wantAudit, audit); diff != "" {
		t.Errorf("ListGlobalKillSwitchAudit (-want +got):\n%s", diff)
	}
	audit = shSys(t, st, func(tx store.SystemTx) ([]*store.KillSwitchAudit, error) { return tx.ListGlobalKillSwitchAudit("g2") })
	if diff := cmp.Diff(wantAudit[1:2], audit); diff != "" {
		t.Errorf("ListGlobalKillSwitchAudit(g2) (-want +got):\n%s", diff)
	}
	globals := shSys(t, st, func(tx store.SystemTx) ([]*store.KillSwitch, error) { return tx.ListGlobalKillSwitches(false) })
	if diff := cmp.Diff([]*store.KillSwitch{&want, g2}, globals); diff != "" {
		t.Errorf("ListGlobalKillSwitches(all) (-want +got):\n%s", diff)
	}
	globals = shSys(t, st, func(tx store.SystemTx) ([]*store.KillSwitch, error) { return tx.ListGlobalKillSwitches(true) })
	if diff := cmp.Diff([]*store.KillSwitch{g2}, globals); diff != "" {
		t.Errorf("ListGlobalKillSwitches(active) (-want +got):\n%s", diff)
	}
	tenTx(t, st, bravo, func(tx store.TenantTx) error {
		_, err := tx.ReleaseKillSwitch("kb", "seat-owner", releasedAt)
		return err
	})
	all = shSys(t, st, func(tx store.SystemTx) ([]*store.KillSwitch, error) { return tx.AllActiveKillSwitches() })
	if diff := cmp.Diff([]*store.KillSwitch{g2, ka}, all); diff != "" {
		t.Errorf("AllActiveKillSwitches after the releases (-want +got):\n%s", diff)
	}
}

// shieldVersionsTest walks through every kind of change: each that
// processes cache bumps the tenant's version (or the global one) by one;
// no-ops, refused changes and the rest bump nothing.
func (s *suite) shieldVersionsTest(t *testing.T) {
	st := s.fresh(t)
	tenants, global := shVersions(t, st)
	if len(tenants) != 0 || global != 0 {
		t.Fatalf("ShieldVersions on a fresh store = %v, %d; want none, 0", tenants, global)
	}
	wantAcme, wantGlobal := int64(0), int64(0)
	check := func(step string) {
		t.Helper()
		tenants, global := shVersions(t, st)
		if tenants[acme] != wantAcme || global != wantGlobal || tenants[bravo] != 0 {
			t.Errorf("after %s: acme %d, bravo %d, global %d; want %d, 0, %d",
				step, tenants[acme], tenants[bravo], global, wantAcme, wantGlobal)
		}
		own := shIn(t, st, acme, func(tx store.TenantTx) (int64, error) { return tx.ShieldVersion() })
		if own != wantAcme {
			t.Errorf("after %s: acme ShieldVersion = %d, want %d", step, own, wantAcme)
		}
	}
	at := t0.Add(time.Hour)
	steps := []struct {
		name string
		bump bool
		fn   func(tx store.TenantTx) error
	}{
		{"CreatePublisher", false, func(tx store.TenantTx) error { return tx.CreatePublisher(shPublisher("p1")) }},
		{"CreateServer", true, func(tx store.TenantTx) error { return tx.CreateServer(shServer("s1", "p1")) }},
		{"UpdateServerTools", true, func(tx store.TenantTx) error {
			_, err := tx.UpdateServerTools("s1", []byte(`[]`), "blake3:new", at)
			return err
		}},
		{"SetServerStatus", true, func(tx store.TenantTx) error {
			_, err := tx.SetServerStatus("s1", "active", at)
			return err
		}},
		{"PinDigest", true, func(tx store.TenantTx) error { return tx.PinDigest(shPin("s1", "blake3:new")) }},
		{"RevokeDigest", true, func(tx store.TenantTx) error {
			_, err := tx.RevokeDigest("s1", "blake3:new", "seat-owner", "why", at)
			return err
		}},
		{"RevokeDigest again", false, func(tx store.TenantTx) error {
			_, err := tx.RevokeDigest("s1", "blake3:new", "seat-owner", "why", at)
			return err
		}},
		{"EngageKillSwitch", true, func(tx store.TenantTx) error { return tx.EngageKillSwitch(shSwitch(acme, "k1", "tenant")) }},
		{"ReleaseKillSwitch", true, func(tx store.TenantTx) error {
			_, err := tx.ReleaseKillSwitch("k1", "seat-owner", at)
			return err
		}},
		{"ReleaseKillSwitch again", false, func(tx store.TenantTx) error {
			_, err := tx.ReleaseKillSwitch("k1", "seat-owner", at)
			return err
		}},
		{"SetShieldSetting", true, func(tx store.TenantTx) error {
			return tx.SetShieldSetting(&store.ShieldSetting{Name: "SHIELD_MODE", Value: "enforce", UpdatedAt: at})
		}},
		{"SetShieldSetting replace", true, func(tx store.TenantTx) error {
			return tx.SetShieldSetting(&store.ShieldSetting{Name: "SHIELD_MODE", Value: "observe", UpdatedAt: at})
		}},
		{"DeleteShieldSetting", true, func(tx store.TenantTx) error { return tx.DeleteShieldSetting("SHIELD_MODE") }},
		{"CreateSamplingPolicy", true, func(tx store.TenantTx) error {
			return tx.CreateSamplingPolicy(&store.SamplingPolicy{ID: "sp1", Scope: "tool", Target: "t", MaxCalls: 5, WindowMs: 60000, Per: "agent", CreatedAt: t0})
		}},
		{"DeleteSamplingPolicy", true, func(tx store.TenantTx) error {
			_, err := tx.DeleteSamplingPolicy("sp1", at)
			return err
		}},
		{"DeleteSamplingPolicy again", false, func(tx store.TenantTx) error {
			_, err := tx.DeleteSamplingPolicy("sp1", at)
			return err
		}},
		{"RecordDecision", false, func(tx store.TenantTx) error {
			return tx.RecordDecision(shDecision("d1", "t", "a", "allow", t0), shEvent("e1", t0))
		}},
		{"CreateApproval", false, func(tx store.TenantTx) error { return tx.CreateApproval(shApproval("a1", at)) }},
		{"CreateUISession", false, func(tx store.TenantTx) error {
			return tx.CreateUISession(&store.UISession{ID: "u1", CreatedAt: t0, ExpiresAt: at})
		}},
		{"CreateIncidentDrill", false, func(tx store.TenantTx) error {
			return tx.CreateIncidentDrill(&store.IncidentDrill{ID: "dr1", Scenario: "kill", StartedAt: t0})
		}},
	}
	for _, step := range steps {
		tenTx(t, st, acme, step.fn)
		if step.bump {
			wantAcme++
		}
		check(step.name)
	}
	// A refused change is rolled back with its bump.
	err := shErr(t, st, acme, func(tx store.TenantTx) error { return tx.CreateServer(shServer("s1", "")) })
	checkKind(t, "CreateServer(duplicate)", err, vaultcrux.Conflict)
	err = shErr(t, st, acme, func(tx store.TenantTx) error { return tx.DeleteShieldSetting("SHIELD_MODE") })
	checkKind(t, "DeleteShieldSetting(missing)", err, vaultcrux.NotFound)
	check("refused changes")

	sysTx(t, st, func(tx store.SystemTx) error { return tx.EngageGlobalKillSwitch(shSwitch("", "g1", "global")) })
	wantGlobal++
	check("EngageGlobalKillSwitch")
	sysTx(t, st, func(tx store.SystemTx) error {
		_, err := tx.ReleaseGlobalKillSwitch("g1", "operator", at)
		return err
	})
	wantGlobal++
	check("ReleaseGlobalKillSwitch")
	sysTx(t, st, func(tx store.SystemTx) error {
		_, err := tx.ReleaseGlobalKillSwitch("g1", "operator", at)
		return err
	})
	check("ReleaseGlobalKillSwitch again")

	// Several changes in one transaction bump once each.
	tenTx(t, st, acme, func(tx store.TenantTx) error {
		if err := tx.EngageKillSwitch(shSwitch(acme, "k2", "agent")); err != nil {
			return err
		}
		_, err := tx.SetServerStatus("s1", "disabled", at)
		return err
	})
	wantAcme += 2
	check("two changes in one transaction")
}

func (s *suite) shieldSettingsTest(t *testing.T) {
	st := s.fresh(t)
	set := func(tenant string, st2 *store.ShieldSetting) error {
		return shErr(t, st, tenant, func(tx store.TenantTx) error { return tx.SetShieldSetting(st2) })
	}
	list := func(tenant string) []*store.ShieldSetting {
		t.Helper()
		return shIn(t, st, tenant, func(tx store.TenantTx) ([]*store.ShieldSetting, error) { return tx.ListShieldSettings() })
	}
	mode := &store.ShieldSetting{Name: "SHIELD_MODE", Value: "observe", UpdatedBy: "seat-a", UpdatedAt: t0}
	flag := &store.ShieldSetting{Name: "FEATURE_KILL_SWITCHES", Value: "true", UpdatedBy: "seat-a", UpdatedAt: t0}
	for _, x := range []*store.ShieldSetting{mode, flag} {
		if err := set(acme, x); err != nil {
			t.Fatalf("SetShieldSetting(%s): %v", x.Name, err)
		}
	}
	if diff := cmp.Diff([]*store.ShieldSetting{flag, mode}, list(acme)); diff != "" {
		t.Errorf("ListShieldSettings (-want +got):\n%s", diff)
	}
	mode2 := &store.ShieldSetting{Name: "SHIELD_MODE", Value: "enforce", UpdatedBy: "seat-b", UpdatedAt: t0.Add(time.Hour)}
	if err := set(acme, mode2); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*store.ShieldSetting{flag, mode2}, list(acme)); diff != "" {
		t.Errorf("ListShieldSettings after the replace (-want +got):\n%s", diff)
	}
	for _, name := range []string{"", "SHIELD", "FEATURE_", "PATH", "shield_mode"} {
		checkKind(t, fmt.Sprintf("SetShieldSetting(%q)", name),
			set(acme, &store.ShieldSetting{Name: name, Value: "x", UpdatedAt: t0}), vaultcrux.Invalid)
	}
	tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.DeleteShieldSetting("FEATURE_KILL_SWITCHES") })
	if diff := cmp.Diff([]*store.ShieldSetting{mode2}, list(acme)); diff != "" {
		t.Errorf("ListShieldSettings after the delete (-want +got):\n%s", diff)
	}
	err := shErr(t, st, acme, func(tx store.TenantTx) error { return tx.DeleteShieldSetting("FEATURE_KILL_SWITCHES") })
	checkKind(t, "DeleteShieldSetting(deleted)", err, vaultcrux.NotFound)
}

func (s *suite) shieldApprovalsTest(t *testing.T) {
	st := s.fresh(t)
	a := shApproval("a1", t0.Add(time.Hour))
	bare := shApproval("a2", t0.Add(time.Hour))
	bare.Args, bare.Server, bare.DecisionID = nil, "", ""
	for _, x := range []*store.ShieldApproval{a, bare} {
		tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.CreateApproval(x) })
	}
	for _, want := range []*store.ShieldApproval{a, bare} {
		got := shIn(t, st, acme, func(tx store.TenantTx) (*store.ShieldApproval, error) { return tx.GetApproval(want.ID) })
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetApproval(%s) (-want +got):\n%s", want.ID, diff)
		}
	}
	err := shErr(t, st, acme, func(tx store.TenantTx) error { return tx.CreateApproval(shApproval("a1", t0)) })
	checkKind(t, "CreateApproval(duplicate)", err, vaultcrux.Conflict)
	approved := shApproval("a3", t0.Add(time.Hour))
	approved.Status = "approved"
	err = shErr(t, st, acme, func(tx store.TenantTx) error { return tx.CreateApproval(approved) })
	checkKind(t, "CreateApproval(approved)", err, vaultcrux.Internal)
	err = shErr(t, st, acme, func(tx store.TenantTx) error {
		_, err := tx.GetApproval("a9")
		return err
	})
	checkKind(t, "GetApproval(missing)", err, vaultcrux.NotFound)
	err = shErr(t, st, acme, func(tx store.TenantTx) error {
		_, err := tx.FindApprovalByToken([]byte("tok"))
		return err
	})
	checkKind(t, "FindApprovalByToken(before any approval)", err, vaultcrux.NotFound)
}

func (s *suite) shieldResolveApprovalTest(t *testing.T) {
	st := s.fresh(t)
	expires := t0.Add(time.Hour)
	for _, id := range []string{"a1", "a2", "a3"} {
		tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.CreateApproval(shApproval(id, expires)) })
	}
	resolve := func(id, status string, token []byte, tokenExpires *time.Time, at time.Time) (*store.ShieldApproval, error) {
		var a *store.ShieldApproval
		err := shErr(t, st, acme, func(tx store.TenantTx) (err error) {
			a, err = tx.ResolveApproval(id, status, "seat-owner", "looks fine", token, tokenExpires, at)
			return err
		})
		return a, err
	}
	at, tokenExpires := t0.Add(time.Minute), t0.Add(16*time.Minute)
	got, err := resolve("a1", "approved", []byte("tok1"), &tokenExpires, at)
	if err != nil {
		t.Fatal(err)
	}
	want := shApproved(shApproval("a1", expires), "tok1", at, tokenExpires)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ResolveApproval(approve) (-want +got):\n%s", diff)
	}
	found := shIn(t, st, acme, func(tx store.TenantTx) (*store.ShieldApproval, error) { return tx.FindApprovalByToken([]byte("tok1")) })
	if diff := cmp.Diff(want, found); diff != "" {
		t.Errorf("FindApprovalByToken (-want +got):\n%s", diff)
	}

	got, err = resolve("a2", "denied", nil, nil, at)
	if err != nil {
		t.Fatal(err)
	}
	wantDenied := shApproval("a2", expires)
	wantDenied.Status, wantDenied.ResolvedAt, wantDenied.ResolvedBy, wantDenied.Note = "denied", &at, "seat-owner", "looks fine"
	if diff := cmp.Diff(wantDenied, got); diff != "" {
		t.Errorf("ResolveApproval(deny) (-want +got):\n%s", diff)
	}

	// Only a pending request that has not timed out can be resolved.
	for _, c := range []struct {
		what   string
		id     string
		status string
		token  []byte
		at     time.Time
		want   vaultcrux.Kind
	}{
		{"approved again", "a1", "approved", []byte("tok2"), at, vaultcrux.Conflict},
		{"deny the approved", "a1", "denied", nil, at, vaultcrux.Conflict},
		{"approve the denied", "a2", "approved", []byte("tok3"), at, vaultcrux.Conflict},
		{"at its expiry", "a3", "approved", []byte("tok4"), expires, vaultcrux.Conflict},
		{"past its expiry", "a3", "denied", nil, expires.Add(time.Second), vaultcrux.Conflict},
		{"missing", "a9", "denied", nil, at, vaultcrux.NotFound},
		{"token taken", "a3", "approved", []byte("tok1"), at, vaultcrux.Conflict},
	} {
		var te *time.Time
		if c.token != nil {
			te = &tokenExpires
		}
		_, err := resolve(c.id, c.status, c.token, te, c.at)
		checkKind(t, "ResolveApproval("+c.what+")", err, c.want)
	}
	// A resolution that does not fit its token is the caller's bug.
	_, err = resolve("a3", "approved", nil, nil, at)
	checkKind(t, "ResolveApproval(approve without token)", err, vaultcrux.Internal)
	_, err = resolve("a3", "executed", nil, nil, at)
	checkKind(t, "ResolveApproval(executed)", err, vaultcrux.Internal)

	for _, w := range []*store.ShieldApproval{want, wantDenied, shApproval("a3", expires)} {
		got := shIn(t, st, acme, func(tx store.TenantTx) (*store.ShieldApproval, error) { return tx.GetApproval(w.ID) })
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("GetApproval(%s) after the refused resolutions (-want +got):\n%s", w.ID, diff)
		}
	}
}

func (s *suite) shieldResolveConcurrentTest(t *testing.T) {
	st := s.fresh(t)
	tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.CreateApproval(shApproval("a1", t0.Add(time.Hour))) })
	const n = 8
	errs := make([]error, n)
	tokenExpires := t0.Add(time.Hour)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = shErr(t, st, acme, func(tx store.TenantTx) error {
				status, token, te := "approved", fmt.Appendf(nil, "tok%d", i), &tokenExpires
				if i%2 == 1 {
					status, token, te = "denied", nil, nil
				}
				_, err := tx.ResolveApproval("a1", status, fmt.Sprintf("seat-%d", i), "", token, te, t0.Add(time.Minute))
				return err
			})
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("resolutions %d and %d both won", winner, i)
		case err == nil:
			winner = i
		default:
			checkKind(t, fmt.Sprintf("losing resolution %d", i), err, vaultcrux.Conflict)
		}
	}
	if winner < 0 {
		t.Fatal("no resolution won")
	}
	got := shIn(t, st, acme, func(tx store.TenantTx) (*store.ShieldApproval, error) { return tx.GetApproval("a1") })
	if got.ResolvedBy != fmt.Sprintf("seat-%d", winner) {
		t.Errorf("approval resolved by %q, want the winner seat-%d", got.ResolvedBy, winner)
	}
}

func (s *suite) shieldConsumeTest(t *testing.T) {
	st := s.fresh(t)
	expires := t0.Add(time.Hour)
	at, tokenExpires := t0.Add(time.Minute), t0.Add(16*time.Minute)
	tenTx(t, st, acme, func(tx store.TenantTx) error {
		for _, id := range []string{"a1", "a2", "a3"} {
			if err := tx.CreateApproval(shApproval(id, expires)); err != nil {
				return err
			}
		}
		for _, id := range []string{"a1", "a2"} {
			if _, err := tx.ResolveApproval(id, "approved", "seat-owner", "looks fine", []byte("tok-"+id), &tokenExpires, at); err != nil {
				return err
			}
		}
		_, err := tx.ResolveApproval("a3", "denied", "seat-owner", "no", nil, nil, at)
		return err
	})
	consume := func(token string, at time.Time) (*store.ShieldApproval, error) {
		var a *store.ShieldApproval
		err := shErr(t, st, acme, func(tx store.TenantTx) (err error) {
			a, err = tx.ConsumeApprovalToken([]byte(token), at)
			return err
		})
		return a, err
	}
	execAt := t0.Add(2 * time.Minute)
	got, err := consume("tok-a1", execAt)
	if err != nil {
		t.Fatal(err)
	}
	want := shApproved(shApproval("a1", expires), "tok-a1", at, tokenExpires)
	want.Status, want.ExecutedAt = "executed", &execAt
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ConsumeApprovalToken (-want +got):\n%s", diff)
	}
	_, err = consume("tok-a1", execAt)
	checkKind(t, "ConsumeApprovalToken(used)", err, vaultcrux.NotFound)
	// The used token is still recognised, so that the caller can say so.
	found := shIn(t, st, acme, func(tx store.TenantTx) (*store.ShieldApproval, error) {
		return tx.FindApprovalByToken([]byte("tok-a1"))
	})
	if diff := cmp.Diff(want, found); diff != "" {
		t.Errorf("FindApprovalByToken(used) (-want +got):\n%s", diff)
	}

	_, err = consume("tok-a2", tokenExpires)
	checkKind(t, "ConsumeApprovalToken(at its expiry)", err, vaultcrux.Invalid)
	if msg := vaultcrux.ErrorMessage(err); msg != "approval token expired" {
		t.Errorf("ConsumeApprovalToken(expired) message = %q, want %q", msg, "approval token expired")
	}
	_, err = consume("tok-a2", tokenExpires.Add(time.Hour))
	checkKind(t, "ConsumeApprovalToken(past its expiry)", err, vaultcrux.Invalid)
	wantA2 := shApproved(shApproval("a2", expires), "tok-a2", at, tokenExpires)
	gotA2 := shIn(t, st, acme, func(tx store.TenantTx) (*store.ShieldApproval, error) { return tx.GetApproval("a2") })
	if diff := cmp.Diff(wantA2, gotA2); diff != "" {
		t.Errorf("a2 after consuming its expired token (-want +got):\n%s", diff)
	}
	for _, token := range []string{"", "tok-nope", "tok-a3"} {
		_, err = consume(token, execAt)
		checkKind(t, fmt.Sprintf("ConsumeApprovalToken(%q)", token), err, vaultcrux.NotFound)
	}
	// Another tenant's token is unknown.
	err = shErr(t, st, bravo, func(tx store.TenantTx) error {
		_, err := tx.ConsumeApprovalToken([]byte("tok-a2"), execAt)
		return err
	})
	checkKind(t, "bravo ConsumeApprovalToken(acme's token)", err, vaultcrux.NotFound, acme)
}

func (s *suite) shieldConsumeConcurrentTest(t *testing.T) {
	st := s.fresh(t)
	tokenExpires := t0.Add(time.Hour)
	tenTx(t, st, acme, func(tx store.TenantTx) error {
		if err := tx.CreateApproval(shApproval("a1", t0.Add(time.Hour))); err != nil {
			return err
		}
		_, err := tx.ResolveApproval("a1", "approved", "seat-owner", "", []byte("tok"), &tokenExpires, t0)
		return err
	})
	const n = 8
	errs := make([]error, n)
	got := make([]*store.ShieldApproval, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = shErr(t, st, acme, func(tx store.TenantTx) (err error) {
				got[i], err = tx.ConsumeApprovalToken([]byte("tok"), t0.Add(time.Duration(i+1)*time.Second))
				return err
			})
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("consumers %d and %d both won", winner, i)
		case err == nil:
			winner = i
		default:
			checkKind(t, fmt.Sprintf("losing consumer %d", i), err, vaultcrux.NotFound)
		}
	}
	if winner < 0 {
		t.Fatal("no consumer won")
	}
	a := shIn(t, st, acme, func(tx store.TenantTx) (*store.ShieldApproval, error) { return tx.GetApproval("a1") })
	if a.Status != "executed" || a.ExecutedAt == nil || !a.ExecutedAt.Equal(*got[winner].ExecutedAt) {
		t.Errorf("approval after the race: status %q, executed at %v; want executed at the winner's %v",
			a.Status, a.ExecutedAt, got[winner].ExecutedAt)
	}
}

func (s *suite) shieldExpireApprovalsTest(t *testing.T) {
	st := s.fresh(t)
	tokenExpires := t0.Add(time.Hour)
	early, late := t0.Add(time.Minute), t0.Add(2*time.Hour)
	tenTx(t, st, acme, func(tx store.TenantTx) error {
		for _, a := range []*store.ShieldApproval{shApproval("a2", early), shApproval("a1", early), shApproval("a3", late), shApproval("a4", early)} {
			if err := tx.CreateApproval(a); err != nil {
				return err
			}
		}
		_, err := tx.ResolveApproval("a4", "approved", "seat-owner", "", []byte("tok"), &tokenExpires, t0)
		return err
	})
	tenTx(t, st, bravo, func(tx store.TenantTx) error { return tx.CreateApproval(shApproval("b1", late)) })
	expiredTenants := func(now time.Time) []vaultcrux.TenantID {
		t.Helper()
		return shSys(t, st, func(tx store.SystemTx) ([]vaultcrux.TenantID, error) { return tx.TenantsWithExpiredApprovals(now) })
	}
	if got := expiredTenants(t0); len(got) != 0 {
		t.Errorf("TenantsWithExpiredApprovals(t0) = %v, want none", got)
	}
	if diff := cmp.Diff([]vaultcrux.TenantID{acme}, expiredTenants(early)); diff != "" {
		t.Errorf("TenantsWithExpiredApprovals(early) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]vaultcrux.TenantID{acme, bravo}, expiredTenants(late)); diff != "" {
		t.Errorf("TenantsWithExpiredApprovals(late) (-want +got):\n%s", diff)
	}

	now := t0.Add(time.Hour)
	got := shIn(t, st, acme, func(tx store.TenantTx) ([]*store.ShieldApproval, error) { return tx.ExpireApprovals(now) })
	var want []*store.ShieldApproval
	for _, id := range []string{"a1", "a2"} {
		a := shApproval(id, early)
		a.Status, a.ResolvedAt = "expired", &now
		want = append(want, a)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ExpireApprovals (-want +got):\n%s", diff)
	}
	if got := shIn(t, st, acme, func(tx store.TenantTx) ([]*store.ShieldApproval, error) { return tx.ExpireApprovals(now) }); len(got) != 0 {
		t.Errorf("second ExpireApprovals = %d approvals, want none", len(got))
	}
	// An expired request cannot be resolved any more.
	err := shErr(t, st, acme, func(tx store.TenantTx) error {
		_, err := tx.ResolveApproval("a1", "denied", "seat-owner", "", nil, nil, t0)
		return err
	})
	checkKind(t, "ResolveApproval(expired)", err, vaultcrux.Conflict)
	if got := expiredTenants(now); len(got) != 0 {
		t.Errorf("TenantsWithExpiredApprovals after the sweep = %v, want none", got)
	}
	a3 := shIn(t, st, acme, func(tx store.TenantTx) (*store.ShieldApproval, error) { return tx.GetApproval("a3") })
	if a3.Status != "pending" {
		t.Errorf("a3 (expires later) has status %q, want pending", a3.Status)
	}
	b1 := shIn(t, st, bravo, func(tx store.TenantTx) (*store.ShieldApproval, error) { return tx.GetApproval("b1") })
	if b1.Status != "pending" {
		t.Errorf("bravo's b1 has status %q after acme's sweep, want pending", b1.Status)
	}
}

func (s *suite) shieldListApprovalsTest(t *testing.T) {
	st := s.fresh(t)
	tokenExpires := t0.Add(time.Hour)
	tenTx(t, st, acme, func(tx store.TenantTx) error {
		for _, id := range []string{"a5", "a1", "a4", "a2", "a3"} {
			if err := tx.CreateApproval(shApproval(id, t0.Add(time.Hour))); err != nil {
				return err
			}
		}
		for _, id := range []string{"a2", "a4"} {
			if _, err := tx.ResolveApproval(id, "approved", "seat-owner", "looks fine", []byte("tok-"+id), &tokenExpires, t0); err != nil {
				return err
			}
		}
		return nil
	})
	tenTx(t, st, bravo, func(tx store.TenantTx) error { return tx.CreateApproval(shApproval("a0", t0.Add(time.Hour))) })
	ids := func(status, after string, limit int) []string {
		t.Helper()
		var out []string
		for _, a := range shIn(t, st, acme, func(tx store.TenantTx) ([]*store.ShieldApproval, error) {
			return tx.ListApprovals(status, after, limit)
		}) {
			out = append(out, a.ID)
		}
		return out
	}
	for _, c := range []struct {
		status, after string
		limit         int
		want          []string
	}{
		{"", "", 10, []string{"a1", "a2", "a3", "a4", "a5"}},
		{"", "", 2, []string{"a1", "a2"}},
		{"", "a2", 2, []string{"a3", "a4"}},
		{"pending", "", 10, []string{"a1", "a3", "a5"}},
		{"pending", "a1", 1, []string{"a3"}},
		{"approved", "", 10, []string{"a2", "a4"}},
		{"denied", "", 10, nil},
	} {
		if diff := cmp.Diff(c.want, ids(c.status, c.after, c.limit)); diff != "" {
			t.Errorf("ListApprovals(%q, %q, %d) (-want +got):\n%s", c.status, c.after, c.limit, diff)
		}
	}
	err := shErr(t, st, acme, func(tx store.TenantTx) error {
		_, err := tx.ListApprovals("", "", 0)
		return err
	})
	checkKind(t, "ListApprovals(limit 0)", err, vaultcrux.Invalid)
}

func (s *suite) shieldRecordDecisionTest(t *testing.T) {
	st := s.fresh(t)
	d := shDecision("d1", "write_file", "agent-7", "deny", t0)
	bare := &store.ShieldDecision{ID: "d2", Outcome: "allow", CreatedAt: t0}
	e1, e2 := shEvent("e1", t0), &store.OutboxEvent{ID: "e2", Kind: "shield.decision", CreatedAt: t0}
	tenTx(t, st, acme, func(tx store.TenantTx) error {
		if err := tx.RecordDecision(d, e1); err != nil {
			return err
		}
		return tx.RecordDecision(bare, e2)
	})
	for _, want := range []*store.ShieldDecision{d, bare} {
		got := shIn(t, st, acme, func(tx store.TenantTx) (*store.ShieldDecision, error) { return tx.GetDecision(want.ID) })
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetDecision(%s) (-want +got):\n%s", want.ID, diff)
		}
	}
	if diff := cmp.Diff([]*store.OutboxEvent{e1, e2}, shOutbox(t, st, acme, false)); diff != "" {
		t.Errorf("ListOutbox (-want +got):\n%s", diff)
	}
	err := shErr(t, st, acme, func(tx store.TenantTx) error {
		_, err := tx.GetDecision("d9")
		return err
	})
	checkKind(t, "GetDecision(missing)", err, vaultcrux.NotFound)
	for _, c := range []struct {
		what string
		d    *store.ShieldDecision
		e    *store.OutboxEvent
		want vaultcrux.Kind
	}{
		{"duplicate decision id", shDecision("d1", "t", "a", "allow", t0), shEvent("e3", t0), vaultcrux.Conflict},
		{"duplicate event id", shDecision("d3", "t", "a", "allow", t0), shEvent("e1", t0), vaultcrux.Conflict},
		{"no event", shDecision("d4", "t", "a", "allow", t0), nil, vaultcrux.Internal},
		{"unknown outcome", shDecision("d5", "t", "a", "maybe", t0), shEvent("e5", t0), vaultcrux.Internal},
	} {
		err := shErr(t, st, acme, func(tx store.TenantTx) error { return tx.RecordDecision(c.d, c.e) })
		checkKind(t, "RecordDecision("+c.what+")", err, c.want)
	}
	got := shIn(t, st, acme, func(tx store.TenantTx) ([]*store.ShieldDecision, error) {
		return tx.ListDecisions(store.DecisionFilter{}, "", 100)
	})
	if diff := cmp.Diff([]string{"d2", "d1"}, shDecisionIDs(got)); diff != "" {
		t.Errorf("decisions after the refused records (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"e1", "e2"}, shEventIDs(shOutbox(t, st, acme, false))); diff != "" {
		t.Errorf("outbox after the refused records (-want +got):\n%s", diff)
	}
	// The same ids are free in another tenant.
	tenTx(t, st, bravo, func(tx store.TenantTx) error { return tx.RecordDecision(d, e1) })
}

// shieldRecordDecisionAtomicTest carries on with the transaction after a
// refused RecordDecision and commits: whatever the backend does with
// such a transaction (SQLite keeps it, PostgreSQL has aborted it), no
// half of the refused record may be committed.
func (s *suite) shieldRecordDecisionAtomicTest(t *testing.T) {
	st := s.fresh(t)
	shRecord(t, st, acme, shDecision("d1", "t", "a", "allow", t0))
	for _, c := range []struct {
		what string
		d    *store.ShieldDecision
		e    *store.OutboxEvent
	}{
		// The outbox insert fails: the decision must not stay.
		{"duplicate event id", shDecision("d2", "t", "a", "allow", t0), shEvent("ev-d1", t0)},
		// The decision insert fails: its event must not stay.
		{"duplicate decision id", shDecision("d1", "t", "a", "allow", t0), shEvent("ev-new", t0)},
	} {
		_ = st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
			checkKind(t, "RecordDecision("+c.what+")", tx.RecordDecision(c.d, c.e), vaultcrux.Conflict)
			return nil // commit what is left, if the backend lets us
		})
	}
	got := shIn(t, st, acme, func(tx store.TenantTx) ([]*store.ShieldDecision, error) {
		return tx.ListDecisions(store.DecisionFilter{}, "", 100)
	})
	if diff := cmp.Diff([]string{"d1"}, shDecisionIDs(got)); diff != "" {
		t.Errorf("decisions after the refused records (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ev-d1"}, shEventIDs(shOutbox(t, st, acme, false))); diff != "" {
		t.Errorf("outbox after the refused records (-want +got):\n%s", diff)
	}
}

// shieldRecordDecisionBatchTest records decisions as the ledger's group
// commit does: each in a savepoint of one batch.
func (s *suite) shieldRecordDecisionBatchTest(t *testing.T) {
	st := s.fresh(t)
	shRecord(t, st, acme, shDecision("d0", "t", "a", "allow", t0))
	err := st.Batch(t.Context(), func(b store.BatchTx) error {
		items := []struct {
			tenant string
			d      *store.ShieldDecision
			e      *store.OutboxEvent
			want   vaultcrux.Kind
		}{
			{acme, shDecision("d1", "t", "a", "allow", t0), shEvent("ev-d1", t0), 0},
			{bravo, shDecision("d1", "t", "a", "deny", t0), shEvent("ev-d1", t0), 0},
			{acme, shDecision("d2", "t", "a", "allow", t0), shEvent("ev-d0", t0), vaultcrux.Conflict},
			{acme, shDecision("d0", "t", "a", "allow", t0), shEvent("ev-d3", t0), vaultcrux.Conflict},
			{acme, shDecision("d4", "t", "a", "approval_required", t0), shEvent("ev-d4", t0), 0},
		}
		for i, it := range items {
			err := b.Savepoint(func() error {
				return b.Tenant(vaultcrux.TenantID(it.tenant)).RecordDecision(it.d, it.e)
			})
			if it.want == 0 && err != nil {
				t.Errorf("item %d: %v", i, err)
			} else if it.want != 0 {
				checkKind(t, fmt.Sprintf("item %d", i), err, it.want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Batch: %v", err)
	}
	for _, c := range []struct {
		tenant    string
		decisions []string
		events    []string
	}{
		{acme, []string{"d4", "d1", "d0"}, []string{"ev-d0", "ev-d1", "ev-d4"}},
		{bravo, []string{"d1"}, []string{"ev-d1"}},
	} {
		got := shIn(t, st, c.tenant, func(tx store.TenantTx) ([]*store.ShieldDecision, error) {
			return tx.ListDecisions(store.DecisionFilter{}, "", 100)
		})
		if diff := cmp.Diff(c.decisions, shDecisionIDs(got)); diff != "" {
			t.Errorf("%s's decisions after the batch (-want +got):\n%s", c.tenant, diff)
		}
		if diff := cmp.Diff(c.events, shEventIDs(shOutbox(t, st, c.tenant, false))); diff != "" {
			t.Errorf("%s's outbox after the batch (-want +got):\n%s", c.tenant, diff)
		}
	}
}

func (s *suite) shieldListDecisionsTest(t *testing.T) {
	st := s.fresh(t)
	ds := []*store.ShieldDecision{
		shDecision("d1", "read_file", "a1", "allow", t0),
		shDecision("d2", "write_file", "a1", "deny", t0.Add(time.Minute)),
		shDecision("d3", "read_file", "a2", "allow", t0.Add(2*time.Minute)),
		shDecision("d4", "write_file", "a2", "approval_required", t0.Add(3*time.Minute)),
		shDecision("d5", "write_file", "a1", "deny", t0.Add(4*time.Minute)),
		shDecision("d6", "read_file", "a1", "deny", t0.Add(5*time.Minute)),
	}
	shRecord(t, st, acme, ds[3], ds[0], ds[5], ds[1], ds[4], ds[2])
	shRecord(t, st, bravo, shDecision("d7", "read_file", "a1", "allow", t0))
	list := func(f store.DecisionFilter, before string, limit int) []*store.ShieldDecision {
		t.Helper()
		return shIn(t, st, acme, func(tx store.TenantTx) ([]*store.ShieldDecision, error) { return tx.ListDecisions(f, before, limit) })
	}
	rev := func(idx ...int) []*store.ShieldDecision {
		var out []*store.ShieldDecision
		for _, i := range idx {
			out = append(out, ds[i-1])
		}
		return out
	}
	all := store.DecisionFilter{}
	for _, c := range []struct {
		name   string
		f      store.DecisionFilter
		before string
		limit  int
		want   []*store.ShieldDecision
	}{
		{"all", all, "", 10, rev(6, 5, 4, 3, 2, 1)},
		{"first page", all, "", 2, rev(6, 5)},
		{"second page", all, "d5", 2, rev(4, 3)},
		{"last page", all, "d3", 2, rev(2, 1)},
		{"past the end", all, "d1", 2, nil},
		{"cursor need not exist", all, "d35", 10, rev(3, 2, 1)},
		{"outcome", store.DecisionFilter{Outcome: "deny"}, "", 10, rev(6, 5, 2)},
		{"tool", store.DecisionFilter{Tool: "write_file"}, "", 10, rev(5, 4, 2)},
		{"since", store.DecisionFilter{Since: t0.Add(3 * time.Minute)}, "", 10, rev(6, 5, 4)},
		{"outcome and tool", store.DecisionFilter{Outcome: "deny", Tool: "write_file"}, "", 10, rev(5, 2)},
		{"everything", store.DecisionFilter{Outcome: "deny", Tool: "write_file", Since: t0.Add(time.Minute)}, "d5", 1, rev(2)},
	} {
		if diff := cmp.Diff(c.want, list(c.f, c.before, c.limit)); diff != "" {
			t.Errorf("ListDecisions(%s) (-want +got):\n%s", c.name, diff)
		}
	}
	err := shErr(t, st, acme, func(tx store.TenantTx) error {
		_, err := tx.ListDecisions(all, "", 0)
		return err
	})
	checkKind(t, "ListDecisions(limit 0)", err, vaultcrux.Invalid)
}

func (s *suite) shieldCountDecisionsTest(t *testing.T) {
	st := s.fresh(t)
	var ds []*store.ShieldDecision
	for i := range 6 {
		agent := []string{"a1", "a2"}[i%2]
		ds = append(ds, shDecision(fmt.Sprintf("d%d", i), "send_mail", agent, "allow", t0.Add(time.Duration(i)*time.Minute)))
	}
	ds = append(ds, shDecision("x1", "read_file", "a1", "allow", t0.Add(5*time.Minute)))
	ds[4].Outcome = "deny" // denied calls count too
	shRecord(t, st, acme, ds...)
	shRecord(t, st, bravo, shDecision("b1", "send_mail", "a1", "allow", t0.Add(5*time.Minute)))
	for _, c := range []struct {
		tool, agent string
		since       time.Time
		want        int
	}{
		{"send_mail", "a1", t0, 3},
		{"send_mail", "a2", t0, 3},
		{"send_mail", "", t0, 6},
		{"send_mail", "a1", t0.Add(2 * time.Minute), 2}, // the bound is inclusive
		{"send_mail", "", t0.Add(3*time.Minute + time.Millisecond), 2},
		{"send_mail", "a3", t0, 0},
		{"read_file", "", t0, 1},
		{"nothing", "", t0, 0},
	} {
		got := shIn(t, st, acme, func(tx store.TenantTx) (int, error) { return tx.CountRecentDecisions(c.tool, c.agent, c.since) })
		if got != c.want {
			t.Errorf("CountRecentDecisions(%q, %q, +%v) = %d, want %d", c.tool, c.agent, c.since.Sub(t0), got, c.want)
		}
	}
}

func (s *suite) shieldOutboxTest(t *testing.T) {
	st := s.fresh(t)
	for i := 1; i <= 4; i++ {
		shRecord(t, st, acme, shDecision(fmt.Sprintf("d%d", i), "t", "a", "allow", t0.Add(time.Duration(i)*time.Second)))
	}
	shRecord(t, st, bravo, shDecision("d1", "t", "a", "allow", t0))
	undelivered := func() []vaultcrux.TenantID {
		t.Helper()
		return shSys(t, st, func(tx store.SystemTx) ([]vaultcrux.TenantID, error) { return tx.TenantsWithUndeliveredEvents() })
	}
	if diff := cmp.Diff([]vaultcrux.TenantID{acme, bravo}, undelivered()); diff != "" {
		t.Errorf("TenantsWithUndeliveredEvents (-want +got):\n%s", diff)
	}
	mark := func(tenant string, at time.Time, ids ...string) int {
		t.Helper()
		return shIn(t, st, tenant, func(tx store.TenantTx) (int, error) { return tx.MarkDelivered(ids, at) })
	}
	first, second := t0.Add(time.Hour), t0.Add(2*time.Hour)
	if n := mark(acme, first, "ev-d1", "ev-d3", "ev-unknown"); n != 2 {
		t.Errorf("MarkDelivered(d1, d3, unknown) = %d, want 2", n)
	}
	if n := mark(acme, second, "ev-d1", "ev-d2"); n != 1 {
		t.Errorf("MarkDelivered(d1 again, d2) = %d, want 1", n)
	}
	if n := mark(acme, second); n != 0 {
		t.Errorf("MarkDelivered() = %d, want 0", n)
	}
	// Bravo's event of the same id is another tenant's.
	if n := mark(bravo, first, "ev-d1"); n != 1 {
		t.Errorf("bravo MarkDelivered(d1) = %d, want 1", n)
	}
	evs := shOutbox(t, st, acme, false)
	wantDelivered := map[string]*time.Time{"ev-d1": &first, "ev-d2": &second, "ev-d3": &first, "ev-d4": nil}
	for _, e := range evs {
		want := shEvent(e.ID, e.CreatedAt)
		want.DeliveredAt = wantDelivered[e.ID]
		if diff := cmp.Diff(want, e); diff != "" {
			t.Errorf("outbox event %s (-want +got):\n%s", e.ID, diff)
		}
	}
	if diff := cmp.Diff([]string{"ev-d1", "ev-d2", "ev-d3", "ev-d4"}, shEventIDs(evs)); diff != "" {
		t.Errorf("ListOutbox(all) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ev-d4"}, shEventIDs(shOutbox(t, st, acme, true))); diff != "" {
		t.Errorf("ListOutbox(undelivered) (-want +got):\n%s", diff)
	}
	page := shIn(t, st, acme, func(tx store.TenantTx) ([]*store.OutboxEvent, error) { return tx.ListOutbox(false, 2) })
	if diff := cmp.Diff([]string{"ev-d1", "ev-d2"}, shEventIDs(page)); diff != "" {
		t.Errorf("ListOutbox(all, 2) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]vaultcrux.TenantID{acme}, undelivered()); diff != "" {
		t.Errorf("TenantsWithUndeliveredEvents after the marks (-want +got):\n%s", diff)
	}
	err := shErr(t, st, acme, func(tx store.TenantTx) error {
		_, err := tx.ListOutbox(true, 0)
		return err
	})
	checkKind(t, "ListOutbox(limit 0)", err, vaultcrux.Invalid)
}

func (s *suite) shieldTaintEventsTest(t *testing.T) {
	st := s.fresh(t)
	event := func(id string) *store.TaintEvent {
		return &store.TaintEvent{
			ID:         id,
			DecisionID: "decision-" + id,
			Class:      "shield.taint.blocked",
			Tool:       "send_mail",
			Sources:    []byte(`[{"chunkId":"d1#0","trust":"untrusted"}]`),
			AgentID:    "agent-7",
			At:         t0,
		}
	}
	bare := &store.TaintEvent{ID: "t0", Class: "shield.taint.blocked", At: t0}
	tenTx(t, st, acme, func(tx store.TenantTx) error {
		for _, e := range []*store.TaintEvent{event("t2"), bare, event("t3"), event("t1")} {
			if err := tx.AddTaintEvent(e); err != nil {
				return err
			}
		}
		return nil
	})
	list := func(before string, limit int) []*store.TaintEvent {
		t.Helper()
		return shIn(t, st, acme, func(tx store.TenantTx) ([]*store.TaintEvent, error) { return tx.ListTaintEvents(before, limit) })
	}
	all := []*store.TaintEvent{event("t3"), event("t2"), event("t1"), bare}
	if diff := cmp.Diff(all, list("", 10)); diff != "" {
		t.Errorf("ListTaintEvents (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(all[1:3], list("t3", 2)); diff != "" {
		t.Errorf("ListTaintEvents(before t3, 2) (-want +got):\n%s", diff)
	}
	err := shErr(t, st, acme, func(tx store.TenantTx) error { return tx.AddTaintEvent(event("t1")) })
	checkKind(t, "AddTaintEvent(duplicate)", err, vaultcrux.Conflict)
	err = shErr(t, st, acme, func(tx store.TenantTx) error {
		_, err := tx.ListTaintEvents("", 0)
		return err
	})
	checkKind(t, "ListTaintEvents(limit 0)", err, vaultcrux.Invalid)
}

// shTaint returns the session taint marks updated at or after since and
// the database's clock.
func shTaint(t *testing.T, st store.Store, since time.Time) ([]*store.SessionTaint, time.Time) {
	t.Helper()
	var marks []*store.SessionTaint
	var dbNow time.Time
	sysTx(t, st, func(tx store.SystemTx) (err error) {
		marks, dbNow, err = tx.RecentSessionTaint(since)
		return err
	})
	return marks, dbNow
}

// shTaintMark is a mark as RecentSessionTaint returns it, without UpdatedAt.
func shTaintMark(tenant, session, source string, expires time.Time) *store.SessionTaint {
	return &store.SessionTaint{Tenant: vaultcrux.TenantID(tenant), Session: session, Source: source, ExpiresAt: expires}
}

func shMark(t *testing.T, st store.Store, tenant, session, source string, expires time.Time) {
	t.Helper()
	tenTx(t, st, tenant, func(tx store.TenantTx) error { return tx.MarkSessionTaint(session, source, expires) })
}

// shTaintWithout returns copies of marks without their UpdatedAt, the
// database's clock, which a test cannot choose.
func shTaintWithout(marks []*store.SessionTaint) []*store.SessionTaint {
	var out []*store.SessionTaint
	for _, m := range marks {
		c := *m
		c.UpdatedAt = time.Time{}
		out = append(out, &c)
	}
	return out
}

// shieldSessionTaintTest checks the upsert of MarkSessionTaint and the
// poll of RecentSessionTaint. UpdatedAt comes from the database's clock,
// so expiries are relative to the real clock (the database's runs on the
// same one, give or take far less than the hours used here), and
// UpdatedAt is checked against the dbNow read after the marks.
func (s *suite) shieldSessionTaintTest(t *testing.T) {
	st := s.fresh(t)
	now := time.Now()
	// Sub-millisecond parts in another zone: stored truncated, read in UTC.
	zone := time.FixedZone("UTC+5", 5*3600)
	in := func(d time.Duration) time.Time { return now.Add(d).In(zone) }
	want := func(d time.Duration) time.Time { return now.Add(d).Truncate(time.Millisecond).UTC() }
	// check compares the marks without UpdatedAt, checks each UpdatedAt
	// against the database's clock and returns the marks as read.
	check := func(what string, marks ...*store.SessionTaint) []*store.SessionTaint {
		t.Helper()
		got, dbNow := shTaint(t, st, time.Time{})
		if diff := cmp.Diff(marks, shTaintWithout(got)); diff != "" {
			t.Fatalf("%s: RecentSessionTaint (-want +got):\n%s", what, diff)
		}
		if d := time.Until(dbNow).Abs(); d > time.Minute || dbNow.Location() != time.UTC || dbNow.Nanosecond()%1e6 != 0 {
			t.Errorf("%s: dbNow = %v, want the clock now in UTC milliseconds", what, dbNow)
		}
		for _, m := range got {
			if m.UpdatedAt.After(dbNow) || dbNow.Sub(m.UpdatedAt) > 5*time.Second ||
				m.UpdatedAt.Location() != time.UTC || m.UpdatedAt.Nanosecond()%1e6 != 0 {
				t.Errorf("%s: %s %s UpdatedAt = %v, want UTC milliseconds within 5s before dbNow %v",
					what, m.Tenant, m.Session, m.UpdatedAt, dbNow)
			}
		}
		return got
	}
	// checkUpdated fails unless the mark's UpdatedAt did not go back.
	checkUpdated := func(what string, before, after *store.SessionTaint) {
		t.Helper()
		if after.UpdatedAt.Before(before.UpdatedAt) {
			t.Errorf("%s: UpdatedAt went back from %v to %v", what, before.UpdatedAt, after.UpdatedAt)
		}
	}

	shMark(t, st, acme, "agent:a1", "doc:d1#0", in(time.Hour))
	first := check("first mark", shTaintMark(acme, "agent:a1", "doc:d1#0", want(time.Hour)))

	// A later expiry extends the mark; the source stays the first one.
	shMark(t, st, acme, "agent:a1", "tool:fetch", in(2*time.Hour))
	extended := check("later expiry", shTaintMark(acme, "agent:a1", "doc:d1#0", want(2*time.Hour)))
	checkUpdated("later expiry", first[0], extended[0])

	// An earlier expiry shortens nothing.
	shMark(t, st, acme, "agent:a1", "tool:other", in(30*time.Minute))
	kept := check("earlier expiry", shTaintMark(acme, "agent:a1", "doc:d1#0", want(2*time.Hour)))
	checkUpdated("earlier expiry", extended[0], kept[0])

	// A mark after the stored one expired (by the database's clock)
	// replaces its source, whichever expiry is later; once the mark is
	// live again, its source stays.
	a1 := kept[0]
	for i, step := range []struct {
		source  string
		expires time.Duration
		want    *store.SessionTaint
	}{
		{"doc:old", -2 * time.Hour, shTaintMark(acme, "key:k2", "doc:old", want(-2*time.Hour))},
		{"doc:new", -time.Hour, shTaintMark(acme, "key:k2", "doc:new", want(-time.Hour))},
		{"doc:newer", -3 * time.Hour, shTaintMark(acme, "key:k2", "doc:newer", want(-time.Hour))},
		{"doc:live", time.Hour, shTaintMark(acme, "key:k2", "doc:live", want(time.Hour))},
		{"doc:late", 3 * time.Hour, shTaintMark(acme, "key:k2", "doc:live", want(3*time.Hour))},
	} {
		shMark(t, st, acme, "key:k2", step.source, in(step.expires))
		got := check(fmt.Sprintf("key:k2 mark #%d (%s)", i+1, step.source),
			shTaintMark(acme, "agent:a1", "doc:d1#0", want(2*time.Hour)), step.want)
		if !got[0].UpdatedAt.Equal(a1.UpdatedAt) {
			t.Errorf("key:k2 mark #%d changed agent:a1's UpdatedAt", i+1)
		}
	}

	// Tenants' sessions of the same name are separate marks.
	shMark(t, st, bravo, "agent:a1", "doc:b1#0", in(time.Minute))
	all := check("bravo's mark",
		shTaintMark(acme, "agent:a1", "doc:d1#0", want(2*time.Hour)),
		shTaintMark(acme, "key:k2", "doc:live", want(3*time.Hour)),
		shTaintMark(bravo, "agent:a1", "doc:b1#0", want(time.Minute)))
	if !all[0].UpdatedAt.Equal(a1.UpdatedAt) {
		t.Errorf("bravo's mark changed acme's agent:a1 (UpdatedAt %v, was %v)", all[0].UpdatedAt, a1.UpdatedAt)
	}

	// since selects the marks updated at or after it.
	_, dbNow := shTaint(t, st, time.Time{})
	sinces := []time.Time{dbNow, dbNow.Add(time.Millisecond), dbNow.Add(time.Hour)}
	for _, m := range all {
		sinces = append(sinces, m.UpdatedAt, m.UpdatedAt.Add(-time.Millisecond), m.UpdatedAt.Add(time.Millisecond))
	}
	for _, since := range sinces {
		var selected []*store.SessionTaint
		for _, m := range all {
			if !m.UpdatedAt.Before(since) {
				selected = append(selected, m)
			}
		}
		got, _ := shTaint(t, st, since)
		if diff := cmp.Diff(selected, got); diff != "" {
			t.Errorf("RecentSessionTaint(%v) (-want +got):\n%s", since, diff)
		}
	}
	if got, _ := shTaint(t, st, dbNow.Add(time.Millisecond)); len(got) != 0 {
		t.Errorf("RecentSessionTaint(after dbNow) = %d marks, want none", len(got))
	}

	err := shErr(t, st, "ghost", func(tx store.TenantTx) error { return tx.MarkSessionTaint("agent:a1", "doc:d", in(time.Hour)) })
	checkKind(t, "MarkSessionTaint(tenant missing)", err, vaultcrux.NotFound)
	for what, args := range map[string][2]string{"empty session": {"", "doc:d"}, "empty source": {"agent:a1", ""}} {
		err := shErr(t, st, acme, func(tx store.TenantTx) error { return tx.MarkSessionTaint(args[0], args[1], in(time.Hour)) })
		checkKind(t, "MarkSessionTaint("+what+")", err, vaultcrux.Invalid)
	}
	if got, _ := shTaint(t, st, time.Time{}); !cmp.Equal(all, got) {
		t.Errorf("the failed marks changed the marks:\n%s", cmp.Diff(all, got))
	}
}

func (s *suite) shieldPruneSessionTaintTest(t *testing.T) {
	st := s.fresh(t)
	left := func() []*store.SessionTaint {
		t.Helper()
		got, _ := shTaint(t, st, time.Time{})
		return shTaintWithout(got)
	}
	a1, a2 := shTaintMark(acme, "agent:a1", "doc:1", t0), shTaintMark(acme, "agent:a2", "doc:2", t0.Add(time.Minute))
	a3, b1 := shTaintMark(acme, "agent:a3", "doc:3", t0.Add(2*time.Minute)), shTaintMark(bravo, "agent:a1", "doc:4", t0)
	for _, m := range []*store.SessionTaint{a1, a2, a3, b1} {
		shMark(t, st, string(m.Tenant), m.Session, m.Source, m.ExpiresAt)
	}
	for _, step := range []struct {
		now  time.Time
		n    int
		left []*store.SessionTaint
	}{
		{t0.Add(-time.Millisecond), 0, []*store.SessionTaint{a1, a2, a3, b1}},
		// Expired at or before now, of every tenant.
		{t0.Add(time.Minute), 3, []*store.SessionTaint{a3}},
		{t0.Add(time.Minute), 0, []*store.SessionTaint{a3}},
		{t0.Add(2 * time.Minute), 1, nil},
	} {
		n := shSys(t, st, func(tx store.SystemTx) (int, error) { return tx.PruneSessionTaint(step.now) })
		if n != step.n {
			t.Errorf("PruneSessionTaint(%v) = %d, want %d", step.now, n, step.n)
		}
		if diff := cmp.Diff(step.left, left()); diff != "" {
			t.Errorf("marks after PruneSessionTaint(%v) (-want +got):\n%s", step.now, diff)
		}
	}
}

func (s *suite) shieldSamplingTest(t *testing.T) {
	st := s.fresh(t)
	policy := func(id, scope, per string) *store.SamplingPolicy {
		return &store.SamplingPolicy{ID: id, Scope: scope, Target: "send_mail", MaxCalls: 10, WindowMs: 60_000,
			Per: per, CreatedBy: "seat-admin", CreatedAt: t0}
	}
	p1, p2, p3 := policy("p1", "tool", "agent"), policy("p2", "class", "tenant"), policy("p3", "tool", "tenant")
	p2.Target, p2.MaxCalls = "egress", 0
	for _, p := range []*store.SamplingPolicy{p3, p1, p2} {
		tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.CreateSamplingPolicy(p) })
	}
	list := func() []*store.SamplingPolicy {
		t.Helper()
		return shIn(t, st, acme, func(tx store.TenantTx) ([]*store.SamplingPolicy, error) { return tx.ListSamplingPolicies() })
	}
	if diff := cmp.Diff([]*store.SamplingPolicy{p1, p2, p3}, list()); diff != "" {
		t.Errorf("ListSamplingPolicies (-want +got):\n%s", diff)
	}
	bad := []*store.SamplingPolicy{policy("x1", "server", "agent"), policy("x2", "tool", "process"),
		policy("x3", "tool", "agent"), policy("x4", "tool", "agent"), policy("x5", "tool", "agent")}
	bad[2].MaxCalls, bad[3].WindowMs, bad[4].Target = -1, 0, ""
	for _, p := range bad {
		err := shErr(t, st, acme, func(tx store.TenantTx) error { return tx.CreateSamplingPolicy(p) })
		checkKind(t, "CreateSamplingPolicy("+p.ID+")", err, vaultcrux.Invalid)
	}
	err := shErr(t, st, acme, func(tx store.TenantTx) error { return tx.CreateSamplingPolicy(policy("p1", "tool", "agent")) })
	checkKind(t, "CreateSamplingPolicy(duplicate)", err, vaultcrux.Conflict)

	deletedAt := t0.Add(time.Hour)
	want := *p1
	want.DeletedAt = &deletedAt
	for i, at := range []time.Time{deletedAt, deletedAt.Add(time.Hour)} {
		got := shIn(t, st, acme, func(tx store.TenantTx) (*store.SamplingPolicy, error) { return tx.DeleteSamplingPolicy("p1", at) })
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("DeleteSamplingPolicy #%d (-want +got):\n%s", i+1, diff)
		}
	}
	if diff := cmp.Diff([]*store.SamplingPolicy{p2, p3}, list()); diff != "" {
		t.Errorf("ListSamplingPolicies after the delete (-want +got):\n%s", diff)
	}
	err = shErr(t, st, acme, func(tx store.TenantTx) error {
		_, err := tx.DeleteSamplingPolicy("nope", deletedAt)
		return err
	})
	checkKind(t, "DeleteSamplingPolicy(missing)", err, vaultcrux.NotFound)
}

func (s *suite) shieldUISessionsTest(t *testing.T) {
	st := s.fresh(t)
	u1 := &store.UISession{ID: "u1", Origin: "https://app.example.com", ToolAllow: []string{"query_vault", "cite"},
		CreatedBy: "seat-owner", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	u2 := &store.UISession{ID: "u2", Origin: "https://other.example.com", CreatedBy: "seat-owner", CreatedAt: t0,
		ExpiresAt: t0.Add(time.Hour), RevokedAt: ptr(t0.Add(time.Minute))}
	u3 := &store.UISession{ID: "u3", ToolAllow: []string{"x"}, CreatedAt: t0, ExpiresAt: t0}
	for _, u := range []*store.UISession{u3, u1, u2} {
		tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.CreateUISession(u) })
	}
	for _, want := range []*store.UISession{u1, u2} {
		got := shIn(t, st, acme, func(tx store.TenantTx) (*store.UISession, error) { return tx.GetUISession(want.ID) })
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetUISession(%s) (-want +got):\n%s", want.ID, diff)
		}
	}
	list := func(after string, limit int) []*store.UISession {
		t.Helper()
		return shIn(t, st, acme, func(tx store.TenantTx) ([]*store.UISession, error) { return tx.ListUISessions(after, limit) })
	}
	if diff := cmp.Diff([]*store.UISession{u1, u2, u3}, list("", 10)); diff != "" {
		t.Errorf("ListUISessions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]*store.UISession{u2}, list("u1", 1)); diff != "" {
		t.Errorf("ListUISessions(after u1, 1) (-want +got):\n%s", diff)
	}
	err := shErr(t, st, acme, func(tx store.TenantTx) error { return tx.CreateUISession(u1) })
	checkKind(t, "CreateUISession(duplicate)", err, vaultcrux.Conflict)

	revoked := *u1
	revoked.RevokedAt = ptr(t0.Add(30 * time.Minute))
	for i, at := range []time.Time{*revoked.RevokedAt, t0.Add(40 * time.Minute)} {
		got := shIn(t, st, acme, func(tx store.TenantTx) (*store.UISession, error) { return tx.RevokeUISession("u1", at) })
		if diff := cmp.Diff(&revoked, got); diff != "" {
			t.Errorf("RevokeUISession #%d (-want +got):\n%s", i+1, diff)
		}
	}
	for what, fn := range map[string]func(tx store.TenantTx) error{
		"GetUISession":    func(tx store.TenantTx) error { _, err := tx.GetUISession("nope"); return err },
		"RevokeUISession": func(tx store.TenantTx) error { _, err := tx.RevokeUISession("nope", t0); return err },
	} {
		checkKind(t, what+"(missing)", shErr(t, st, acme, fn), vaultcrux.NotFound)
	}
}

func (s *suite) shieldDrillsTest(t *testing.T) {
	st := s.fresh(t)
	drill := func(id string) *store.IncidentDrill {
		return &store.IncidentDrill{ID: id, Scenario: "kill switch propagation", KillSwitchID: "k-" + id,
			StartedBy: "seat-owner", StartedAt: t0}
	}
	for _, id := range []string{"r2", "r1", "r3"} {
		tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.CreateIncidentDrill(drill(id)) })
	}
	finishedAt := t0.Add(time.Minute)
	want := drill("r2")
	want.Result, want.Details, want.FinishedAt = "passed", []byte(`{"propagationMs":412}`), &finishedAt
	got := shIn(t, st, acme, func(tx store.TenantTx) (*store.IncidentDrill, error) {
		return tx.FinishIncidentDrill("r2", "passed", want.Details, finishedAt)
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FinishIncidentDrill (-want +got):\n%s", diff)
	}
	err := shErr(t, st, acme, func(tx store.TenantTx) error {
		_, err := tx.FinishIncidentDrill("r2", "failed", nil, finishedAt)
		return err
	})
	checkKind(t, "FinishIncidentDrill(finished)", err, vaultcrux.Conflict)
	err = shErr(t, st, acme, func(tx store.TenantTx) error {
		_, err := tx.FinishIncidentDrill("r9", "failed", nil, finishedAt)
		return err
	})
	checkKind(t, "FinishIncidentDrill(missing)", err, vaultcrux.NotFound)
	err = shErr(t, st, acme, func(tx store.TenantTx) error { return tx.CreateIncidentDrill(drill("r1")) })
	checkKind(t, "CreateIncidentDrill(duplicate)", err, vaultcrux.Conflict)

	list := func(before string, limit int) []*store.IncidentDrill {
		t.Helper()
		return shIn(t, st, acme, func(tx store.TenantTx) ([]*store.IncidentDrill, error) { return tx.ListIncidentDrills(before, limit) })
	}
	if diff := cmp.Diff([]*store.IncidentDrill{drill("r3"), want, drill("r1")}, list("", 10)); diff != "" {
		t.Errorf("ListIncidentDrills (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]*store.IncidentDrill{want}, list("r3", 1)); diff != "" {
		t.Errorf("ListIncidentDrills(before r3, 1) (-want +got):\n%s", diff)
	}
}

// shieldTimeTest stores times with sub-millisecond parts in another zone:
// they come back truncated to the millisecond, in UTC.
func (s *suite) shieldTimeTest(t *testing.T) {
	st := s.fresh(t)
	zone := time.FixedZone("UTC+5", 5*3600)
	in := time.Date(2025, 1, 2, 3, 4, 5, 123_456_789, zone)
	want := time.Date(2025, 1, 1, 22, 4, 5, 123_000_000, time.UTC)
	inLater := in.Add(time.Hour)
	tenTx(t, st, acme, func(tx store.TenantTx) error {
		k := shSwitch(acme, "k1", "tool")
		k.EngagedAt = in
		if err := tx.EngageKillSwitch(k); err != nil {
			return err
		}
		if _, err := tx.ReleaseKillSwitch("k1", "x", in); err != nil {
			return err
		}
		a := shApproval("a1", inLater)
		a.CreatedAt = in
		if err := tx.CreateApproval(a); err != nil {
			return err
		}
		if _, err := tx.ResolveApproval("a1", "approved", "x", "", []byte("tok"), &inLater, in); err != nil {
			return err
		}
		if _, err := tx.ConsumeApprovalToken([]byte("tok"), in); err != nil {
			return err
		}
		return tx.RecordDecision(shDecision("d1", "t", "a", "allow", in), shEvent("e1", in))
	})
	k := shIn(t, st, acme, func(tx store.TenantTx) (*store.KillSwitch, error) { return tx.GetKillSwitch("k1") })
	a := shIn(t, st, acme, func(tx store.TenantTx) (*store.ShieldApproval, error) { return tx.GetApproval("a1") })
	d := shIn(t, st, acme, func(tx store.TenantTx) (*store.ShieldDecision, error) { return tx.GetDecision("d1") })
	audit := shIn(t, st, acme, func(tx store.TenantTx) ([]*store.KillSwitchAudit, error) { return tx.ListKillSwitchAudit("k1") })
	e := shOutbox(t, st, acme, false)[0]
	for name, g := range map[string]time.Time{
		"switch.EngagedAt":        k.EngagedAt,
		"switch.ReleasedAt":       *k.ReleasedAt,
		"audit.At":                audit[1].At,
		"approval.CreatedAt":      a.CreatedAt,
		"approval.ExpiresAt":      a.ExpiresAt.Add(-time.Hour),
		"approval.ResolvedAt":     *a.ResolvedAt,
		"approval.TokenExpiresAt": a.TokenExpiresAt.Add(-time.Hour),
		"approval.ExecutedAt":     *a.ExecutedAt,
		"decision.CreatedAt":      d.CreatedAt,
		"event.CreatedAt":         e.CreatedAt,
	} {
		if g != want {
			t.Errorf("%s = %v, want %v", name, g, want)
		}
	}
}

// shieldCrossTenantTest gives acme one row of every Shield table and
// checks that bravo reaches none of them, and changes none.
func (s *suite) shieldCrossTenantTest(t *testing.T) {
	st := s.fresh(t)
	tokenExpires := t0.Add(time.Hour)
	tenTx(t, st, acme, func(tx store.TenantTx) error {
		for _, step := range []func() error{
			func() error { return tx.CreatePublisher(shPublisher("p1")) },
			func() error { return tx.CreateServer(shServer("s1", "p1")) },
			func() error { return tx.PinDigest(shPin("s1", "blake3:d")) },
			func() error { return tx.EngageKillSwitch(shSwitch(acme, "k1", "tool")) },
			func() error {
				return tx.SetShieldSetting(&store.ShieldSetting{Name: "SHIELD_MODE", Value: "enforce", UpdatedAt: t0})
			},
			func() error { return tx.CreateApproval(shApproval("a1", t0.Add(time.Minute))) },
			func() error { return tx.CreateApproval(shApproval("a2", t0.Add(time.Hour))) },
			func() error {
				_, err := tx.ResolveApproval("a2", "approved", "x", "", []byte("tok"), &tokenExpires, t0)
				return err
			},
			func() error { return tx.RecordDecision(shDecision("d1", "t", "a", "allow", t0), shEvent("e1", t0)) },
			func() error {
				return tx.AddTaintEvent(&store.TaintEvent{ID: "t1", Class: "shield.taint.blocked", At: t0})
			},
			func() error {
				return tx.CreateSamplingPolicy(&store.SamplingPolicy{ID: "sp1", Scope: "tool", Target: "t", MaxCalls: 1, WindowMs: 1000, Per: "agent", CreatedAt: t0})
			},
			func() error { return tx.CreateUISession(&store.UISession{ID: "u1", CreatedAt: t0, ExpiresAt: t0}) },
			func() error {
				return tx.CreateIncidentDrill(&store.IncidentDrill{ID: "r1", Scenario: "s", StartedAt: t0})
			},
		} {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	})
	snapshot := func(tenant string) []any {
		t.Helper()
		var out []any
		tenTx(t, st, tenant, func(tx store.TenantTx) error {
			add := func(v any, err error) error {
				out = append(out, v)
				return err
			}
			for _, err := range []error{
				add(tx.ListPublishers("", 100)),
				add(tx.ListServers("", 100)),
				add(tx.ListPins("")),
				add(tx.ListKillSwitches(false)),
				add(tx.ListKillSwitchAudit("")),
				add(tx.ShieldVersion()),
				add(tx.ListShieldSettings()),
				add(tx.ListApprovals("", "", 100)),
				add(tx.ListDecisions(store.DecisionFilter{}, "", 100)),
				add(tx.CountRecentDecisions("t", "", t0)),
				add(tx.ListTaintEvents("", 100)),
				add(tx.ListOutbox(false, 100)),
				add(tx.ListSamplingPolicies()),
				add(tx.ListUISessions("", 100)),
				add(tx.ListIncidentDrills("", 100)),
			} {
				if err != nil {
					return err
				}
			}
			return nil
		})
		return out
	}
	before := snapshot(acme)

	// Bravo sees nothing.
	for i, v := range snapshot(bravo) {
		empty := true
		switch v := v.(type) {
		case int64:
			empty = v == 0
		case int:
			empty = v == 0
		default:
			rv := reflect.ValueOf(v)
			empty = rv.Kind() == reflect.Slice && rv.Len() == 0
		}
		if !empty {
			t.Errorf("bravo's listing %d = %v, want nothing", i, v)
		}
	}
	// Bravo reaches none of acme's rows by id.
	at := t0.Add(time.Second)
	for what, fn := range map[string]func(tx store.TenantTx) error{
		"GetPublisher":         func(tx store.TenantTx) error { _, err := tx.GetPublisher("p1"); return err },
		"GetServer":            func(tx store.TenantTx) error { _, err := tx.GetServer("s1"); return err },
		"UpdateServerTools":    func(tx store.TenantTx) error { _, err := tx.UpdateServerTools("s1", nil, "blake3:x", at); return err },
		"SetServerStatus":      func(tx store.TenantTx) error { _, err := tx.SetServerStatus("s1", "disabled", at); return err },
		"PinDigest":            func(tx store.TenantTx) error { return tx.PinDigest(shPin("s1", "blake3:evil")) },
		"RevokeDigest":         func(tx store.TenantTx) error { _, err := tx.RevokeDigest("s1", "blake3:d", "x", "", at); return err },
		"GetKillSwitch":        func(tx store.TenantTx) error { _, err := tx.GetKillSwitch("k1"); return err },
		"ReleaseKillSwitch":    func(tx store.TenantTx) error { _, err := tx.ReleaseKillSwitch("k1", "x", at); return err },
		"DeleteShieldSetting":  func(tx store.TenantTx) error { return tx.DeleteShieldSetting("SHIELD_MODE") },
		"GetApproval":          func(tx store.TenantTx) error { _, err := tx.GetApproval("a1"); return err },
		"FindApprovalByToken":  func(tx store.TenantTx) error { _, err := tx.FindApprovalByToken([]byte("tok")); return err },
		"ConsumeApprovalToken": func(tx store.TenantTx) error { _, err := tx.ConsumeApprovalToken([]byte("tok"), at); return err },
		"ResolveApproval": func(tx store.TenantTx) error {
			_, err := tx.ResolveApproval("a1", "denied", "x", "", nil, nil, at)
			return err
		},
		"GetDecision":          func(tx store.TenantTx) error { _, err := tx.GetDecision("d1"); return err },
		"DeleteSamplingPolicy": func(tx store.TenantTx) error { _, err := tx.DeleteSamplingPolicy("sp1", at); return err },
		"GetUISession":         func(tx store.TenantTx) error { _, err := tx.GetUISession("u1"); return err },
		"RevokeUISession":      func(tx store.TenantTx) error { _, err := tx.RevokeUISession("u1", at); return err },
		"FinishIncidentDrill": func(tx store.TenantTx) error {
			_, err := tx.FinishIncidentDrill("r1", "failed", nil, at)
			return err
		},
	} {
		checkKind(t, "bravo "+what+"(acme's)", shErr(t, st, bravo, fn), vaultcrux.NotFound, acme)
	}
	// Writes that name no row of acme's find nothing to change.
	if n := shIn(t, st, bravo, func(tx store.TenantTx) (int, error) { return tx.MarkDelivered([]string{"e1"}, at) }); n != 0 {
		t.Errorf("bravo MarkDelivered(acme's event) = %d, want 0", n)
	}
	if got := shIn(t, st, bravo, func(tx store.TenantTx) ([]*store.ShieldApproval, error) { return tx.ExpireApprovals(tokenExpires) }); len(got) != 0 {
		t.Errorf("bravo ExpireApprovals expired %d of acme's approvals", len(got))
	}
	if diff := cmp.Diff(before, snapshot(acme)); diff != "" {
		t.Errorf("acme's Shield state after bravo's attempts (-before +after):\n%s", diff)
	}
	tenants, _ := shVersions(t, st)
	if _, ok := tenants[bravo]; ok {
		t.Errorf("bravo has a shield version (%d) after changing nothing", tenants[bravo])
	}
}
