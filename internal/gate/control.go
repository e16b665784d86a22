package gate

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
	"github.com/vaultcrux/vaultcrux/internal/shield"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// The control plane: every change is one ledger commit with its receipt,
// then the tenant's snapshot is reloaded here (other processes see the
// version bump at their next poll).

// commit writes apply and one event receipt, and returns the receipt id.
func (g *Gate) commit(ctx context.Context, p vaultcrux.Principal, kind, subject string, details map[string]any, apply func(store.TenantTx) error) (string, error) {
	rc, err := g.led.Event(p.Tenant, kind, p, subject, details)
	if err != nil {
		return "", err
	}
	issued, err := g.led.Commit(ctx, &ledger.Item{Tenant: p.Tenant, Apply: apply, Receipts: []*receipt.Doc{rc}})
	if err != nil {
		return "", err
	}
	return issued[0].ID, nil
}

func (g *Gate) read(ctx context.Context, t vaultcrux.TenantID, fn func(store.TenantTx) error) error {
	return g.st.ForTenant(t).Tx(ctx, fn)
}

func validName(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// validRef accepts 1..200 characters of A-Z a-z 0-9 and ._:/@- : ids,
// tool names and kill switch targets.
func validRef(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:/@-", c) >= 0) {
			return false
		}
	}
	return true
}

// Publisher is a trust registry publisher.
type Publisher struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	URL       string `json:"url,omitempty"`
	CreatedAt string `json:"createdAt"`
	ReceiptID string `json:"receiptId,omitempty"`
}

func publisherView(p *store.ShieldPublisher) *Publisher {
	return &Publisher{ID: p.ID, Name: p.Name, URL: p.URL, CreatedAt: vaultcrux.FormatTime(p.CreatedAt)}
}

// AddPublisher registers a publisher.
func (g *Gate) AddPublisher(ctx context.Context, p vaultcrux.Principal, name, url string) (_ *Publisher, err error) {
	defer vaultcrux.Wrap(&err, "gate.AddPublisher")
	if !validName(name, 200) || len(url) > 2048 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "name is required (at most 200 printable characters); url at most 2048 bytes")
	}
	id, err := g.newID()
	if err != nil {
		return nil, err
	}
	pub := &store.ShieldPublisher{ID: id, Name: name, URL: url, CreatedAt: g.clock()}
	rid, err := g.commit(ctx, p, "shield.trust.publisher_added", "shield-publisher:"+id, map[string]any{"publisherId": id, "name": name},
		func(tx store.TenantTx) error { return tx.CreatePublisher(pub) })
	if err != nil {
		return nil, err
	}
	v := publisherView(pub)
	v.ReceiptID = rid
	return v, nil
}

// ListPublishers lists publishers by id after `after`.
func (g *Gate) ListPublishers(ctx context.Context, t vaultcrux.TenantID, after string, limit int) ([]*Publisher, error) {
	var ps []*store.ShieldPublisher
	err := g.read(ctx, t, func(tx store.TenantTx) (err error) { ps, err = tx.ListPublishers(after, limit); return err })
	out := make([]*Publisher, len(ps))
	for i, x := range ps {
		out[i] = publisherView(x)
	}
	return out, err
}

// Server is a registered server as the API shows it.
type Server struct {
	ID          string        `json:"id"`
	Name        string        `json:"name"`
	URL         string        `json:"url,omitempty"`
	Command     string        `json:"command,omitempty"`
	PublisherID string        `json:"publisherId,omitempty"`
	Tools       []shield.Tool `json:"tools"`
	Digest      string        `json:"digest"`
	Status      string        `json:"status"`
	CreatedAt   string        `json:"createdAt"`
	UpdatedAt   string        `json:"updatedAt"`
	ReceiptID   string        `json:"receiptId,omitempty"`
}

func serverView(s *store.ShieldServer) *Server {
	v := &Server{ID: s.ID, Name: s.Name, URL: s.URL, Command: s.Command, PublisherID: s.PublisherID, Digest: s.Digest,
		Status: s.Status, CreatedAt: vaultcrux.FormatTime(s.CreatedAt), UpdatedAt: vaultcrux.FormatTime(s.UpdatedAt), Tools: []shield.Tool{}}
	_ = json.Unmarshal(s.Tools, &v.Tools)
	return v
}

// ServerSpec is the body of POST /v1/shield/servers.
type ServerSpec struct {
	Name        string        `json:"name"`
	URL         string        `json:"url"`
	Command     string        `json:"command"`
	PublisherID string        `json:"publisherId"`
	Tools       []shield.Tool `json:"tools"`
}

// MaxTools bounds the tools of one server.
const MaxTools = 500

// RegisterServer registers a server, or re-registers the server of that
// name with new tool definitions: its digest is recomputed and its
// status kept, so a changed definition no longer matches its pin.
func (g *Gate) RegisterServer(ctx context.Context, p vaultcrux.Principal, spec *ServerSpec) (_ *Server, err error) {
	defer vaultcrux.Wrap(&err, "gate.RegisterServer")
	switch {
	case !validName(spec.Name, 200):
		return nil, vaultcrux.E(vaultcrux.Invalid, "name is required (at most 200 printable characters)")
	case spec.URL == "" && spec.Command == "", spec.URL != "" && spec.Command != "":
		return nil, vaultcrux.E(vaultcrux.Invalid, "exactly one of url and command is required")
	case len(spec.URL) > 2048 || len(spec.Command) > 2048:
		return nil, vaultcrux.E(vaultcrux.Invalid, "url and command are at most 2048 bytes")
	case len(spec.Tools) == 0 || len(spec.Tools) > MaxTools:
		return nil, vaultcrux.Ef(vaultcrux.Invalid, "a server declares 1 to %d tools", MaxTools)
	}
	for i := range spec.Tools {
		if !validRef(spec.Tools[i].Name) {
			return nil, vaultcrux.Ef(vaultcrux.Invalid, "tool %d: name must be 1-200 characters of A-Z a-z 0-9 ._:/@-", i)
		}
	}
	sv := shield.Server{ID: "candidate", Name: spec.Name, URL: spec.URL, Command: spec.Command, PublisherID: spec.PublisherID, Tools: spec.Tools}
	digest, err := shield.ServerDigest(&sv)
	if err != nil {
		return nil, err
	}
	// The local policy of every tool must be usable: a class, a risk
	// tier and rules that compile.
	m, err := shield.BuildManifest(nil, []shield.ServerState{{Server: sv, Status: shield.StatusActive, PinnedDigests: []shield.Pin{{Digest: digest}}}})
	if err != nil {
		return nil, err
	}
	for _, e := range m.Entries() {
		if e.Unusable != "" {
			return nil, vaultcrux.Ef(vaultcrux.Invalid, "tool %q: %s", e.Tool.Name, e.Unusable)
		}
	}
	tools, err := json.Marshal(spec.Tools)
	if err != nil {
		return nil, vaultcrux.E(vaultcrux.Invalid, "tools do not encode")
	}
	existing, err := g.serverByName(ctx, p.Tenant, spec.Name)
	if err != nil {
		return nil, err
	}
	now := g.clock()
	var out *store.ShieldServer
	var rid string
	if existing == nil {
		id, err := g.newID()
		if err != nil {
			return nil, err
		}
		s := &store.ShieldServer{ID: id, Name: spec.Name, URL: spec.URL, Command: spec.Command, PublisherID: spec.PublisherID,
			Tools: tools, Digest: digest, Status: "pending", CreatedAt: now, UpdatedAt: now}
		rid, err = g.commit(ctx, p, "shield.server.registered", "shield-server:"+id,
			map[string]any{"serverId": id, "name": spec.Name, "digest": digest, "status": "pending", "tools": float64(len(spec.Tools))},
			func(tx store.TenantTx) error { return tx.CreateServer(s) })
		if err != nil {
			return nil, err
		}
		out = s
	} else {
		if existing.URL != spec.URL || existing.Command != spec.Command || existing.PublisherID != spec.PublisherID {
			return nil, vaultcrux.E(vaultcrux.Conflict, "a server of this name is registered with another url, command or publisher")
		}
		rid, err = g.commit(ctx, p, "shield.server.updated", "shield-server:"+existing.ID,
			map[string]any{"serverId": existing.ID, "name": spec.Name, "digest": digest, "previousDigest": existing.Digest, "tools": float64(len(spec.Tools))},
			func(tx store.TenantTx) (err error) {
				out, err = tx.UpdateServerTools(existing.ID, tools, digest, now)
				return err
			})
		if err != nil {
			return nil, err
		}
	}
	g.refresh(ctx, p.Tenant, false)
	v := serverView(out)
	v.ReceiptID = rid
	return v, nil
}

func (g *Gate) serverByName(ctx context.Context, t vaultcrux.TenantID, name string) (*store.ShieldServer, error) {
	var found *store.ShieldServer
	err := g.read(ctx, t, func(tx store.TenantTx) error {
		after := ""
		for {
			page, err := tx.ListServers(after, 500)
			if err != nil {
				return err
			}
			for _, s := range page {
				if s.Name == name {
					found = s
					return nil
				}
			}
			if len(page) < 500 {
				return nil
			}
			after = page[len(page)-1].ID
		}
	})
	return found, err
}

// ListServers lists servers by id after `after`.
func (g *Gate) ListServers(ctx context.Context, t vaultcrux.TenantID, after string, limit int) ([]*Server, error) {
	var ss []*store.ShieldServer
	err := g.read(ctx, t, func(tx store.TenantTx) (err error) { ss, err = tx.ListServers(after, limit); return err })
	out := make([]*Server, len(ss))
	for i, x := range ss {
		out[i] = serverView(x)
	}
	return out, err
}

// SetServerStatus sets a server's status (pending, active, disabled).
// Activating needs its current digest pinned and not revoked.
func (g *Gate) SetServerStatus(ctx context.Context, p vaultcrux.Principal, id, status string) (_ *Server, err error) {
	defer vaultcrux.Wrap(&err, "gate.SetServerStatus")
	if !store.ValidServerStatus(status) {
		return nil, vaultcrux.E(vaultcrux.Invalid, `status must be "pending", "active" or "disabled"`)
	}
	var cur *store.ShieldServer
	var pins []*store.ShieldPin
	if err := g.read(ctx, p.Tenant, func(tx store.TenantTx) (err error) {
		if cur, err = tx.GetServer(id); err != nil {
			return err
		}
		pins, err = tx.ListPins(id)
		return err
	}); err != nil {
		return nil, notFoundAs(err, "server not found")
	}
	if status == "active" && !pinnedClean(pins, cur.Digest) {
		return nil, vaultcrux.E(vaultcrux.Conflict, "the server's current digest is not pinned (or is revoked): pin it first")
	}
	var out *store.ShieldServer
	rid, err := g.commit(ctx, p, "shield.server.status_changed", "shield-server:"+id,
		map[string]any{"serverId": id, "status": status, "previousStatus": cur.Status, "digest": cur.Digest},
		func(tx store.TenantTx) (err error) { out, err = tx.SetServerStatus(id, status, g.clock()); return err })
	if err != nil {
		return nil, notFoundAs(err, "server not found")
	}
	g.refresh(ctx, p.Tenant, false)
	v := serverView(out)
	v.ReceiptID = rid
	return v, nil
}

func pinnedClean(pins []*store.ShieldPin, digest string) bool {
	ok := false
	for _, p := range pins {
		if p.Digest == digest {
			if p.RevokedAt != nil {
				return false
			}
			ok = true
		}
	}
	return ok
}

func notFoundAs(err error, msg string) error {
	if vaultcrux.ErrorKind(err) == vaultcrux.NotFound {
		return vaultcrux.E(vaultcrux.NotFound, msg)
	}
	return err
}

// Pin is a pinned digest as the API shows it.
type Pin struct {
	ServerID     string  `json:"serverId"`
	Digest       string  `json:"digest"`
	PinnedBy     string  `json:"pinnedBy"`
	PinnedAt     string  `json:"pinnedAt"`
	RevokedAt    *string `json:"revokedAt"`
	RevokedBy    string  `json:"revokedBy,omitempty"`
	RevokeReason string  `json:"revokeReason,omitempty"`
	ReceiptID    string  `json:"receiptId,omitempty"`
}

func pinView(p *store.ShieldPin) *Pin {
	return &Pin{ServerID: p.ServerID, Digest: p.Digest, PinnedBy: p.PinnedBy, PinnedAt: vaultcrux.FormatTime(p.PinnedAt),
		RevokedAt: optTime(p.RevokedAt), RevokedBy: p.RevokedBy, RevokeReason: p.RevokeReason}
}

// PinDigest pins the server's current digest and makes a pending server
// active. The digest must be the server's current one: what is pinned is
// what was reviewed.
func (g *Gate) PinDigest(ctx context.Context, p vaultcrux.Principal, serverID, digest string) (_ *Pin, err error) {
	defer vaultcrux.Wrap(&err, "gate.PinDigest")
	if !validRef(serverID) || !strings.HasPrefix(digest, "blake3:") || len(digest) != len("blake3:")+64 {
		return nil, vaultcrux.E(vaultcrux.Invalid, `serverId is required and digest must be "blake3:" and 64 hex digits`)
	}
	var cur *store.ShieldServer
	if err := g.read(ctx, p.Tenant, func(tx store.TenantTx) (err error) { cur, err = tx.GetServer(serverID); return err }); err != nil {
		return nil, notFoundAs(err, "server not found")
	}
	if cur.Digest != digest {
		return nil, vaultcrux.E(vaultcrux.Conflict, "the digest is not the server's current digest: its definition changed since it was reviewed")
	}
	now := g.clock()
	pin := &store.ShieldPin{ServerID: serverID, Digest: digest, PinnedBy: p.ID, PinnedAt: now}
	rid, err := g.commit(ctx, p, "shield.trust.digest_pinned", "shield-server:"+serverID,
		map[string]any{"serverId": serverID, "digest": digest},
		func(tx store.TenantTx) error {
			if err := tx.PinDigest(pin); err != nil {
				return err
			}
			if cur.Status == "pending" {
				_, err := tx.SetServerStatus(serverID, "active", now)
				return err
			}
			return nil
		})
	if err != nil {
		if vaultcrux.ErrorKind(err) == vaultcrux.Conflict {
			return nil, vaultcrux.E(vaultcrux.Conflict, "this digest was pinned for this server before (a revoked digest cannot be pinned again)")
		}
		return nil, notFoundAs(err, "server not found")
	}
	g.refresh(ctx, p.Tenant, false)
	v := pinView(pin)
	v.ReceiptID = rid
	return v, nil
}

// RevokeDigest revokes a pinned digest: the server's tools leave the
// manifest while its definition has that digest.
func (g *Gate) RevokeDigest(ctx context.Context, p vaultcrux.Principal, serverID, digest, reason string) (_ *Pin, err error) {
	defer vaultcrux.Wrap(&err, "gate.RevokeDigest")
	if !validRef(serverID) || digest == "" || len(digest) > 100 || len(reason) > 2000 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "serverId and digest are required; reason at most 2000 bytes")
	}
	var out *store.ShieldPin
	rid, err := g.commit(ctx, p, "shield.trust.digest_revoked", "shield-server:"+serverID,
		map[string]any{"serverId": serverID, "digest": digest},
		func(tx store.TenantTx) (err error) {
			out, err = tx.RevokeDigest(serverID, digest, p.ID, reason, g.clock())
			return err
		})
	if err != nil {
		return nil, notFoundAs(err, "pinned digest not found")
	}
	g.refresh(ctx, p.Tenant, false)
	v := pinView(out)
	v.ReceiptID = rid
	return v, nil
}

// ListPins lists the pins of a server ("" for all).
func (g *Gate) ListPins(ctx context.Context, t vaultcrux.TenantID, serverID string) ([]*Pin, error) {
	var ps []*store.ShieldPin
	err := g.read(ctx, t, func(tx store.TenantTx) (err error) { ps, err = tx.ListPins(serverID); return err })
	out := make([]*Pin, len(ps))
	for i, x := range ps {
		out[i] = pinView(x)
	}
	return out, err
}

// KillSwitch is a kill switch as the API shows it.
type KillSwitch struct {
	ID         string  `json:"id"`
	Scope      string  `json:"scope"`
	Target     string  `json:"target"`
	Reason     string  `json:"reason"`
	EngagedBy  string  `json:"engagedBy"`
	EngagedAt  string  `json:"engagedAt"`
	ReleasedAt *string `json:"releasedAt"`
	ReleasedBy string  `json:"releasedBy,omitempty"`
	Active     bool    `json:"active"`
	ReceiptID  string  `json:"receiptId,omitempty"`
}

func killView(k *store.KillSwitch) *KillSwitch {
	return &KillSwitch{ID: k.ID, Scope: k.Scope, Target: k.Target, Reason: k.Reason, EngagedBy: k.EngagedBy,
		EngagedAt: vaultcrux.FormatTime(k.EngagedAt), ReleasedAt: optTime(k.ReleasedAt), ReleasedBy: k.ReleasedBy, Active: k.ReleasedAt == nil}
}

// checkKill validates a switch the way the engine will load it.
func checkKill(scope, target string) error {
	if !store.ValidKillSwitchScope(scope) {
		return vaultcrux.E(vaultcrux.Invalid, `scope must be "global", "tenant", "agent", "server", "tool" or "capability_class"`)
	}
	if scope != "global" && !validRef(target) {
		return vaultcrux.E(vaultcrux.Invalid, "target is required: 1-200 characters of A-Z a-z 0-9 ._:/@-")
	}
	if _, err := shield.NewKillSet([]shield.KillSwitch{{ID: "check", Scope: shield.KillScope(scope), Target: target}}); err != nil {
		return vaultcrux.E(vaultcrux.Invalid, "the capability class is not one of read, write, dangerous_local, egress, economy")
	}
	return nil
}

// EngageKillSwitch engages a switch of the tenant. Scope global is for
// the operator (EngageGlobalKillSwitch); a tenant-scope switch must name
// the principal's own tenant.
func (g *Gate) EngageKillSwitch(ctx context.Context, p vaultcrux.Principal, scope, target, reason string) (_ *KillSwitch, err error) {
	defer vaultcrux.Wrap(&err, "gate.EngageKillSwitch")
	if scope == "global" {
		return nil, vaultcrux.E(vaultcrux.Forbidden, "a global kill switch is engaged by the operator (vaultcrux shield kill-switch), not through a tenant's API")
	}
	if err := checkKill(scope, target); err != nil {
		return nil, err
	}
	if scope == "tenant" && target != string(p.Tenant) {
		return nil, vaultcrux.E(vaultcrux.Invalid, "a tenant kill switch targets the caller's own tenant")
	}
	if len(reason) > 2000 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "reason is at most 2000 bytes")
	}
	id, err := g.newID()
	if err != nil {
		return nil, err
	}
	k := &store.KillSwitch{ID: id, Tenant: p.Tenant, Scope: scope, Target: target, Reason: reason, EngagedBy: p.ID, EngagedAt: g.clock()}
	rid, err := g.commit(ctx, p, "shield.kill_switch.engaged", "shield-kill-switch:"+id,
		map[string]any{"killSwitchId": id, "scope": scope, "target": target},
		func(tx store.TenantTx) error { return tx.EngageKillSwitch(k) })
	if err != nil {
		return nil, err
	}
	g.refresh(ctx, p.Tenant, false)
	v := killView(k)
	v.ReceiptID = rid
	return v, nil
}

// ReleaseKillSwitch releases a switch of the tenant.
func (g *Gate) ReleaseKillSwitch(ctx context.Context, p vaultcrux.Principal, id string) (_ *KillSwitch, err error) {
	defer vaultcrux.Wrap(&err, "gate.ReleaseKillSwitch")
	var cur *store.KillSwitch
	if err := g.read(ctx, p.Tenant, func(tx store.TenantTx) (err error) { cur, err = tx.GetKillSwitch(id); return err }); err != nil {
		return nil, notFoundAs(err, "kill switch not found")
	}
	if cur.ReleasedAt != nil {
		return killView(cur), nil
	}
	var out *store.KillSwitch
	rid, err := g.commit(ctx, p, "shield.kill_switch.released", "shield-kill-switch:"+id,
		map[string]any{"killSwitchId": id, "scope": cur.Scope, "target": cur.Target},
		func(tx store.TenantTx) (err error) { out, err = tx.ReleaseKillSwitch(id, p.ID, g.clock()); return err })
	if err != nil {
		return nil, notFoundAs(err, "kill switch not found")
	}
	g.refresh(ctx, p.Tenant, false)
	v := killView(out)
	v.ReceiptID = rid
	return v, nil
}

// ListKillSwitches lists the tenant's switches and the active global ones.
func (g *Gate) ListKillSwitches(ctx context.Context, t vaultcrux.TenantID, activeOnly bool) ([]*KillSwitch, error) {
	var ks []*store.KillSwitch
	if err := g.read(ctx, t, func(tx store.TenantTx) (err error) { ks, err = tx.ListKillSwitches(activeOnly); return err }); err != nil {
		return nil, err
	}
	var glob []*store.KillSwitch
	if err := g.st.Tx(ctx, func(tx store.SystemTx) (err error) { glob, err = tx.ListGlobalKillSwitches(true); return err }); err != nil {
		return nil, err
	}
	out := make([]*KillSwitch, 0, len(ks)+len(glob))
	for _, k := range glob {
		v := killView(k)
		v.EngagedBy = "operator"
		out = append(out, v)
	}
	for _, k := range ks {
		out = append(out, killView(k))
	}
	return out, nil
}

// EngageGlobalKillSwitch engages a switch that stops every call of every
// tenant: the operator's, from the CLI. Its receipt goes to every
// tenant's log.
func (g *Gate) EngageGlobalKillSwitch(ctx context.Context, actor, reason string) (_ *KillSwitch, err error) {
	defer vaultcrux.Wrap(&err, "gate.EngageGlobalKillSwitch")
	id, err := g.newID()
	if err != nil {
		return nil, err
	}
	k := &store.KillSwitch{ID: id, Scope: "global", Reason: reason, EngagedBy: actor, EngagedAt: g.clock()}
	if err := g.st.Tx(ctx, func(tx store.SystemTx) error { return tx.EngageGlobalKillSwitch(k) }); err != nil {
		return nil, err
	}
	g.refresh(ctx, "", true)
	return killView(k), g.receiptEveryTenant(ctx, actor, "shield.kill_switch.engaged", id, map[string]any{"killSwitchId": id, "scope": "global"})
}

// ReleaseGlobalKillSwitch releases a global switch.
func (g *Gate) ReleaseGlobalKillSwitch(ctx context.Context, actor, id string) (_ *KillSwitch, err error) {
	defer vaultcrux.Wrap(&err, "gate.ReleaseGlobalKillSwitch")
	var k *store.KillSwitch
	if err := g.st.Tx(ctx, func(tx store.SystemTx) (err error) {
		k, err = tx.ReleaseGlobalKillSwitch(id, actor, g.clock())
		return err
	}); err != nil {
		return nil, notFoundAs(err, "global kill switch not found")
	}
	g.refresh(ctx, "", true)
	return killView(k), g.receiptEveryTenant(ctx, actor, "shield.kill_switch.released", id, map[string]any{"killSwitchId": id, "scope": "global"})
}

// ListGlobalKillSwitches lists the global switches.
func (g *Gate) ListGlobalKillSwitches(ctx context.Context, activeOnly bool) ([]*KillSwitch, error) {
	var ks []*store.KillSwitch
	err := g.st.Tx(ctx, func(tx store.SystemTx) (err error) { ks, err = tx.ListGlobalKillSwitches(activeOnly); return err })
	out := make([]*KillSwitch, len(ks))
	for i, k := range ks {
		out[i] = killView(k)
	}
	return out, err
}

func (g *Gate) receiptEveryTenant(ctx context.Context, actor, kind, id string, details map[string]any) error {
	var tenants []*vaultcrux.Tenant
	if err := g.st.Tx(ctx, func(tx store.SystemTx) (err error) { tenants, err = tx.ListTenants(); return err }); err != nil {
		return err
	}
	for _, t := range tenants {
		p := vaultcrux.Principal{Tenant: t.ID, ID: "operator:" + actor}
		if _, err := g.commit(ctx, p, kind, "shield-kill-switch:"+id, details, nil); err != nil {
			return err
		}
	}
	return nil
}

// Setting is one of SHIELD_MODE and the nine flags, effective for a
// tenant.
type Setting struct {
	Name       string `json:"name"`
	Value      string `json:"value"`
	Default    string `json:"default"`
	Overridden bool   `json:"overridden"`
}

// Settings returns the tenant's effective settings, in the contract's
// order.
func (g *Gate) Settings(ctx context.Context, t vaultcrux.TenantID) ([]Setting, error) {
	s, err := g.state(ctx, t)
	if err != nil {
		return nil, err
	}
	out := []Setting{{Name: "SHIELD_MODE", Default: string(g.mode)}}
	for _, name := range shield.FlagNames() {
		on, _ := g.flags.Get(name)
		out = append(out, Setting{Name: name, Default: strconv.FormatBool(on)})
	}
	for i := range out {
		v, ok := s.settings[out[i].Name]
		out[i].Overridden = ok
		if ok {
			out[i].Value = v
		} else {
			out[i].Value = out[i].Default
		}
	}
	return out, nil
}

// SetSetting overrides SHIELD_MODE ("observe"/"enforce") or a flag
// ("true"/"false") for the tenant; value "" removes the override.
func (g *Gate) SetSetting(ctx context.Context, p vaultcrux.Principal, name, value string) (receiptID string, err error) {
	defer vaultcrux.Wrap(&err, "gate.SetSetting")
	switch {
	case name == "SHIELD_MODE":
		if value != "" && value != "observe" && value != "enforce" {
			return "", vaultcrux.E(vaultcrux.Invalid, `SHIELD_MODE is "observe" or "enforce"`)
		}
	case slices.Contains(shield.FlagNames(), name):
		if value != "" && value != "true" && value != "false" {
			return "", vaultcrux.Ef(vaultcrux.Invalid, `%s is "true" or "false"`, name)
		}
	default:
		return "", vaultcrux.E(vaultcrux.Invalid, "the setting is neither SHIELD_MODE nor a Shield FEATURE_* flag")
	}
	s, err := g.state(ctx, p.Tenant)
	if err != nil {
		return "", err
	}
	prev, had := s.settings[name]
	details := map[string]any{"name": name, "value": value, "previous": prev, "overridden": value != ""}
	if !had {
		details["previous"] = nil
	}
	now := g.clock()
	rid, err := g.commit(ctx, p, "shield.setting.changed", "shield-setting:"+name, details, func(tx store.TenantTx) error {
		if value == "" {
			err := tx.DeleteShieldSetting(name)
			if vaultcrux.ErrorKind(err) == vaultcrux.NotFound {
				return vaultcrux.E(vaultcrux.NotFound, "the setting has no override")
			}
			return err
		}
		return tx.SetShieldSetting(&store.ShieldSetting{Name: name, Value: value, UpdatedBy: p.ID, UpdatedAt: now})
	})
	if err != nil {
		return "", err
	}
	g.refresh(ctx, p.Tenant, false)
	return rid, nil
}

// SamplingPolicy is a sampling policy as the API shows it.
type SamplingPolicy struct {
	ID        string  `json:"id"`
	Scope     string  `json:"scope"`
	Target    string  `json:"target"`
	MaxCalls  int     `json:"maxCalls"`
	WindowMs  int64   `json:"windowMs"`
	Per       string  `json:"per"`
	CreatedBy string  `json:"createdBy"`
	CreatedAt string  `json:"createdAt"`
	DeletedAt *string `json:"deletedAt"`
	ReceiptID string  `json:"receiptId,omitempty"`
}

func samplingView(s *store.SamplingPolicy) *SamplingPolicy {
	return &SamplingPolicy{ID: s.ID, Scope: s.Scope, Target: s.Target, MaxCalls: s.MaxCalls, WindowMs: s.WindowMs, Per: s.Per,
		CreatedBy: s.CreatedBy, CreatedAt: vaultcrux.FormatTime(s.CreatedAt), DeletedAt: optTime(s.DeletedAt)}
}

// CreateSamplingPolicy adds a sampling policy: at most maxCalls calls of a
// tool (scope "tool") or of a capability class (scope "class") per window,
// counted per agent or per tenant.
func (g *Gate) CreateSamplingPolicy(ctx context.Context, p vaultcrux.Principal, in *SamplingPolicy) (_ *SamplingPolicy, err error) {
	defer vaultcrux.Wrap(&err, "gate.CreateSamplingPolicy")
	id, err := g.newID()
	if err != nil {
		return nil, err
	}
	sp := &store.SamplingPolicy{ID: id, Scope: in.Scope, Target: in.Target, MaxCalls: in.MaxCalls, WindowMs: in.WindowMs, Per: in.Per, CreatedBy: p.ID, CreatedAt: g.clock()}
	if !store.ValidSamplingPolicy(sp) || !validRef(sp.Target) || sp.WindowMs > int64(30*24*time.Hour/time.Millisecond) {
		return nil, vaultcrux.E(vaultcrux.Invalid, `scope is "tool" or "class", per is "agent" or "tenant", target is required, maxCalls >= 0, windowMs between 1 and 30 days`)
	}
	x := shield.SamplingPolicy{ID: id, MaxCalls: sp.MaxCalls, Window: time.Duration(sp.WindowMs) * time.Millisecond, Per: shield.SamplingPer(sp.Per)}
	if sp.Scope == "tool" {
		x.Tool = sp.Target
	} else {
		x.Class = shield.CapabilityClass(sp.Target)
	}
	if err := (&shield.Policy{Mode: shield.ModeEnforce, Sampling: []shield.SamplingPolicy{x}}).Validate(); err != nil {
		return nil, vaultcrux.Ef(vaultcrux.Invalid, "invalid sampling policy: %s", vaultcrux.ErrorMessage(err))
	}
	rid, err := g.commit(ctx, p, "shield.sampling_policy.created", "shield-sampling-policy:"+id,
		map[string]any{"samplingPolicyId": id, "scope": sp.Scope, "target": sp.Target, "maxCalls": float64(sp.MaxCalls), "windowMs": float64(sp.WindowMs), "per": sp.Per},
		func(tx store.TenantTx) error { return tx.CreateSamplingPolicy(sp) })
	if err != nil {
		return nil, err
	}
	g.refresh(ctx, p.Tenant, false)
	v := samplingView(sp)
	v.ReceiptID = rid
	return v, nil
}

// ListSamplingPolicies lists the tenant's live sampling policies.
func (g *Gate) ListSamplingPolicies(ctx context.Context, t vaultcrux.TenantID) ([]*SamplingPolicy, error) {
	var ps []*store.SamplingPolicy
	err := g.read(ctx, t, func(tx store.TenantTx) (err error) { ps, err = tx.ListSamplingPolicies(); return err })
	out := make([]*SamplingPolicy, len(ps))
	for i, x := range ps {
		out[i] = samplingView(x)
	}
	return out, err
}

// DeleteSamplingPolicy removes a sampling policy.
func (g *Gate) DeleteSamplingPolicy(ctx context.Context, p vaultcrux.Principal, id string) (_ *SamplingPolicy, err error) {
	defer vaultcrux.Wrap(&err, "gate.DeleteSamplingPolicy")
	var out *store.SamplingPolicy
	rid, err := g.commit(ctx, p, "shield.sampling_policy.deleted", "shield-sampling-policy:"+id, map[string]any{"samplingPolicyId": id},
		func(tx store.TenantTx) (err error) { out, err = tx.DeleteSamplingPolicy(id, g.clock()); return err })
	if err != nil {
		return nil, notFoundAs(err, "sampling policy not found")
	}
	g.refresh(ctx, p.Tenant, false)
	v := samplingView(out)
	v.ReceiptID = rid
	return v, nil
}

// UISession is a UI integrity session as the API shows it.
type UISession struct {
	ID        string   `json:"id"`
	Origin    string   `json:"origin"`
	ToolAllow []string `json:"toolAllow"`
	CreatedBy string   `json:"createdBy"`
	CreatedAt string   `json:"createdAt"`
	ExpiresAt string   `json:"expiresAt"`
	RevokedAt *string  `json:"revokedAt"`
	ReceiptID string   `json:"receiptId,omitempty"`
}

func uiView(u *store.UISession) *UISession {
	return &UISession{ID: u.ID, Origin: u.Origin, ToolAllow: u.ToolAllow, CreatedBy: u.CreatedBy,
		CreatedAt: vaultcrux.FormatTime(u.CreatedAt), ExpiresAt: vaultcrux.FormatTime(u.ExpiresAt), RevokedAt: optTime(u.RevokedAt)}
}

// CreateUISession opens a UI integrity session: a tool UI served from
// origin may call the tools in toolAllow ("tool" or "serverId/tool") for
// ttl (at most 24 h).
func (g *Gate) CreateUISession(ctx context.Context, p vaultcrux.Principal, origin string, toolAllow []string, ttl time.Duration) (_ *UISession, err error) {
	defer vaultcrux.Wrap(&err, "gate.CreateUISession")
	if !validOrigin(origin) || len(toolAllow) == 0 || len(toolAllow) > 100 || ttl <= 0 || ttl > 24*time.Hour {
		return nil, vaultcrux.E(vaultcrux.Invalid, "origin is an https (or loopback http) origin, toolAllow lists 1-100 tools, ttlSeconds is 1 to 86400")
	}
	for _, t := range toolAllow {
		if !validRef(t) {
			return nil, vaultcrux.E(vaultcrux.Invalid, "each toolAllow entry is 1-200 characters of A-Z a-z 0-9 ._:/@-")
		}
	}
	id, err := g.newID()
	if err != nil {
		return nil, err
	}
	now := g.clock()
	u := &store.UISession{ID: id, Origin: origin, ToolAllow: slices.Clone(toolAllow), CreatedBy: p.ID, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	tools := make([]any, len(toolAllow))
	for i, t := range toolAllow {
		tools[i] = t
	}
	rid, err := g.commit(ctx, p, "shield.ui_session.created", "shield-ui-session:"+id,
		map[string]any{"uiSessionId": id, "origin": origin, "toolAllow": tools, "expiresAt": vaultcrux.FormatTime(u.ExpiresAt)},
		func(tx store.TenantTx) error { return tx.CreateUISession(u) })
	if err != nil {
		return nil, err
	}
	v := uiView(u)
	v.ReceiptID = rid
	return v, nil
}

func validOrigin(o string) bool {
	u, err := url.Parse(o)
	if err != nil || len(o) > 300 || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || u.Host == "" {
		return false
	}
	if u.String() != o {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		h := u.Hostname()
		return h == "localhost" || h == "127.0.0.1" || h == "::1"
	}
	return false
}

// RevokeUISession ends a UI integrity session.
func (g *Gate) RevokeUISession(ctx context.Context, p vaultcrux.Principal, id string) (_ *UISession, err error) {
	defer vaultcrux.Wrap(&err, "gate.RevokeUISession")
	var out *store.UISession
	rid, err := g.commit(ctx, p, "shield.ui_session.revoked", "shield-ui-session:"+id, map[string]any{"uiSessionId": id},
		func(tx store.TenantTx) (err error) { out, err = tx.RevokeUISession(id, g.clock()); return err })
	if err != nil {
		return nil, notFoundAs(err, "UI integrity session not found")
	}
	v := uiView(out)
	v.ReceiptID = rid
	return v, nil
}

// ListUISessions lists UI integrity sessions by id after `after`.
func (g *Gate) ListUISessions(ctx context.Context, t vaultcrux.TenantID, after string, limit int) ([]*UISession, error) {
	var us []*store.UISession
	err := g.read(ctx, t, func(tx store.TenantTx) (err error) { us, err = tx.ListUISessions(after, limit); return err })
	out := make([]*UISession, len(us))
	for i, x := range us {
		out[i] = uiView(x)
	}
	return out, err
}

// Decision is a recorded decision as the API lists it.
type Decision struct {
	ID           string          `json:"decisionId"`
	Tool         string          `json:"tool"`
	Server       string          `json:"server"`
	Outcome      string          `json:"outcome"`
	Verdict      string          `json:"verdict"`
	Stage        string          `json:"stage"`
	DenialType   string          `json:"denialType,omitempty"`
	Mode         string          `json:"mode"`
	Enforced     bool            `json:"enforced"`
	WouldBlock   bool            `json:"wouldBlock"`
	Tainted      bool            `json:"tainted"`
	ManifestHash string          `json:"manifestHash"`
	ArgsHash     string          `json:"argsHash"`
	ApprovalID   string          `json:"approvalId,omitempty"`
	AgentID      string          `json:"agentId,omitempty"`
	Actor        string          `json:"actor"`
	ReceiptID    string          `json:"receiptId"`
	Inputs       json.RawMessage `json:"inputs"`
	CreatedAt    string          `json:"createdAt"`
}

// ListDecisions lists decisions newest first, before the id `before`.
func (g *Gate) ListDecisions(ctx context.Context, t vaultcrux.TenantID, f store.DecisionFilter, before string, limit int) ([]*Decision, error) {
	var ds []*store.ShieldDecision
	err := g.read(ctx, t, func(tx store.TenantTx) (err error) { ds, err = tx.ListDecisions(f, before, limit); return err })
	out := make([]*Decision, len(ds))
	for i, d := range ds {
		out[i] = &Decision{ID: d.ID, Tool: d.Tool, Server: d.Server, Outcome: d.Outcome, Verdict: d.Verdict, Stage: d.Stage,
			DenialType: d.DenialType, Mode: d.Mode, Enforced: d.Enforced, WouldBlock: d.WouldBlock, Tainted: d.Tainted,
			ManifestHash: d.ManifestHash, ArgsHash: d.ArgsHash, ApprovalID: d.ApprovalID, AgentID: d.AgentID, Actor: d.Actor,
			ReceiptID: d.ReceiptID, Inputs: json.RawMessage(d.Inputs), CreatedAt: vaultcrux.FormatTime(d.CreatedAt)}
	}
	return out, err
}

// Drill is an incident drill as the API shows it.
type Drill struct {
	ID           string          `json:"id"`
	Scenario     string          `json:"scenario"`
	KillSwitchID string          `json:"killSwitchId,omitempty"`
	Result       string          `json:"result"`
	Details      json.RawMessage `json:"details"`
	StartedBy    string          `json:"startedBy"`
	StartedAt    string          `json:"startedAt"`
	FinishedAt   *string         `json:"finishedAt"`
	ReceiptID    string          `json:"receiptId,omitempty"`
}

func drillView(d *store.IncidentDrill) *Drill {
	v := &Drill{ID: d.ID, Scenario: d.Scenario, KillSwitchID: d.KillSwitchID, Result: d.Result, Details: json.RawMessage(d.Details),
		StartedBy: d.StartedBy, StartedAt: vaultcrux.FormatTime(d.StartedAt), FinishedAt: optTime(d.FinishedAt)}
	if len(v.Details) == 0 {
		v.Details = json.RawMessage("null")
	}
	return v
}

// DrillKillSwitch is the one drill scenario: arm a temporary kill switch
// on a drill agent, prove that it blocks that agent's call, release it,
// prove that the block is gone, and record the result.
const DrillKillSwitch = "kill_switch"

// RunDrill runs an incident drill. A drill that finds the containment
// broken (FEATURE_KILL_SWITCHES off, say) is recorded as failed, not
// returned as an error: that is what a drill is for.
func (g *Gate) RunDrill(ctx context.Context, p vaultcrux.Principal, scenario string) (_ *Drill, err error) {
	defer vaultcrux.Wrap(&err, "gate.RunDrill")
	if scenario == "" {
		scenario = DrillKillSwitch
	}
	if scenario != DrillKillSwitch {
		return nil, vaultcrux.E(vaultcrux.Invalid, `scenario must be "kill_switch"`)
	}
	probe := ""
	for _, t := range g.builtin {
		if t.Class == shield.ClassRead {
			probe = t.Name
			break
		}
	}
	if probe == "" {
		return nil, vaultcrux.E(vaultcrux.Conflict, "no built-in read tool to probe with")
	}
	id, err := g.newID()
	if err != nil {
		return nil, err
	}
	ctx = context.WithoutCancel(ctx) // a started drill always releases its switch
	agent := "vaultcrux-drill-" + id
	drill := &store.IncidentDrill{ID: id, Scenario: scenario, StartedBy: p.ID, StartedAt: g.clock()}
	ks, err := g.EngageKillSwitch(ctx, p, "agent", agent, "incident drill "+id)
	if err != nil {
		return nil, err
	}
	drill.KillSwitchID = ks.ID
	if err := g.read(ctx, p.Tenant, func(tx store.TenantTx) error { return tx.CreateIncidentDrill(drill) }); err != nil {
		_, _ = g.ReleaseKillSwitch(ctx, p, ks.ID)
		return nil, err
	}
	probeAs := vaultcrux.Principal{Tenant: p.Tenant, ID: p.ID, KeyID: p.KeyID, SeatID: p.SeatID, Role: p.Role, AgentID: agent}
	armed := g.Decide(ctx, &Call{Principal: probeAs, Server: shield.BuiltinServerID, Tool: probe, Route: "drill:" + id})
	_, relErr := g.ReleaseKillSwitch(ctx, p, ks.ID)
	released := g.Decide(ctx, &Call{Principal: probeAs, Server: shield.BuiltinServerID, Tool: probe, Route: "drill:" + id})

	blocked := armed.Recorded && armed.Decision.Outcome == shield.OutcomeDeny && armed.Decision.Enforced &&
		armed.Decision.DenialType == shield.DenialKillSwitchActive && armed.Decision.KillSwitchID == ks.ID
	cleared := relErr == nil && released.Recorded && released.Decision.Stage != shield.StageKillSwitch
	result := "passed"
	if !blocked || !cleared {
		result = "failed"
	}
	details := map[string]any{
		"probeTool": probe, "agentId": agent, "killSwitchId": ks.ID,
		"armedDecisionId": armed.DecisionID, "armedOutcome": string(armed.Decision.Outcome), "armedDenialType": string(armed.Decision.DenialType),
		"releasedDecisionId": released.DecisionID, "releasedOutcome": string(released.Decision.Outcome), "releasedStage": string(released.Decision.Stage),
		"blocked": blocked, "cleared": cleared, "result": result,
	}
	raw, err := json.Marshal(details)
	if err != nil {
		return nil, err
	}
	var out *store.IncidentDrill
	rid, err := g.commit(ctx, p, "shield.incident_drill.finished", "shield-incident-drill:"+id, details,
		func(tx store.TenantTx) (err error) {
			out, err = tx.FinishIncidentDrill(id, result, raw, g.clock())
			return err
		})
	if err != nil {
		return nil, err
	}
	v := drillView(out)
	v.ReceiptID = rid
	return v, nil
}

// ListDrills lists drills newest first, before the id `before`.
func (g *Gate) ListDrills(ctx context.Context, t vaultcrux.TenantID, before string, limit int) ([]*Drill, error) {
	var ds []*store.IncidentDrill
	err := g.read(ctx, t, func(tx store.TenantTx) (err error) { ds, err = tx.ListIncidentDrills(before, limit); return err })
	out := make([]*Drill, len(ds))
	for i, x := range ds {
		out[i] = drillView(x)
	}
	return out, err
}
