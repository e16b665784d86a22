-- The receipt ledger: signing keys, receipts, their detached signatures
-- and each tenant's transparency log (head and signed checkpoints).
-- Receipt rows are written once and never updated; a receipt stored
-- pending_signature gets its signature as a receipt_attestations row.

-- signing_keys is not per tenant: every tenant's receipts are signed with
-- the one active key. At most one version is active.
CREATE TABLE signing_keys (
    version    INTEGER NOT NULL PRIMARY KEY CHECK (version > 0),
    kid        TEXT    NOT NULL UNIQUE CHECK (kid <> ''),
    public_key BLOB    NOT NULL UNIQUE CHECK (length(public_key) > 0),
    status     TEXT    NOT NULL CHECK (status IN ('active', 'retired', 'revoked')),
    created_at INTEGER NOT NULL,
    retired_at INTEGER,
    revoked_at INTEGER,
    CHECK ((status = 'revoked') = (revoked_at IS NOT NULL)),
    CHECK (status <> 'retired' OR retired_at IS NOT NULL),
    CHECK (status <> 'active' OR retired_at IS NULL)
) STRICT;

CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (status) WHERE status = 'active';

-- log_index is the receipt's position in its tenant's log; log_hashes
-- holds the log's stored hashes that appending it produced. The answer
-- columns are NULL for event receipts.
CREATE TABLE receipts (
    tenant_id      TEXT    NOT NULL REFERENCES tenants (id),
    receipt_id     TEXT    NOT NULL CHECK (receipt_id <> ''),
    kind           TEXT    NOT NULL CHECK (kind <> ''),
    answer_id      TEXT    CHECK (answer_id <> ''),
    snapshot_id    TEXT    CHECK (snapshot_id <> ''),
    parent_snap_id TEXT    CHECK (parent_snap_id <> ''),
    receipt_hash   TEXT    NOT NULL CHECK (receipt_hash <> ''),
    body           BLOB    NOT NULL,
    pending        INTEGER NOT NULL CHECK (pending IN (0, 1)),
    log_index      INTEGER NOT NULL CHECK (log_index >= 0),
    log_hashes     BLOB    NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, receipt_id)
) STRICT;

CREATE UNIQUE INDEX receipts_log_index ON receipts (tenant_id, log_index);
CREATE UNIQUE INDEX receipts_answer ON receipts (tenant_id, answer_id) WHERE answer_id IS NOT NULL;
CREATE UNIQUE INDEX receipts_snapshot ON receipts (tenant_id, snapshot_id) WHERE snapshot_id IS NOT NULL;
CREATE INDEX receipts_kind ON receipts (tenant_id, kind, log_index);
CREATE INDEX receipts_pending ON receipts (tenant_id, log_index) WHERE pending = 1;

-- signature is the receipt's signature object (JSON).
CREATE TABLE receipt_attestations (
    tenant_id  TEXT    NOT NULL,
    receipt_id TEXT    NOT NULL,
    signature  BLOB    NOT NULL CHECK (length(signature) > 0),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, receipt_id),
    FOREIGN KEY (tenant_id, receipt_id) REFERENCES receipts (tenant_id, receipt_id)
) STRICT;

-- size is the number of receipts in the tenant's log; checkpoint_size the
-- size of its largest checkpoint.
CREATE TABLE log_heads (
    tenant_id       TEXT    NOT NULL PRIMARY KEY REFERENCES tenants (id),
    size            INTEGER NOT NULL CHECK (size >= 0),
    checkpoint_size INTEGER NOT NULL CHECK (checkpoint_size >= 0),
    CHECK (checkpoint_size <= size)
) STRICT;

CREATE TABLE log_checkpoints (
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id),
    size       INTEGER NOT NULL CHECK (size >= 0),
    root_hash  BLOB    NOT NULL CHECK (length(root_hash) > 0),
    note       BLOB    NOT NULL CHECK (length(note) > 0),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, size)
) STRICT;
