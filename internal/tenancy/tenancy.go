// Package tenancy provisions tenants, their API keys and their team seats.
// It is the one implementation behind the CLI (`vaultcrux tenant`,
// `vaultcrux key`), the first-start bootstrap, the /v1/keys routes and the
// /v1/org routes (seats.go), so that every path that creates or revokes a
// credential follows the same rules.
//
// A new key is returned once, as an apikey.Token, and never stored: the
// store keeps its id and keyed hash only.
//
// Every change is committed through the ledger together with its event
// receipt (tenant.created, apikey.created, apikey.revoked, and the seat
// kinds of seats.go): the change and its receipt are durable together or
// not at all. Receipt details hold ids and roles, never key material.
package tenancy

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/apikey"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// Event receipt kinds issued here.
const (
	KindTenantCreated = "tenant.created"
	KindKeyCreated    = "apikey.created"
	KindKeyRevoked    = "apikey.revoked"
)

// Provisioner creates tenants and keys.
type Provisioner struct {
	Store  store.Store
	Ledger *ledger.Ledger
	Hasher *apikey.Hasher
	Now    func() time.Time
	Rand   io.Reader
	// TenantSetup, when set, runs in the transaction that creates a
	// tenant, scoped to it: the evidence plane creates the tenant's
	// key-encryption key there, so that a tenant never exists without one.
	TenantSetup func(tx store.TenantTx, tenant vaultcrux.TenantID) error
}

// CreateTenant creates tenant id with an owner key labelled label, in one
// transaction: a tenant never exists without a way in.
func (p *Provisioner) CreateTenant(ctx context.Context, actor vaultcrux.Principal, id vaultcrux.TenantID, name string) (t *vaultcrux.Tenant, k *vaultcrux.APIKey, tok apikey.Token, receiptID string, err error) {
	defer vaultcrux.Wrap(&err, "tenancy.CreateTenant")
	if !vaultcrux.ValidTenantID(string(id)) {
		return nil, nil, tok, "", vaultcrux.E(vaultcrux.Invalid, "tenant id must be 1-63 characters of a-z, 0-9, '-' and '_', starting with a letter or digit")
	}
	if name == "" {
		name = string(id)
	}
	if err := checkLabel(name); err != nil {
		return nil, nil, tok, "", err
	}
	now := p.Now().UTC().Truncate(time.Millisecond)
	t = &vaultcrux.Tenant{ID: id, Name: name, CreatedAt: now}
	k, tok, err = p.newKey(id, "owner (created with tenant)", vaultcrux.RoleOwner, now)
	if err != nil {
		return nil, nil, tok, "", err
	}
	r, err := p.Ledger.Event(id, KindTenantCreated, actor, "tenant:"+string(id), map[string]any{
		"tenantId": string(id), "ownerKeyId": k.ID,
	})
	if err != nil {
		return nil, nil, tok, "", err
	}
	issued, err := p.Ledger.Commit(ctx, &ledger.Item{
		Tenant: id,
		System: func(tx store.SystemTx) error { return tx.CreateTenant(t, k) },
		Apply: func(tx store.TenantTx) error {
			if p.TenantSetup == nil {
				return nil
			}
			return p.TenantSetup(tx, id)
		},
		Receipts: []*receipt.Doc{r},
	})
	if err != nil {
		return nil, nil, tok, "", err
	}
	return t, k, tok, issued[0].ID, nil
}

// IssueKey creates a key with role and label in tenant id.
func (p *Provisioner) IssueKey(ctx context.Context, actor vaultcrux.Principal, tenant vaultcrux.TenantID, label string, role vaultcrux.Role) (k *vaultcrux.APIKey, tok apikey.Token, receiptID string, err error) {
	defer vaultcrux.Wrap(&err, "tenancy.IssueKey")
	if err := checkLabel(label); err != nil {
		return nil, tok, "", err
	}
	if _, ok := vaultcrux.ParseRole(string(role)); !ok {
		return nil, tok, "", vaultcrux.E(vaultcrux.Invalid, "role must be owner, admin, member or viewer")
	}
	k, tok, err = p.newKey(tenant, label, role, p.Now().UTC().Truncate(time.Millisecond))
	if err != nil {
		return nil, tok, "", err
	}
	r, err := p.Ledger.Event(tenant, KindKeyCreated, actor, "apikey:"+k.ID, map[string]any{
		"keyId": k.ID, "role": string(role),
	})
	if err != nil {
		return nil, tok, "", err
	}
	issued, err := p.Ledger.Commit(ctx, &ledger.Item{
		Tenant:   tenant,
		Apply:    func(tx store.TenantTx) error { return tx.CreateAPIKey(k) },
		Receipts: []*receipt.Doc{r},
	})
	if err != nil {
		return nil, tok, "", err
	}
	return k, tok, issued[0].ID, nil
}

// RevokeKey revokes key id and ends the frontdoor sessions opened with it
// (each with a "revoked" session event). Unless force is set, it refuses to revoke the
// tenant's last active owner key (409 last_owner): over the API that would
// lock the tenant out. The CLI, which has the data dir and can mint a new
// owner key, may force it.
//
// Revoking a key that is already revoked changes nothing and issues no
// receipt (receiptID is "").
func (p *Provisioner) RevokeKey(ctx context.Context, actor vaultcrux.Principal, tenant vaultcrux.TenantID, id string, force bool) (k *vaultcrux.APIKey, receiptID string, err error) {
	defer vaultcrux.Wrap(&err, "tenancy.RevokeKey")
	now := p.Now().UTC().Truncate(time.Millisecond)
	if !apikey.ValidID(id) {
		return nil, "", vaultcrux.E(vaultcrux.NotFound, "no such key")
	}
	r, err := p.Ledger.Event(tenant, KindKeyRevoked, actor, "apikey:"+id, map[string]any{
		"keyId": id, "forced": force,
	})
	if err != nil {
		return nil, "", err
	}
	item := &ledger.Item{Tenant: tenant, Receipts: []*receipt.Doc{r}}
	item.Apply = func(tx store.TenantTx) error {
		cur, err := tx.GetAPIKey(id)
		if err != nil {
			return err
		}
		if cur.Revoked() {
			k = cur
			return errAlreadyRevoked
		}
		if !force && cur.Role == vaultcrux.RoleOwner && !cur.Revoked() {
			owners, err := tx.LockActiveOwnerKeys()
			if err != nil {
				return err
			}
			if owners <= 1 {
				return vaultcrux.E(vaultcrux.LastOwner, "this is the tenant's last active owner key; create another owner key before revoking it")
			}
		}
		if k, err = tx.RevokeAPIKey(id, now); err != nil {
			return err
		}
		// The key's frontdoor sessions end with it.
		sessions, err := liveSessions(tx, now, func(s *vaultcrux.Session) bool { return s.KeyID == id })
		if err != nil {
			return err
		}
		if _, err := tx.RevokeKeySessions(id, now); err != nil {
			return err
		}
		return p.sessionEvents(tx, tenant, sessions, now, "revoked", "API key revoked by "+actor.ID)
	}
	issued, err := p.Ledger.Commit(ctx, item)
	if errors.Is(err, errAlreadyRevoked) {
		// Apply ran (and set k) before Commit returned its error.
		return k, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	return k, issued[0].ID, nil
}

// errAlreadyRevoked rolls back the receipt of a revocation that changes
// nothing; RevokeKey turns it into success.
var errAlreadyRevoked = errors.New("key already revoked")

func (p *Provisioner) newKey(tenant vaultcrux.TenantID, label string, role vaultcrux.Role, now time.Time) (*vaultcrux.APIKey, apikey.Token, error) {
	tok, err := apikey.Generate(p.Rand)
	if err != nil {
		return nil, tok, err
	}
	return &vaultcrux.APIKey{
		ID:        tok.ID,
		Tenant:    tenant,
		Label:     label,
		Role:      role,
		Hash:      p.Hasher.Hash(tok),
		CreatedAt: now,
	}, tok, nil
}

// checkLabel accepts 1-200 characters of printable UTF-8.
func checkLabel(s string) error {
	if s == "" || len(s) > 200 || !utf8.ValidString(s) {
		return vaultcrux.E(vaultcrux.Invalid, "label must be 1-200 characters of UTF-8")
	}
	if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return vaultcrux.E(vaultcrux.Invalid, "label must not contain control characters")
	}
	return nil
}
