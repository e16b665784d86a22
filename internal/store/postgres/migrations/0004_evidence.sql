-- The evidence plane (contract §5): tenants' key-encryption keys,
-- documents with their sealed chunks, the index change log and durable
-- ingest jobs. No column holds plaintext content: documents and chunks
-- are sealed, index terms are keyed hashes. Key material (wrapped KEKs,
-- index keys, wrapped DEKs) is erased by overwriting it with '' (or NULL
-- for ingest jobs); Scrub vacuums the tables that held it.
-- As in 0001, every table has row-level security ENABLEd and FORCEd. The
-- index change log is append-only: its policies allow SELECT and INSERT
-- only. References between tenant tables name the tenant too.

-- One row per tenant that has used the evidence plane: index_seq is the
-- Seq of its latest index change, shredded_at the time its keys were
-- crypto-shredded (NULL while they are not). Writers of documents and
-- keys lock the row first, which serialises them within the tenant and
-- hands out consecutive Seqs.
CREATE TABLE evidence_heads (
    tenant_id   text COLLATE "C" NOT NULL PRIMARY KEY REFERENCES tenants (id),
    index_seq   bigint           NOT NULL DEFAULT 0 CHECK (index_seq >= 0),
    shredded_at timestamptz
);
ALTER TABLE evidence_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE evidence_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY evidence_heads_tenant ON evidence_heads
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY evidence_heads_system ON evidence_heads
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- Retired and destroyed versions have their material erased. At most
-- one version of a tenant is active.
CREATE TABLE tenant_keks (
    tenant_id    text COLLATE "C" NOT NULL REFERENCES tenants (id),
    version      integer          NOT NULL CHECK (version > 0),
    provider     text             NOT NULL CHECK (provider <> ''),
    wrapped      text             NOT NULL,
    index_key    text             NOT NULL,
    state        text             NOT NULL CHECK (state IN ('active', 'retired', 'destroyed')),
    created_at   timestamptz      NOT NULL,
    retired_at   timestamptz,
    destroyed_at timestamptz,
    PRIMARY KEY (tenant_id, version),
    CHECK (state = 'active' OR (wrapped = '' AND index_key = '')),
    CHECK (state <> 'active' OR (retired_at IS NULL AND destroyed_at IS NULL)),
    CHECK (state <> 'retired' OR retired_at IS NOT NULL),
    CHECK ((state = 'destroyed') = (destroyed_at IS NOT NULL))
);
CREATE UNIQUE INDEX tenant_keks_one_active ON tenant_keks (tenant_id) WHERE state = 'active';
ALTER TABLE tenant_keks ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_keks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_keks_tenant ON tenant_keks
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY tenant_keks_system ON tenant_keks
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- One row per document id: the current version, or, once deleted
-- (deleted_at set, dek erased), the version counter that the next put
-- continues from.
CREATE TABLE documents (
    tenant_id    text COLLATE "C" NOT NULL REFERENCES tenants (id),
    doc_id       text COLLATE "C" NOT NULL CHECK (doc_id <> ''),
    corpus_id    text COLLATE "C" NOT NULL,
    version      integer          NOT NULL CHECK (version > 0),
    title        text             NOT NULL,
    url          text             NOT NULL,
    mime_type    text             NOT NULL,
    source       text             NOT NULL,
    trust        text             NOT NULL CHECK (trust IN ('trusted', 'untrusted')),
    content_hash text             NOT NULL,
    bytes        bigint           NOT NULL CHECK (bytes >= 0),
    chunks       integer          NOT NULL CHECK (chunks >= 0),
    dek          text             NOT NULL,
    kek_version  integer          NOT NULL,
    created_at   timestamptz      NOT NULL,
    deleted_at   timestamptz,
    PRIMARY KEY (tenant_id, doc_id),
    CHECK (deleted_at IS NULL OR dek = '')
);
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE documents FORCE ROW LEVEL SECURITY;
CREATE POLICY documents_tenant ON documents
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY documents_system ON documents
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- The chunks of the current version of each current document.
CREATE TABLE chunks (
    tenant_id   text COLLATE "C" NOT NULL,
    chunk_id    text COLLATE "C" NOT NULL CHECK (chunk_id <> ''),
    doc_id      text COLLATE "C" NOT NULL,
    doc_version integer          NOT NULL CHECK (doc_version > 0),
    seq         integer          NOT NULL CHECK (seq >= 0),
    corpus_id   text COLLATE "C" NOT NULL,
    trust       text             NOT NULL CHECK (trust IN ('trusted', 'untrusted')),
    sealed      bytea            NOT NULL,
    text_hash   text             NOT NULL,
    length      integer          NOT NULL CHECK (length >= 0),
    terms       bytea            NOT NULL,
    created_at  timestamptz      NOT NULL,
    PRIMARY KEY (tenant_id, chunk_id),
    FOREIGN KEY (tenant_id, doc_id) REFERENCES documents (tenant_id, doc_id)
);
CREATE INDEX chunks_document ON chunks (tenant_id, doc_id, doc_version, seq);
ALTER TABLE chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE chunks FORCE ROW LEVEL SECURITY;
CREATE POLICY chunks_tenant ON chunks
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY chunks_system ON chunks
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- seq runs 1, 2, 3, … per tenant (evidence_heads.index_seq hands them
-- out); version is the new version of a put, the deleted version of a
-- delete.
CREATE TABLE index_changes (
    tenant_id text COLLATE "C" NOT NULL REFERENCES tenants (id),
    seq       bigint           NOT NULL CHECK (seq > 0),
    op        text             NOT NULL CHECK (op IN ('put', 'delete')),
    doc_id    text COLLATE "C" NOT NULL CHECK (doc_id <> ''),
    version   integer          NOT NULL CHECK (version > 0),
    at        timestamptz      NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
ALTER TABLE index_changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE index_changes FORCE ROW LEVEL SECURITY;
CREATE POLICY index_changes_tenant_select ON index_changes FOR SELECT
    USING (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY index_changes_tenant_insert ON index_changes FOR INSERT
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY index_changes_system_select ON index_changes FOR SELECT
    USING (current_setting('vaultcrux.system', true) = 'on');
CREATE POLICY index_changes_system_insert ON index_changes FOR INSERT
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');

-- content and dek are NULL once erased (a finished job has neither).
-- lease is '' and lease_until NULL until a worker first claims the job.
CREATE TABLE ingest_jobs (
    tenant_id   text COLLATE "C" NOT NULL REFERENCES tenants (id),
    job_id      text COLLATE "C" NOT NULL CHECK (job_id <> ''),
    doc_id      text COLLATE "C" NOT NULL,
    corpus_id   text COLLATE "C" NOT NULL,
    title       text             NOT NULL,
    url         text             NOT NULL,
    mime_type   text             NOT NULL,
    source      text             NOT NULL,
    trust       text             NOT NULL CHECK (trust IN ('trusted', 'untrusted')),
    actor       text             NOT NULL,
    agent_id    text             NOT NULL,
    content     bytea,
    dek         text,
    kek_version integer          NOT NULL,
    bytes       bigint           NOT NULL CHECK (bytes >= 0),
    status      text             NOT NULL CHECK (status IN ('queued', 'processing', 'indexed', 'failed')),
    chunks      integer          NOT NULL CHECK (chunks >= 0),
    doc_version integer          NOT NULL CHECK (doc_version >= 0),
    unchanged   boolean          NOT NULL,
    error       text             NOT NULL,
    receipt_id  text             NOT NULL,
    lease       text             NOT NULL,
    lease_until timestamptz,
    attempts    integer          NOT NULL CHECK (attempts >= 0),
    created_at  timestamptz      NOT NULL,
    updated_at  timestamptz      NOT NULL,
    PRIMARY KEY (tenant_id, job_id),
    CHECK (status <> 'processing' OR (lease <> '' AND lease_until IS NOT NULL)),
    CHECK (status IN ('queued', 'processing') OR (content IS NULL AND dek IS NULL))
);
-- The claim scan: unfinished jobs, oldest first.
CREATE INDEX ingest_jobs_claim ON ingest_jobs (created_at, tenant_id, job_id)
    WHERE status IN ('queued', 'processing');
ALTER TABLE ingest_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingest_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY ingest_jobs_tenant ON ingest_jobs
    USING (tenant_id = current_setting('vaultcrux.tenant', true))
    WITH CHECK (tenant_id = current_setting('vaultcrux.tenant', true));
CREATE POLICY ingest_jobs_system ON ingest_jobs
    USING (current_setting('vaultcrux.system', true) = 'on')
    WITH CHECK (current_setting('vaultcrux.system', true) = 'on');
