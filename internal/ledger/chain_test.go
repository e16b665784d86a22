package ledger_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
)

// answer commits an answer receipt whose parent is parent ("" at the root)
// and returns its ids.
func (f *fixture) answer(t *testing.T, tenant, parent string) (receiptID, answerID, snapID string) {
	t.Helper()
	ids := make([]string, 3)
	for i := range ids {
		id, err := f.l.NewID()
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	d, err := receipt.NewAnswer(&receipt.Answer{
		ReceiptID: ids[0], AnswerID: ids[1], SnapshotID: ids[2], Mode: "verified",
		QueryHash:    "blake3:ab00000000000000000000000000000000000000000000000000000000000000",
		Fusion:       map[string]any{"w_bm25": 1, "w_vec": 0, "rrf_k": 60},
		Retrieval:    map[string]any{"topK": 8, "snapshotId": ids[2], "parentSnapId": nullable(parent)},
		Selection:    map[string]any{"citationIds": []any{"doc-1#0"}},
		Timings:      map[string]any{"totalMs": 3},
		GeneratedAt:  f.clock(),
		ParentSnapID: parent,
		Evidence: []receipt.Evidence{{ClaimID: "c1", SourceID: "doc-1", Role: "support",
			QuoteHash:  "blake3:" + "00000000000000000000000000000000000000000000000000000000000000ff",
			ObservedAt: f.clock(), ChunkID: "doc-1#0", CorpusID: "handbook"}},
		NoLLM: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.Commit(context.Background(), &ledger.Item{Tenant: vaultcrux.TenantID(tenant), Receipts: []*receipt.Doc{d}}); err != nil {
		t.Fatal(err)
	}
	return ids[0], ids[1], ids[2]
}

// TestAnswerChainProofpack builds a chain of three answers and checks the
// proofpack of the last, then breaks it in each way a verifier must catch.
func TestAnswerChainProofpack(t *testing.T) {
	f := newFixture(t, "acme")
	ctx := context.Background()
	_, _, s1 := f.answer(t, "acme", "")
	_, _, s2 := f.answer(t, "acme", s1)
	r3, a3, _ := f.answer(t, "acme", s2)
	f.commit(t, "acme", 2) // later entries: the inclusion proof is not trivial

	rep, err := f.l.VerifyChain(ctx, "acme", a3)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Valid || rep.Depth != 2 || len(rep.Breaks) != 0 {
		t.Fatalf("verify-chain = %+v, want valid depth 2", rep)
	}
	pp, err := f.l.Proofpack(ctx, "acme", r3, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(pp.Chain) != 2 || !pp.Integrity.ChainOk || !pp.Integrity.InclusionOk {
		t.Fatalf("proofpack chain %d, integrity %+v", len(pp.Chain), pp.Integrity)
	}
	raw, err := json.Marshal(pp)
	if err != nil {
		t.Fatal(err)
	}
	ks := f.keySet(t)
	if rep, err := receipt.VerifyProofpack(raw, ks); err != nil || !rep.OK {
		t.Fatalf("proofpack does not verify: %v %+v", err, rep)
	}

	// External share: redacted, still verifies.
	shared, err := f.l.Proofpack(ctx, "acme", r3, receipt.AudienceExternal)
	if err != nil {
		t.Fatal(err)
	}
	sraw, _ := json.Marshal(shared)
	for _, secret := range []string{`"chunkId"`, `"corpusId"`, `"claimId"`, "handbook"} {
		if strings.Contains(string(sraw), secret) {
			t.Errorf("external_share proofpack still holds %s", secret)
		}
	}
	if rep, err := receipt.VerifyProofpack(sraw, ks); err != nil || !rep.OK {
		t.Errorf("external_share proofpack does not verify: %v %+v", err, rep)
	}

	mutate := func(edit func(pp *receipt.Proofpack)) *receipt.Report {
		t.Helper()
		var c receipt.Proofpack
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		edit(&c)
		b, _ := json.Marshal(&c)
		rep, err := receipt.VerifyProofpack(b, ks)
		if err != nil {
			t.Fatalf("VerifyProofpack: %v", err)
		}
		return rep
	}
	has := func(rep *receipt.Report, code string) bool {
		for _, p := range rep.Failures {
			if p.Code == code {
				return true
			}
		}
		return false
	}
	edits := []struct {
		name, code string
		edit       func(pp *receipt.Proofpack)
	}{
		{"chain order swapped", receipt.CodeChainBreak, func(pp *receipt.Proofpack) { pp.Chain[0], pp.Chain[1] = pp.Chain[1], pp.Chain[0] }},
		{"parent dropped", receipt.CodeChainBreak, func(pp *receipt.Proofpack) { pp.Chain = pp.Chain[1:] }},
		{"chain emptied", receipt.CodeChainBreak, func(pp *receipt.Proofpack) { pp.Chain = nil }},
		{"parent tampered", receipt.CodeChainBreak, func(pp *receipt.Proofpack) {
			pp.Chain[1] = json.RawMessage(strings.ReplaceAll(string(pp.Chain[1]), `"topK":8`, `"topK":9`))
		}},
		{"receipt re-linked", receipt.CodeChainBreak, func(pp *receipt.Proofpack) {
			// parentSnapId is outside the CROWN payload; its signed copy
			// in retrieval catches the change.
			var parent map[string]any
			_ = json.Unmarshal(pp.Chain[1], &parent)
			// The top-level link comes first in canonical order.
			pp.Receipt = json.RawMessage(strings.Replace(string(pp.Receipt), `"parentSnapId":"`+s2+`"`, `"parentSnapId":"`+parent["snapshotId"].(string)+`"`, 1))
			pp.Chain = pp.Chain[1:]
		}},
		{"receipt field", receipt.CodeHashMismatch, func(pp *receipt.Proofpack) {
			pp.Receipt = json.RawMessage(strings.ReplaceAll(string(pp.Receipt), `"mode":"verified"`, `"mode":"audit"`))
		}},
		{"key swapped", receipt.CodeSignatureMismatch, func(pp *receipt.Proofpack) {
			pp.Receipt = json.RawMessage(strings.ReplaceAll(string(pp.Receipt), pp.Keys[0].PubB64, "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="))
		}},
		{"wrong tree size", receipt.CodeInclusionFailed, func(pp *receipt.Proofpack) { pp.Inclusion.TreeSize-- }},
		{"proof entry dropped", receipt.CodeInclusionFailed, func(pp *receipt.Proofpack) { pp.Inclusion.Proof = pp.Inclusion.Proof[1:] }},
		{"checkpoint of another tenant", receipt.CodeCheckpointSignatureMismatch, func(pp *receipt.Proofpack) { pp.TenantID = "globex" }},
		{"stale", receipt.CodeStaleLineage, func(pp *receipt.Proofpack) { pp.Integrity.Stale = true }},
	}
	for _, c := range edits {
		rep := mutate(c.edit)
		if rep.OK || !has(rep, c.code) {
			t.Errorf("%s: ok=%v failures %+v, want %s", c.name, rep.OK, rep.Failures, c.code)
		}
	}
	// A revoked key: every receipt it signed is refused.
	if _, err := ledger.RevokeSigningKey(ctx, f.st, 1, f.clock()); err != nil {
		t.Fatal(err)
	}
	if rep, _ := receipt.VerifyProofpack(raw, f.keySet(t)); rep.OK || !has(rep, receipt.CodeKeyRevoked) {
		t.Errorf("revoked key: %+v", rep.Failures)
	}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
