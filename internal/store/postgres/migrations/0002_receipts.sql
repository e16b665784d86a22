-- The receipt ledger: signing keys, receipts, their detached signatures
-- and each tenant's transparency log (head and signed checkpoints).
-- Receipt rows are written once and never updated; a receipt stored
-- pending_signature gets its signature as a receipt_attestations row.
-- As in 0001, every table has row-level security ENABLEd and FORCEd.

-- signing_keys is not per tenant: every tenant's receipts are signed with
-- the one active key, so only administration (vaultcrux.system) reaches
-- it. At most one version is active.
CREATE TABLE signing_keys (
    version    integer          NOT NULL PRIMARY KEY CHECK (version > 0),
    kid        text COLLATE "C" NOT NULL UNIQUE CHECK (kid <> ''),
    public_key bytea            NOT NULL UNIQUE CHECK (length(public_key) > 0),
    status     text             NOT NULL CHECK (status IN ('active', 'retired', 'revoked')),
    created_at timestamptz      NOT NULL,
    retired_at timestamptz,
    revoked_at timestamptz,
    CHECK ((status = 'revoked') = (revoked_at IS NOT NULL)),
    CHECK (status <> 'retired' OR retired_at IS NOT NULL),
    CHECK (status <> 'active' OR retired_at IS NULL)
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (status) WHERE status = 'active';
ALTER TABLE signing_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE signing_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY signing_keys_system ON signing_keys
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- log_index is the receipt's position in its tenant's log; log_hashes
-- holds the log's stored hashes that appending it produced. The answer
-- columns are NULL for event receipts.
CREATE TABLE receipts (
    tenant_id      text COLLATE "C" NOT NULL REFERENCES tenants (id),
    receipt_id     text COLLATE "C" NOT NULL CHECK (receipt_id <> ''),
    kind           text COLLATE "C" NOT NULL CHECK (kind <> ''),
    answer_id      text COLLATE "C" CHECK (answer_id <> ''),
    snapshot_id    text COLLATE "C" CHECK (snapshot_id <> ''),
    parent_snap_id text COLLATE "C" CHECK (parent_snap_id <> ''),
    receipt_hash   text             NOT NULL CHECK (receipt_hash <> ''),
    body           bytea            NOT NULL,
    pending        boolean          NOT NULL,
    log_index      bigint           NOT NULL CHECK (log_index >= 0),
    log_hashes     bytea            NOT NULL,
    created_at     timestamptz      NOT NULL,
    PRIMARY KEY (tenant_id, receipt_id)
);
CREATE UNIQUE INDEX receipts_log_index ON receipts (tenant_id, log_index);
CREATE UNIQUE INDEX receipts_answer ON receipts (tenant_id, answer_id) WHERE answer_id IS NOT NULL;
CREATE UNIQUE INDEX receipts_snapshot ON receipts (tenant_id, snapshot_id) WHERE snapshot_id IS NOT NULL;
CREATE INDEX receipts_kind ON receipts (tenant_id, kind, log_index);
CREATE INDEX receipts_pending ON receipts (tenant_id, log_index) WHERE pending;
ALTER TABLE receipts ENABLE ROW LEVEL SECURITY;
ALTER TABLE receipts FORCE ROW LEVEL SECURITY;
CREATE POLICY receipts_tenant ON receipts
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY receipts_system ON receipts
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- signature is the receipt's signature object (JSON).
CREATE TABLE receipt_attestations (
    tenant_id  text COLLATE "C" NOT NULL,
    receipt_id text COLLATE "C" NOT NULL,
    signature  bytea            NOT NULL CHECK (length(signature) > 0),
    created_at timestamptz      NOT NULL,
    PRIMARY KEY (tenant_id, receipt_id),
    FOREIGN KEY (tenant_id, receipt_id) REFERENCES receipts (tenant_id, receipt_id)
);
ALTER TABLE receipt_attestations ENABLE ROW LEVEL SECURITY;
ALTER TABLE receipt_attestations FORCE ROW LEVEL SECURITY;
CREATE POLICY receipt_attestations_tenant ON receipt_attestations
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY receipt_attestations_system ON receipt_attestations
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- size is the number of receipts in the tenant's log; checkpoint_size the
-- size of its largest checkpoint. Appenders lock the row (LogHead), which
-- serialises them across replicas.
CREATE TABLE log_heads (
    tenant_id       text COLLATE "C" NOT NULL PRIMARY KEY REFERENCES tenants (id),
    size            bigint           NOT NULL CHECK (size >= 0),
    checkpoint_size bigint           NOT NULL CHECK (checkpoint_size >= 0),
    CHECK (checkpoint_size <= size)
);
ALTER TABLE log_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE log_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY log_heads_tenant ON log_heads
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY log_heads_system ON log_heads
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

CREATE TABLE log_checkpoints (
    tenant_id  text COLLATE "C" NOT NULL REFERENCES tenants (id),
    size       bigint           NOT NULL CHECK (size >= 0),
    root_hash  bytea            NOT NULL CHECK (length(root_hash) > 0),
    note       bytea            NOT NULL CHECK (length(note) > 0),
    created_at timestamptz      NOT NULL,
    PRIMARY KEY (tenant_id, size)
);
ALTER TABLE log_checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE log_checkpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY log_checkpoints_tenant ON log_checkpoints
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY log_checkpoints_system ON log_checkpoints
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');
