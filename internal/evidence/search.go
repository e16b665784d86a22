package evidence

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sort"
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

// tenantIndex is the in-memory index of one tenant, current up to head
// in the tenant's index change log.
type tenantIndex struct {
	mu     sync.Mutex // one catch-up at a time
	ix     *textindex.Index
	head   int64
	loaded bool
}

func (s *Service) index(tenant vaultcrux.TenantID) *tenantIndex {
	s.mu.Lock()
	defer s.mu.Unlock()
	ti := s.indexes[tenant]
	if ti == nil {
		ti = &tenantIndex{ix: textindex.NewIndex(textindex.DefaultParams)}
		s.indexes[tenant] = ti
	}
	return ti
}

func (s *Service) dropIndex(tenant vaultcrux.TenantID) {
	s.mu.Lock()
	delete(s.indexes, tenant)
	s.mu.Unlock()
}

// catchUp brings ti up to the tenant's change log, in tx: a full load the
// first time, then the changes since. Applying a change is idempotent
// (the document's chunks are removed, then its current ones added), so
// reading changes that a concurrent load already saw is harmless.
func (s *Service) catchUp(tx store.TenantTx, ti *tenantIndex) (int64, error) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	head, err := tx.IndexHead()
	if err != nil {
		return 0, err
	}
	if !ti.loaded {
		after := ""
		for {
			cs, err := tx.ListChunks(after, 1000)
			if err != nil {
				return 0, err
			}
			for _, c := range cs {
				if err := addChunk(ti.ix, c); err != nil {
					return 0, err
				}
			}
			if len(cs) < 1000 {
				break
			}
			after = cs[len(cs)-1].ID
		}
		ti.head, ti.loaded = head, true
		return head, nil
	}
	for ti.head < head {
		changes, err := tx.IndexChanges(ti.head, 500)
		if err != nil {
			return 0, err
		}
		if len(changes) == 0 {
			break
		}
		for _, c := range changes {
			ti.ix.RemoveDoc(c.DocID)
			if c.Op == "put" {
				cs, err := tx.DocumentChunks(c.DocID, c.Version)
				if err != nil {
					return 0, err
				}
				for _, ch := range cs {
					if err := addChunk(ti.ix, ch); err != nil {
						return 0, err
					}
				}
			}
			ti.head = c.Seq
		}
	}
	return ti.head, nil
}

func addChunk(ix *textindex.Index, c *store.Chunk) error {
	tfs, err := textindex.DecodeTerms(c.Terms)
	if err != nil {
		return fmt.Errorf("chunk %s: stored terms: %w", c.ID, err)
	}
	ix.Add(textindex.Entry{
		ChunkID: c.ID, DocID: c.DocID, CorpusID: c.CorpusID, Trust: c.Trust,
		Length: c.Length, CreatedAt: c.CreatedAt, Terms: tfs,
	})
	return nil
}

// Warm loads the index of every tenant with documents (at start, so the
// first query does not pay for it).
func (s *Service) Warm(ctx context.Context) error {
	var tenants []vaultcrux.TenantID
	err := s.st.Tx(ctx, func(tx store.SystemTx) (err error) {
		tenants, err = tx.TenantsWithDocuments()
		return err
	})
	if err != nil {
		return err
	}
	for _, t := range tenants {
		ti := s.index(t)
		if err := s.st.ForTenant(t).Tx(ctx, func(tx store.TenantTx) error {
			_, err := s.catchUp(tx, ti)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// RetrieveRequest is the body of POST /v1/retrieve.
type RetrieveRequest struct {
	Query   string          `json:"query"`
	TopK    *int            `json:"topK"`
	Mode    string          `json:"mode"`
	Filters *RetrieveFilter `json:"filters"`
}

// RetrieveFilter restricts a retrieval.
type RetrieveFilter struct {
	CorpusID string   `json:"corpusId"`
	DocIDs   []string `json:"docIds"`
}

// Result is one retrieved chunk.
type Result struct {
	ChunkID  string `json:"chunkId"`
	DocID    string `json:"docId"`
	CorpusID string `json:"corpusId"`
	Title    string `json:"title"`
	URL      string `json:"url"`
	Text     string `json:"text"`
	Scores   Scores `json:"scores"`
	Taint    string `json:"taint"`
	Source   string `json:"source"`
	Version  int    `json:"version"`
}

// Scores are a result's score components.
type Scores struct {
	BM25    float64 `json:"bm25"`
	Recency float64 `json:"recency"`
	Fused   float64 `json:"fused"`
}

// Retrieval is the answer of POST /v1/retrieve.
type Retrieval struct {
	Results   []Result `json:"results"`
	AnswerID  string   `json:"answerId"`
	ReceiptID string   `json:"receiptId"`
	Mode      string   `json:"mode"`
}

const (
	maxQueryLen = 4096
	maxTopK     = 50
	maxDocIDs   = 100
)

func (r *RetrieveRequest) validate() (topK int, mode string, err error) {
	topK = 8
	if r.TopK != nil {
		topK = *r.TopK
	}
	mode = r.Mode
	if mode == "" {
		mode = "light"
	}
	switch {
	case strings.TrimSpace(r.Query) == "":
		return 0, "", vaultcrux.E(vaultcrux.Invalid, "query is required")
	case utf8.RuneCountInString(r.Query) > maxQueryLen:
		return 0, "", vaultcrux.Ef(vaultcrux.Invalid, "query is longer than %d characters", maxQueryLen)
	case topK < 1 || topK > maxTopK:
		return 0, "", vaultcrux.Ef(vaultcrux.Invalid, "topK must be between 1 and %d", maxTopK)
	case mode != "light" && mode != "verified" && mode != "audit":
		return 0, "", vaultcrux.E(vaultcrux.Invalid, `mode must be "light", "verified" or "audit"`)
	}
	if f := r.Filters; f != nil {
		if f.CorpusID != "" && !ValidID(f.CorpusID) {
			return 0, "", vaultcrux.E(vaultcrux.Invalid, "filters.corpusId is not a valid id")
		}
		if len(f.DocIDs) > maxDocIDs {
			return 0, "", vaultcrux.Ef(vaultcrux.Invalid, "filters.docIds holds more than %d ids", maxDocIDs)
		}
		for _, id := range f.DocIDs {
			if !ValidID(id) {
				return 0, "", vaultcrux.E(vaultcrux.Invalid, "filters.docIds holds an invalid id")
			}
		}
	}
	return topK, mode, nil
}

// chainKey identifies an answer chain: the agent (x-agent-id) or, without
// one, the credential (key or seat) that asked.
type chainKey struct {
	tenant vaultcrux.TenantID
	who    string
}

func chainOf(p vaultcrux.Principal) chainKey {
	if p.AgentID != "" {
		return chainKey{p.Tenant, "agent:" + p.AgentID}
	}
	return chainKey{p.Tenant, p.ID}
}

// Retrieve runs a query and returns decrypted results with a signed CROWN
// answer receipt. With noReceipt (benchmarks only) it skips the receipt.
func (s *Service) Retrieve(ctx context.Context, p vaultcrux.Principal, r *RetrieveRequest) (*Retrieval, error) {
	return s.retrieve(ctx, p, r, true)
}

func (s *Service) retrieve(ctx context.Context, p vaultcrux.Principal, r *RetrieveRequest, withReceipt bool) (*Retrieval, error) {
	start := time.Now()
	topK, mode, err := r.validate()
	if err != nil {
		return nil, err
	}
	var f textindex.Filter
	var filters map[string]any
	if r.Filters != nil {
		f = textindex.Filter{CorpusID: r.Filters.CorpusID, DocIDs: r.Filters.DocIDs}
		filters = map[string]any{"corpusId": nullable(r.Filters.CorpusID), "docIds": stringsAny(r.Filters.DocIDs)}
	}
	ti := s.index(p.Tenant)
	now := s.ledger.Now()
	var (
		hits    []textindex.Hit
		chunks  []*store.Chunk
		docs    = map[string]*store.Document{}
		keys    *tenantKeys
		head    int64
		scoreMs float64
	)
	err = s.st.ForTenant(p.Tenant).Tx(ctx, func(tx store.TenantTx) (err error) {
		keys, err = s.keysFor(ctx, tx, p.Tenant, false)
		if vaultcrux.ErrorKind(err) == vaultcrux.NotFound {
			keys = nil // a tenant with no keys yet has no documents
		} else if err != nil {
			return err
		}
		if head, err = s.catchUp(tx, ti); err != nil {
			return err
		}
		if keys == nil {
			return nil
		}
		hasher, err := textindex.NewHasher(keys.indexKey)
		if err != nil {
			return err
		}
		t0 := time.Now()
		hits = ti.ix.Search(hasher.QueryTerms(r.Query), topK, f, s.fusion, now)
		scoreMs = ms(s.since(t0))
		if len(hits) == 0 {
			return nil
		}
		ids := make([]string, len(hits))
		for i, h := range hits {
			ids[i] = h.ChunkID
		}
		if chunks, err = tx.GetChunks(ids); err != nil {
			return err
		}
		for _, c := range chunks {
			if docs[c.DocID] != nil {
				continue
			}
			d, err := tx.GetDocument(c.DocID)
			if err != nil {
				return err
			}
			docs[c.DocID] = d
		}
		return nil
	})
	if err != nil {
		if err == errShredded {
			s.dropIndex(p.Tenant)
		}
		return nil, err
	}

	t1 := time.Now()
	byID := map[string]*store.Chunk{}
	for _, c := range chunks {
		byID[c.ID] = c
	}
	results := make([]Result, 0, len(hits))
	evidence := make([]receipt.Evidence, 0, len(hits))
	coverage := map[string]any{}
	citationIDs := []any{}
	deks := map[string][]byte{}
	for _, h := range hits {
		c, d := byID[h.ChunkID], docs[h.DocID]
		// A chunk replaced between the search and the read is left out
		// rather than served from another version.
		if c == nil || d == nil || c.DocVersion != d.Version {
			continue
		}
		dek := deks[d.ID]
		if dek == nil {
			if dek, err = keys.kek.Unwrap(d.DEK, dekAAD(p.Tenant)); err != nil {
				return nil, errNoKeys
			}
			deks[d.ID] = dek
		}
		pt, err := envelope.Open(dek, chunkAAD(p.Tenant, c.DocID, c.DocVersion, c.Seq), c.Sealed)
		if err != nil {
			return nil, vaultcrux.E(vaultcrux.Internal, "a stored chunk does not decrypt")
		}
		text := string(pt)
		if mode != "light" && HashString(text) != c.TextHash {
			return nil, vaultcrux.E(vaultcrux.Internal, "a stored chunk does not match its hash")
		}
		results = append(results, Result{
			ChunkID: c.ID, DocID: c.DocID, CorpusID: c.CorpusID, Title: d.Title, URL: d.URL, Text: text,
			Scores: Scores{BM25: h.BM25, Recency: h.Recency, Fused: h.Fused},
			Taint:  c.Trust, Source: d.Source, Version: d.Version,
		})
		evidence = append(evidence, receipt.Evidence{
			ClaimID: "claim-" + itoa(len(evidence)+1), SourceID: c.DocID, Role: "support", QuoteHash: c.TextHash,
			ObservedAt: now, ChunkID: c.ID, CorpusID: c.CorpusID,
			ScoreComponents: map[string]any{"bm25": h.BM25, "recency": h.Recency, "fused": h.Fused},
		})
		dom := domainOf(d.URL)
		ids, _ := coverage[dom].([]any)
		coverage[dom] = append(ids, c.ID)
		citationIDs = append(citationIDs, c.ID)
	}
	decryptMs := ms(s.since(t1))
	out := &Retrieval{Results: results, Mode: mode}
	if !withReceipt {
		return out, nil
	}
	answerID, err := ident.New(now, s.rnd())
	if err != nil {
		return nil, err
	}
	ck := chainOf(p)
	parent, err := s.chainHead(ctx, ck)
	if err != nil {
		return nil, err
	}
	receiptID, err := s.ledger.NewID()
	if err != nil {
		return nil, err
	}
	snapID := "snap_" + answerID
	retrieval := map[string]any{
		"topK": topK, "rerankK": 0, "candidates": len(hits), "returned": len(results),
		"lanes": []any{"bm25", "recency"}, "bm25": map[string]any{"k1": textindex.DefaultParams.K1, "b": textindex.DefaultParams.B},
		"indexSeq": head, "filters": filters, "trust": trustSummary(results),
		"snapshotId": snapID, "parentSnapId": nullable(parent), "chain": ck.who,
	}
	doc, err := receipt.NewAnswer(&receipt.Answer{
		ReceiptID: receiptID, SnapshotID: snapID, AnswerID: answerID, Mode: mode, ModeRequested: r.Mode,
		QueryHash: HashString(r.Query),
		Fusion: map[string]any{
			"strategy": "weighted", "w_bm25": s.fusion.WBM25, "w_vec": 0, "w_recency": s.fusion.WRecency,
			"rrf_k": 0, "recencyHalfLifeHours": s.fusion.HalfLife.Hours(),
		},
		Retrieval: retrieval,
		Selection: map[string]any{"miSESSize": len(results), "citationIds": citationIDs, "coverage": coverage},
		Timings: map[string]any{
			"retrieveMs": ms(s.since(start) - s.since(t1)), "scoreMs": scoreMs, "decryptMs": decryptMs, "totalMs": ms(s.since(start)),
		},
		Evidence:     evidence,
		GeneratedAt:  now,
		NoLLM:        true,
		ParentSnapID: parent,
	})
	if err != nil {
		return nil, err
	}
	issued, err := s.ledger.Commit(ctx, &ledger.Item{Tenant: p.Tenant, Receipts: []*receipt.Doc{doc}})
	if err != nil {
		return nil, err
	}
	s.setChainHead(ck, snapID)
	out.AnswerID, out.ReceiptID = answerID, issued[0].ID
	return out, nil
}

// chainHead returns the latest snapshot of the chain: from memory, or
// after a restart from the tenant's newest answer receipts.
func (s *Service) chainHead(ctx context.Context, ck chainKey) (string, error) {
	s.mu.Lock()
	head, ok := s.chains[ck]
	s.mu.Unlock()
	if ok {
		return head, nil
	}
	err := s.st.ForTenant(ck.tenant).Tx(ctx, func(tx store.TenantTx) error {
		recs, err := tx.ListReceipts(store.ReceiptFilter{Kind: "answer", BeforeIndex: -1, Limit: 200})
		if err != nil {
			return err
		}
		for _, rec := range recs {
			d, err := receipt.Parse(rec.Body)
			if err != nil {
				continue
			}
			r, _ := d.Field("retrieval").(map[string]any)
			if who, _ := r["chain"].(string); who == ck.who {
				head = d.SnapshotID()
				return nil
			}
		}
		return nil
	})
	return head, err
}

func (s *Service) setChainHead(ck chainKey, snap string) {
	s.mu.Lock()
	s.chains[ck] = snap
	s.mu.Unlock()
}

func trustSummary(rs []Result) map[string]any {
	n := 0
	for _, r := range rs {
		if r.Taint == "untrusted" {
			n++
		}
	}
	return map[string]any{"untrusted": n, "trusted": len(rs) - n}
}

func domainOf(u string) string {
	if u == "" {
		return "none"
	}
	p, err := url.Parse(u)
	if err != nil || p.Hostname() == "" {
		return "none"
	}
	return strings.ToLower(p.Hostname())
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func stringsAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// CitationsRequest is the body of POST /v1/citations.
type CitationsRequest struct {
	AnswerID   string     `json:"answerId"`
	AnswerText string     `json:"answerText"`
	Citations  []Citation `json:"citations"`
}

// Citation is one claimed quote.
type Citation struct {
	ChunkID string `json:"chunkId"`
	Quote   string `json:"quote"`
}

// CitationResult is the verdict on one citation.
type CitationResult struct {
	ChunkID  string `json:"chunkId"`
	Status   string `json:"status"` // supported or not_found
	InAnswer bool   `json:"inAnswer"`
}

// CitationsCheck is the answer of POST /v1/citations.
type CitationsCheck struct {
	AnswerID  string           `json:"answerId"`
	Citations []CitationResult `json:"citations"`
	Supported int              `json:"supported"`
	CheckID   string           `json:"checkId"`
	ReceiptID string           `json:"receiptId"`
}

const maxCitations = 100

// Citations checks each quote against the current text of its chunk
// (whitespace-insensitive, exact otherwise) and issues a CROWN answer
// receipt that chains to the answer's: its supported citations are its
// evidence.
func (s *Service) Citations(ctx context.Context, p vaultcrux.Principal, r *CitationsRequest) (*CitationsCheck, error) {
	start := time.Now()
	switch {
	case r.AnswerID == "" || len(r.AnswerID) > 128:
		return nil, vaultcrux.E(vaultcrux.Invalid, "answerId is required")
	case strings.TrimSpace(r.AnswerText) == "":
		return nil, vaultcrux.E(vaultcrux.Invalid, "answerText is required")
	case len(r.Citations) == 0 || len(r.Citations) > maxCitations:
		return nil, vaultcrux.Ef(vaultcrux.Invalid, "citations must hold 1 to %d entries", maxCitations)
	}
	for i, c := range r.Citations {
		if !validChunkID(c.ChunkID) {
			return nil, vaultcrux.Ef(vaultcrux.Invalid, "citations[%d].chunkId is not a chunk id", i)
		}
		if strings.TrimSpace(c.Quote) == "" {
			return nil, vaultcrux.Ef(vaultcrux.Invalid, "citations[%d].quote is required", i)
		}
	}
	answer, err := s.ledger.GetAnswerReceipt(ctx, p.Tenant, r.AnswerID)
	if err != nil {
		return nil, err
	}
	inAnswer := map[string]bool{}
	if ev, ok := answer.Doc.Field("evidence").([]any); ok {
		for _, e := range ev {
			if m, ok := e.(map[string]any); ok {
				if id, ok := m["chunkId"].(string); ok {
					inAnswer[id] = true
				}
			}
		}
	}
	ids := make([]string, len(r.Citations))
	for i, c := range r.Citations {
		ids[i] = c.ChunkID
	}
	texts := map[string]string{}
	current := map[string]*store.Chunk{}
	err = s.st.ForTenant(p.Tenant).Tx(ctx, func(tx store.TenantTx) error {
		keys, err := s.keysFor(ctx, tx, p.Tenant, false)
		if err != nil {
			return err
		}
		chunks, err := tx.GetChunks(ids)
		if err != nil {
			return err
		}
		for _, c := range chunks {
			d, err := tx.GetDocument(c.DocID)
			if err != nil {
				return err
			}
			dek, err := keys.kek.Unwrap(d.DEK, dekAAD(p.Tenant))
			if err != nil {
				return errNoKeys
			}
			pt, err := envelope.Open(dek, chunkAAD(p.Tenant, c.DocID, c.DocVersion, c.Seq), c.Sealed)
			if err != nil {
				return vaultcrux.E(vaultcrux.Internal, "a stored chunk does not decrypt")
			}
			texts[c.ID], current[c.ID] = string(pt), c
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	now := s.ledger.Now()
	out := &CitationsCheck{AnswerID: r.AnswerID, Citations: make([]CitationResult, len(r.Citations))}
	var evidence []receipt.Evidence
	supportedIDs, notFound := []any{}, []any{}
	chunkHashes := map[string]any{}
	coverage := map[string]any{}
	for i, c := range r.Citations {
		res := CitationResult{ChunkID: c.ChunkID, Status: "not_found", InAnswer: inAnswer[c.ChunkID]}
		if text, ok := texts[c.ChunkID]; ok && containsQuote(text, c.Quote) {
			res.Status = "supported"
			ch := current[c.ChunkID]
			evidence = append(evidence, receipt.Evidence{
				ClaimID: "citation-" + itoa(i+1), SourceID: ch.DocID, Role: "support", QuoteHash: HashString(c.Quote),
				ObservedAt: now, ChunkID: ch.ID, CorpusID: ch.CorpusID,
			})
			supportedIDs = append(supportedIDs, c.ChunkID)
			chunkHashes[c.ChunkID] = ch.TextHash
			ids, _ := coverage["chunks"].([]any)
			coverage["chunks"] = append(ids, c.ChunkID)
			out.Supported++
		} else {
			notFound = append(notFound, c.ChunkID)
		}
		out.Citations[i] = res
	}
	checkID, err := ident.New(now, s.rnd())
	if err != nil {
		return nil, err
	}
	receiptID, err := s.ledger.NewID()
	if err != nil {
		return nil, err
	}
	snapID := "snap_" + checkID
	parent := answer.Doc.SnapshotID()
	doc, err := receipt.NewAnswer(&receipt.Answer{
		ReceiptID: receiptID, SnapshotID: snapID, AnswerID: checkID, Mode: "citations",
		QueryHash: HashString(r.AnswerText),
		Fusion:    map[string]any{"strategy": "none", "w_bm25": 0, "w_vec": 0, "rrf_k": 0},
		Retrieval: map[string]any{
			"kind": "citations", "citesAnswerId": r.AnswerID, "chunkHashes": chunkHashes,
			"snapshotId": snapID, "parentSnapId": nullable(parent),
		},
		Selection: map[string]any{"miSESSize": len(supportedIDs), "citationIds": supportedIDs, "notFound": notFound, "coverage": coverage},
		Timings:   map[string]any{"totalMs": ms(s.since(start))},
		Evidence:  evidence, GeneratedAt: now, NoLLM: true, ParentSnapID: parent,
	})
	if err != nil {
		return nil, err
	}
	issued, err := s.ledger.Commit(ctx, &ledger.Item{Tenant: p.Tenant, Receipts: []*receipt.Doc{doc}})
	if err != nil {
		return nil, err
	}
	out.CheckID, out.ReceiptID = checkID, issued[0].ID
	return out, nil
}

func validChunkID(id string) bool {
	doc, n, ok := strings.Cut(id, "#")
	if !ok || !ValidID(doc) || n == "" || len(n) > 6 {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return n == "0" || n[0] != '0'
}

// containsQuote reports whether quote occurs in text once runs of white
// space are collapsed in both.
func containsQuote(text, quote string) bool {
	return strings.Contains(collapse(text), collapse(quote))
}

func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

// Stale reports, for an answer receipt, whether any chunk it cites has
// changed or gone since: the stale_lineage check of verify-chain and
// proofpacks. Other receipts are never stale.
func (s *Service) Stale(tx store.TenantTx, d *receipt.Doc) (bool, error) {
	if d.Class() != receipt.ClassAnswer {
		return false, nil
	}
	want := map[string]string{}
	r, _ := d.Field("retrieval").(map[string]any)
	hashes, _ := r["chunkHashes"].(map[string]any)
	ev, _ := d.Field("evidence").([]any)
	for _, e := range ev {
		m, _ := e.(map[string]any)
		id, _ := m["chunkId"].(string)
		if id == "" {
			continue
		}
		h, _ := m["quoteHash"].(string)
		if ch, ok := hashes[id].(string); ok {
			h = ch
		}
		want[id] = h
	}
	if len(want) == 0 {
		return false, nil
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	chunks, err := tx.GetChunks(ids)
	if err != nil {
		return false, err
	}
	if len(chunks) != len(ids) {
		return true, nil
	}
	return slices.ContainsFunc(chunks, func(c *store.Chunk) bool { return c.TextHash != want[c.ID] }), nil
}
