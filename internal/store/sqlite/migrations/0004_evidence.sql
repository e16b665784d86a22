-- The evidence plane (contract §5): tenants' key-encryption keys,
-- documents with their sealed chunks, the index change log and durable
-- ingest jobs. No column holds plaintext content: documents and chunks
-- are sealed, index terms are keyed hashes. Key material (wrapped KEKs,
-- index keys, wrapped DEKs) is erased by overwriting it with '' (or NULL
-- for ingest jobs); secure_delete, set on every connection, keeps the
-- old bytes out of the database file.

-- One row per tenant that has used the evidence plane: index_seq is the
-- Seq of its latest index change, shredded_at the time its keys were
-- crypto-shredded (NULL while they are not).
CREATE TABLE evidence_heads (
    tenant_id   TEXT    NOT NULL PRIMARY KEY REFERENCES tenants (id),
    index_seq   INTEGER NOT NULL DEFAULT 0 CHECK (index_seq >= 0),
    shredded_at INTEGER
) STRICT;

-- Retired and destroyed versions have their material erased. At most
-- one version of a tenant is active.
CREATE TABLE tenant_keks (
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id),
    version      INTEGER NOT NULL CHECK (version > 0),
    provider     TEXT    NOT NULL CHECK (provider <> ''),
    wrapped      TEXT    NOT NULL,
    index_key    TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('active', 'retired', 'destroyed')),
    created_at   INTEGER NOT NULL,
    retired_at   INTEGER,
    destroyed_at INTEGER,
    PRIMARY KEY (tenant_id, version),
    CHECK (state = 'active' OR (wrapped = '' AND index_key = '')),
    CHECK (state <> 'active' OR (retired_at IS NULL AND destroyed_at IS NULL)),
    CHECK (state <> 'retired' OR retired_at IS NOT NULL),
    CHECK ((state = 'destroyed') = (destroyed_at IS NOT NULL))
) STRICT;

CREATE UNIQUE INDEX tenant_keks_one_active ON tenant_keks (tenant_id) WHERE state = 'active';

-- One row per document id: the current version, or, once deleted
-- (deleted_at set, dek erased), the version counter that the next put
-- continues from.
CREATE TABLE documents (
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id),
    doc_id       TEXT    NOT NULL CHECK (doc_id <> ''),
    corpus_id    TEXT    NOT NULL,
    version      INTEGER NOT NULL CHECK (version > 0),
    title        TEXT    NOT NULL,
    url          TEXT    NOT NULL,
    mime_type    TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    trust        TEXT    NOT NULL CHECK (trust IN ('trusted', 'untrusted')),
    content_hash TEXT    NOT NULL,
    bytes        INTEGER NOT NULL CHECK (bytes >= 0),
    chunks       INTEGER NOT NULL CHECK (chunks >= 0),
    dek          TEXT    NOT NULL,
    kek_version  INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    deleted_at   INTEGER,
    PRIMARY KEY (tenant_id, doc_id),
    CHECK (deleted_at IS NULL OR dek = '')
) STRICT;

-- The chunks of the current version of each current document.
CREATE TABLE chunks (
    tenant_id   TEXT    NOT NULL,
    chunk_id    TEXT    NOT NULL CHECK (chunk_id <> ''),
    doc_id      TEXT    NOT NULL,
    doc_version INTEGER NOT NULL CHECK (doc_version > 0),
    seq         INTEGER NOT NULL CHECK (seq >= 0),
    corpus_id   TEXT    NOT NULL,
    trust       TEXT    NOT NULL CHECK (trust IN ('trusted', 'untrusted')),
    sealed      BLOB    NOT NULL,
    text_hash   TEXT    NOT NULL,
    length      INTEGER NOT NULL CHECK (length >= 0),
    terms       BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, chunk_id),
    FOREIGN KEY (tenant_id, doc_id) REFERENCES documents (tenant_id, doc_id)
) STRICT;

CREATE INDEX chunks_document ON chunks (tenant_id, doc_id, doc_version, seq);

-- Append-only: seq runs 1, 2, 3, … per tenant (evidence_heads.index_seq
-- hands them out); version is the new version of a put, the deleted
-- version of a delete.
CREATE TABLE index_changes (
    tenant_id TEXT    NOT NULL REFERENCES tenants (id),
    seq       INTEGER NOT NULL CHECK (seq > 0),
    op        TEXT    NOT NULL CHECK (op IN ('put', 'delete')),
    doc_id    TEXT    NOT NULL CHECK (doc_id <> ''),
    version   INTEGER NOT NULL CHECK (version > 0),
    at        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, seq)
) STRICT;

-- content and dek are NULL once erased (a finished job has neither).
-- lease is '' and lease_until NULL until a worker first claims the job.
CREATE TABLE ingest_jobs (
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    job_id      TEXT    NOT NULL CHECK (job_id <> ''),
    doc_id      TEXT    NOT NULL,
    corpus_id   TEXT    NOT NULL,
    title       TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    mime_type   TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    trust       TEXT    NOT NULL CHECK (trust IN ('trusted', 'untrusted')),
    actor       TEXT    NOT NULL,
    agent_id    TEXT    NOT NULL,
    content     BLOB,
    dek         TEXT,
    kek_version INTEGER NOT NULL,
    bytes       INTEGER NOT NULL CHECK (bytes >= 0),
    status      TEXT    NOT NULL CHECK (status IN ('queued', 'processing', 'indexed', 'failed')),
    chunks      INTEGER NOT NULL CHECK (chunks >= 0),
    doc_version INTEGER NOT NULL CHECK (doc_version >= 0),
    unchanged   INTEGER NOT NULL CHECK (unchanged IN (0, 1)),
    error       TEXT    NOT NULL,
    receipt_id  TEXT    NOT NULL,
    lease       TEXT    NOT NULL,
    lease_until INTEGER,
    attempts    INTEGER NOT NULL CHECK (attempts >= 0),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, job_id),
    CHECK (status <> 'processing' OR (lease <> '' AND lease_until IS NOT NULL)),
    CHECK (status IN ('queued', 'processing') OR (content IS NULL AND dek IS NULL))
) STRICT;

-- The claim scan: unfinished jobs, oldest first.
CREATE INDEX ingest_jobs_claim ON ingest_jobs (created_at, tenant_id, job_id)
    WHERE status IN ('queued', 'processing');
