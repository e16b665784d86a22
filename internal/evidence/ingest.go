package evidence

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/envelope"
	"github.com/vaultcrux/vaultcrux/internal/ident"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/textindex"
)

// IngestRequest is the body of POST /v1/ingest.
type IngestRequest struct {
	CorpusID string `json:"corpusId"`
	DocID    string `json:"docId"`
	Title    string `json:"title"`
	URL      string `json:"url"`
	MIMEType string `json:"mimeType"`
	Content  string `json:"content"`
	Source   string `json:"source"`
}

// Limits on ingest fields (the body as a whole is limited by the server).
const (
	maxIDLen    = 200
	maxTitleLen = 1000
	maxURLLen   = 2048
	maxMIMELen  = 100
	maxChunks   = 10000
)

// ValidID reports whether s may be a document or corpus id: 1-200
// characters of A-Z a-z 0-9 and ._:@- (no '#', which separates a chunk's
// position from its document id).
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '@' || c == '-') {
			return false
		}
	}
	return true
}

// Provenance decides the source a document is recorded with and its
// trust label. A caller may claim a less trusted source, never a more
// trusted one: a request made by an agent (x-agent-id) cannot record its
// content as the user's. Only "user" content is trusted; agent output,
// tool output and fetched URLs are untrusted (they can carry injected
// instructions).
func Provenance(claimed string, p vaultcrux.Principal, docURL string) (source, trust string, err error) {
	switch {
	case claimed == "":
		if p.AgentID != "" {
			claimed = "agent"
		} else {
			claimed = "user"
		}
	case claimed == "user" && p.AgentID != "":
		return "", "", vaultcrux.E(vaultcrux.Invalid, `source "user" cannot be claimed by a request made for an agent (x-agent-id); use "agent", "tool:<server>/<name>" or "url"`)
	case claimed == "user", claimed == "agent":
	case claimed == "url":
		if docURL == "" {
			return "", "", vaultcrux.E(vaultcrux.Invalid, `source "url" needs the document's url`)
		}
	case strings.HasPrefix(claimed, "tool:"):
		server, name, ok := strings.Cut(claimed[len("tool:"):], "/")
		if !ok || !validToolPart(server) || !validToolPart(name) {
			return "", "", vaultcrux.E(vaultcrux.Invalid, `source "tool:<server>/<name>" needs a server and a tool name of A-Z a-z 0-9 ._-`)
		}
	default:
		return "", "", vaultcrux.E(vaultcrux.Invalid, `source must be "user", "agent", "tool:<server>/<name>" or "url"`)
	}
	if claimed == "user" {
		return claimed, "trusted", nil
	}
	return claimed, "untrusted", nil
}

func validToolPart(s string) bool {
	if len(s) == 0 || len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (r *IngestRequest) validate() error {
	switch {
	case !ValidID(r.CorpusID):
		return vaultcrux.E(vaultcrux.Invalid, "corpusId must be 1-200 characters of A-Z a-z 0-9 ._:@-")
	case !ValidID(r.DocID):
		return vaultcrux.E(vaultcrux.Invalid, "docId must be 1-200 characters of A-Z a-z 0-9 ._:@-")
	case strings.TrimSpace(r.Title) == "":
		return vaultcrux.E(vaultcrux.Invalid, "title is required")
	case utf8.RuneCountInString(r.Title) > maxTitleLen:
		return vaultcrux.Ef(vaultcrux.Invalid, "title is longer than %d characters", maxTitleLen)
	case len(r.MIMEType) > maxMIMELen:
		return vaultcrux.E(vaultcrux.Invalid, "mimeType is too long")
	case strings.TrimSpace(r.Content) == "":
		return vaultcrux.E(vaultcrux.Invalid, "content is required")
	}
	if r.MIMEType != "" && !strings.HasPrefix(r.MIMEType, "text/") && r.MIMEType != "application/json" && r.MIMEType != "application/xml" {
		return vaultcrux.E(vaultcrux.Invalid, "mimeType must be a text type (text/*, application/json or application/xml): content is text")
	}
	if r.URL != "" {
		if len(r.URL) > maxURLLen {
			return vaultcrux.Ef(vaultcrux.Invalid, "url is longer than %d bytes", maxURLLen)
		}
		u, err := url.Parse(r.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return vaultcrux.E(vaultcrux.Invalid, "url must be an absolute http or https URL")
		}
	}
	return nil
}

// Job is what GET /v1/ingest/:id shows.
type Job struct {
	IngestID  string  `json:"ingestId"`
	DocID     string  `json:"docId"`
	CorpusID  string  `json:"corpusId"`
	Status    string  `json:"status"`
	Chunks    int     `json:"chunks"`
	Version   int     `json:"version,omitempty"`
	Unchanged bool    `json:"unchanged"`
	Source    string  `json:"source"`
	Trust     string  `json:"trust"`
	Error     *string `json:"error"`
	ReceiptID *string `json:"receiptId"`
	CreatedAt string  `json:"createdAt"`
	UpdatedAt string  `json:"updatedAt"`
}

func jobView(j *store.IngestJob) *Job {
	v := &Job{
		IngestID: j.ID, DocID: j.DocID, CorpusID: j.CorpusID, Status: j.Status, Chunks: j.Chunks,
		Version: j.DocVersion, Unchanged: j.Unchanged, Source: j.Source, Trust: j.Trust,
		CreatedAt: vaultcrux.FormatTime(j.CreatedAt), UpdatedAt: vaultcrux.FormatTime(j.UpdatedAt),
	}
	if j.Error != "" {
		v.Error = &j.Error
	}
	if j.ReceiptID != "" {
		v.ReceiptID = &j.ReceiptID
	}
	return v
}

// Submit validates r, seals its content under a fresh data key and stores
// a queued job; a worker indexes it. The answer is the job, status
// "queued".
func (s *Service) Submit(ctx context.Context, p vaultcrux.Principal, r *IngestRequest) (*Job, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	source, trust, err := Provenance(r.Source, p, r.URL)
	if err != nil {
		return nil, err
	}
	mt := r.MIMEType
	if mt == "" {
		mt = "text/plain"
	}
	now := s.ledger.Now()
	id, err := ident.New(now, s.rnd())
	if err != nil {
		return nil, err
	}
	job := &store.IngestJob{
		ID: id, Tenant: p.Tenant, DocID: r.DocID, CorpusID: r.CorpusID, Title: r.Title, URL: r.URL, MIMEType: mt,
		Source: source, Trust: trust, Actor: p.ID, AgentID: p.AgentID, Bytes: int64(len(r.Content)),
		Status: "queued", CreatedAt: now, UpdatedAt: now,
	}
	err = s.st.ForTenant(p.Tenant).Tx(ctx, func(tx store.TenantTx) error {
		k, err := s.keysFor(ctx, tx, p.Tenant, true)
		if err != nil {
			return err
		}
		dek, err := envelope.NewKey(s.rnd())
		if err != nil {
			return err
		}
		if job.DEK, err = k.kek.Wrap(dek, dekAAD(p.Tenant)); err != nil {
			return err
		}
		job.KEKVersion = k.row.Version
		if job.Content, err = envelope.Seal(dek, jobAAD(p.Tenant, id), []byte(r.Content), s.rnd()); err != nil {
			return err
		}
		return tx.CreateIngestJob(job)
	})
	if err != nil {
		return nil, err
	}
	s.Wake()
	return jobView(job), nil
}

// GetJob returns an ingest job of tenant.
func (s *Service) GetJob(ctx context.Context, tenant vaultcrux.TenantID, id string) (*Job, error) {
	var j *store.IngestJob
	err := s.st.ForTenant(tenant).Tx(ctx, func(tx store.TenantTx) (err error) {
		j, err = tx.GetIngestJob(id)
		return err
	})
	if vaultcrux.ErrorKind(err) == vaultcrux.NotFound {
		return nil, vaultcrux.E(vaultcrux.NotFound, "ingest job not found")
	}
	if err != nil {
		return nil, err
	}
	return jobView(j), nil
}

// Wake makes an idle worker look for jobs now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run processes ingest jobs until ctx ends: queued ones, and those whose
// worker died (lease expired). A job is finished exactly once: a worker
// that lost its lease cannot finish it.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.poll)
	defer t.Stop()
	for {
		for ctx.Err() == nil {
			n, err := s.RunOnce(ctx)
			if err != nil {
				s.log.LogAttrs(ctx, slog.LevelError, "ingest worker", slog.String("error", err.Error()))
				break
			}
			if n == 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// RunOnce claims and processes a batch of jobs and returns how many it
// claimed.
func (s *Service) RunOnce(ctx context.Context) (int, error) {
	lease, err := ident.New(s.now(), s.rnd())
	if err != nil {
		return 0, err
	}
	now := s.ledger.Now()
	var jobs []*store.IngestJob
	err = s.st.Tx(ctx, func(tx store.SystemTx) (err error) {
		jobs, err = tx.ClaimIngestJobs(lease, now, now.Add(s.lease), 8)
		return err
	})
	if err != nil {
		return 0, err
	}
	// Jobs of different documents run concurrently, so that their commits
	// share the ledger's group commit; jobs of one document run in the
	// order they were queued. Claimed jobs are finished even when ctx ends
	// (a batch is small): a graceful stop strands no job under a lease.
	// Only a crash leaves jobs for the lease to return.
	ctx = context.WithoutCancel(ctx)
	groups := map[string][]*store.IngestJob{}
	var order []string
	for _, j := range jobs {
		k := string(j.Tenant) + "\x00" + j.DocID
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], j)
	}
	var wg sync.WaitGroup
	for _, k := range order {
		wg.Go(func() {
			for _, j := range groups[k] {
				if err := s.runJob(ctx, j, lease); err != nil {
					s.log.LogAttrs(ctx, slog.LevelWarn, "ingest job", slog.String("ingest_id", j.ID), slog.String("error", err.Error()))
				}
			}
		})
	}
	wg.Wait()
	return len(jobs), nil
}

// maxAttempts bounds how often a job is tried: one that keeps failing
// for a reason other than a lost worker is failed for good.
const maxAttempts = 5

func (s *Service) runJob(ctx context.Context, j *store.IngestJob, lease string) error {
	err := s.process(ctx, j, lease)
	if err != nil && j.Attempts >= maxAttempts {
		s.log.LogAttrs(ctx, slog.LevelError, "ingest job failed for good", slog.String("ingest_id", j.ID), slog.String("error", err.Error()))
		return s.fail(ctx, j, lease, "indexing failed repeatedly; submit the document again")
	}
	return err
}

// jobTenant is the tenant a claimed job belongs to.
func jobTenant(j *store.IngestJob) vaultcrux.TenantID { return j.Tenant }

// process indexes one claimed job: open its content, compare with the
// current version, chunk, seal and hash, then commit the new version, the
// job's end and the receipt together.
func (s *Service) process(ctx context.Context, j *store.IngestJob, lease string) error {
	tenant := jobTenant(j)
	ts := s.st.ForTenant(tenant)
	var (
		keys    *tenantKeys
		current *store.Document
		content []byte
		dek     []byte
		// lastVersion is the document's latest version, deleted or not.
		lastVersion int
	)
	err := ts.Tx(ctx, func(tx store.TenantTx) (err error) {
		keys, err = s.keysFor(ctx, tx, tenant, false)
		if err != nil {
			return err
		}
		if keys.row.Version != j.KEKVersion {
			// A rotation re-wrapped the job's data key since the claim.
			fresh, err := tx.GetIngestJob(j.ID)
			if err != nil {
				return err
			}
			if fresh.Status != "processing" || fresh.Lease != lease || fresh.KEKVersion != keys.row.Version {
				return errors.New("the job changed hands or its key is being rotated")
			}
			j.DEK, j.KEKVersion = fresh.DEK, fresh.KEKVersion
		}
		current, err = tx.GetDocument(j.DocID)
		if vaultcrux.ErrorKind(err) == vaultcrux.NotFound {
			current, err = nil, nil
			// A deleted document keeps its version counter.
			lastVersion, err = tx.DocumentVersion(j.DocID)
		} else if err == nil {
			lastVersion = current.Version
		}
		return err
	})
	if err == nil {
		dek, err = keys.kek.Unwrap(j.DEK, dekAAD(tenant))
		if err == nil {
			content, err = envelope.Open(dek, jobAAD(tenant, j.ID), j.Content)
		}
	}
	switch {
	case errors.Is(err, errShredded), vaultcrux.ErrorKind(err) == vaultcrux.NotFound:
		return s.fail(ctx, j, lease, "the tenant's content was crypto-shredded")
	case err != nil:
		// Transient (store, key provider): leave the job to its lease.
		return err
	}
	text := string(content)
	hash := HashString(text)
	p := vaultcrux.Principal{Tenant: tenant, ID: j.Actor, AgentID: j.AgentID}

	if current != nil && current.ContentHash == hash && current.CorpusID == j.CorpusID &&
		current.Title == j.Title && current.URL == j.URL && current.MIMEType == j.MIMEType && current.Source == j.Source {
		r, err := s.ledger.Event(tenant, KindUnchanged, p, "document:"+j.DocID, map[string]any{
			"docId": j.DocID, "corpusId": j.CorpusID, "version": current.Version, "contentHash": hash, "ingestId": j.ID,
		})
		if err != nil {
			return err
		}
		return s.finish(ctx, j, lease, r, func(tx store.TenantTx, rid string) error {
			j.Status, j.Unchanged, j.Chunks, j.DocVersion = "indexed", true, current.Chunks, current.Version
			return nil
		})
	}

	version := lastVersion + 1
	doc, chunks, err := s.build(tenant, j, keys, dek, text, hash, version)
	if err != nil {
		return s.fail(ctx, j, lease, vaultcrux.ErrorMessage(err))
	}
	kind := KindIngested
	if current != nil {
		kind = KindReplaced
	}
	r, err := s.ledger.Event(tenant, kind, p, "document:"+j.DocID, map[string]any{
		"docId": j.DocID, "corpusId": j.CorpusID, "version": version, "contentHash": hash,
		"chunks": len(chunks), "source": j.Source, "trust": j.Trust, "ingestId": j.ID, "bytes": j.Bytes,
	})
	if err != nil {
		return err
	}
	return s.finish(ctx, j, lease, r, func(tx store.TenantTx, rid string) error {
		if _, err := tx.PutDocument(doc, chunks, doc.CreatedAt); err != nil {
			return err
		}
		j.Status, j.Chunks, j.DocVersion = "indexed", len(chunks), version
		return nil
	})
}

// build chunks, hashes, indexes and seals text as version of the job's
// document.
func (s *Service) build(tenant vaultcrux.TenantID, j *store.IngestJob, keys *tenantKeys, dek []byte, text, hash string, version int) (*store.Document, []*store.Chunk, error) {
	hasher, err := textindex.NewHasher(keys.indexKey)
	if err != nil {
		return nil, nil, err
	}
	pieces := textindex.Split(text, s.chunk)
	if len(pieces) == 0 {
		return nil, nil, vaultcrux.E(vaultcrux.Invalid, "content has no words to index")
	}
	if len(pieces) > maxChunks {
		return nil, nil, vaultcrux.Ef(vaultcrux.TooLarge, "content makes more than %d chunks", maxChunks)
	}
	now := s.ledger.Now()
	wrapped, err := keys.kek.Wrap(dek, dekAAD(tenant))
	if err != nil {
		return nil, nil, err
	}
	doc := &store.Document{
		ID: j.DocID, CorpusID: j.CorpusID, Version: version, Title: j.Title, URL: j.URL, MIMEType: j.MIMEType,
		Source: j.Source, Trust: j.Trust, ContentHash: hash, Bytes: j.Bytes, Chunks: len(pieces),
		DEK: wrapped, KEKVersion: keys.row.Version, CreatedAt: now,
	}
	chunks := make([]*store.Chunk, len(pieces))
	for i, pc := range pieces {
		tfs, length := hasher.Analyze(pc.Text)
		sealed, err := envelope.Seal(dek, chunkAAD(tenant, j.DocID, version, i), []byte(pc.Text), s.rnd())
		if err != nil {
			return nil, nil, err
		}
		chunks[i] = &store.Chunk{
			ID: ChunkID(j.DocID, i), DocID: j.DocID, DocVersion: version, Seq: i, CorpusID: j.CorpusID,
			Trust: j.Trust, Sealed: sealed, TextHash: HashString(pc.Text), Length: length,
			Terms: textindex.EncodeTerms(tfs), CreatedAt: now,
		}
	}
	return doc, chunks, nil
}

// ChunkID is "<docId>#<n>".
func ChunkID(docID string, seq int) string { return docID + "#" + itoa(seq) }

// finish commits the job's end (set by apply) with receipt r.
func (s *Service) finish(ctx context.Context, j *store.IngestJob, lease string, r *receipt.Doc, apply func(store.TenantTx, string) error) error {
	tenant := jobTenant(j)
	_, err := s.ledger.Commit(ctx, &ledger.Item{
		Tenant: tenant,
		Apply: func(tx store.TenantTx) error {
			if err := apply(tx, r.ID()); err != nil {
				return err
			}
			j.ReceiptID, j.UpdatedAt = r.ID(), s.ledger.Now()
			return tx.FinishIngestJob(j, lease)
		},
		Receipts: []*receipt.Doc{r},
	})
	return err
}

// fail ends a job that cannot succeed (no receipt: nothing changed).
func (s *Service) fail(ctx context.Context, j *store.IngestJob, lease, reason string) error {
	j.Status, j.Error, j.UpdatedAt = "failed", reason, s.ledger.Now()
	return s.st.ForTenant(jobTenant(j)).Tx(ctx, func(tx store.TenantTx) error {
		return tx.FinishIngestJob(j, lease)
	})
}

// DeleteResult is the answer of DELETE /v1/documents/:docId.
type DeleteResult struct {
	DocID     string `json:"docId"`
	Version   int    `json:"version"`
	Deleted   bool   `json:"deleted"`
	ReceiptID string `json:"receiptId"`
}

// Delete deletes the current version of docID: its chunks leave the
// index and the store, and its data key is erased.
func (s *Service) Delete(ctx context.Context, p vaultcrux.Principal, docID string) (*DeleteResult, error) {
	if !ValidID(docID) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "document not found")
	}
	var doc *store.Document
	err := s.st.ForTenant(p.Tenant).Tx(ctx, func(tx store.TenantTx) (err error) {
		doc, err = tx.GetDocument(docID)
		return err
	})
	if vaultcrux.ErrorKind(err) == vaultcrux.NotFound {
		return nil, vaultcrux.E(vaultcrux.NotFound, "document not found")
	}
	if err != nil {
		return nil, err
	}
	r, err := s.ledger.Event(p.Tenant, KindDeleted, p, "document:"+docID, map[string]any{
		"docId": docID, "corpusId": doc.CorpusID, "version": doc.Version, "contentHash": doc.ContentHash,
	})
	if err != nil {
		return nil, err
	}
	issued, err := s.ledger.Commit(ctx, &ledger.Item{
		Tenant: p.Tenant,
		Apply: func(tx store.TenantTx) error {
			d, _, err := tx.DeleteDocument(docID, s.ledger.Now())
			if err != nil {
				return err
			}
			if d.Version != doc.Version {
				return vaultcrux.E(vaultcrux.Conflict, "the document changed while it was being deleted; retry")
			}
			return nil
		},
		Receipts: []*receipt.Doc{r},
	})
	if vaultcrux.ErrorKind(err) == vaultcrux.NotFound {
		return nil, vaultcrux.E(vaultcrux.NotFound, "document not found")
	}
	if err != nil {
		return nil, err
	}
	return &DeleteResult{DocID: docID, Version: doc.Version, Deleted: true, ReceiptID: issued[0].ID}, nil
}
