-- Team seats (contract §4) and frontdoor browser sessions (contract §3).
-- As in 0001, every table has row-level security ENABLEd and FORCEd.
-- References between tenant tables name the tenant too, so that a row can
-- only point at a row of its own tenant.
-- Role changes and session events are append-only: their policies allow
-- SELECT and INSERT only, so an UPDATE or DELETE by the application
-- reaches no row. (TRUNCATE is not subject to row-level security.)

-- email_lower is the email folded by the application; an unrevoked seat
-- owns its email within the tenant, a revoked one gives it back.
CREATE TABLE seats (
    tenant_id   text COLLATE "C" NOT NULL REFERENCES tenants (id),
    seat_id     text COLLATE "C" NOT NULL CHECK (seat_id <> ''),
    email       text             NOT NULL CHECK (email <> ''),
    email_lower text COLLATE "C" NOT NULL CHECK (email_lower <> ''),
    role        text             NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at  timestamptz      NOT NULL,
    revoked_at  timestamptz,
    PRIMARY KEY (tenant_id, seat_id)
);
CREATE UNIQUE INDEX seats_active_email ON seats (tenant_id, email_lower) WHERE revoked_at IS NULL;
ALTER TABLE seats ENABLE ROW LEVEL SECURITY;
ALTER TABLE seats FORCE ROW LEVEL SECURITY;
CREATE POLICY seats_tenant ON seats
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY seats_system ON seats
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- A key of a seat names it; (tenant_id, key_id) becomes unique (it was
-- indexed already) so that sessions can refer to it.
ALTER TABLE api_keys
    ADD COLUMN seat_id text COLLATE "C" CHECK (seat_id <> ''),
    ADD FOREIGN KEY (tenant_id, seat_id) REFERENCES seats (tenant_id, seat_id);
DROP INDEX api_keys_tenant_key;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_tenant_key UNIQUE (tenant_id, key_id);
CREATE INDEX api_keys_seat ON api_keys (tenant_id, seat_id) WHERE seat_id IS NOT NULL;

-- old_role is NULL for the change that created the seat.
CREATE TABLE seat_role_changes (
    tenant_id text COLLATE "C" NOT NULL,
    change_id text COLLATE "C" NOT NULL CHECK (change_id <> ''),
    seat_id   text COLLATE "C" NOT NULL,
    old_role  text             CHECK (old_role IN ('owner', 'admin', 'member', 'viewer')),
    new_role  text             NOT NULL CHECK (new_role IN ('owner', 'admin', 'member', 'viewer')),
    actor     text             NOT NULL,
    at        timestamptz      NOT NULL,
    PRIMARY KEY (tenant_id, change_id),
    FOREIGN KEY (tenant_id, seat_id) REFERENCES seats (tenant_id, seat_id)
);
CREATE INDEX seat_role_changes_seat ON seat_role_changes (tenant_id, seat_id, at);
ALTER TABLE seat_role_changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE seat_role_changes FORCE ROW LEVEL SECURITY;
CREATE POLICY seat_role_changes_tenant_select ON seat_role_changes FOR SELECT
    USING (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY seat_role_changes_tenant_insert ON seat_role_changes FOR INSERT
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY seat_role_changes_system_select ON seat_role_changes FOR SELECT
    USING (current_setting('vaultcrux.system', true) = 'on');
CREATE POLICY seat_role_changes_system_insert ON seat_role_changes FOR INSERT
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- token_hash is unique across tenants: a token names one invite. seat_id
-- is set when the invite is accepted; its reference is checked at commit,
-- because the caller learns the seat's email and role from the accepted
-- invite and creates the seat after it.
CREATE TABLE invites (
    tenant_id   text COLLATE "C" NOT NULL REFERENCES tenants (id),
    invite_id   text COLLATE "C" NOT NULL CHECK (invite_id <> ''),
    email       text             NOT NULL CHECK (email <> ''),
    role        text             NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    token_hash  bytea            NOT NULL UNIQUE CHECK (length(token_hash) > 0),
    created_by  text             NOT NULL,
    created_at  timestamptz      NOT NULL,
    expires_at  timestamptz      NOT NULL,
    accepted_at timestamptz,
    seat_id     text COLLATE "C",
    PRIMARY KEY (tenant_id, invite_id),
    FOREIGN KEY (tenant_id, seat_id) REFERENCES seats (tenant_id, seat_id) DEFERRABLE INITIALLY DEFERRED,
    CHECK ((accepted_at IS NULL) = (seat_id IS NULL))
);
ALTER TABLE invites ENABLE ROW LEVEL SECURITY;
ALTER TABLE invites FORCE ROW LEVEL SECURITY;
CREATE POLICY invites_tenant ON invites
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY invites_system ON invites
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- seat_id is NULL for a session opened with a tenant key.
CREATE TABLE frontdoor_sessions (
    tenant_id       text COLLATE "C" NOT NULL,
    session_id      text COLLATE "C" NOT NULL CHECK (session_id <> ''),
    key_id          text COLLATE "C" NOT NULL,
    seat_id         text COLLATE "C",
    role            text             NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at      timestamptz      NOT NULL,
    expires_at      timestamptz      NOT NULL,
    idle_timeout_ms bigint           NOT NULL CHECK (idle_timeout_ms > 0),
    last_seen_at    timestamptz      NOT NULL,
    revoked_at      timestamptz,
    ip              text             NOT NULL,
    user_agent      text             NOT NULL,
    PRIMARY KEY (tenant_id, session_id),
    FOREIGN KEY (tenant_id, key_id) REFERENCES api_keys (tenant_id, key_id),
    FOREIGN KEY (tenant_id, seat_id) REFERENCES seats (tenant_id, seat_id)
);
CREATE INDEX frontdoor_sessions_key ON frontdoor_sessions (tenant_id, key_id);
CREATE INDEX frontdoor_sessions_seat ON frontdoor_sessions (tenant_id, seat_id) WHERE seat_id IS NOT NULL;
ALTER TABLE frontdoor_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE frontdoor_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY frontdoor_sessions_tenant ON frontdoor_sessions
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY frontdoor_sessions_system ON frontdoor_sessions
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- session_id is NULL for a failed attempt. It refers to no session row:
-- the activity record is kept when sessions are purged, and a failed
-- attempt may name a session that never existed.
CREATE TABLE session_events (
    tenant_id  text COLLATE "C" NOT NULL REFERENCES tenants (id),
    event_id   text COLLATE "C" NOT NULL CHECK (event_id <> ''),
    session_id text COLLATE "C" CHECK (session_id <> ''),
    kind       text             NOT NULL CHECK (kind IN ('connect', 'logout', 'expired', 'revoked', 'failed')),
    at         timestamptz      NOT NULL,
    ip         text             NOT NULL,
    user_agent text             NOT NULL,
    detail     text             NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);
ALTER TABLE session_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_events FORCE ROW LEVEL SECURITY;
CREATE POLICY session_events_tenant_select ON session_events FOR SELECT
    USING (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY session_events_tenant_insert ON session_events FOR INSERT
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY session_events_system_select ON session_events FOR SELECT
    USING (current_setting('vaultcrux.system', true) = 'on');
CREATE POLICY session_events_system_insert ON session_events FOR INSERT
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');
