-- Shield (contract §7): the trust registry (publishers, servers, pinned
-- digests), kill switches with their audit, per-tenant setting
-- overrides, approvals, decisions with the event outbox, taint events,
-- session taint marks, sampling policies, UI integrity sessions and
-- incident drills, and the version counters that tell processes what to
-- reload.
-- JSON columns (tools, args, inputs, payload, sources, details) are
-- BLOBs holding the canonical JSON the caller produced, byte for byte;
-- an absent value is stored as an empty blob. tool_allow is a JSON array
-- of tool names that the store encodes.
-- kill_switch_audit, shield_decisions and taint_events are append-only:
-- nothing updates or deletes their rows.

-- One row per tenant that has changed its Shield state, plus the one
-- global row (tenant_id NULL, created here): version counts the changes.
-- Global kill switches bump the global row.
CREATE TABLE shield_versions (
    tenant_id TEXT    REFERENCES tenants (id),
    version   INTEGER NOT NULL CHECK (version >= 0)
) STRICT;

CREATE UNIQUE INDEX shield_versions_tenant ON shield_versions (tenant_id);
CREATE UNIQUE INDEX shield_versions_global ON shield_versions ((tenant_id IS NULL)) WHERE tenant_id IS NULL;
INSERT INTO shield_versions (tenant_id, version) VALUES (NULL, 0);

CREATE TABLE shield_publishers (
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id),
    publisher_id TEXT    NOT NULL CHECK (publisher_id <> ''),
    name         TEXT    NOT NULL CHECK (name <> ''),
    url          TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, publisher_id),
    UNIQUE (tenant_id, name)
) STRICT;

-- publisher_id is NULL for a server of no publisher. A name stays taken
-- by a disabled server.
CREATE TABLE shield_servers (
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id),
    server_id    TEXT    NOT NULL CHECK (server_id <> ''),
    name         TEXT    NOT NULL CHECK (name <> ''),
    url          TEXT    NOT NULL,
    command      TEXT    NOT NULL,
    publisher_id TEXT    CHECK (publisher_id <> ''),
    tools        BLOB    NOT NULL,
    digest       TEXT    NOT NULL CHECK (digest <> ''),
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'active', 'disabled')),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, server_id),
    UNIQUE (tenant_id, name),
    FOREIGN KEY (tenant_id, publisher_id) REFERENCES shield_publishers (tenant_id, publisher_id)
) STRICT;

-- A revoked pin stays, so that its digest cannot be pinned again.
CREATE TABLE shield_pins (
    tenant_id     TEXT    NOT NULL,
    server_id     TEXT    NOT NULL,
    digest        TEXT    NOT NULL CHECK (digest <> ''),
    pinned_by     TEXT    NOT NULL,
    pinned_at     INTEGER NOT NULL,
    revoked_at    INTEGER,
    revoked_by    TEXT    NOT NULL,
    revoke_reason TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, server_id, digest),
    FOREIGN KEY (tenant_id, server_id) REFERENCES shield_servers (tenant_id, server_id),
    CHECK (revoked_at IS NOT NULL OR (revoked_by = '' AND revoke_reason = ''))
) STRICT;

-- switch_id is unique across tenants; a global switch has tenant_id NULL.
CREATE TABLE kill_switches (
    switch_id   TEXT    NOT NULL PRIMARY KEY CHECK (switch_id <> ''),
    tenant_id   TEXT    REFERENCES tenants (id),
    scope       TEXT    NOT NULL CHECK (scope IN ('global', 'tenant', 'agent', 'server', 'tool', 'capability_class')),
    target      TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    engaged_by  TEXT    NOT NULL,
    engaged_at  INTEGER NOT NULL,
    released_at INTEGER,
    released_by TEXT    NOT NULL,
    CHECK ((scope = 'global') = (tenant_id IS NULL)),
    CHECK (released_at IS NOT NULL OR released_by = '')
) STRICT;

CREATE INDEX kill_switches_tenant ON kill_switches (tenant_id, engaged_at, switch_id);
CREATE INDEX kill_switches_active ON kill_switches (tenant_id, switch_id) WHERE released_at IS NULL;

-- Append-only. A switch is engaged once and released at most once, so
-- (switch_id, action) identifies a row. tenant_id is the switch's.
CREATE TABLE kill_switch_audit (
    switch_id TEXT    NOT NULL REFERENCES kill_switches (switch_id),
    action    TEXT    NOT NULL CHECK (action IN ('engage', 'release')),
    tenant_id TEXT    REFERENCES tenants (id),
    actor     TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    reason    TEXT    NOT NULL,
    PRIMARY KEY (switch_id, action)
) STRICT;

CREATE INDEX kill_switch_audit_tenant ON kill_switch_audit (tenant_id, at);

CREATE TABLE shield_settings (
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id),
    name       TEXT    NOT NULL CHECK (name <> ''),
    value      TEXT    NOT NULL,
    updated_by TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
) STRICT;

-- token_hash is unique across tenants: a token names one approval. It is
-- set (with token_expires_at) when the request is approved and kept after
-- execution, so that a used token is recognised.
CREATE TABLE shield_approvals (
    tenant_id        TEXT    NOT NULL REFERENCES tenants (id),
    approval_id      TEXT    NOT NULL CHECK (approval_id <> ''),
    server           TEXT    NOT NULL,
    tool             TEXT    NOT NULL CHECK (tool <> ''),
    args_hash        TEXT    NOT NULL,
    manifest_hash    TEXT    NOT NULL,
    binding          TEXT    NOT NULL,
    args             BLOB    NOT NULL,
    reason           TEXT    NOT NULL,
    proposed_by      TEXT    NOT NULL,
    agent_id         TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'executed')),
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    resolved_at      INTEGER,
    resolved_by      TEXT    NOT NULL,
    note             TEXT    NOT NULL,
    token_hash       BLOB    UNIQUE CHECK (length(token_hash) > 0),
    token_expires_at INTEGER,
    executed_at      INTEGER,
    decision_id      TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, approval_id),
    CHECK ((status = 'pending') = (resolved_at IS NULL)),
    CHECK ((status IN ('approved', 'executed')) = (token_hash IS NOT NULL)),
    CHECK ((token_hash IS NULL) = (token_expires_at IS NULL)),
    CHECK ((status = 'executed') = (executed_at IS NOT NULL))
) STRICT;

CREATE INDEX shield_approvals_status ON shield_approvals (tenant_id, status, approval_id);
-- The expiry sweep.
CREATE INDEX shield_approvals_pending ON shield_approvals (expires_at, tenant_id) WHERE status = 'pending';

-- Append-only, and written at the rate of calls: besides the primary key
-- (GetDecision, ListDecisions) only the two indexes of the sampling
-- window count, per agent and per tenant.
CREATE TABLE shield_decisions (
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id),
    decision_id   TEXT    NOT NULL CHECK (decision_id <> ''),
    tool          TEXT    NOT NULL,
    server        TEXT    NOT NULL,
    outcome       TEXT    NOT NULL CHECK (outcome IN ('allow', 'deny', 'approval_required')),
    stage         TEXT    NOT NULL,
    denial_type   TEXT    NOT NULL,
    mode          TEXT    NOT NULL,
    verdict       TEXT    NOT NULL,
    enforced      INTEGER NOT NULL CHECK (enforced IN (0, 1)),
    would_block   INTEGER NOT NULL CHECK (would_block IN (0, 1)),
    tainted       INTEGER NOT NULL CHECK (tainted IN (0, 1)),
    manifest_hash TEXT    NOT NULL,
    args_hash     TEXT    NOT NULL,
    approval_id   TEXT    NOT NULL,
    agent_id      TEXT    NOT NULL,
    actor         TEXT    NOT NULL,
    receipt_id    TEXT    NOT NULL,
    inputs        BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, decision_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX shield_decisions_agent_window ON shield_decisions (tenant_id, tool, agent_id, created_at);
CREATE INDEX shield_decisions_tool_window ON shield_decisions (tenant_id, tool, created_at);

-- Events for delivery, written in the transaction of what they report.
CREATE TABLE event_outbox (
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id),
    event_id     TEXT    NOT NULL CHECK (event_id <> ''),
    kind         TEXT    NOT NULL CHECK (kind <> ''),
    payload      BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    delivered_at INTEGER,
    PRIMARY KEY (tenant_id, event_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX event_outbox_undelivered ON event_outbox (tenant_id, event_id) WHERE delivered_at IS NULL;

-- Append-only. decision_id refers to no row: the event may be written
-- before its decision in the same transaction.
CREATE TABLE taint_events (
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    event_id    TEXT    NOT NULL CHECK (event_id <> ''),
    decision_id TEXT    NOT NULL,
    class       TEXT    NOT NULL CHECK (class <> ''),
    tool        TEXT    NOT NULL,
    sources     BLOB    NOT NULL,
    agent_id    TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
) STRICT;

-- Agent sessions that read untrusted content, shared by the processes of
-- the store: one row per (tenant, session), upserted by every mark and
-- deleted once expired. updated_at is the database's clock at the latest
-- mark (not the caller's), for the poll of every tenant's recent marks.
CREATE TABLE shield_session_taint (
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id),
    session    TEXT    NOT NULL CHECK (session <> ''),
    source     TEXT    NOT NULL CHECK (source <> ''),
    expires_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, session)
) STRICT, WITHOUT ROWID;

CREATE INDEX shield_session_taint_updated ON shield_session_taint (updated_at);

CREATE TABLE sampling_policies (
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id),
    policy_id  TEXT    NOT NULL CHECK (policy_id <> ''),
    scope      TEXT    NOT NULL CHECK (scope IN ('tool', 'class')),
    target     TEXT    NOT NULL CHECK (target <> ''),
    max_calls  INTEGER NOT NULL CHECK (max_calls >= 0),
    window_ms  INTEGER NOT NULL CHECK (window_ms > 0),
    per        TEXT    NOT NULL CHECK (per IN ('agent', 'tenant')),
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER,
    PRIMARY KEY (tenant_id, policy_id)
) STRICT;

CREATE TABLE ui_integrity_sessions (
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id),
    session_id TEXT    NOT NULL CHECK (session_id <> ''),
    origin     TEXT    NOT NULL,
    tool_allow TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    PRIMARY KEY (tenant_id, session_id)
) STRICT;

-- kill_switch_id refers to no row: '' for a drill without a switch.
CREATE TABLE incident_drills (
    tenant_id      TEXT    NOT NULL REFERENCES tenants (id),
    drill_id       TEXT    NOT NULL CHECK (drill_id <> ''),
    scenario       TEXT    NOT NULL CHECK (scenario <> ''),
    kill_switch_id TEXT    NOT NULL,
    result         TEXT    NOT NULL CHECK (result IN ('', 'passed', 'failed')),
    details        BLOB    NOT NULL,
    started_by     TEXT    NOT NULL,
    started_at     INTEGER NOT NULL,
    finished_at    INTEGER,
    PRIMARY KEY (tenant_id, drill_id),
    CHECK ((result = '') = (finished_at IS NULL))
) STRICT;
