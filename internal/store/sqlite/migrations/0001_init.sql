-- Times are INTEGER unix milliseconds, UTC. Text compares bytewise
-- (BINARY), so key_id order matches Go's string order.

CREATE TABLE tenants (
    id         TEXT    NOT NULL PRIMARY KEY CHECK (id <> ''),
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- key_id is unique across tenants: authentication finds the tenant of a
-- key by its id alone.
CREATE TABLE api_keys (
    key_id       TEXT    NOT NULL PRIMARY KEY CHECK (key_id <> ''),
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id),
    label        TEXT    NOT NULL,
    role         TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    hash         BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    last_used_at INTEGER
) STRICT;

CREATE INDEX api_keys_tenant_key ON api_keys (tenant_id, key_id);

-- status IS NULL while the first request is still being handled.
CREATE TABLE idempotency_keys (
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id),
    method       TEXT    NOT NULL,
    route        TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash BLOB    NOT NULL,
    status       INTEGER,
    header_json  TEXT,
    body         BLOB,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, method, route, key),
    CHECK ((status IS NULL) = (header_json IS NULL) AND (status IS NULL) = (body IS NULL))
) STRICT;

CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
