package postgres

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaultcrux/vaultcrux"
)

func (t *tenantTx) CreateSession(s *vaultcrux.Session) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.CreateSession")
	if err := t.enter(); err != nil {
		return err
	}
	if err := checkSession(t.tenant, s); err != nil {
		return err
	}
	_, err = t.tx.Exec(t.ctx,
		`INSERT INTO frontdoor_sessions (`+sessionColumns+`)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		string(t.tenant), s.ID, s.KeyID, nullString(s.SeatID), string(s.Role), ms(s.CreatedAt), ms(s.ExpiresAt),
		s.IdleTimeout.Milliseconds(), ms(s.LastSeenAt), msPtr(s.RevokedAt), s.IP, s.UserAgent)
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
	defer vaultcrux.Wrap(&err, "postgres.GetSession")
	if err := t.enter(); err != nil {
		return nil, err
	}
	s, err := scanSession(t.tx.QueryRow(t.ctx,
		`SELECT `+sessionColumns+` FROM frontdoor_sessions WHERE tenant_id = $1 AND session_id = $2`,
		string(t.tenant), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "session not found")
	}
	return s, err
}

// TouchSession only moves forward: requests of one session may finish out
// of order, on different replicas. A miss is NotFound only when the
// session does not exist.
func (t *tenantTx) TouchSession(id string, at time.Time) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.TouchSession")
	if err := t.enter(); err != nil {
		return err
	}
	tag, err := t.tx.Exec(t.ctx,
		`UPDATE frontdoor_sessions SET last_seen_at = $1
		 WHERE tenant_id = $2 AND session_id = $3 AND last_seen_at < $1`,
		ms(at), string(t.tenant), id)
	if err != nil || tag.RowsAffected() > 0 {
		return err
	}
	var exists bool
	err = t.tx.QueryRow(t.ctx,
		`SELECT EXISTS (SELECT 1 FROM frontdoor_sessions WHERE tenant_id = $1 AND session_id = $2)`,
		string(t.tenant), id).Scan(&exists)
	if err == nil && !exists {
		return vaultcrux.E(vaultcrux.NotFound, "session not found")
	}
	return err
}

func (t *tenantTx) RevokeSession(id string, at time.Time) (_ *vaultcrux.Session, err error) {
	defer vaultcrux.Wrap(&err, "postgres.RevokeSession")
	if err := t.enter(); err != nil {
		return nil, err
	}
	s, err := scanSession(t.tx.QueryRow(t.ctx,
		`UPDATE frontdoor_sessions SET revoked_at = COALESCE(revoked_at, $1)
		 WHERE tenant_id = $2 AND session_id = $3 RETURNING `+sessionColumns,
		ms(at), string(t.tenant), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "session not found")
	}
	return s, err
}

// RevokeKeySessions counts only the sessions it revoked: one revoked
// before keeps its time and is not counted.
func (t *tenantTx) RevokeKeySessions(keyID string, at time.Time) (_ int, err error) {
	defer vaultcrux.Wrap(&err, "postgres.RevokeKeySessions")
	if err := t.enter(); err != nil {
		return 0, err
	}
	tag, err := t.tx.Exec(t.ctx,
		`UPDATE frontdoor_sessions SET revoked_at = $1
		 WHERE tenant_id = $2 AND key_id = $3 AND revoked_at IS NULL`,
		ms(at), string(t.tenant), keyID)
	return int(tag.RowsAffected()), err
}

func (t *tenantTx) ListActiveSessions(now time.Time, after string, limit int) (_ []*vaultcrux.Session, err error) {
	defer vaultcrux.Wrap(&err, "postgres.ListActiveSessions")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "limit must be positive")
	}
	rows, err := t.tx.Query(t.ctx,
		`SELECT `+sessionColumns+` FROM frontdoor_sessions
		 WHERE tenant_id = $1 AND revoked_at IS NULL AND expires_at > $2 AND session_id > $3
		 ORDER BY session_id LIMIT $4`,
		string(t.tenant), ms(now), after, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanSession)
}

func (t *tenantTx) AddSessionEvent(e *vaultcrux.SessionEvent) (err error) {
	defer vaultcrux.Wrap(&err, "postgres.AddSessionEvent")
	if err := t.enter(); err != nil {
		return err
	}
	if err := checkSessionEvent(t.tenant, e); err != nil {
		return err
	}
	_, err = t.tx.Exec(t.ctx,
		`INSERT INTO session_events (`+sessionEventColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		string(t.tenant), e.ID, nullString(e.SessionID), e.Kind, ms(e.At), e.IP, e.UserAgent, e.Detail)
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
	defer vaultcrux.Wrap(&err, "postgres.ListSessionEvents")
	if err := t.enter(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "limit must be positive")
	}
	// Only the conditions in use are written, as in ListReceipts.
	q := strings.Builder{}
	q.WriteString(`SELECT ` + sessionEventColumns + ` FROM session_events WHERE tenant_id = $1`)
	args := []any{string(t.tenant)}
	arg := func(cond string, v any) {
		args = append(args, v)
		q.WriteString(cond + strconv.Itoa(len(args)))
	}
	if before != "" {
		arg(` AND event_id < $`, before)
	}
	arg(` ORDER BY event_id DESC LIMIT $`, limit)
	rows, err := t.tx.Query(t.ctx, q.String(), args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanSessionEvent)
}

const sessionColumns = `tenant_id, session_id, key_id, seat_id, role, created_at, expires_at,
	idle_timeout_ms, last_seen_at, revoked_at, ip, user_agent`

func scanSession(row pgx.Row) (*vaultcrux.Session, error) {
	var s vaultcrux.Session
	var tenant, role string
	var seat *string
	var idle int64
	if err := row.Scan(&tenant, &s.ID, &s.KeyID, &seat, &role, &s.CreatedAt, &s.ExpiresAt,
		&idle, &s.LastSeenAt, &s.RevokedAt, &s.IP, &s.UserAgent); err != nil {
		return nil, err
	}
	s.Tenant, s.Role, s.SeatID = vaultcrux.TenantID(tenant), vaultcrux.Role(role), fromNull(seat)
	s.CreatedAt, s.ExpiresAt, s.LastSeenAt = s.CreatedAt.UTC(), s.ExpiresAt.UTC(), s.LastSeenAt.UTC()
	s.IdleTimeout = time.Duration(idle) * time.Millisecond
	if s.RevokedAt != nil {
		*s.RevokedAt = s.RevokedAt.UTC()
	}
	return &s, nil
}

const sessionEventColumns = `tenant_id, event_id, session_id, kind, at, ip, user_agent, detail`

func scanSessionEvent(row pgx.Row) (*vaultcrux.SessionEvent, error) {
	var e vaultcrux.SessionEvent
	var tenant string
	var session *string
	if err := row.Scan(&tenant, &e.ID, &session, &e.Kind, &e.At, &e.IP, &e.UserAgent, &e.Detail); err != nil {
		return nil, err
	}
	e.Tenant, e.SessionID = vaultcrux.TenantID(tenant), fromNull(session)
	e.At = e.At.UTC()
	return &e, nil
}
