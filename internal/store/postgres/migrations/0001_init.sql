-- Every table but schema_migrations is a tenant table with row-level
-- security ENABLEd and FORCEd (so that the owning role, which the
-- application connects as, is subject to it too). RLSBypassed reports a
-- table that misses either. Policies read transaction-local settings:
--   vaultcrux.tenant      the tenant of a TenantTx
--   vaultcrux.system      'on' in a system transaction's administrative work
--   vaultcrux.key_lookup  the one key id LookupAPIKey may read
-- Ids use the "C" collation so that ORDER BY and cursors compare bytes, as
-- Go and SQLite do.

CREATE TABLE tenants (
    id         text COLLATE "C" NOT NULL PRIMARY KEY CHECK (id <> ''),
    name       text        NOT NULL,
    created_at timestamptz NOT NULL
);
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenants_system ON tenants
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- key_id is unique across tenants: authentication finds the tenant of a
-- key by its id alone.
CREATE TABLE api_keys (
    key_id       text COLLATE "C" NOT NULL PRIMARY KEY CHECK (key_id <> ''),
    tenant_id    text COLLATE "C" NOT NULL REFERENCES tenants (id),
    label        text        NOT NULL,
    role         text        NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    hash         bytea       NOT NULL,
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_keys_tenant_key ON api_keys (tenant_id, key_id);
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY api_keys_tenant ON api_keys
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY api_keys_system ON api_keys
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');
CREATE POLICY api_keys_lookup ON api_keys FOR SELECT
    USING (key_id = current_setting('vaultcrux.key_lookup', true));

-- status IS NULL while the first request is still being handled.
CREATE TABLE idempotency_keys (
    tenant_id    text COLLATE "C" NOT NULL REFERENCES tenants (id),
    method       text        NOT NULL,
    route        text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    status       integer,
    header_json  jsonb,
    body         bytea,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, method, route, key),
    CHECK ((status IS NULL) = (header_json IS NULL) AND (status IS NULL) = (body IS NULL))
);
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY idempotency_keys_tenant ON idempotency_keys
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY idempotency_keys_system ON idempotency_keys
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');
