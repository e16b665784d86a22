package postgres

import (
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaultcrux/vaultcrux"
)

func (t *tenantTx) CountSeats() (_ int, err error) {
	defer vaultcrux.Wrap(&err, "postgres.CountSeats")
	if err := t.enter(); err != nil {
		return 0, err
	}
	var n int
	err = t.tx.QueryRow(t.ctx, `SELECT count(*) FROM seats WHERE tenant_id = $1`, string(t.tenant)).Scan(&n)
	return n, err
}

// CreateSeat relies on the partial unique index on unrevoked emails: two
// concurrent creations of one email meet on it, and the second waits for
// the first to commit and then fails.
func (t *tenantTx) CreateSeat(s *vaultcrux.Seat, change *vaultcrux.SeatRoleChange) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.CreateSeat")
	if err := t.enter(); err != nil {
		return err
	}
	if err := checkSeat(t.tenant, s, change); err != nil {
		return err
	}
	_, err = t.tx.Exec(t.ctx,
		`INSERT INTO seats (tenant_id, seat_id, email, email_lower, role, created_at, revoked_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		string(t.tenant), s.ID, s.Email, emailKey(s.Email), string(s.Role), ms(s.CreatedAt), msPtr(s.RevokedAt))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "a seat with this id or email exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	case err != nil:
		return err
	}
	return t.insertRoleChange(change)
}

// checkSeat rejects what the schema would reject less clearly. A seat or
// change that does not fit together is a bug in the caller.
func checkSeat(tenant vaultcrux.TenantID, s *vaultcrux.Seat, change *vaultcrux.SeatRoleChange) error {
	if s.Tenant != tenant {
		return errors.New("seat tenant differs from the handle's tenant")
	}
	if _, ok := vaultcrux.ParseRole(string(s.Role)); !ok {
		return vaultcrux.E(vaultcrux.Invalid, "invalid role")
	}
	if s.ID == "" || s.Email == "" {
		return errors.New("seat without id or email")
	}
	if change == nil || change.SeatID != s.ID || change.OldRole != "" || change.NewRole != s.Role {
		return errors.New("seat creation without its role change")
	}
	return nil
}

// emailKey is the form in which emails are compared: the unique index on
// unrevoked seats is over it, so the folding is Go's, the same in both
// backends, not the database's lower().
func emailKey(email string) string { return strings.ToLower(email) }

func (t *tenantTx) insertRoleChange(c *vaultcrux.SeatRoleChange) error {
	if c.ID == "" {
		return errors.New("role change without id")
	}
	_, err := t.tx.Exec(t.ctx,
		`INSERT INTO seat_role_changes (tenant_id, `+roleChangeColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		string(t.tenant), c.ID, c.SeatID, nullString(string(c.OldRole)), string(c.NewRole), c.Actor, ms(c.At))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "role change id already exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "seat not found")
	}
	return err
}

func (t *tenantTx) GetSeat(id string) (_ *vaultcrux.Seat, err error) {
	defer vaultcrux.Wrap(&err, "postgres.GetSeat")
	if err := t.enter(); err != nil {
		return nil, err
	}
	return t.getSeat(id)
}

func (t *tenantTx) getSeat(id string) (*vaultcrux.Seat, error) {
	s, err := scanSeat(t.tx.QueryRow(t.ctx,
		`SELECT `+seatColumns+` FROM seats WHERE tenant_id = $1 AND seat_id = $2`, string(t.tenant), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "seat not found")
	}
	return s, err
}

func (t *tenantTx) ListSeats(after string, limit int) (_ []*vaultcrux.Seat, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListSeats")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "limit must be positive")
	}
	rows, err := t.tx.Query(t.ctx,
		`SELECT `+seatColumns+` FROM seats WHERE tenant_id = $1 AND seat_id > $2 ORDER BY seat_id LIMIT $3`,
		string(t.tenant), after, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanSeat)
}

// LockActiveOwnerSeats locks the rows it counts, as LockActiveOwnerKeys
// does: a concurrent demotion or revocation blocks on them and, READ
// COMMITTED, re-checks each locked row after the first commits, so it no
// longer counts a seat that just stopped being an active owner.
func (t *tenantTx) LockActiveOwnerSeats() (_ int, err error) {
	defer vaultcrux.Wrap(&err, "postgres.LockActiveOwnerSeats")
	if err := t.enter(); err != nil {
		return 0, err
	}
	var n int
	err = t.tx.QueryRow(t.ctx, `SELECT count(*) FROM (
			SELECT 1 FROM seats
			WHERE tenant_id = $1 AND role = 'owner' AND revoked_at IS NULL
			ORDER BY seat_id FOR UPDATE) AS owners`, string(t.tenant)).Scan(&n)
	return n, err
}

// ChangeSeatRole updates only a seat that still has change.OldRole, so
// that of two changes made from the same reading one fails instead of
// overwriting the other unseen: the second blocks on the row and, READ
// COMMITTED, re-checks the role after the first commits. Revoked keys and
// ended sessions keep the role they had: they record what was.
func (t *tenantTx) ChangeSeatRole(change *vaultcrux.SeatRoleChange) (_ *vaultcrux.Seat, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ChangeSeatRole")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if err := checkRoleChange(change); err != nil {
		return nil, err
	}
	s, err := scanSeat(t.tx.QueryRow(t.ctx,
		`UPDATE seats SET role = $1
		 WHERE tenant_id = $2 AND seat_id = $3 AND revoked_at IS NULL AND role = $4
		 RETURNING `+seatColumns,
		string(change.NewRole), string(t.tenant), change.SeatID, string(change.OldRole)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, t.roleChangeMiss(change.SeatID)
	}
	if err != nil {
		return nil, err
	}
	if err := t.insertRoleChange(change); err != nil {
		return nil, err
	}
	if err := t.setSeatCredentialRole(change.SeatID, change.NewRole); err != nil {
		return nil, err
	}
	return s, nil
}

// setSeatCredentialRole gives role to the unrevoked keys of a seat and to
// the unrevoked sessions opened with the seat or one of its keys. The
// caller holds the seat row's lock, which AttachKeyToSeat also needs, so
// no key joins the seat in between.
func (t *tenantTx) setSeatCredentialRole(seatID string, role vaultcrux.Role) error {
	if _, err := t.tx.Exec(t.ctx,
		`UPDATE api_keys SET role = $1 WHERE tenant_id = $2 AND seat_id = $3 AND revoked_at IS NULL`,
		string(role), string(t.tenant), seatID); err != nil {
		return err
	}
	_, err := t.tx.Exec(t.ctx,
		`UPDATE frontdoor_sessions SET role = $1
		 WHERE tenant_id = $2 AND revoked_at IS NULL AND (seat_id = $3 OR key_id IN (
		     SELECT key_id FROM api_keys WHERE tenant_id = $2 AND seat_id = $3))`,
		string(role), string(t.tenant), seatID)
	return err
}

// AttachKeyToSeat first takes a share lock on the seat row, so that a
// concurrent revocation or role change of the seat either commits before
// (and the seat is re-read) or waits until this transaction ends; a key
// can then neither join a revoked seat nor miss a role change.
func (t *tenantTx) AttachKeyToSeat(keyID, seatID string) (_ *vaultcrux.APIKey, err error) {
	defer vaultcrux.Wrap(&err, "postgres.AttachKeyToSeat")
	if err := t.enter(); err != nil {
		return nil, err
	}
	var role string
	err = t.tx.QueryRow(t.ctx,
		`SELECT role FROM seats WHERE tenant_id = $1 AND seat_id = $2 AND revoked_at IS NULL FOR SHARE`,
		string(t.tenant), seatID).Scan(&role)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, t.attachMiss(keyID) // the key's state is reported first, as in SQLite
	}
	if err != nil {
		return nil, err
	}
	k, err := scanKey(t.tx.QueryRow(t.ctx,
		`UPDATE api_keys SET seat_id = $1, role = $2
		 WHERE tenant_id = $3 AND key_id = $4 AND revoked_at IS NULL AND seat_id IS NULL
		 RETURNING `+keyColumns,
		seatID, role, string(t.tenant), keyID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, t.attachMiss(keyID)
	}
	if err != nil {
		return nil, err
	}
	if _, err := t.tx.Exec(t.ctx,
		`UPDATE frontdoor_sessions SET role = $1 WHERE tenant_id = $2 AND key_id = $3 AND revoked_at IS NULL`,
		role, string(t.tenant), keyID); err != nil {
		return nil, err
	}
	return k, nil
}

// attachMiss explains why AttachKeyToSeat updated no key.
func (t *tenantTx) attachMiss(keyID string) error {
	k, err := scanKey(t.tx.QueryRow(t.ctx,
		`SELECT `+keyColumns+` FROM api_keys WHERE tenant_id = $1 AND key_id = $2`, string(t.tenant), keyID))
	switch {
	case errors.Is(err, pgx.ErrNoRows) || err == nil && k.Revoked():
		return vaultcrux.E(vaultcrux.NotFound, "api key not found")
	case err != nil:
		return err
	case k.SeatID != "":
		return vaultcrux.E(vaultcrux.Conflict, "the key belongs to a seat already")
	}
	return vaultcrux.E(vaultcrux.NotFound, "seat not found")
}

func checkRoleChange(c *vaultcrux.SeatRoleChange) error {
	_, oldOK := vaultcrux.ParseRole(string(c.OldRole))
	_, newOK := vaultcrux.ParseRole(string(c.NewRole))
	if !oldOK || !newOK {
		return vaultcrux.E(vaultcrux.Invalid, "invalid role")
	}
	return nil
}

// roleChangeMiss explains why a role change updated no seat.
func (t *tenantTx) roleChangeMiss(seatID string) error {
	s, err := t.getSeat(seatID)
	switch {
	case err != nil:
		return err
	case s.Revoked():
		return vaultcrux.E(vaultcrux.NotFound, "seat not found")
	}
	return vaultcrux.E(vaultcrux.Conflict, "seat role has changed")
}

func (t *tenantTx) SeatRoleHistory(seatID string) (_ []*vaultcrux.SeatRoleChange, err error) {
	defer vaultcrux.Wrap(&err, "postgres.SeatRoleHistory")
	if err := t.enter(); err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(t.ctx,
		`SELECT `+roleChangeColumns+` FROM seat_role_changes
		 WHERE tenant_id = $1 AND seat_id = $2 ORDER BY at, change_id`, string(t.tenant), seatID)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanRoleChange)
}

// RevokeSeat also revokes sessions opened with one of the seat's keys
// whose row lacks the seat id, so that no session outlives its seat. The
// seat row is updated first: its lock keeps a concurrent revocation of
// the same seat out until this one commits.
func (t *tenantTx) RevokeSeat(id string, at time.Time) (_ *vaultcrux.Seat, err error) {
	defer vaultcrux.Wrap(&err, "postgres.RevokeSeat")
	if err := t.enter(); err != nil {
		return nil, err
	}
	s, err := scanSeat(t.tx.QueryRow(t.ctx,
		`UPDATE seats SET revoked_at = COALESCE(revoked_at, $1)
		 WHERE tenant_id = $2 AND seat_id = $3 RETURNING `+seatColumns,
		ms(at), string(t.tenant), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "seat not found")
	}
	if err != nil {
		return nil, err
	}
	if _, err := t.tx.Exec(t.ctx,
		`UPDATE frontdoor_sessions SET revoked_at = $1
		 WHERE tenant_id = $2 AND revoked_at IS NULL AND (seat_id = $3 OR key_id IN (
		     SELECT key_id FROM api_keys WHERE tenant_id = $2 AND seat_id = $3))`,
		ms(at), string(t.tenant), id); err != nil {
		return nil, err
	}
	if _, err := t.tx.Exec(t.ctx,
		`UPDATE api_keys SET revoked_at = $1 WHERE tenant_id = $2 AND seat_id = $3 AND revoked_at IS NULL`,
		ms(at), string(t.tenant), id); err != nil {
		return nil, err
	}
	return s, nil
}

func (t *tenantTx) CreateInvite(inv *vaultcrux.Invite) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.CreateInvite")
	if err := t.enter(); err != nil {
		return err
	}
	if err := checkInvite(t.tenant, inv); err != nil {
		return err
	}
	_, err = t.tx.Exec(t.ctx,
		`INSERT INTO invites (tenant_id, `+inviteColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		string(t.tenant), inv.ID, inv.Email, string(inv.Role), inv.TokenHash, inv.CreatedBy,
		ms(inv.CreatedAt), ms(inv.ExpiresAt), msPtr(inv.AcceptedAt), nullString(inv.SeatID))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "invite id or token already exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

func checkInvite(tenant vaultcrux.TenantID, inv *vaultcrux.Invite) error {
	if inv.Tenant != tenant {
		return errors.New("invite tenant differs from the handle's tenant")
	}
	if _, ok := vaultcrux.ParseRole(string(inv.Role)); !ok {
		return vaultcrux.E(vaultcrux.Invalid, "invalid role")
	}
	if inv.ID == "" || inv.Email == "" || len(inv.TokenHash) == 0 {
		return errors.New("invite without id, email or token hash")
	}
	if (inv.AcceptedAt == nil) != (inv.SeatID == "") {
		return errors.New("invite accepted without a seat or the other way round")
	}
	return nil
}

func (t *tenantTx) FindInvite(tokenHash []byte) (_ *vaultcrux.Invite, err error) {
	defer vaultcrux.Wrap(&err, "postgres.FindInvite")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if len(tokenHash) == 0 {
		return nil, vaultcrux.E(vaultcrux.NotFound, "invite not found")
	}
	inv, err := scanInvite(t.tx.QueryRow(t.ctx,
		`SELECT tenant_id, `+inviteColumns+` FROM invites WHERE tenant_id = $1 AND token_hash = $2`,
		string(t.tenant), tokenHash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "invite not found")
	}
	return inv, err
}

// AcceptInvite is one conditional update. Of two concurrent accepts, the
// second blocks on the row and, READ COMMITTED, re-checks accepted_at
// after the first commits, so it updates nothing. Only a miss runs a
// second query, to find out why.
func (t *tenantTx) AcceptInvite(tokenHash []byte, seatID string, now time.Time) (_ *vaultcrux.Invite, err error) {
	defer vaultcrux.Wrap(&err, "postgres.AcceptInvite")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if seatID == "" {
		return nil, errors.New("accept without a seat id")
	}
	if len(tokenHash) == 0 {
		return nil, vaultcrux.E(vaultcrux.NotFound, "invite not found")
	}
	inv, err := scanInvite(t.tx.QueryRow(t.ctx,
		`UPDATE invites SET accepted_at = $1, seat_id = $2
		 WHERE tenant_id = $3 AND token_hash = $4 AND accepted_at IS NULL AND expires_at > $1
		 RETURNING tenant_id, `+inviteColumns,
		ms(now), seatID, string(t.tenant), tokenHash))
	if !errors.Is(err, pgx.ErrNoRows) {
		return inv, err
	}
	inv, err = scanInvite(t.tx.QueryRow(t.ctx,
		`SELECT tenant_id, `+inviteColumns+` FROM invites WHERE tenant_id = $1 AND token_hash = $2`,
		string(t.tenant), tokenHash))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, vaultcrux.E(vaultcrux.NotFound, "invite not found")
	case err != nil:
		return nil, err
	case inv.AcceptedAt != nil:
		return nil, vaultcrux.E(vaultcrux.NotFound, "invite not found")
	}
	return nil, vaultcrux.E(vaultcrux.Invalid, "invite expired")
}

const seatColumns = `tenant_id, seat_id, email, role, created_at, revoked_at`

func scanSeat(row pgx.Row) (*vaultcrux.Seat, error) {
	var s vaultcrux.Seat
	var tenant, role string
	if err := row.Scan(&tenant, &s.ID, &s.Email, &role, &s.CreatedAt, &s.RevokedAt); err != nil {
		return nil, err
	}
	s.Tenant, s.Role = vaultcrux.TenantID(tenant), vaultcrux.Role(role)
	s.CreatedAt = s.CreatedAt.UTC()
	if s.RevokedAt != nil {
		*s.RevokedAt = s.RevokedAt.UTC()
	}
	return &s, nil
}

const roleChangeColumns = `change_id, seat_id, old_role, new_role, actor, at`

func scanRoleChange(row pgx.Row) (*vaultcrux.SeatRoleChange, error) {
	var c vaultcrux.SeatRoleChange
	var old *string
	var role string
	if err := row.Scan(&c.ID, &c.SeatID, &old, &role, &c.Actor, &c.At); err != nil {
		return nil, err
	}
	c.OldRole, c.NewRole = vaultcrux.Role(fromNull(old)), vaultcrux.Role(role)
	c.At = c.At.UTC()
	return &c, nil
}

const inviteColumns = `invite_id, email, role, token_hash, created_by, created_at, expires_at, accepted_at, seat_id`

// scanInvite reads tenant_id followed by inviteColumns.
func scanInvite(row pgx.Row) (*vaultcrux.Invite, error) {
	var inv vaultcrux.Invite
	var tenant, role string
	var seat *string
	if err := row.Scan(&tenant, &inv.ID, &inv.Email, &role, &inv.TokenHash, &inv.CreatedBy,
		&inv.CreatedAt, &inv.ExpiresAt, &inv.AcceptedAt, &seat); err != nil {
		return nil, err
	}
	inv.Tenant, inv.Role, inv.SeatID = vaultcrux.TenantID(tenant), vaultcrux.Role(role), fromNull(seat)
	inv.CreatedAt, inv.ExpiresAt = inv.CreatedAt.UTC(), inv.ExpiresAt.UTC()
	if inv.AcceptedAt != nil {
		*inv.AcceptedAt = inv.AcceptedAt.UTC()
	}
	return &inv, nil
}
