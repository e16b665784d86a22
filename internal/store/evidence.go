package store

import (
	"time"

	"github.com/vaultcrux/vaultcrux"
)

// Evidence plane storage (contract §5). Nothing here is plaintext
// content: document and chunk text arrive sealed (internal/envelope), and
// index terms arrive as per-tenant keyed hashes. Titles, URLs, MIME types,
// ids and times are plaintext metadata.

// EvidenceTx is the evidence-plane part of a TenantTx.
type EvidenceTx interface {
	// Key material of the tenant (its key-encryption keys).

	// AddTenantKEK stores a new KEK version. Conflict if the version
	// exists, if k is active while another version is (retire that one
	// first), or if the tenant is shredded.
	AddTenantKEK(k *TenantKEK) error
	// ActiveTenantKEK returns the active KEK version; NotFound if the
	// tenant has none (never created, or shredded).
	ActiveTenantKEK() (*TenantKEK, error)
	// ListTenantKEKs returns every version, oldest first, destroyed ones
	// included (with their material erased).
	ListTenantKEKs() ([]*TenantKEK, error)
	// RetireTenantKEK marks version retired at t and erases its Wrapped
	// and IndexKey material (after a rotation re-wrapped everything
	// under the next version). Retiring twice keeps the first time; a
	// destroyed version stays destroyed. NotFound if absent.
	RetireTenantKEK(version int, t time.Time) error
	// ShredTenantKeys marks every KEK version destroyed at t, erases all
	// their material, and erases every stored DEK (documents' and
	// ingest jobs', whatever their status). It returns how many KEK
	// versions it destroyed (not counting ones destroyed before).
	// After it, ActiveTenantKEK is NotFound and AddTenantKEK is Conflict.
	ShredTenantKeys(t time.Time) (int, error)
	// TenantShreddedAt returns when the tenant's keys were shredded, or nil.
	TenantShreddedAt() (*time.Time, error)

	// Documents.

	// GetDocument returns the current (undeleted) document docID;
	// NotFound if absent or deleted.
	GetDocument(docID string) (*Document, error)
	// PutDocument makes d (with its chunks) the current version of
	// d.ID, atomically: the previous version's chunks are deleted, and
	// an IndexChange ("put", doc, version) is appended, whose Seq it
	// returns. d.Version must be the previous version + 1, a deleted
	// version counting as previous (so 1 only for an id never put);
	// Conflict otherwise.
	PutDocument(d *Document, chunks []*Chunk, now time.Time) (seq int64, err error)
	// DeleteDocument deletes the current version of docID and its
	// chunks, keeping the document's version counter (a later put must
	// use the next version), and appends an IndexChange ("delete"). It
	// returns the deleted document as it was before the delete, and the
	// change's Seq. NotFound if absent or deleted.
	DeleteDocument(docID string, now time.Time) (*Document, int64, error)
	// DocumentVersion returns the latest version docID ever had, deleted
	// ones included (0 if it never existed): the next put uses it + 1.
	DocumentVersion(docID string) (int, error)
	// ListDocuments returns current documents ordered by id after `after`.
	ListDocuments(after string, limit int) ([]*Document, error)
	// RewrapDEKs replaces the wrapped DEK of every document and
	// unfinished ingest job whose KEKVersion is from, setting KEKVersion
	// to: fn gets the old wrapped DEK and returns the new one (an error
	// from fn aborts). Erased DEKs are skipped. It returns how many it
	// rewrapped.
	RewrapDEKs(from, to int, fn func(wrapped string) (string, error)) (int, error)

	// Chunks.

	// GetChunks returns the chunks with the given ids that exist, in the
	// order asked, skipping missing ones.
	GetChunks(ids []string) ([]*Chunk, error)
	// ListChunks returns the current chunks of every current document,
	// ordered by chunk id, after the chunk id `after`, up to limit: the
	// rebuild of the in-memory index. (Chunk ids sort bytewise: "d#10"
	// comes before "d#2"; order by (DocID, Seq) in memory if needed.)
	ListChunks(after string, limit int) ([]*Chunk, error)
	// DocumentChunks returns the chunks of one document version.
	DocumentChunks(docID string, version int) ([]*Chunk, error)

	// The index change log: an append-only sequence per tenant that lets
	// every process bring its in-memory index up to date.

	// IndexHead returns the Seq of the latest change (0 when none).
	IndexHead() (int64, error)
	// IndexChanges returns the changes with Seq > after, oldest first,
	// up to limit.
	IndexChanges(after int64, limit int) ([]*IndexChange, error)

	// Ingest jobs (contract §5).

	// CreateIngestJob stores a queued job (Status "queued"); j.Tenant
	// must be the handle's tenant. Conflict if its id exists.
	CreateIngestJob(j *IngestJob) error
	// GetIngestJob returns the job; NotFound if absent.
	GetIngestJob(id string) (*IngestJob, error)
	// FinishIngestJob sets the job's final Status (indexed or failed),
	// Chunks, DocVersion, Unchanged, Error, ReceiptID and UpdatedAt, and erases its
	// Content and DEK, provided the job is "processing" under lease; else
	// Conflict (its lease was lost, or it is finished). NotFound if the
	// job does not exist.
	FinishIngestJob(j *IngestJob, lease string) error
}

// SystemEvidenceTx is the evidence-plane part of a SystemTx.
type SystemEvidenceTx interface {
	// ClaimIngestJobs moves up to limit jobs to "processing" with the
	// given lease token and LeaseUntil, oldest first, and returns them
	// (Content and DEK included): jobs that are queued, or processing
	// with a LeaseUntil at or before now (their worker died). On
	// PostgreSQL concurrent claimers never get the same job (SKIP LOCKED).
	ClaimIngestJobs(lease string, now, leaseUntil time.Time, limit int) ([]*IngestJob, error)
	// TenantsWithDocuments returns every tenant that has index changes.
	TenantsWithDocuments() ([]vaultcrux.TenantID, error)
}

// TenantKEK is one version of a tenant's key-encryption key as its key
// provider keeps it. For the local provider, Wrapped is the KEK sealed
// under the master key; IndexKey is the tenant's blind-index key sealed
// under this KEK version. Retired and destroyed versions have both erased.
type TenantKEK struct {
	Version     int
	Provider    string // "local"
	Wrapped     string
	IndexKey    string
	State       string // "active", "retired", "destroyed"
	CreatedAt   time.Time
	RetiredAt   *time.Time
	DestroyedAt *time.Time
}

// Document is the current version of a document. DEK is its data key
// wrapped by KEK version KEKVersion; ContentHash is "blake3:<hex>" of the
// plaintext content (the identical-content check and receipts use it).
type Document struct {
	ID          string
	CorpusID    string
	Version     int
	Title       string
	URL         string
	MIMEType    string
	Source      string // provenance: user, agent, tool:<server>/<name>, url
	Trust       string // "trusted" or "untrusted"
	ContentHash string
	Bytes       int64
	Chunks      int
	DEK         string
	KEKVersion  int
	CreatedAt   time.Time // of this version
}

// Chunk is one sealed chunk of a document version. Terms is the chunk's
// forward index: the encoding of (keyed term hash, term frequency) pairs
// made by internal/textindex; Length is its length in tokens (BM25's
// document length). TextHash is "blake3:<hex>" of the chunk text, the
// quoteHash of answer receipts and the basis of stale-lineage checks.
type Chunk struct {
	ID         string // <docId>#<n>
	DocID      string
	DocVersion int
	Seq        int
	CorpusID   string
	Trust      string
	Sealed     []byte
	TextHash   string
	Length     int
	Terms      []byte
	CreatedAt  time.Time
}

// IndexChange is one entry of the index change log.
type IndexChange struct {
	Seq     int64
	Op      string // "put" or "delete"
	DocID   string
	Version int // put: the new version; delete: the deleted version
	At      time.Time
}

// IngestJob is a durable ingest request. Content is the request's content
// sealed under DEK (wrapped by KEK version KEKVersion); both are erased
// when the job finishes.
type IngestJob struct {
	ID         string
	Tenant     vaultcrux.TenantID // a claim returns jobs of every tenant
	DocID      string
	CorpusID   string
	Title      string
	URL        string
	MIMEType   string
	Source     string
	Trust      string
	Actor      string // the principal id that asked
	AgentID    string
	Content    []byte
	DEK        string
	KEKVersion int
	Bytes      int64
	Status     string // queued, processing, indexed, failed
	Chunks     int
	DocVersion int    // the version indexed (0 when unchanged or failed)
	Unchanged  bool   // identical content: nothing was re-indexed
	Error      string // failed only: a user-safe reason
	ReceiptID  string
	Lease      string
	LeaseUntil *time.Time
	Attempts   int
	CreatedAt  time.Time
	UpdatedAt  time.Time
}
