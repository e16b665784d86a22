package evidence

import (
	"bytes"
	"context"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/apikey"
	"github.com/vaultcrux/vaultcrux/internal/envelope"
	"github.com/vaultcrux/vaultcrux/internal/keyring"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
	"github.com/vaultcrux/vaultcrux/internal/store/sqlite"
	"github.com/vaultcrux/vaultcrux/internal/tenancy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestAnswerReceiptGolden pins the bytes of a /v1/retrieve answer receipt
// made with a fixed clock, random source and timings: the receipt as
// stored (canonical JSON) and the canonical payload its hash covers
// (contract §6). A change to either is a change to the protocol.
func TestAnswerReceiptGolden(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	// One source per component, so that no two share a reader.
	rnd := rand.NewChaCha8([32]byte{1, 2, 3})
	provRand := rand.NewChaCha8([32]byte{4, 5, 6})
	svcRand := rand.NewChaCha8([32]byte{7, 8, 9})
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	keys, _, err := ledger.OpenKeys(ctx, ledger.KeysConfig{Store: st, SeedPath: filepath.Join(t.TempDir(), "seed"), Now: clock, Rand: rnd})
	if err != nil {
		t.Fatal(err)
	}
	led := ledger.New(ledger.Config{Store: st, Keys: keys, Now: clock, Rand: rnd})
	defer led.Close()
	master := make([]byte, 32)
	rnd.Read(master)
	prov, err := envelope.NewLocal(keyring.NewSecret(master), provRand)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Store: st, Ledger: led, Keys: prov, Now: clock, Rand: svcRand})
	s.since = func(time.Time) time.Duration { return 1500 * time.Microsecond }
	pepper := make([]byte, 32)
	hasher, _ := apikey.NewHasher(keyring.NewSecret(pepper))
	p := &tenancy.Provisioner{Store: st, Ledger: led, Hasher: hasher, Now: clock, Rand: rand.NewChaCha8([32]byte{10}), TenantSetup: s.SetupTenant}
	if _, _, _, _, err := p.CreateTenant(ctx, vaultcrux.Principal{ID: "operator:test"}, "acme", ""); err != nil {
		t.Fatal(err)
	}
	who := vaultcrux.Principal{Tenant: "acme", ID: "key:golden", AgentID: "agent-7"}
	for _, d := range []*IngestRequest{
		{CorpusID: "kb", DocID: "runbook", Title: "Runbook", URL: "https://wiki.example.com/runbook", Content: "Rotate the frobnicator keys every quarter.\n\nThe frobnicator lives in rack 7.", Source: "agent"},
		{CorpusID: "kb", DocID: "notes", Title: "Notes", Content: "Rack 7 is cold; the frobnicator hums.", Source: "tool:wiki/fetch"},
	} {
		// One job at a time: the order of random reads stays fixed.
		if _, err := s.Submit(ctx, who, d); err != nil {
			t.Fatal(err)
		}
		if n, err := s.RunOnce(ctx); err != nil || n != 1 {
			t.Fatal(n, err)
		}
	}
	topK := 4
	first, err := s.Retrieve(ctx, who, &RetrieveRequest{Query: "frobnicator rack", TopK: &topK, Mode: "verified"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.Retrieve(ctx, who, &RetrieveRequest{Query: "quarter", Filters: &RetrieveFilter{CorpusID: "kb", DocIDs: []string{"runbook"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Results) != 2 || len(second.Results) != 1 {
		t.Fatalf("results: %d, %d", len(first.Results), len(second.Results))
	}
	for name, id := range map[string]string{"answer-root": first.ReceiptID, "answer-child": second.ReceiptID} {
		l, err := led.GetReceipt(ctx, "acme", id)
		if err != nil {
			t.Fatal(err)
		}
		ks, _ := led.KeySet(ctx)
		if err := receipt.Verify(l.Doc, ks); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, err := l.Doc.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		payload, err := l.Doc.AnswerPayload()
		if err != nil {
			t.Fatal(err)
		}
		pb, err := receipt.Canonical(payload)
		if err != nil {
			t.Fatal(err)
		}
		if HashString(string(pb)) != l.Doc.ClaimedHash() {
			t.Fatalf("%s: receiptHash is not blake3 of the canonical payload", name)
		}
		golden(t, name+".golden.json", body)
		golden(t, name+".payload.golden.json", pb)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what the code produces; if the change is intended, run go test -update\nfile: %s\ncode: %s", path, want, got)
	}
}
