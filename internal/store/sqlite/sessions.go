package sqlite

import (
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/vaultcrux/vaultcrux"
)

func (t *tenantTx) CreateSession(s *vaultcrux.Session) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.CreateSession")
	if err := t.enter(); err != nil {
		return err
	}
	if err := checkSession(t.tenant, s); err != nil {
		return err
	}
	_, err = t.tx.ExecContext(t.ctx,
		`INSERT INTO frontdoor_sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.tenant, s.ID, s.KeyID, nullString(s.SeatID), string(s.Role), millis(s.CreatedAt), millis(s.ExpiresAt),
		s.IdleTimeout.Milliseconds(), millis(s.LastSeenAt), nullMillis(s.RevokedAt), s.IP, s.UserAgent)
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "session id already exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "api key or seat not found")
	}
	return err
}

// checkSession rejects what the schema would reject less clearly: the
// session comes from the frontdoor, so a failure is a bug there.
func checkSession(tenant vaultcrux.TenantID, s *vaultcrux.Session) error {
	if s.Tenant != tenant {
		return errors.New("session tenant differs from the handle's tenant")
	}
	if _, ok := vaultcrux.ParseRole(string(s.Role)); !ok {
		return vaultcrux.E(vaultcrux.Invalid, "invalid role")
	}
	if s.ID == "" || s.KeyID == "" {
		return errors.New("session without id or key id")
	}
	if s.IdleTimeout < time.Millisecond {
		return errors.New("session without idle timeout")
	}
	return nil
}

func (t *tenantTx) GetSession(id string) (_ *vaultcrux.Session, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.GetSession")
	if err := t.enter(); err != nil {
		return nil, err
	}
	s, err := scanSession(t.tx.QueryRowContext(t.ctx,
		`SELECT `+sessionColumns+` FROM frontdoor_sessions WHERE tenant_id = ? AND session_id = ?`, t.tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "session not found")
	}
	return s, err
}

// TouchSession only moves forward: requests of one session may finish out
// of order. A miss is NotFound only when the session does not exist.
func (t *tenantTx) TouchSession(id string, at time.Time) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.TouchSession")
	if err := t.enter(); err != nil {
		return err
	}
	res, err := t.tx.ExecContext(t.ctx,
		`UPDATE frontdoor_sessions SET last_seen_at = ?1
		 WHERE tenant_id = ?2 AND session_id = ?3 AND last_seen_at < ?1`,
		millis(at), t.tenant, id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	var exists bool
	err = t.tx.QueryRowContext(t.ctx,
		`SELECT count(*) > 0 FROM frontdoor_sessions WHERE tenant_id = ? AND session_id = ?`,
		t.tenant, id).Scan(&exists)
	if err == nil && !exists {
		return vaultcrux.E(vaultcrux.NotFound, "session not found")
	}
	return err
}

func (t *tenantTx) RevokeSession(id string, at time.Time) (_ *vaultcrux.Session, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.RevokeSession")
	if err := t.enter(); err != nil {
		return nil, err
	}
	s, err := scanSession(t.tx.QueryRowContext(t.ctx,
		`UPDATE frontdoor_sessions SET revoked_at = COALESCE(revoked_at, ?)
		 WHERE tenant_id = ? AND session_id = ? RETURNING `+sessionColumns,
		millis(at), t.tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "session not found")
	}
	return s, err
}

// RevokeKeySessions counts only the sessions it revoked: one revoked
// before keeps its time and is not counted.
func (t *tenantTx) RevokeKeySessions(keyID string, at time.Time) (_ int, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.RevokeKeySessions")
	if err := t.enter(); err != nil {
		return 0, err
	}
	res, err := t.tx.ExecContext(t.ctx,
		`UPDATE frontdoor_sessions SET revoked_at = ?
		 WHERE tenant_id = ? AND key_id = ? AND revoked_at IS NULL`,
		millis(at), t.tenant, keyID)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (t *tenantTx) ListActiveSessions(now time.Time, after string, limit int) (_ []*vaultcrux.Session, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListActiveSessions")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "limit must be positive")
	}
	rows, err := t.tx.QueryContext(t.ctx,
		`SELECT `+sessionColumns+` FROM frontdoor_sessions
		 WHERE tenant_id = ? AND revoked_at IS NULL AND expires_at > ? AND session_id > ?
		 ORDER BY session_id LIMIT ?`,
		t.tenant, millis(now), after, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanSession)
}

func (t *tenantTx) AddSessionEvent(e *vaultcrux.SessionEvent) (err error) {
	defer vaultcrux.Wrap(&err, "sqlite.AddSessionEvent")
	if err := t.enter(); err != nil {
		return err
	}
	if err := checkSessionEvent(t.tenant, e); err != nil {
		return err
	}
	_, err = t.tx.ExecContext(t.ctx,
		`INSERT INTO session_events (`+sessionEventColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.tenant, e.ID, nullString(e.SessionID), e.Kind, millis(e.At), e.IP, e.UserAgent, e.Detail)
	switch {
	case isUnique(err):
		return vaultcrux.E(vaultcrux.Conflict, "session event id already exists")
	case isForeignKey(err):
		return vaultcrux.E(vaultcrux.NotFound, "tenant not found")
	}
	return err
}

func checkSessionEvent(tenant vaultcrux.TenantID, e *vaultcrux.SessionEvent) error {
	if e.Tenant != tenant {
		return errors.New("session event tenant differs from the handle's tenant")
	}
	if e.ID == "" {
		return errors.New("session event without id")
	}
	switch e.Kind {
	case "connect", "logout", "expired", "revoked", "failed":
		return nil
	}
	return vaultcrux.E(vaultcrux.Invalid, "invalid session event kind")
}

func (t *tenantTx) ListSessionEvents(before string, limit int) (_ []*vaultcrux.SessionEvent, err error) {
	defer vaultcrux.Wrap(&err, "sqlite.ListSessionEvents")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "limit must be positive")
	}
	q := strings.Builder{}
	q.WriteString(`SELECT ` + sessionEventColumns + ` FROM session_events WHERE tenant_id = ?`)
	args := []any{t.tenant}
	if before != "" {
		q.WriteString(` AND event_id < ?`)
		args = append(args, before)
	}
	q.WriteString(` ORDER BY event_id DESC LIMIT ?`)
	args = append(args, limit)
	rows, err := t.tx.QueryContext(t.ctx, q.String(), args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanSessionEvent)
}

const sessionColumns = `tenant_id, session_id, key_id, seat_id, role, created_at, expires_at,
	idle_timeout_ms, last_seen_at, revoked_at, ip, user_agent`

func scanSession(row scanner) (*vaultcrux.Session, error) {
	var s vaultcrux.Session
	var seat sql.NullString
	var created, expires, idle, seen int64
	var revoked sql.NullInt64
	if err := row.Scan(&s.Tenant, &s.ID, &s.KeyID, &seat, &s.Role, &created, &expires,
		&idle, &seen, &revoked, &s.IP, &s.UserAgent); err != nil {
		return nil, err
	}
	s.SeatID = seat.String
	s.CreatedAt, s.ExpiresAt, s.LastSeenAt = fromMillis(created), fromMillis(expires), fromMillis(seen)
	s.IdleTimeout = time.Duration(idle) * time.Millisecond
	s.RevokedAt = fromNullMillis(revoked)
	return &s, nil
}

const sessionEventColumns = `tenant_id, event_id, session_id, kind, at, ip, user_agent, detail`

func scanSessionEvent(row scanner) (*vaultcrux.SessionEvent, error) {
	var e vaultcrux.SessionEvent
	var session sql.NullString
	var at int64
	if err := row.Scan(&e.Tenant, &e.ID, &session, &e.Kind, &at, &e.IP, &e.UserAgent, &e.Detail); err != nil {
		return nil, err
	}
	e.SessionID = session.String
	e.At = fromMillis(at)
	return &e, nil
}
