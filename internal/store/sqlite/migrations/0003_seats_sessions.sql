-- Team seats (contract §4) and frontdoor browser sessions (contract §3).
-- Role changes and session events are append-only: the code only inserts
-- them. References between tenant tables name the tenant too, so that a
-- row can only point at a row of its own tenant.

-- email_lower is the email folded by the application; an unrevoked seat
-- owns its email within the tenant, a revoked one gives it back.
CREATE TABLE seats (
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    seat_id     TEXT    NOT NULL CHECK (seat_id <> ''),
    email       TEXT    NOT NULL CHECK (email <> ''),
    email_lower TEXT    NOT NULL CHECK (email_lower <> ''),
    role        TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    PRIMARY KEY (tenant_id, seat_id)
) STRICT;

CREATE UNIQUE INDEX seats_active_email ON seats (tenant_id, email_lower) WHERE revoked_at IS NULL;

-- api_keys gains seat_id. ALTER TABLE ADD COLUMN can only add a
-- single-column reference, and seat ids are unique per tenant only, so the
-- table is rebuilt with a reference on (tenant_id, seat_id). No table
-- refers to api_keys yet, so dropping the old one checks nothing.
-- (tenant_id, key_id) becomes unique so that sessions can refer to it.
CREATE TABLE api_keys_0003 (
    key_id       TEXT    NOT NULL PRIMARY KEY CHECK (key_id <> ''),
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id),
    label        TEXT    NOT NULL,
    role         TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    seat_id      TEXT    CHECK (seat_id <> ''),
    hash         BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    last_used_at INTEGER,
    FOREIGN KEY (tenant_id, seat_id) REFERENCES seats (tenant_id, seat_id)
) STRICT;

INSERT INTO api_keys_0003 (key_id, tenant_id, label, role, hash, created_at, revoked_at, last_used_at)
SELECT key_id, tenant_id, label, role, hash, created_at, revoked_at, last_used_at FROM api_keys;

DROP TABLE api_keys;

ALTER TABLE api_keys_0003 RENAME TO api_keys;

CREATE UNIQUE INDEX api_keys_tenant_key ON api_keys (tenant_id, key_id);
CREATE INDEX api_keys_seat ON api_keys (tenant_id, seat_id) WHERE seat_id IS NOT NULL;

-- old_role is NULL for the change that created the seat.
CREATE TABLE seat_role_changes (
    tenant_id TEXT    NOT NULL,
    change_id TEXT    NOT NULL CHECK (change_id <> ''),
    seat_id   TEXT    NOT NULL,
    old_role  TEXT    CHECK (old_role IN ('owner', 'admin', 'member', 'viewer')),
    new_role  TEXT    NOT NULL CHECK (new_role IN ('owner', 'admin', 'member', 'viewer')),
    actor     TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, change_id),
    FOREIGN KEY (tenant_id, seat_id) REFERENCES seats (tenant_id, seat_id)
) STRICT;

CREATE INDEX seat_role_changes_seat ON seat_role_changes (tenant_id, seat_id, at);

-- token_hash is unique across tenants: a token names one invite. seat_id
-- is set when the invite is accepted; its reference is checked at commit,
-- because the caller learns the seat's email and role from the accepted
-- invite and creates the seat after it.
CREATE TABLE invites (
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    invite_id   TEXT    NOT NULL CHECK (invite_id <> ''),
    email       TEXT    NOT NULL CHECK (email <> ''),
    role        TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    token_hash  BLOB    NOT NULL UNIQUE CHECK (length(token_hash) > 0),
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    accepted_at INTEGER,
    seat_id     TEXT,
    PRIMARY KEY (tenant_id, invite_id),
    FOREIGN KEY (tenant_id, seat_id) REFERENCES seats (tenant_id, seat_id) DEFERRABLE INITIALLY DEFERRED,
    CHECK ((accepted_at IS NULL) = (seat_id IS NULL))
) STRICT;

-- seat_id is NULL for a session opened with a tenant key.
CREATE TABLE frontdoor_sessions (
    tenant_id       TEXT    NOT NULL,
    session_id      TEXT    NOT NULL CHECK (session_id <> ''),
    key_id          TEXT    NOT NULL,
    seat_id         TEXT,
    role            TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    idle_timeout_ms INTEGER NOT NULL CHECK (idle_timeout_ms > 0),
    last_seen_at    INTEGER NOT NULL,
    revoked_at      INTEGER,
    ip              TEXT    NOT NULL,
    user_agent      TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, session_id),
    FOREIGN KEY (tenant_id, key_id) REFERENCES api_keys (tenant_id, key_id),
    FOREIGN KEY (tenant_id, seat_id) REFERENCES seats (tenant_id, seat_id)
) STRICT;

CREATE INDEX frontdoor_sessions_key ON frontdoor_sessions (tenant_id, key_id);
CREATE INDEX frontdoor_sessions_seat ON frontdoor_sessions (tenant_id, seat_id) WHERE seat_id IS NOT NULL;

-- session_id is NULL for a failed attempt. It refers to no session row:
-- the activity record is kept when sessions are purged, and a failed
-- attempt may name a session that never existed.
CREATE TABLE session_events (
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id),
    event_id   TEXT    NOT NULL CHECK (event_id <> ''),
    session_id TEXT    CHECK (session_id <> ''),
    kind       TEXT    NOT NULL CHECK (kind IN ('connect', 'logout', 'expired', 'revoked', 'failed')),
    at         INTEGER NOT NULL,
    ip         TEXT    NOT NULL,
    user_agent TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
) STRICT;
