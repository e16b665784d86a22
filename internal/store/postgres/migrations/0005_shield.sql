-- Shield (contract §7): the trust registry (publishers, servers, pinned
-- digests), kill switches with their audit, per-tenant setting
-- overrides, approvals, decisions with the event outbox, taint events,
-- session taint marks, sampling policies, UI integrity sessions and
-- incident drills, and the version counters that tell processes what to
-- reload.
-- JSON columns (tools, args, inputs, payload, sources, details) are bytea
-- holding the canonical JSON the caller produced, byte for byte (jsonb
-- would re-encode it); an absent value is stored as an empty bytea.
-- tool_allow is a JSON array of tool names that the store encodes.
-- As in 0001, every table has row-level security ENABLEd and FORCEd.
-- kill_switch_audit, shield_decisions and taint_events are append-only:
-- their policies allow SELECT and INSERT only. Global kill switches (and
-- their audit rows, and the global version) have tenant_id NULL, which no
-- tenant policy matches: only administration (vaultcrux.system) reaches
-- them. References between tenant tables name the tenant too.

-- One row per tenant that has changed its Shield state, plus the one
-- global row (tenant_id NULL, created here, before RLS would refuse the
-- insert): version counts the changes. The upsert of a bump locks the
-- row, so a tenant's bumps are serialised and the version only grows.
CREATE TABLE shield_versions (
    tenant_id text COLLATE "C" REFERENCES tenants (id),
    version   bigint           NOT NULL CHECK (version >= 0)
);
CREATE UNIQUE INDEX shield_versions_tenant ON shield_versions (tenant_id);
CREATE UNIQUE INDEX shield_versions_global ON shield_versions ((tenant_id IS NULL)) WHERE tenant_id IS NULL;
INSERT INTO shield_versions (tenant_id, version) VALUES (NULL, 0);
ALTER TABLE shield_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE shield_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY shield_versions_tenant ON shield_versions
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY shield_versions_system ON shield_versions
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

CREATE TABLE shield_publishers (
    tenant_id    text COLLATE "C" NOT NULL REFERENCES tenants (id),
    publisher_id text COLLATE "C" NOT NULL CHECK (publisher_id <> ''),
    name         text             NOT NULL CHECK (name <> ''),
    url          text             NOT NULL,
    created_at   timestamptz      NOT NULL,
    PRIMARY KEY (tenant_id, publisher_id),
    UNIQUE (tenant_id, name)
);
ALTER TABLE shield_publishers ENABLE ROW LEVEL SECURITY;
ALTER TABLE shield_publishers FORCE ROW LEVEL SECURITY;
CREATE POLICY shield_publishers_tenant ON shield_publishers
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY shield_publishers_system ON shield_publishers
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- publisher_id is NULL for a server of no publisher. A name stays taken
-- by a disabled server.
CREATE TABLE shield_servers (
    tenant_id    text COLLATE "C" NOT NULL REFERENCES tenants (id),
    server_id    text COLLATE "C" NOT NULL CHECK (server_id <> ''),
    name         text             NOT NULL CHECK (name <> ''),
    url          text             NOT NULL,
    command      text             NOT NULL,
    publisher_id text COLLATE "C" CHECK (publisher_id <> ''),
    tools        bytea            NOT NULL,
    digest       text             NOT NULL CHECK (digest <> ''),
    status       text             NOT NULL CHECK (status IN ('pending', 'active', 'disabled')),
    created_at   timestamptz      NOT NULL,
    updated_at   timestamptz      NOT NULL,
    PRIMARY KEY (tenant_id, server_id),
    UNIQUE (tenant_id, name),
    FOREIGN KEY (tenant_id, publisher_id) REFERENCES shield_publishers (tenant_id, publisher_id)
);
ALTER TABLE shield_servers ENABLE ROW LEVEL SECURITY;
ALTER TABLE shield_servers FORCE ROW LEVEL SECURITY;
CREATE POLICY shield_servers_tenant ON shield_servers
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY shield_servers_system ON shield_servers
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- A revoked pin stays, so that its digest cannot be pinned again.
CREATE TABLE shield_pins (
    tenant_id     text COLLATE "C" NOT NULL,
    server_id     text COLLATE "C" NOT NULL,
    digest        text COLLATE "C" NOT NULL CHECK (digest <> ''),
    pinned_by     text             NOT NULL,
    pinned_at     timestamptz      NOT NULL,
    revoked_at    timestamptz,
    revoked_by    text             NOT NULL,
    revoke_reason text             NOT NULL,
    PRIMARY KEY (tenant_id, server_id, digest),
    FOREIGN KEY (tenant_id, server_id) REFERENCES shield_servers (tenant_id, server_id),
    CHECK (revoked_at IS NOT NULL OR (revoked_by = '' AND revoke_reason = ''))
);
ALTER TABLE shield_pins ENABLE ROW LEVEL SECURITY;
ALTER TABLE shield_pins FORCE ROW LEVEL SECURITY;
CREATE POLICY shield_pins_tenant ON shield_pins
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY shield_pins_system ON shield_pins
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- switch_id is unique across tenants; a global switch has tenant_id NULL.
CREATE TABLE kill_switches (
    switch_id   text COLLATE "C" NOT NULL PRIMARY KEY CHECK (switch_id <> ''),
    tenant_id   text COLLATE "C" REFERENCES tenants (id),
    scope       text             NOT NULL
        CHECK (scope IN ('global', 'tenant', 'agent', 'server', 'tool', 'capability_class')),
    target      text             NOT NULL,
    reason      text             NOT NULL,
    engaged_by  text             NOT NULL,
    engaged_at  timestamptz      NOT NULL,
    released_at timestamptz,
    released_by text             NOT NULL,
    CHECK ((scope = 'global') = (tenant_id IS NULL)),
    CHECK (released_at IS NOT NULL OR released_by = '')
);
CREATE INDEX kill_switches_tenant ON kill_switches (tenant_id, engaged_at, switch_id);
CREATE INDEX kill_switches_active ON kill_switches (tenant_id, switch_id) WHERE released_at IS NULL;
ALTER TABLE kill_switches ENABLE ROW LEVEL SECURITY;
ALTER TABLE kill_switches FORCE ROW LEVEL SECURITY;
CREATE POLICY kill_switches_tenant ON kill_switches
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY kill_switches_system ON kill_switches
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- A switch is engaged once and released at most once, so (switch_id,
-- action) identifies a row. tenant_id is the switch's.
CREATE TABLE kill_switch_audit (
    switch_id text COLLATE "C" NOT NULL REFERENCES kill_switches (switch_id),
    action    text             NOT NULL CHECK (action IN ('engage', 'release')),
    tenant_id text COLLATE "C" REFERENCES tenants (id),
    actor     text             NOT NULL,
    at        timestamptz      NOT NULL,
    reason    text             NOT NULL,
    PRIMARY KEY (switch_id, action)
);
CREATE INDEX kill_switch_audit_tenant ON kill_switch_audit (tenant_id, at);
ALTER TABLE kill_switch_audit ENABLE ROW LEVEL SECURITY;
ALTER TABLE kill_switch_audit FORCE ROW LEVEL SECURITY;
CREATE POLICY kill_switch_audit_tenant_select ON kill_switch_audit FOR SELECT
    USING (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY kill_switch_audit_tenant_insert ON kill_switch_audit FOR INSERT
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY kill_switch_audit_system_select ON kill_switch_audit FOR SELECT
    USING (current_setting('vaultcrux.system', true) = 'on');
CREATE POLICY kill_switch_audit_system_insert ON kill_switch_audit FOR INSERT
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

CREATE TABLE shield_settings (
    tenant_id  text COLLATE "C" NOT NULL REFERENCES tenants (id),
    name       text COLLATE "C" NOT NULL CHECK (name <> ''),
    value      text             NOT NULL,
    updated_by text             NOT NULL,
    updated_at timestamptz      NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
ALTER TABLE shield_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE shield_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY shield_settings_tenant ON shield_settings
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY shield_settings_system ON shield_settings
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- token_hash is unique across tenants: a token names one approval. It is
-- set (with token_expires_at) when the request is approved and kept after
-- execution, so that a used token is recognised.
CREATE TABLE shield_approvals (
    tenant_id        text COLLATE "C" NOT NULL REFERENCES tenants (id),
    approval_id      text COLLATE "C" NOT NULL CHECK (approval_id <> ''),
    server           text             NOT NULL,
    tool             text             NOT NULL CHECK (tool <> ''),
    args_hash        text             NOT NULL,
    manifest_hash    text             NOT NULL,
    binding          text             NOT NULL,
    args             bytea            NOT NULL,
    reason           text             NOT NULL,
    proposed_by      text             NOT NULL,
    agent_id         text             NOT NULL,
    status           text             NOT NULL
        CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'executed')),
    created_at       timestamptz      NOT NULL,
    expires_at       timestamptz      NOT NULL,
    resolved_at      timestamptz,
    resolved_by      text             NOT NULL,
    note             text             NOT NULL,
    token_hash       bytea            UNIQUE CHECK (length(token_hash) > 0),
    token_expires_at timestamptz,
    executed_at      timestamptz,
    decision_id      text             NOT NULL,
    PRIMARY KEY (tenant_id, approval_id),
    CHECK ((status = 'pending') = (resolved_at IS NULL)),
    CHECK ((status IN ('approved', 'executed')) = (token_hash IS NOT NULL)),
    CHECK ((token_hash IS NULL) = (token_expires_at IS NULL)),
    CHECK ((status = 'executed') = (executed_at IS NOT NULL))
);
CREATE INDEX shield_approvals_status ON shield_approvals (tenant_id, status, approval_id);
-- The expiry sweep.
CREATE INDEX shield_approvals_pending ON shield_approvals (expires_at, tenant_id) WHERE status = 'pending';
ALTER TABLE shield_approvals ENABLE ROW LEVEL SECURITY;
ALTER TABLE shield_approvals FORCE ROW LEVEL SECURITY;
CREATE POLICY shield_approvals_tenant ON shield_approvals
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY shield_approvals_system ON shield_approvals
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- Written at the rate of calls: besides the primary key (GetDecision,
-- ListDecisions) only the two indexes of the sampling window count, per
-- agent and per tenant.
CREATE TABLE shield_decisions (
    tenant_id     text COLLATE "C" NOT NULL REFERENCES tenants (id),
    decision_id   text COLLATE "C" NOT NULL CHECK (decision_id <> ''),
    tool          text COLLATE "C" NOT NULL,
    server        text             NOT NULL,
    outcome       text             NOT NULL CHECK (outcome IN ('allow', 'deny', 'approval_required')),
    stage         text             NOT NULL,
    denial_type   text             NOT NULL,
    mode          text             NOT NULL,
    verdict       text             NOT NULL,
    enforced      boolean          NOT NULL,
    would_block   boolean          NOT NULL,
    tainted       boolean          NOT NULL,
    manifest_hash text             NOT NULL,
    args_hash     text             NOT NULL,
    approval_id   text             NOT NULL,
    agent_id      text COLLATE "C" NOT NULL,
    actor         text             NOT NULL,
    receipt_id    text             NOT NULL,
    inputs        bytea            NOT NULL,
    created_at    timestamptz      NOT NULL,
    PRIMARY KEY (tenant_id, decision_id)
);
CREATE INDEX shield_decisions_agent_window ON shield_decisions (tenant_id, tool, agent_id, created_at);
CREATE INDEX shield_decisions_tool_window ON shield_decisions (tenant_id, tool, created_at);
ALTER TABLE shield_decisions ENABLE ROW LEVEL SECURITY;
ALTER TABLE shield_decisions FORCE ROW LEVEL SECURITY;
CREATE POLICY shield_decisions_tenant_select ON shield_decisions FOR SELECT
    USING (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY shield_decisions_tenant_insert ON shield_decisions FOR INSERT
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY shield_decisions_system_select ON shield_decisions FOR SELECT
    USING (current_setting('vaultcrux.system', true) = 'on');
CREATE POLICY shield_decisions_system_insert ON shield_decisions FOR INSERT
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- Events for delivery, written in the transaction of what they report.
CREATE TABLE event_outbox (
    tenant_id    text COLLATE "C" NOT NULL REFERENCES tenants (id),
    event_id     text COLLATE "C" NOT NULL CHECK (event_id <> ''),
    kind         text             NOT NULL CHECK (kind <> ''),
    payload      bytea            NOT NULL,
    created_at   timestamptz      NOT NULL,
    delivered_at timestamptz,
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX event_outbox_undelivered ON event_outbox (tenant_id, event_id) WHERE delivered_at IS NULL;
ALTER TABLE event_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE event_outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY event_outbox_tenant ON event_outbox
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY event_outbox_system ON event_outbox
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- decision_id refers to no row: the event may be written before its
-- decision in the same transaction.
CREATE TABLE taint_events (
    tenant_id   text COLLATE "C" NOT NULL REFERENCES tenants (id),
    event_id    text COLLATE "C" NOT NULL CHECK (event_id <> ''),
    decision_id text COLLATE "C" NOT NULL,
    class       text             NOT NULL CHECK (class <> ''),
    tool        text             NOT NULL,
    sources     bytea            NOT NULL,
    agent_id    text             NOT NULL,
    at          timestamptz      NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);
ALTER TABLE taint_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE taint_events FORCE ROW LEVEL SECURITY;
CREATE POLICY taint_events_tenant_select ON taint_events FOR SELECT
    USING (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY taint_events_tenant_insert ON taint_events FOR INSERT
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY taint_events_system_select ON taint_events FOR SELECT
    USING (current_setting('vaultcrux.system', true) = 'on');
CREATE POLICY taint_events_system_insert ON taint_events FOR INSERT
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- Agent sessions that read untrusted content, shared by the replicas: one
-- row per (tenant, session), upserted by every mark and deleted once
-- expired. updated_at is the database's clock at the latest mark (not the
-- caller's), for the poll of every tenant's recent marks.
CREATE TABLE shield_session_taint (
    tenant_id  text COLLATE "C" NOT NULL REFERENCES tenants (id),
    session    text COLLATE "C" NOT NULL CHECK (session <> ''),
    source     text             NOT NULL CHECK (source <> ''),
    expires_at timestamptz      NOT NULL,
    updated_at timestamptz      NOT NULL,
    PRIMARY KEY (tenant_id, session)
);
CREATE INDEX shield_session_taint_updated ON shield_session_taint (updated_at);
ALTER TABLE shield_session_taint ENABLE ROW LEVEL SECURITY;
ALTER TABLE shield_session_taint FORCE ROW LEVEL SECURITY;
CREATE POLICY shield_session_taint_tenant ON shield_session_taint
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY shield_session_taint_system ON shield_session_taint
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

CREATE TABLE sampling_policies (
    tenant_id  text COLLATE "C" NOT NULL REFERENCES tenants (id),
    policy_id  text COLLATE "C" NOT NULL CHECK (policy_id <> ''),
    scope      text             NOT NULL CHECK (scope IN ('tool', 'class')),
    target     text             NOT NULL CHECK (target <> ''),
    max_calls  integer          NOT NULL CHECK (max_calls >= 0),
    window_ms  bigint           NOT NULL CHECK (window_ms > 0),
    per        text             NOT NULL CHECK (per IN ('agent', 'tenant')),
    created_by text             NOT NULL,
    created_at timestamptz      NOT NULL,
    deleted_at timestamptz,
    PRIMARY KEY (tenant_id, policy_id)
);
ALTER TABLE sampling_policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE sampling_policies FORCE ROW LEVEL SECURITY;
CREATE POLICY sampling_policies_tenant ON sampling_policies
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY sampling_policies_system ON sampling_policies
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

CREATE TABLE ui_integrity_sessions (
    tenant_id  text COLLATE "C" NOT NULL REFERENCES tenants (id),
    session_id text COLLATE "C" NOT NULL CHECK (session_id <> ''),
    origin     text             NOT NULL,
    tool_allow text             NOT NULL,
    created_by text             NOT NULL,
    created_at timestamptz      NOT NULL,
    expires_at timestamptz      NOT NULL,
    revoked_at timestamptz,
    PRIMARY KEY (tenant_id, session_id)
);
ALTER TABLE ui_integrity_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE ui_integrity_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY ui_integrity_sessions_tenant ON ui_integrity_sessions
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY ui_integrity_sessions_system ON ui_integrity_sessions
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- kill_switch_id refers to no row: '' for a drill without a switch.
CREATE TABLE incident_drills (
    tenant_id      text COLLATE "C" NOT NULL REFERENCES tenants (id),
    drill_id       text COLLATE "C" NOT NULL CHECK (drill_id <> ''),
    scenario       text             NOT NULL CHECK (scenario <> ''),
    kill_switch_id text COLLATE "C" NOT NULL,
    result         text             NOT NULL CHECK (result IN ('', 'passed', 'failed')),
    details        bytea            NOT NULL,
    started_by     text             NOT NULL,
    started_at     timestamptz      NOT NULL,
    finished_at    timestamptz,
    PRIMARY KEY (tenant_id, drill_id),
    CHECK ((result = '') = (finished_at IS NULL))
);
ALTER TABLE incident_drills ENABLE ROW LEVEL SECURITY;
ALTER TABLE incident_drills FORCE ROW LEVEL SECURITY;
CREATE POLICY incident_drills_tenant ON incident_drills
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY incident_drills_system ON incident_drills
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');
