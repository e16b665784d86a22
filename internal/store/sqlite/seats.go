package sqlite

import (
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/vaultcrux/vaultcrux"
)

func (t *tenantTx) CountSeats() (_ int, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.CountSeats")
	if err := t.enter(); err != nil {
		return 0, err
	}
	var n int
	err = t.tx.QueryRowContext(t.ctx, `SELECT count(*) FROM seats WHERE tenant_id = ?`, t.tenant).Scan(&n)
	return n, err
}

func (t *tenantTx) CreateSeat(s *vaultcrux.Seat, change *vaultcrux.SeatRoleChange) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.CreateSeat")
	if err := t.enter(); err != nil {
		return err
	}
	if err := checkSeat(t.tenant, s, change); err != nil {
		return err
	}
	_, err = t.tx.ExecContext(t.ctx,
		`INSERT INTO seats (tenant_id, seat_id, email, email_lower, role, created_at, revoked_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.tenant, s.ID, s.Email, emailKey(s.Email), string(s.Role), millis(s.CreatedAt), nullMillis(s.RevokedAt))
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
// unrevoked seats is over it, so the folding is Go's, not SQLite's
// ASCII-only lower().
func emailKey(email string) string { return strings.ToLower(email) }

func (t *tenantTx) insertRoleChange(c *vaultcrux.SeatRoleChange) error {
	if c.ID == "" {
		return errors.New("role change without id")
	}
	_, err := t.tx.ExecContext(t.ctx,
		`INSERT INTO seat_role_changes (tenant_id, `+roleChangeColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.tenant, c.ID, c.SeatID, nullString(string(c.OldRole)), string(c.NewRole), c.Actor, millis(c.At))
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "role change id already exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "seat not found")
	}
	return err
}

func (t *tenantTx) GetSeat(id string) (_ *vaultcrux.Seat, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.GetSeat")
	if err := t.enter(); err != nil {
		return nil, err
	}
	return t.getSeat(id)
}

func (t *tenantTx) getSeat(id string) (*vaultcrux.Seat, error) {
	s, err := scanSeat(t.tx.QueryRowContext(t.ctx,
		`SELECT `+seatColumns+` FROM seats WHERE tenant_id = ? AND seat_id = ?`, t.tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "seat not found")
	}
	return s, err
}

func (t *tenantTx) ListSeats(after string, limit int) (_ []*vaultcrux.Seat, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListSeats")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "limit must be positive")
	}
	rows, err := t.tx.QueryContext(t.ctx,
		`SELECT `+seatColumns+` FROM seats WHERE tenant_id = ? AND seat_id > ? ORDER BY seat_id LIMIT ?`,
		t.tenant, after, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanSeat)
}

// LockActiveOwnerSeats needs no row locks, as LockActiveOwnerKeys: the
// transaction holds the database's write lock.
func (t *tenantTx) LockActiveOwnerSeats() (_ int, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.LockActiveOwnerSeats")
	if err := t.enter(); err != nil {
		return 0, err
	}
	var n int
	err = t.tx.QueryRowContext(t.ctx,
		`SELECT count(*) FROM seats WHERE tenant_id = ? AND role = 'owner' AND revoked_at IS NULL`,
		t.tenant).Scan(&n)
	return n, err
}

// ChangeSeatRole updates only a seat that still has change.OldRole, so
// that of two changes made from the same reading one fails instead of
// overwriting the other unseen. Revoked keys and ended sessions keep the
// role they had: they record what was.
func (t *tenantTx) ChangeSeatRole(change *vaultcrux.SeatRoleChange) (_ *vaultcrux.Seat, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ChangeSeatRole")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if err := checkRoleChange(change); err != nil {
		return nil, err
	}
	s, err := scanSeat(t.tx.QueryRowContext(t.ctx,
		`UPDATE seats SET role = ?
		 WHERE tenant_id = ? AND seat_id = ? AND revoked_at IS NULL AND role = ?
		 RETURNING `+seatColumns,
		string(change.NewRole), t.tenant, change.SeatID, string(change.OldRole)))
	if errors.Is(err, sql.ErrNoRows) {
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
// the unrevoked sessions opened with the seat or one of its keys.
func (t *tenantTx) setSeatCredentialRole(seatID string, role vaultcrux.Role) error {
	if _, err := t.tx.ExecContext(t.ctx,
		`UPDATE api_keys SET role = ? WHERE tenant_id = ? AND seat_id = ? AND revoked_at IS NULL`,
		string(role), t.tenant, seatID); err != nil {
		return err
	}
	_, err := t.tx.ExecContext(t.ctx,
		`UPDATE frontdoor_sessions SET role = ?1
		 WHERE tenant_id = ?2 AND revoked_at IS NULL AND (seat_id = ?3 OR key_id IN (
		     SELECT key_id FROM api_keys WHERE tenant_id = ?2 AND seat_id = ?3))`,
		string(role), t.tenant, seatID)
	return err
}

// AttachKeyToSeat is one conditional update; only a miss runs the
// queries that find out why.
func (t *tenantTx) AttachKeyToSeat(keyID, seatID string) (_ *vaultcrux.APIKey, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.AttachKeyToSeat")
	if err := t.enter(); err != nil {
		return nil, err
	}
	k, err := scanKey(t.tx.QueryRowContext(t.ctx,
		`UPDATE api_keys SET seat_id = ?2,
		     role = (SELECT role FROM seats WHERE tenant_id = ?1 AND seat_id = ?2)
		 WHERE tenant_id = ?1 AND key_id = ?3 AND revoked_at IS NULL AND seat_id IS NULL
		   AND EXISTS (SELECT 1 FROM seats WHERE tenant_id = ?1 AND seat_id = ?2 AND revoked_at IS NULL)
		 RETURNING `+keyColumns,
		t.tenant, seatID, keyID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, t.attachMiss(keyID)
	}
	if err != nil {
		return nil, err
	}
	if _, err := t.tx.ExecContext(t.ctx,
		`UPDATE frontdoor_sessions SET role = ? WHERE tenant_id = ? AND key_id = ? AND revoked_at IS NULL`,
		string(k.Role), t.tenant, keyID); err != nil {
		return nil, err
	}
	return k, nil
}

// attachMiss explains why AttachKeyToSeat updated no key.
func (t *tenantTx) attachMiss(keyID string) error {
	k, err := scanKey(t.tx.QueryRowContext(t.ctx,
		`SELECT `+keyColumns+` FROM api_keys WHERE tenant_id = ? AND key_id = ?`, t.tenant, keyID))
	switch {
	case errors.Is(err, sql.ErrNoRows) || err == nil && k.Revoked():
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
	defer vaultcrux.Wrap(&err, "sqlite.SeatRoleHistory")
	if err := t.enter(); err != nil {
		return nil, err
	}
	rows, err := t.tx.QueryContext(t.ctx,
		`SELECT `+roleChangeColumns+` FROM seat_role_changes
		 WHERE tenant_id = ? AND seat_id = ? ORDER BY at, change_id`, t.tenant, seatID)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanRoleChange)
}

// RevokeSeat also revokes sessions opened with one of the seat's keys
// whose row lacks the seat id, so that no session outlives its seat.
func (t *tenantTx) RevokeSeat(id string, at time.Time) (_ *vaultcrux.Seat, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.RevokeSeat")
	if err := t.enter(); err != nil {
		return nil, err
	}
	s, err := scanSeat(t.tx.QueryRowContext(t.ctx,
		`UPDATE seats SET revoked_at = COALESCE(revoked_at, ?)
		 WHERE tenant_id = ? AND seat_id = ? RETURNING `+seatColumns,
		millis(at), t.tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "seat not found")
	}
	if err != nil {
		return nil, err
	}
	if _, err := t.tx.ExecContext(t.ctx,
		`UPDATE frontdoor_sessions SET revoked_at = ?1
		 WHERE tenant_id = ?2 AND revoked_at IS NULL AND (seat_id = ?3 OR key_id IN (
		     SELECT key_id FROM api_keys WHERE tenant_id = ?2 AND seat_id = ?3))`,
		millis(at), t.tenant, id); err != nil {
		return nil, err
	}
	if _, err := t.tx.ExecContext(t.ctx,
		`UPDATE api_keys SET revoked_at = ? WHERE tenant_id = ? AND seat_id = ? AND revoked_at IS NULL`,
		millis(at), t.tenant, id); err != nil {
		return nil, err
	}
	return s, nil
}

func (t *tenantTx) CreateInvite(inv *vaultcrux.Invite) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.CreateInvite")
	if err := t.enter(); err != nil {
		return err
	}
	if err := checkInvite(t.tenant, inv); err != nil {
		return err
	}
	_, err = t.tx.ExecContext(t.ctx,
		`INSERT INTO invites (tenant_id, `+inviteColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.tenant, inv.ID, inv.Email, string(inv.Role), inv.TokenHash, inv.CreatedBy,
		millis(inv.CreatedAt), millis(inv.ExpiresAt), nullMillis(inv.AcceptedAt), nullString(inv.SeatID))
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
	defer vaultcrux.Wrap(&err, "sqlite.FindInvite")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if len(tokenHash) == 0 {
		return nil, vaultcrux.E(vaultcrux.NotFound, "invite not found")
	}
	inv, err := scanInvite(t.tx.QueryRowContext(t.ctx,
		`SELECT tenant_id, `+inviteColumns+` FROM invites WHERE tenant_id = ? AND token_hash = ?`,
		t.tenant, tokenHash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "invite not found")
	}
	return inv, err
}

// AcceptInvite is one conditional update; the write lock of the
// transaction makes it atomic. Only when it misses does a second query
// find out why.
func (t *tenantTx) AcceptInvite(tokenHash []byte, seatID string, now time.Time) (_ *vaultcrux.Invite, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.AcceptInvite")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if seatID == "" {
		return nil, errors.New("accept without a seat id")
	}
	if len(tokenHash) == 0 {
		return nil, vaultcrux.E(vaultcrux.NotFound, "invite not found")
	}
	inv, err := scanInvite(t.tx.QueryRowContext(t.ctx,
		`UPDATE invites SET accepted_at = ?1, seat_id = ?2
		 WHERE tenant_id = ?3 AND token_hash = ?4 AND accepted_at IS NULL AND expires_at > ?1
		 RETURNING tenant_id, `+inviteColumns,
		millis(now), seatID, t.tenant, tokenHash))
	if !errors.Is(err, sql.ErrNoRows) {
		return inv, err
	}
	inv, err = scanInvite(t.tx.QueryRowContext(t.ctx,
		`SELECT tenant_id, `+inviteColumns+` FROM invites WHERE tenant_id = ? AND token_hash = ?`,
		t.tenant, tokenHash))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, vaultcrux.E(vaultcrux.NotFound, "invite not found")
	case err != nil:
		return nil, err
	case inv.AcceptedAt != nil:
		return nil, vaultcrux.E(vaultcrux.NotFound, "invite not found")
	}
	return nil, vaultcrux.E(vaultcrux.Invalid, "invite expired")
}

const seatColumns = `tenant_id, seat_id, email, role, created_at, revoked_at`

func scanSeat(row scanner) (*vaultcrux.Seat, error) {
	var s vaultcrux.Seat
	var created int64
	var revoked sql.NullInt64
	if err := row.Scan(&s.Tenant, &s.ID, &s.Email, &s.Role, &created, &revoked); err != nil {
		return nil, err
	}
	s.CreatedAt = fromMillis(created)
	s.RevokedAt = fromNullMillis(revoked)
	return &s, nil
}

const roleChangeColumns = `change_id, seat_id, old_role, new_role, actor, at`

func scanRoleChange(row scanner) (*vaultcrux.SeatRoleChange, error) {
	var c vaultcrux.SeatRoleChange
	var old sql.NullString
	var at int64
	if err := row.Scan(&c.ID, &c.SeatID, &old, &c.NewRole, &c.Actor, &at); err != nil {
		return nil, err
	}
	c.OldRole = vaultcrux.Role(old.String)
	c.At = fromMillis(at)
	return &c, nil
}

const inviteColumns = `invite_id, email, role, token_hash, created_by, created_at, expires_at, accepted_at, seat_id`

// scanInvite reads tenant_id followed by inviteColumns.
func scanInvite(row scanner) (*vaultcrux.Invite, error) {
	var inv vaultcrux.Invite
	var created, expires int64
	var accepted sql.NullInt64
	var seat sql.NullString
	if err := row.Scan(&inv.Tenant, &inv.ID, &inv.Email, &inv.Role, &inv.TokenHash, &inv.CreatedBy,
		&created, &expires, &accepted, &seat); err != nil {
		return nil, err
	}
	inv.CreatedAt, inv.ExpiresAt = fromMillis(created), fromMillis(expires)
	inv.AcceptedAt = fromNullMillis(accepted)
	inv.SeatID = seat.String
	return &inv, nil
}
