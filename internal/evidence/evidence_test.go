package evidence_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/envelope"
	"github.com/vaultcrux/vaultcrux/internal/evidence"
	"github.com/vaultcrux/vaultcrux/internal/keyring"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/vctest"
)

// client is one tenant's credentials against an Env.
type client struct {
	env    *vctest.Env
	tenant string
	key    string
	n      int
}

func newClient(env *vctest.Env, tenant string) *client {
	return &client{env: env, tenant: tenant, key: env.Tenant(tenant)}
}

func (c *client) do(method, path string, body any, hdr ...string) *vctest.Response {
	c.env.T.Helper()
	c.n++
	q := vctest.Request{Method: method, Path: path, Tenant: c.tenant, Key: c.key, Body: body, Header: map[string]string{}}
	if method != "GET" {
		q.Idem = fmt.Sprintf("idem-%s-%d", c.tenant, c.n)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		q.Header[hdr[i]] = hdr[i+1]
	}
	return c.env.Do(q)
}

type ingestAnswer struct {
	IngestID string `json:"ingestId"`
	DocID    string `json:"docId"`
	Status   string `json:"status"`
	Trust    string `json:"trust"`
	Source   string `json:"source"`
}

func (c *client) ingest(doc map[string]any, hdr ...string) ingestAnswer {
	c.env.T.Helper()
	r := c.do("POST", "/v1/ingest", doc, hdr...)
	if r.Status != http.StatusAccepted {
		c.env.T.Fatalf("ingest %v: %d %s", doc["docId"], r.Status, r.Raw)
	}
	var a ingestAnswer
	r.Into(c.env.T, &a)
	return a
}

type job struct {
	Status    string  `json:"status"`
	Chunks    int     `json:"chunks"`
	Version   int     `json:"version"`
	Unchanged bool    `json:"unchanged"`
	Error     *string `json:"error"`
	ReceiptID *string `json:"receiptId"`
}

func (c *client) job(id string) job {
	c.env.T.Helper()
	r := c.do("GET", "/v1/ingest/"+id, nil)
	if r.Status != 200 {
		c.env.T.Fatalf("job %s: %d %s", id, r.Status, r.Raw)
	}
	var j job
	r.Into(c.env.T, &j)
	return j
}

type retrieval struct {
	Results []struct {
		ChunkID  string `json:"chunkId"`
		DocID    string `json:"docId"`
		CorpusID string `json:"corpusId"`
		Title    string `json:"title"`
		URL      string `json:"url"`
		Text     string `json:"text"`
		Taint    string `json:"taint"`
		Scores   struct {
			BM25    float64 `json:"bm25"`
			Recency float64 `json:"recency"`
			Fused   float64 `json:"fused"`
		} `json:"scores"`
	} `json:"results"`
	AnswerID  string `json:"answerId"`
	ReceiptID string `json:"receiptId"`
	Mode      string `json:"mode"`
}

func (c *client) retrieve(body map[string]any, hdr ...string) retrieval {
	c.env.T.Helper()
	r := c.do("POST", "/v1/retrieve", body, hdr...)
	if r.Status != 200 {
		c.env.T.Fatalf("retrieve: %d %s", r.Status, r.Raw)
	}
	var out retrieval
	r.Into(c.env.T, &out)
	if r.Header.Get("x-receipt-id") != out.ReceiptID || out.ReceiptID == "" {
		c.env.T.Fatalf("x-receipt-id %q, data.receiptId %q", r.Header.Get("x-receipt-id"), out.ReceiptID)
	}
	return out
}

func doc(id, content string) map[string]any {
	return map[string]any{"corpusId": "kb", "docId": id, "title": "Title of " + id, "content": content}
}

// verifyReceipt loads a receipt and verifies it against the server's keys.
func verifyReceipt(t *testing.T, env *vctest.Env, tenant, id string) *receipt.Doc {
	t.Helper()
	l, err := env.Ledger.GetReceipt(context.Background(), vaultcrux.TenantID(tenant), id)
	if err != nil {
		t.Fatalf("receipt %s: %v", id, err)
	}
	keys, err := env.Ledger.KeySet(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := receipt.Verify(l.Doc, keys); err != nil {
		t.Fatalf("receipt %s does not verify: %v", id, err)
	}
	return l.Doc
}

func TestIngestRetrieveAndReceipts(t *testing.T) {
	env := vctest.New(t)
	a := newClient(env, "acme")
	in := a.ingest(map[string]any{
		"corpusId": "kb", "docId": "runbook", "title": "Runbook", "url": "https://wiki.example.com/runbook",
		"content": "Rotate the frobnicator keys every quarter.\n\nThe frobnicator lives in rack 7.",
	})
	if in.Status != "queued" || in.Trust != "trusted" || in.Source != "user" {
		t.Fatalf("ingest answer %+v", in)
	}
	if j := a.job(in.IngestID); j.Status != "queued" {
		t.Fatalf("before the worker: %+v", j)
	}
	env.Drain()
	j := a.job(in.IngestID)
	if j.Status != "indexed" || j.Chunks != 1 || j.Version != 1 || j.ReceiptID == nil {
		t.Fatalf("after the worker: %+v", j)
	}
	ev := verifyReceipt(t, env, "acme", *j.ReceiptID)
	if ev.Kind() != evidence.KindIngested {
		t.Fatalf("ingest receipt kind %q", ev.Kind())
	}
	details, _ := ev.Field("details").(map[string]any)
	if details["docId"] != "runbook" || details["contentHash"] != evidence.HashString("Rotate the frobnicator keys every quarter.\n\nThe frobnicator lives in rack 7.") {
		t.Fatalf("ingest receipt details %v", details)
	}

	got := a.retrieve(map[string]any{"query": "where does the frobnicator live?"})
	if len(got.Results) != 1 || got.Mode != "light" {
		t.Fatalf("results %+v", got)
	}
	r0 := got.Results[0]
	if r0.ChunkID != "runbook#0" || r0.DocID != "runbook" || r0.Title != "Runbook" || r0.Taint != "trusted" ||
		!strings.Contains(r0.Text, "rack 7") || r0.Scores.BM25 <= 0 {
		t.Fatalf("result %+v", r0)
	}
	d := verifyReceipt(t, env, "acme", got.ReceiptID)
	if d.Class() != receipt.ClassAnswer || d.AnswerID() != got.AnswerID {
		t.Fatalf("answer receipt class %s answer %s", d.Class(), d.AnswerID())
	}
	if d.Field("queryHash") != evidence.HashString("where does the frobnicator live?") {
		t.Fatalf("queryHash %v", d.Field("queryHash"))
	}
	evs, _ := d.Field("evidence").([]any)
	if len(evs) != 1 {
		t.Fatalf("evidence %v", evs)
	}
	e0 := evs[0].(map[string]any)
	if e0["sourceId"] != "runbook" || e0["chunkId"] != "runbook#0" || e0["corpusId"] != "kb" ||
		e0["quoteHash"] != evidence.HashString(r0.Text) || e0["role"] != "support" {
		t.Fatalf("evidence[0] %v", e0)
	}
	sel, _ := d.Field("selection").(map[string]any)
	cov, _ := sel["coverage"].(map[string]any)
	if ids, _ := cov["wiki.example.com"].([]any); len(ids) != 1 || ids[0] != "runbook#0" {
		t.Fatalf("coverage %v", cov)
	}
	ret, _ := d.Field("retrieval").(map[string]any)
	if ret["snapshotId"] != d.SnapshotID() || ret["parentSnapId"] != nil || d.ParentSnapID() != "" {
		t.Fatalf("links: retrieval %v, snapshot %s parent %q", ret, d.SnapshotID(), d.ParentSnapID())
	}

	// The next answer of the same agent chains to the previous one; another
	// agent starts its own chain.
	first := a.retrieve(map[string]any{"query": "frobnicator"}, "x-agent-id", "agent-1")
	second := a.retrieve(map[string]any{"query": "rack"}, "x-agent-id", "agent-1")
	other := a.retrieve(map[string]any{"query": "rack"}, "x-agent-id", "agent-2")
	d1, d2, d3 := verifyReceipt(t, env, "acme", first.ReceiptID), verifyReceipt(t, env, "acme", second.ReceiptID), verifyReceipt(t, env, "acme", other.ReceiptID)
	if d1.ParentSnapID() != "" || d2.ParentSnapID() != d1.SnapshotID() || d3.ParentSnapID() != "" {
		t.Fatalf("chain: %q -> %q (want %q), other %q", d1.ParentSnapID(), d2.ParentSnapID(), d1.SnapshotID(), d3.ParentSnapID())
	}
	rep, err := env.Ledger.VerifyChain(context.Background(), "acme", second.AnswerID)
	if err != nil || !rep.Valid || rep.Depth != 1 || rep.Stale {
		t.Fatalf("verify-chain %+v, %v", rep, err)
	}
}

func TestIngestValidation(t *testing.T) {
	env := vctest.New(t)
	a := newClient(env, "acme")
	for _, c := range []struct {
		name string
		body any
		hdr  []string
		want int
		code string
	}{
		{"no content", doc("d", "  "), nil, 400, "invalid_request"},
		{"bad doc id", doc("a#b", "x"), nil, 400, "invalid_request"},
		{"unknown field", map[string]any{"corpusId": "kb", "docId": "d", "title": "t", "content": "x", "extra": 1}, nil, 400, "invalid_request"},
		{"bad url", map[string]any{"corpusId": "kb", "docId": "d", "title": "t", "content": "x", "url": "javascript:alert(1)"}, nil, 400, "invalid_request"},
		{"bad source", map[string]any{"corpusId": "kb", "docId": "d", "title": "t", "content": "x", "source": "root"}, nil, 400, "invalid_request"},
		{"agent claims user", map[string]any{"corpusId": "kb", "docId": "d", "title": "t", "content": "x", "source": "user"}, []string{"x-agent-id", "a1"}, 400, "invalid_request"},
		{"url source without url", map[string]any{"corpusId": "kb", "docId": "d", "title": "t", "content": "x", "source": "url"}, nil, 400, "invalid_request"},
		{"binary mime", map[string]any{"corpusId": "kb", "docId": "d", "title": "t", "content": "x", "mimeType": "application/pdf"}, nil, 400, "invalid_request"},
		{"other tenant in body", map[string]any{"tenantId": "other", "corpusId": "kb", "docId": "d", "title": "t", "content": "x"}, nil, 403, "tenant_mismatch"},
		{"too large", doc("d", strings.Repeat("word ", 2<<20)), nil, 413, "payload_too_large"},
	} {
		r := a.do("POST", "/v1/ingest", c.body, c.hdr...)
		if r.Status != c.want || r.Code() != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.Status, r.Raw, c.want, c.code)
		}
	}
	// Nothing was queued by any refused request.
	if n, err := env.Evidence.RunOnce(context.Background()); err != nil || n != 0 {
		t.Fatalf("jobs after refused requests: %d, %v", n, err)
	}
	// Provenance: tool output and agent content are untrusted.
	if in := a.ingest(map[string]any{"corpusId": "kb", "docId": "t1", "title": "t", "content": "x", "source": "tool:github/get_issue"}); in.Trust != "untrusted" || in.Source != "tool:github/get_issue" {
		t.Fatalf("tool source: %+v", in)
	}
	if in := a.ingest(doc("a1", "x"), "x-agent-id", "bot-7"); in.Trust != "untrusted" || in.Source != "agent" {
		t.Fatalf("agent default source: %+v", in)
	}
	// A viewer may not ingest; another tenant's job is not found.
	viewer, _ := env.Key("acme", vaultcrux.RoleViewer)
	r := env.Do(vctest.Request{Method: "POST", Path: "/v1/ingest", Tenant: "acme", Key: viewer, Idem: "v1", Body: doc("v", "x")})
	if r.Status != 403 || r.Code() != "forbidden" {
		t.Fatalf("viewer ingest: %d %s", r.Status, r.Raw)
	}
	in := a.ingest(doc("mine", "secret words"))
	b := newClient(env, "bravo")
	if r := b.do("GET", "/v1/ingest/"+in.IngestID, nil); r.Status != 404 || r.Code() != "not_found" {
		t.Fatalf("other tenant's job: %d %s", r.Status, r.Raw)
	}
}

func TestReplaceNoopDelete(t *testing.T) {
	env := vctest.New(t)
	a := newClient(env, "acme")
	v1 := a.ingest(doc("policy", "Badgers may enter on Tuesdays."))
	env.Drain()
	same := a.ingest(doc("policy", "Badgers may enter on Tuesdays."))
	env.Drain()
	j := a.job(same.IngestID)
	if j.Status != "indexed" || !j.Unchanged || j.Version != 1 {
		t.Fatalf("identical content: %+v", j)
	}
	if k := verifyReceipt(t, env, "acme", *j.ReceiptID).Kind(); k != evidence.KindUnchanged {
		t.Fatalf("no-op receipt kind %q", k)
	}
	v2 := a.ingest(doc("policy", "Otters may enter on Fridays."))
	env.Drain()
	j = a.job(v2.IngestID)
	if j.Status != "indexed" || j.Unchanged || j.Version != 2 {
		t.Fatalf("replacement: %+v", j)
	}
	if k := verifyReceipt(t, env, "acme", *j.ReceiptID).Kind(); k != evidence.KindReplaced {
		t.Fatalf("replace receipt kind %q", k)
	}
	if got := a.retrieve(map[string]any{"query": "badgers tuesdays"}); len(got.Results) != 0 {
		t.Fatalf("old version still found: %+v", got.Results)
	}
	got := a.retrieve(map[string]any{"query": "otters"})
	if len(got.Results) != 1 || got.Results[0].Text != "Otters may enter on Fridays." {
		t.Fatalf("new version: %+v", got.Results)
	}
	_ = v1

	r := a.do("DELETE", "/v1/documents/policy", nil)
	if r.Status != 200 || r.Header.Get("x-receipt-id") == "" {
		t.Fatalf("delete: %d %s", r.Status, r.Raw)
	}
	if k := verifyReceipt(t, env, "acme", r.Header.Get("x-receipt-id")).Kind(); k != evidence.KindDeleted {
		t.Fatalf("delete receipt kind %q", k)
	}
	if got := a.retrieve(map[string]any{"query": "otters"}); len(got.Results) != 0 {
		t.Fatalf("deleted document found: %+v", got.Results)
	}
	if r := a.do("DELETE", "/v1/documents/policy", nil); r.Status != 404 || r.Code() != "not_found" {
		t.Fatalf("second delete: %d %s", r.Status, r.Raw)
	}
	// Re-ingesting after a delete starts version 3 (the counter is kept).
	v3 := a.ingest(doc("policy", "Otters may enter on Fridays."))
	env.Drain()
	if j := a.job(v3.IngestID); j.Version != 3 || j.Unchanged {
		t.Fatalf("after delete: %+v", j)
	}
}

func TestTenantIsolation(t *testing.T) {
	env := vctest.New(t)
	a, b := newClient(env, "acme"), newClient(env, "bravo")
	a.ingest(doc("shared-name", "the plumbus glorptastic manual"))
	b.ingest(doc("shared-name", "the plumbus is ordinary"))
	env.Drain()
	ga := a.retrieve(map[string]any{"query": "plumbus glorptastic"})
	gb := b.retrieve(map[string]any{"query": "plumbus glorptastic"})
	if len(ga.Results) != 1 || !strings.Contains(ga.Results[0].Text, "glorptastic") {
		t.Fatalf("acme: %+v", ga.Results)
	}
	if len(gb.Results) != 1 || strings.Contains(gb.Results[0].Text, "glorptastic") {
		t.Fatalf("bravo sees: %+v", gb.Results)
	}
	// The same word hashes differently per tenant: no cross-tenant
	// correlation of the blind index.
	terms := func(tenant string) []byte {
		var cs []*store.Chunk
		err := env.Store.ForTenant(vaultcrux.TenantID(tenant)).Tx(context.Background(), func(tx store.TenantTx) (err error) {
			cs, err = tx.GetChunks([]string{"shared-name#0"})
			return err
		})
		if err != nil || len(cs) != 1 {
			t.Fatalf("chunks of %s: %v %v", tenant, cs, err)
		}
		return cs[0].Terms
	}
	ta, tb := terms("acme"), terms("bravo")
	// Both contain "the" and "plumbus"; their 16-byte hashes must not recur.
	for i := 0; i+16 <= len(ta); i++ {
		if strings.Contains(string(tb), string(ta[i:i+16])) {
			t.Fatalf("a term hash of acme appears in bravo's index")
		}
	}
	// Another tenant's answer receipt is not found.
	if r := b.do("GET", "/v1/proof/answers/"+ga.AnswerID+"/receipt", nil); r.Status != 404 {
		t.Fatalf("bravo reads acme's answer: %d", r.Status)
	}
}

func TestCitationsAndStaleLineage(t *testing.T) {
	env := vctest.New(t)
	a := newClient(env, "acme")
	a.ingest(doc("faq", "Refunds are processed within 14 days.\n\nShipping is free above 50 euros."))
	env.Drain()
	got := a.retrieve(map[string]any{"query": "refunds"})
	if len(got.Results) != 1 {
		t.Fatalf("results %+v", got.Results)
	}
	r := a.do("POST", "/v1/citations", map[string]any{
		"answerId": got.AnswerID, "answerText": "Refunds take two weeks.",
		"citations": []map[string]any{
			{"chunkId": "faq#0", "quote": "Refunds are   processed within 14 days."},
			{"chunkId": "faq#0", "quote": "Refunds are instant."},
			{"chunkId": "nope#0", "quote": "anything"},
		},
	})
	if r.Status != 200 {
		t.Fatalf("citations: %d %s", r.Status, r.Raw)
	}
	var cc struct {
		Citations []struct {
			ChunkID  string `json:"chunkId"`
			Status   string `json:"status"`
			InAnswer bool   `json:"inAnswer"`
		} `json:"citations"`
		Supported int    `json:"supported"`
		ReceiptID string `json:"receiptId"`
	}
	r.Into(t, &cc)
	if cc.Supported != 1 || cc.Citations[0].Status != "supported" || !cc.Citations[0].InAnswer ||
		cc.Citations[1].Status != "not_found" || cc.Citations[2].Status != "not_found" || cc.Citations[2].InAnswer {
		t.Fatalf("citations %+v", cc)
	}
	cd := verifyReceipt(t, env, "acme", cc.ReceiptID)
	ad := verifyReceipt(t, env, "acme", got.ReceiptID)
	if cd.ParentSnapID() != ad.SnapshotID() {
		t.Fatalf("citations receipt parent %q, answer snapshot %q", cd.ParentSnapID(), ad.SnapshotID())
	}
	if r := a.do("POST", "/v1/citations", map[string]any{"answerId": "01NOPE", "answerText": "x", "citations": []map[string]any{{"chunkId": "faq#0", "quote": "x"}}}); r.Status != 404 {
		t.Fatalf("unknown answer: %d %s", r.Status, r.Raw)
	}

	// Not stale yet; then the cited chunk changes.
	pp, err := env.Ledger.Proofpack(context.Background(), "acme", got.ReceiptID, "")
	if err != nil || pp.Integrity.Stale {
		t.Fatalf("fresh proofpack stale=%v err %v", pp != nil && pp.Integrity.Stale, err)
	}
	a.ingest(doc("faq", "Refunds are processed within 30 days."))
	env.Drain()
	pp, err = env.Ledger.Proofpack(context.Background(), "acme", got.ReceiptID, "")
	if err != nil || !pp.Integrity.Stale || !pp.Integrity.HashOk || !pp.Integrity.SignatureOk {
		t.Fatalf("after change: %+v, %v", pp.Integrity, err)
	}
	rep, err := env.Ledger.VerifyChain(context.Background(), "acme", cc.ReceiptID)
	if err == nil {
		t.Fatalf("verify-chain by receipt id should need the answer id: %+v", rep)
	}
	rep, err = env.Ledger.VerifyChain(context.Background(), "acme", got.AnswerID)
	if err != nil || !rep.Valid || !rep.Stale || len(rep.Breaks) != 1 || rep.Breaks[0].Reason != "stale_lineage" {
		t.Fatalf("verify-chain after change: %+v, %v", rep, err)
	}
	// An unrelated document changing leaves the answer fresh.
	a.ingest(doc("other", "Unrelated text."))
	env.Drain()
	got2 := a.retrieve(map[string]any{"query": "unrelated"})
	a.ingest(doc("faq", "Refunds are processed within 45 days."))
	env.Drain()
	if rep, err := env.Ledger.VerifyChain(context.Background(), "acme", got2.AnswerID); err != nil || rep.Breaks[0].SnapID == verifyReceipt(t, env, "acme", got2.ReceiptID).SnapshotID() {
		t.Fatalf("unrelated answer reported stale: %+v %v", rep, err)
	}
}

func TestRotateTenantKey(t *testing.T) {
	env := vctest.New(t)
	a := newClient(env, "acme")
	a.ingest(doc("d1", "The zebra crossing is painted."))
	queued := a.ingest(doc("d2", "A queued quokka document."))
	env.Drain()
	// One more job stays queued across the rotation.
	pending := a.ingest(doc("d3", "A pending pangolin document."))
	_ = queued
	r := a.do("POST", "/v1/tenant/rotate-key", nil)
	if r.Status != 200 {
		t.Fatalf("rotate: %d %s", r.Status, r.Raw)
	}
	var rot evidence.Rotation
	r.Into(t, &rot)
	if rot.FromVersion != 1 || rot.ToVersion != 2 || rot.Rewrapped != 3 {
		t.Fatalf("rotation %+v", rot)
	}
	if k := verifyReceipt(t, env, "acme", rot.ReceiptID).Kind(); k != evidence.KindKeyRotated {
		t.Fatalf("rotation receipt kind %q", k)
	}
	env.Drain()
	if j := a.job(pending.IngestID); j.Status != "indexed" {
		t.Fatalf("job queued across rotation: %+v", j)
	}
	for q, want := range map[string]string{"zebra": "The zebra crossing is painted.", "pangolin": "A pending pangolin document."} {
		got := a.retrieve(map[string]any{"query": q})
		if len(got.Results) != 1 || got.Results[0].Text != want {
			t.Fatalf("after rotation %q: %+v", q, got.Results)
		}
	}
	var keks []*store.TenantKEK
	env.Store.ForTenant("acme").Tx(context.Background(), func(tx store.TenantTx) (err error) {
		keks, err = tx.ListTenantKEKs()
		return err
	})
	if len(keks) != 2 || keks[0].State != "retired" || keks[0].Wrapped != "" || keks[0].IndexKey != "" || keks[1].State != "active" {
		t.Fatalf("KEK versions after rotation: %+v %+v", keks[0], keks[1])
	}
	// A member may not rotate.
	member, _ := env.Key("acme", vaultcrux.RoleMember)
	if r := env.Do(vctest.Request{Method: "POST", Path: "/v1/tenant/rotate-key", Tenant: "acme", Key: member, Idem: "m"}); r.Status != 403 {
		t.Fatalf("member rotate: %d", r.Status)
	}
}

func TestShred(t *testing.T) {
	env := vctest.New(t)
	a, b := newClient(env, "acme"), newClient(env, "bravo")
	a.ingest(doc("d1", "Top secret walrus plans."))
	b.ingest(doc("d1", "Bravo walrus plans."))
	env.Drain()
	got := a.retrieve(map[string]any{"query": "walrus"})
	queued := a.ingest(doc("d2", "Queued narwhal."))

	// Shredding is critical: Shield asks for an approval first, and a
	// person resolves it in a browser session.
	shred := func(confirm string) *vctest.Response {
		t.Helper()
		r := a.do("POST", "/v1/tenant/crypto-shred", map[string]any{"confirm": confirm})
		if r.Status != 403 || r.Code() != "approval_required" || r.Error.ApprovalRequestID == "" {
			t.Fatalf("shred without approval: %d %s", r.Status, r.Raw)
		}
		tok := env.Approve("acme", a.key, r.Error.ApprovalRequestID)
		return a.do("POST", "/v1/tenant/crypto-shred", map[string]any{"confirm": confirm}, "x-shield-approval-token", tok)
	}
	if r := shred("wrong"); r.Status != 400 {
		t.Fatalf("shred without confirmation: %d %s", r.Status, r.Raw)
	}
	admin, _ := env.Key("acme", vaultcrux.RoleAdmin)
	if r := env.Do(vctest.Request{Method: "POST", Path: "/v1/tenant/crypto-shred", Tenant: "acme", Key: admin, Idem: "adm", Body: map[string]any{"confirm": "acme"}}); r.Status != 403 || r.Code() != "forbidden" {
		t.Fatalf("admin shred: %d", r.Status)
	}
	r := shred("acme")
	if r.Status != 200 {
		t.Fatalf("shred: %d %s", r.Status, r.Raw)
	}
	var sh evidence.Shred
	r.Into(t, &sh)
	if sh.Destroyed != 1 {
		t.Fatalf("shred %+v", sh)
	}
	if k := verifyReceipt(t, env, "acme", sh.ReceiptID).Kind(); k != evidence.KindShredded {
		t.Fatalf("erasure receipt kind %q", k)
	}
	pp, err := env.Ledger.Proofpack(context.Background(), "acme", sh.ReceiptID, "")
	if err != nil || !pp.Integrity.HashOk || !pp.Integrity.SignatureOk || !pp.Integrity.InclusionOk {
		t.Fatalf("erasure proofpack %+v %v", pp.Integrity, err)
	}
	// Nothing reads or adds content any more.
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/retrieve", map[string]any{"query": "walrus"}},
		{"POST", "/v1/citations", map[string]any{"answerId": got.AnswerID, "answerText": "x", "citations": []map[string]any{{"chunkId": "d1#0", "quote": "walrus"}}}},
		{"POST", "/v1/ingest", doc("d3", "new")},
		{"POST", "/v1/tenant/rotate-key", nil},
	} {
		if r := a.do(c.method, c.path, c.body); r.Status != 409 || r.Code() != "conflict" {
			t.Errorf("%s %s after shred: %d %s", c.method, c.path, r.Status, r.Raw)
		}
	}
	// A second shred needs an approval, whose arguments can no longer be
	// sealed: the request is refused, not approved in the clear.
	if r := a.do("POST", "/v1/tenant/crypto-shred", map[string]any{"confirm": "acme"}); r.Status != 403 || r.Code() != "policy_error" {
		t.Errorf("shred after shred: %d %s", r.Status, r.Raw)
	}
	// The queued job fails; it never indexes.
	env.Drain()
	if j := a.job(queued.IngestID); j.Status != "failed" || j.Error == nil {
		t.Fatalf("queued job after shred: %+v", j)
	}
	// The other tenant is untouched.
	if got := b.retrieve(map[string]any{"query": "walrus"}); len(got.Results) != 1 {
		t.Fatalf("bravo after acme's shred: %+v", got.Results)
	}
	// Old answer receipts still verify (they hold hashes, not content).
	verifyReceipt(t, env, "acme", got.ReceiptID)
}

func TestRestartResumesQueue(t *testing.T) {
	env := vctest.New(t)
	a := newClient(env, "acme")
	var ids []string
	for i := range 20 {
		ids = append(ids, a.ingest(doc(fmt.Sprintf("doc-%02d", i), fmt.Sprintf("Document number %d about lemurs.", i))).IngestID)
	}
	// A worker claims a batch and dies before finishing any of it.
	var claimed []*store.IngestJob
	err := env.Store.Tx(context.Background(), func(tx store.SystemTx) (err error) {
		now := env.Clock.Now()
		claimed, err = tx.ClaimIngestJobs("dead-worker", now, now.Add(2*time.Minute), 8)
		return err
	})
	if err != nil || len(claimed) != 8 {
		t.Fatalf("claim: %d %v", len(claimed), err)
	}
	// A new process (a fresh service over the same store) picks up the
	// queued jobs at once and the dead worker's after its lease.
	fresh := evidence.New(evidence.Config{Store: env.Store, Ledger: env.Ledger, Keys: env.Provider, Now: env.Clock.Now})
	drain(t, fresh)
	done := 0
	for _, id := range ids {
		if a.job(id).Status == "indexed" {
			done++
		}
	}
	if done != 12 {
		t.Fatalf("before the lease expired: %d indexed, want 12", done)
	}
	env.Clock.Advance(2*time.Minute + time.Second)
	drain(t, fresh)
	for _, id := range ids {
		if j := a.job(id); j.Status != "indexed" || j.Chunks != 1 {
			t.Fatalf("job %s after restart: %+v", id, j)
		}
	}
	// The dead worker cannot finish a job it lost.
	j := claimed[0]
	j.Status = "indexed"
	err = env.Store.ForTenant("acme").Tx(context.Background(), func(tx store.TenantTx) error { return tx.FinishIngestJob(j, "dead-worker") })
	if vaultcrux.ErrorKind(err) != vaultcrux.Conflict {
		t.Fatalf("finish with a lost lease: %v", err)
	}
	got := a.retrieve(map[string]any{"query": "lemurs", "topK": 50})
	if len(got.Results) != 20 {
		t.Fatalf("%d results, want 20", len(got.Results))
	}
}

func drain(t *testing.T, s *evidence.Service) {
	t.Helper()
	for {
		n, err := s.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// TestRetrieveReplayIsSealed: a retrieve sent again with its idempotency
// key replays the first answer (no second receipt); the stored copy is
// sealed, so after a tenant key rotation it is refused, never served in
// the clear or recomputed.
func TestRetrieveReplayIsSealed(t *testing.T) {
	env := vctest.New(t)
	a := newClient(env, "acme")
	a.ingest(doc("d", "Marmots hibernate in burrows."))
	env.Drain()
	q := vctest.Request{Method: "POST", Path: "/v1/retrieve", Tenant: "acme", Key: a.key, Idem: "same", Body: map[string]any{"query": "marmots"}}
	first := env.Do(q)
	again := env.Do(q)
	if first.Status != 200 || again.Status != 200 || again.Header.Get("Idempotent-Replay") != "true" || string(again.Raw) != string(first.Raw) {
		t.Fatalf("replay: %d %s / %d %v %s", first.Status, first.Raw, again.Status, again.Header, again.Raw)
	}
	var n int
	env.Store.ForTenant("acme").Tx(context.Background(), func(tx store.TenantTx) error {
		recs, err := tx.ListReceipts(store.ReceiptFilter{Kind: "answer", BeforeIndex: -1, Limit: 10})
		n = len(recs)
		return err
	})
	if n != 1 {
		t.Fatalf("%d answer receipts after a replay, want 1", n)
	}
	if r := a.do("POST", "/v1/tenant/rotate-key", nil); r.Status != 200 {
		t.Fatalf("rotate: %d", r.Status)
	}
	if r := env.Do(q); r.Status != 409 || r.Code() != "conflict" {
		t.Fatalf("replay after rotation: %d %s", r.Status, r.Raw)
	}
}

// TestWrongMasterKeyFailsClosed: a process whose key provider cannot
// unwrap the tenant's KEK (wrong or replaced master key) serves nothing,
// queues nothing and indexes nothing.
func TestWrongMasterKeyFailsClosed(t *testing.T) {
	env := vctest.New(t)
	a := newClient(env, "acme")
	a.ingest(doc("d", "Puffins nest on cliffs."))
	env.Drain()
	queued := a.ingest(doc("e", "Gannets dive."))
	other, err := envelope.NewLocal(keyring.NewSecret(bytes.Repeat([]byte{7}, 32)), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wrong := evidence.New(evidence.Config{Store: env.Store, Ledger: env.Ledger, Keys: other, Now: env.Clock.Now})
	p := vaultcrux.Principal{Tenant: "acme", ID: "key:x"}
	if _, err := wrong.Retrieve(context.Background(), p, &evidence.RetrieveRequest{Query: "puffins"}); vaultcrux.ErrorKind(err) != vaultcrux.Unavailable {
		t.Fatalf("retrieve with the wrong master key: %v", err)
	}
	if _, err := wrong.Submit(context.Background(), p, &evidence.IngestRequest{CorpusID: "kb", DocID: "x", Title: "t", Content: "c"}); vaultcrux.ErrorKind(err) != vaultcrux.Unavailable {
		t.Fatalf("submit with the wrong master key: %v", err)
	}
	if _, err := wrong.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if j := a.job(queued.IngestID); j.Status != "processing" {
		t.Fatalf("job under a broken key provider: %+v (want it left to its lease)", j)
	}
	// The right provider finishes it once the lease ends.
	env.Clock.Advance(3 * time.Minute)
	env.Drain()
	if j := a.job(queued.IngestID); j.Status != "indexed" {
		t.Fatalf("job after recovery: %+v", j)
	}
}
