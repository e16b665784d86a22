package tenancy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/apikey"
	"github.com/vaultcrux/vaultcrux/internal/authz"
	"github.com/vaultcrux/vaultcrux/internal/ident"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// Team seats (contract §4). Every change is one ledger.Item: its rows and
// its event receipt commit together or not at all. A receipt is built and
// signed before the transaction runs, so each operation first reads what
// the receipt will say, and the transaction checks that it still holds
// (a seat's role, its credentials) before it writes; a change in between
// is a Conflict, or for revocation a retry. Receipts carry ids, roles and
// counts; an email only as "sha256:<hex>" of its lower-cased form; never a
// token, a key or a hash of either.
//
// Every seat change first takes the tenant's log lock (TenantTx.LogHead,
// which the receipt append takes anyway): seat changes of one tenant are
// then serialised across replicas, and always lock the log before the
// owner seats, so they cannot deadlock each other.

// Event receipt kinds issued for seats, invites and sessions.
const (
	KindSeatCreated     = "seat.created"
	KindSeatRoleChanged = "seat.role_changed"
	KindSeatRevoked     = "seat.revoked"
	KindInviteCreated   = "invite.created"
	KindInviteAccepted  = "invite.accepted"
	KindSessionRevoked  = "session.revoked"
)

var (
	// errInviteNotFound answers an unknown, used, malformed or other
	// tenant's token alike: a caller learns nothing about other invites.
	errInviteNotFound = vaultcrux.E(vaultcrux.NotFound, "invite not found or already used")
	// errInviteExpired is said only to a holder of this tenant's token.
	errInviteExpired = vaultcrux.E(vaultcrux.NotFound, "invite expired; ask for a new one")
	errSeatNotFound  = vaultcrux.E(vaultcrux.NotFound, "seat not found")
	errLastOwnerSeat = vaultcrux.E(vaultcrux.LastOwner, "this is the tenant's last owner seat; make another seat owner first")
	// errStale rolls back a revocation whose receipt no longer matches
	// what the transaction sees; RevokeSeat then starts over.
	errStale = errors.New("seat changed since it was read")
)

// BootstrapOwner creates the tenant's first seat, an owner with email, and
// makes the actor's API key that seat's key. It is refused (Conflict) once
// the tenant has any seat, revoked ones included: after that, owners come
// from invites and role changes only.
func (p *Provisioner) BootstrapOwner(ctx context.Context, actor vaultcrux.Principal, email string) (s *vaultcrux.Seat, receiptID string, err error) {
	defer vaultcrux.Wrap(&err, "tenancy.BootstrapOwner")
	if err := authz.Check(&actor, authz.KeysManage); err != nil {
		return nil, "", err
	}
	if actor.KeyID == "" {
		return nil, "", vaultcrux.E(vaultcrux.Invalid, "bootstrap-owner needs an API key to make the owner seat's")
	}
	if err := checkEmail(email); err != nil {
		return nil, "", err
	}
	now := p.now()
	id, err := ident.New(now, p.Rand)
	if err != nil {
		return nil, "", err
	}
	changeID, err := ident.New(now, p.Rand)
	if err != nil {
		return nil, "", err
	}
	s = &vaultcrux.Seat{ID: id, Tenant: actor.Tenant, Email: email, Role: vaultcrux.RoleOwner, CreatedAt: now}
	change := &vaultcrux.SeatRoleChange{ID: changeID, SeatID: id, NewRole: vaultcrux.RoleOwner, Actor: actor.ID, At: now}
	r, err := p.Ledger.Event(actor.Tenant, KindSeatCreated, actor, "seat:"+id, map[string]any{
		"seatId": id, "role": string(vaultcrux.RoleOwner), "emailHash": EmailHash(email),
		"keyId": actor.KeyID, "via": "bootstrap", "changeId": changeID,
	})
	if err != nil {
		return nil, "", err
	}
	issued, err := p.Ledger.Commit(ctx, &ledger.Item{
		Tenant:   actor.Tenant,
		Receipts: []*receipt.Doc{r},
		Apply: func(tx store.TenantTx) error {
			if _, err := tx.LogHead(); err != nil { // serialises bootstraps across replicas
				return err
			}
			n, err := tx.CountSeats()
			if err != nil {
				return err
			}
			if n > 0 {
				return vaultcrux.E(vaultcrux.Conflict, "the tenant has seats already; owners are made by invite or role change")
			}
			if err := tx.CreateSeat(s, change); err != nil {
				return err
			}
			_, err = tx.AttachKeyToSeat(actor.KeyID, id)
			return err
		},
	})
	if err != nil {
		return nil, "", err
	}
	return s, issued[0].ID, nil
}

// Invite creates a single-use invitation to join actor's tenant as a seat
// with role, valid for ttl. The invite row and its invite.created receipt
// commit together before the token is returned; only the token's keyed
// hash is stored. Admins may not invite owners.
func (p *Provisioner) Invite(ctx context.Context, actor vaultcrux.Principal, email string, role vaultcrux.Role, ttl time.Duration) (inv *vaultcrux.Invite, tok apikey.InviteToken, receiptID string, err error) {
	defer vaultcrux.Wrap(&err, "tenancy.Invite")
	if _, ok := vaultcrux.ParseRole(string(role)); !ok {
		return nil, tok, "", vaultcrux.E(vaultcrux.Invalid, "role must be owner, admin, member or viewer")
	}
	if err := authz.CheckSeatRoles(&actor, role); err != nil {
		return nil, tok, "", err
	}
	if err := checkEmail(email); err != nil {
		return nil, tok, "", err
	}
	if ttl <= 0 {
		return nil, tok, "", errors.New("invite ttl must be positive")
	}
	if tok, err = apikey.GenerateInvite(p.Rand); err != nil {
		return nil, tok, "", err
	}
	now := p.now()
	id, err := ident.New(now, p.Rand)
	if err != nil {
		return nil, tok, "", err
	}
	inv = &vaultcrux.Invite{
		ID: id, Tenant: actor.Tenant, Email: email, Role: role, TokenHash: p.Hasher.HashInvite(tok),
		CreatedBy: actor.ID, CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
	r, err := p.Ledger.Event(actor.Tenant, KindInviteCreated, actor, "invite:"+id, map[string]any{
		"inviteId": id, "role": string(role), "expiresAt": vaultcrux.FormatTime(inv.ExpiresAt), "emailHash": EmailHash(email),
	})
	if err != nil {
		return nil, tok, "", err
	}
	issued, err := p.Ledger.Commit(ctx, &ledger.Item{
		Tenant:   actor.Tenant,
		Receipts: []*receipt.Doc{r},
		Apply:    func(tx store.TenantTx) error { return tx.CreateInvite(inv) },
	})
	if err != nil {
		return nil, apikey.InviteToken{}, "", err
	}
	return inv, tok, issued[0].ID, nil
}

// Accepted is what accepting an invite made.
type Accepted struct {
	Seat   *vaultcrux.Seat
	Key    *vaultcrux.APIKey
	Token  apikey.Token // the seat's API key, to be shown once
	Invite *vaultcrux.Invite
	// ReceiptIDs are seat.created, invite.accepted and apikey.created, in
	// that order.
	ReceiptIDs []string
}

// AcceptInvite redeems token in tenant: it marks the invite accepted and
// creates the seat it names and an API key of that seat, atomically, so
// that of two concurrent accepts one wins. A malformed, unknown, used or
// other tenant's token is NotFound with one message; an expired one is
// NotFound saying so. An active seat with the same email is a Conflict,
// and the invite stays unused.
func (p *Provisioner) AcceptInvite(ctx context.Context, tenant vaultcrux.TenantID, token string) (a *Accepted, err error) {
	defer vaultcrux.Wrap(&err, "tenancy.AcceptInvite")
	it, err := apikey.ParseInvite(token)
	if err != nil || !vaultcrux.ValidTenantID(string(tenant)) {
		return nil, errInviteNotFound
	}
	hash := p.Hasher.HashInvite(it)
	now := p.now()
	var inv *vaultcrux.Invite
	err = p.Store.ForTenant(tenant).Tx(ctx, func(tx store.TenantTx) (err error) {
		inv, err = tx.FindInvite(hash)
		return err
	})
	switch {
	case vaultcrux.ErrorKind(err) == vaultcrux.NotFound:
		return nil, errInviteNotFound
	case err != nil:
		return nil, err
	case inv.AcceptedAt != nil:
		return nil, errInviteNotFound
	case !now.Before(inv.ExpiresAt):
		return nil, errInviteExpired
	}

	seatID, err := ident.New(now, p.Rand)
	if err != nil {
		return nil, err
	}
	changeID, err := ident.New(now, p.Rand)
	if err != nil {
		return nil, err
	}
	a = &Accepted{Invite: inv}
	a.Seat = &vaultcrux.Seat{ID: seatID, Tenant: tenant, Email: inv.Email, Role: inv.Role, CreatedAt: now}
	actor := vaultcrux.Principal{Tenant: tenant, ID: "seat:" + seatID, SeatID: seatID, Role: inv.Role}
	change := &vaultcrux.SeatRoleChange{ID: changeID, SeatID: seatID, NewRole: inv.Role, Actor: actor.ID, At: now}
	if a.Key, a.Token, err = p.newKey(tenant, "key of seat "+seatID, inv.Role, now); err != nil {
		return nil, err
	}
	a.Key.SeatID = seatID
	actor.KeyID = a.Key.ID

	var docs []*receipt.Doc
	for _, e := range []struct {
		kind, subject string
		details       map[string]any
	}{
		{KindSeatCreated, "seat:" + seatID, map[string]any{
			"seatId": seatID, "role": string(inv.Role), "emailHash": EmailHash(inv.Email),
			"keyId": a.Key.ID, "via": "invite", "inviteId": inv.ID, "changeId": changeID,
		}},
		{KindInviteAccepted, "invite:" + inv.ID, map[string]any{
			"inviteId": inv.ID, "seatId": seatID, "invitedBy": inv.CreatedBy,
		}},
		{KindKeyCreated, "apikey:" + a.Key.ID, map[string]any{
			"keyId": a.Key.ID, "role": string(inv.Role), "seatId": seatID,
		}},
	} {
		d, err := p.Ledger.Event(tenant, e.kind, actor, e.subject, e.details)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d)
	}
	issued, err := p.Ledger.Commit(ctx, &ledger.Item{
		Tenant:   tenant,
		Receipts: docs,
		Apply: func(tx store.TenantTx) error {
			got, err := tx.AcceptInvite(hash, seatID, now)
			switch {
			case vaultcrux.ErrorKind(err) == vaultcrux.NotFound:
				return errInviteNotFound // accepted meanwhile
			case vaultcrux.ErrorKind(err) == vaultcrux.Invalid:
				return errInviteExpired
			case err != nil:
				return err
			case got.ID != inv.ID || got.Role != inv.Role || got.Email != inv.Email:
				return errors.New("accepted invite differs from the one read")
			}
			if err := tx.CreateSeat(a.Seat, change); err != nil {
				if vaultcrux.ErrorKind(err) == vaultcrux.Conflict {
					return vaultcrux.E(vaultcrux.Conflict, "the tenant has an active seat with this email already")
				}
				return err
			}
			return tx.CreateAPIKey(a.Key)
		},
	})
	if err != nil {
		return nil, err
	}
	for _, is := range issued {
		a.ReceiptIDs = append(a.ReceiptIDs, is.ID)
	}
	return a, nil
}

// ListSeats returns up to limit seats of tenant ordered by id, after the
// id after, revoked ones included.
func (p *Provisioner) ListSeats(ctx context.Context, tenant vaultcrux.TenantID, after string, limit int) (seats []*vaultcrux.Seat, err error) {
	defer vaultcrux.Wrap(&err, "tenancy.ListSeats")
	err = p.Store.ForTenant(tenant).Tx(ctx, func(tx store.TenantTx) (err error) {
		seats, err = tx.ListSeats(after, limit)
		return err
	})
	return seats, err
}

// ChangeSeatRole gives seat seatID of actor's tenant the role role, as an
// append-only role change with a seat.role_changed receipt; the seat's
// keys and sessions take the new role in the same transaction. Admins may
// not change owners nor make them. Demoting the last active owner seat is
// LastOwner. A change to the role the seat has changes nothing and issues
// no receipt (receiptID ""). oldRole is the role before.
func (p *Provisioner) ChangeSeatRole(ctx context.Context, actor vaultcrux.Principal, seatID string, role vaultcrux.Role) (s *vaultcrux.Seat, oldRole vaultcrux.Role, receiptID string, err error) {
	defer vaultcrux.Wrap(&err, "tenancy.ChangeSeatRole")
	if _, ok := vaultcrux.ParseRole(string(role)); !ok {
		return nil, "", "", vaultcrux.E(vaultcrux.Invalid, "role must be owner, admin, member or viewer")
	}
	if err := authz.Check(&actor, authz.SeatsManage); err != nil {
		return nil, "", "", err
	}
	cur, err := p.activeSeat(ctx, actor.Tenant, seatID)
	if err != nil {
		return nil, "", "", err
	}
	if err := authz.CheckSeatRoles(&actor, cur.Role, role); err != nil {
		return nil, "", "", err
	}
	if cur.Role == role {
		return cur, role, "", nil
	}
	now := p.now()
	changeID, err := ident.New(now, p.Rand)
	if err != nil {
		return nil, "", "", err
	}
	change := &vaultcrux.SeatRoleChange{ID: changeID, SeatID: seatID, OldRole: cur.Role, NewRole: role, Actor: actor.ID, At: now}
	r, err := p.Ledger.Event(actor.Tenant, KindSeatRoleChanged, actor, "seat:"+seatID, map[string]any{
		"seatId": seatID, "oldRole": string(cur.Role), "newRole": string(role), "changeId": changeID,
	})
	if err != nil {
		return nil, "", "", err
	}
	issued, err := p.Ledger.Commit(ctx, &ledger.Item{
		Tenant:   actor.Tenant,
		Receipts: []*receipt.Doc{r},
		Apply: func(tx store.TenantTx) error {
			if _, err := tx.LogHead(); err != nil {
				return err
			}
			owners, err := tx.LockActiveOwnerSeats()
			if err != nil {
				return err
			}
			seat, err := tx.GetSeat(seatID)
			switch {
			case vaultcrux.ErrorKind(err) == vaultcrux.NotFound || err == nil && seat.Revoked():
				return errSeatNotFound
			case err != nil:
				return err
			case seat.Role != cur.Role:
				return vaultcrux.E(vaultcrux.Conflict, "the seat's role changed meanwhile; reload it and try again")
			case cur.Role == vaultcrux.RoleOwner && owners <= 1:
				return errLastOwnerSeat
			}
			s, err = tx.ChangeSeatRole(change)
			return err
		},
	})
	if err != nil {
		return nil, "", "", err
	}
	return s, cur.Role, issued[0].ID, nil
}

// RevokeSeat revokes seat seatID of actor's tenant and, in the same
// transaction, its API keys and the sessions opened with it, recording a
// "revoked" session event for each session it ends and a seat.revoked
// receipt that counts them. Admins may not revoke owners; revoking the
// last active owner seat is LastOwner. Revoking a revoked seat changes
// nothing and issues no receipt (receiptID "").
func (p *Provisioner) RevokeSeat(ctx context.Context, actor vaultcrux.Principal, seatID string) (s *vaultcrux.Seat, receiptID string, err error) {
	defer vaultcrux.Wrap(&err, "tenancy.RevokeSeat")
	if err := authz.Check(&actor, authz.SeatsManage); err != nil {
		return nil, "", err
	}
	// The receipt counts what the transaction revokes; if a key or a
	// session appears or ends in between, read again.
	for range 3 {
		s, receiptID, err = p.revokeSeat(ctx, actor, seatID)
		if !errors.Is(err, errStale) {
			return s, receiptID, err
		}
	}
	return nil, "", vaultcrux.E(vaultcrux.Conflict, "the seat kept changing while being revoked; try again")
}

func (p *Provisioner) revokeSeat(ctx context.Context, actor vaultcrux.Principal, seatID string) (*vaultcrux.Seat, string, error) {
	now := p.now()
	var cur *vaultcrux.Seat
	var creds seatCreds
	err := p.Store.ForTenant(actor.Tenant).Tx(ctx, func(tx store.TenantTx) (err error) {
		if cur, err = tx.GetSeat(seatID); err != nil {
			return err
		}
		creds, err = liveSeatCreds(tx, seatID, now)
		return err
	})
	switch {
	case vaultcrux.ErrorKind(err) == vaultcrux.NotFound:
		return nil, "", errSeatNotFound
	case err != nil:
		return nil, "", err
	case cur.Revoked():
		return cur, "", nil
	}
	if err := authz.CheckSeatRoles(&actor, cur.Role); err != nil {
		return nil, "", err
	}
	r, err := p.Ledger.Event(actor.Tenant, KindSeatRevoked, actor, "seat:"+seatID, map[string]any{
		"seatId": seatID, "role": string(cur.Role),
		"revokedKeys": len(creds.keys), "endedSessions": len(creds.sessions),
	})
	if err != nil {
		return nil, "", err
	}
	var s *vaultcrux.Seat
	issued, err := p.Ledger.Commit(ctx, &ledger.Item{
		Tenant:   actor.Tenant,
		Receipts: []*receipt.Doc{r},
		Apply: func(tx store.TenantTx) error {
			if _, err := tx.LogHead(); err != nil {
				return err
			}
			owners, err := tx.LockActiveOwnerSeats()
			if err != nil {
				return err
			}
			seat, err := tx.GetSeat(seatID)
			if err != nil {
				return err
			}
			if seat.Revoked() || seat.Role != cur.Role {
				return errStale
			}
			if seat.Role == vaultcrux.RoleOwner && owners <= 1 {
				return errLastOwnerSeat
			}
			got, err := liveSeatCreds(tx, seatID, now)
			if err != nil {
				return err
			}
			if !got.same(creds) {
				return errStale
			}
			if s, err = tx.RevokeSeat(seatID, now); err != nil {
				return err
			}
			return p.sessionEvents(tx, actor.Tenant, creds.sessions, now, "revoked", "seat revoked by "+actor.ID)
		},
	})
	if err != nil {
		return nil, "", err
	}
	return s, issued[0].ID, nil
}

// RevokeSession ends frontdoor session id of actor's tenant, with a
// "revoked" session event and a session.revoked receipt. Admins may not
// end an owner's session. Ending an ended session changes nothing and
// issues no receipt (receiptID "").
func (p *Provisioner) RevokeSession(ctx context.Context, actor vaultcrux.Principal, id string) (sess *vaultcrux.Session, receiptID string, err error) {
	defer vaultcrux.Wrap(&err, "tenancy.RevokeSession")
	if err := authz.Check(&actor, authz.SeatsManage); err != nil {
		return nil, "", err
	}
	notFound := vaultcrux.E(vaultcrux.NotFound, "session not found")
	var key *vaultcrux.APIKey
	err = p.Store.ForTenant(actor.Tenant).Tx(ctx, func(tx store.TenantTx) (err error) {
		if sess, err = tx.GetSession(id); err != nil {
			return err
		}
		key, err = tx.GetAPIKey(sess.KeyID)
		return err
	})
	switch {
	case vaultcrux.ErrorKind(err) == vaultcrux.NotFound:
		return nil, "", notFound
	case err != nil:
		return nil, "", err
	case sess.RevokedAt != nil:
		return sess, "", nil
	}
	// The role a session acts with is its key's current role.
	if err := authz.CheckSeatRoles(&actor, key.Role); err != nil {
		return nil, "", err
	}
	now := p.now()
	r, err := p.Ledger.Event(actor.Tenant, KindSessionRevoked, actor, "session:"+id, map[string]any{
		"sessionId": id, "keyId": sess.KeyID, "seatId": key.SeatID, "role": string(key.Role),
	})
	if err != nil {
		return nil, "", err
	}
	issued, err := p.Ledger.Commit(ctx, &ledger.Item{
		Tenant:   actor.Tenant,
		Receipts: []*receipt.Doc{r},
		Apply: func(tx store.TenantTx) error {
			cur, err := tx.GetSession(id)
			if err != nil {
				return err
			}
			if cur.RevokedAt != nil {
				sess = cur
				return errAlreadyRevoked
			}
			if sess, err = tx.RevokeSession(id, now); err != nil {
				return err
			}
			return p.sessionEvents(tx, actor.Tenant, []string{id}, now, "revoked", "ended by "+actor.ID)
		},
	})
	if errors.Is(err, errAlreadyRevoked) {
		return sess, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	return sess, issued[0].ID, nil
}

// activeSeat reads an unrevoked seat; a revoked or unknown one is NotFound.
func (p *Provisioner) activeSeat(ctx context.Context, tenant vaultcrux.TenantID, id string) (s *vaultcrux.Seat, err error) {
	err = p.Store.ForTenant(tenant).Tx(ctx, func(tx store.TenantTx) (err error) {
		s, err = tx.GetSeat(id)
		return err
	})
	switch {
	case vaultcrux.ErrorKind(err) == vaultcrux.NotFound || err == nil && s.Revoked():
		return nil, errSeatNotFound
	case err != nil:
		return nil, err
	}
	return s, nil
}

// seatCreds are the unrevoked keys of a seat and the live sessions opened
// with the seat or one of its keys (unrevoked, before absolute expiry):
// what revoking the seat ends.
type seatCreds struct {
	keys, sessions []string // ids, in store order
}

func (c seatCreds) same(o seatCreds) bool {
	return strings.Join(c.keys, ",") == strings.Join(o.keys, ",") && strings.Join(c.sessions, ",") == strings.Join(o.sessions, ",")
}

// pageSize is the page in which credentials are listed.
const pageSize = 500

func liveSeatCreds(tx store.TenantTx, seatID string, now time.Time) (c seatCreds, err error) {
	seatKeys := map[string]bool{}
	for after := ""; ; {
		keys, err := tx.ListAPIKeys(after, pageSize)
		if err != nil {
			return c, err
		}
		for _, k := range keys {
			if k.SeatID != seatID {
				continue
			}
			seatKeys[k.ID] = true
			if !k.Revoked() {
				c.keys = append(c.keys, k.ID)
			}
		}
		if len(keys) < pageSize {
			break
		}
		after = keys[len(keys)-1].ID
	}
	c.sessions, err = liveSessions(tx, now, func(s *vaultcrux.Session) bool { return s.SeatID == seatID || seatKeys[s.KeyID] })
	return c, err
}

// liveSessions returns the ids of the unrevoked sessions before absolute
// expiry that match.
func liveSessions(tx store.TenantTx, now time.Time, match func(*vaultcrux.Session) bool) ([]string, error) {
	var ids []string
	for after := ""; ; {
		ss, err := tx.ListActiveSessions(now, after, pageSize)
		if err != nil {
			return nil, err
		}
		for _, s := range ss {
			if match(s) {
				ids = append(ids, s.ID)
			}
		}
		if len(ss) < pageSize {
			return ids, nil
		}
		after = ss[len(ss)-1].ID
	}
}

// sessionEvents appends one session event of kind per session id.
func (p *Provisioner) sessionEvents(tx store.TenantTx, tenant vaultcrux.TenantID, ids []string, now time.Time, kind, detail string) error {
	for _, sid := range ids {
		eid, err := ident.New(now, p.Rand)
		if err != nil {
			return err
		}
		if err := tx.AddSessionEvent(&vaultcrux.SessionEvent{
			ID: eid, Tenant: tenant, SessionID: sid, Kind: kind, At: now, Detail: detail,
		}); err != nil {
			return err
		}
	}
	return nil
}

func (p *Provisioner) now() time.Time { return p.Now().UTC().Truncate(time.Millisecond) }

// EmailHash is how receipts name an email: "sha256:" and the hex SHA-256
// of its lower-cased form. It identifies an address that is already known
// without writing it into the tamper-evident (and never redactable) log.
func EmailHash(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(email)))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// checkEmail accepts a bare address (local@domain, no display name, no
// angle brackets) of at most 254 bytes of printable UTF-8.
func checkEmail(email string) error {
	bad := vaultcrux.E(vaultcrux.Invalid, "email must be a plain address such as ann@example.com")
	if email == "" || len(email) > 254 || !utf8.ValidString(email) ||
		strings.IndexFunc(email, func(r rune) bool { return r <= 0x20 || r == 0x7f }) >= 0 {
		return bad
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Name != "" || a.Address != email {
		return bad
	}
	return nil
}
