package receipt

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// vector is the layout of testdata/*.golden.json: the signed receipt as it
// is stored, the canonical bytes its hash covers, that hash, the Ed25519
// seed of the signing key, and the signature object. An implementation in
// another language can check itself against these files alone.
type vector struct {
	Receipt     json.RawMessage `json:"receipt"`
	Canonical   string          `json:"canonical"`
	ReceiptHash string          `json:"receiptHash"`
	SeedB64     string          `json:"seedB64"`
	Signature   *Signature      `json:"signature"`
}

func encodeVector(t *testing.T, d *Doc, canonical []byte) []byte {
	t.Helper()
	v := vector{
		Receipt:     mustBytes(t, d),
		Canonical:   string(canonical),
		ReceiptHash: d.ClaimedHash(),
		SeedB64:     base64.StdEncoding.EncodeToString(vectorSeed()),
		Signature:   d.Signature(),
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkGolden compares got with the file, or rewrites the file under
// -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs from what the code produces (-file +code); if the change is intended, run go test -update:\n%s", path, diff)
	}
}

func eventCanonical(t *testing.T, d *Doc) []byte {
	t.Helper()
	v, err := ParseJSON(mustBytes(t, d))
	if err != nil {
		t.Fatal(err)
	}
	obj := v.(map[string]any)
	delete(obj, "receiptHash")
	delete(obj, "signature")
	c, err := Canonical(obj)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func answerCanonical(t *testing.T, d *Doc) []byte {
	t.Helper()
	p, err := d.AnswerPayload()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Canonical(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGoldenEvent(t *testing.T) {
	d := signedEvent(t)
	checkGolden(t, "event.golden.json", encodeVector(t, d, eventCanonical(t, d)))
	checkVectorFile(t, "event.golden.json", ClassEvent)
}

func TestGoldenAnswer(t *testing.T) {
	d := signedAnswer(t)
	checkGolden(t, "answer.golden.json", encodeVector(t, d, answerCanonical(t, d)))
	checkVectorFile(t, "answer.golden.json", ClassAnswer)
}

func TestGoldenCOSE(t *testing.T) {
	d := signedEvent(t)
	out, err := EncodeCOSE(d, vectorSigner())
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "cose.golden.hex", []byte(hex.EncodeToString(out)+"\n"))

	text, err := os.ReadFile(filepath.Join("testdata", "cose.golden.hex"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(text)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeCOSE(raw, keySetOf(statusActive, vectorSigner()))
	if err != nil {
		t.Fatalf("DecodeCOSE(golden): %v", err)
	}
	if diff := cmp.Diff(string(mustBytes(t, d)), string(mustBytes(t, got))); diff != "" {
		t.Errorf("DecodeCOSE(golden) mismatch (-want +got):\n%s", diff)
	}
}

// checkVectorFile checks a vector file on its own terms, with as little of
// the package as possible: the hash of the canonical text, the signature
// under the key from the seed, and Verify of the stored receipt.
func checkVectorFile(t *testing.T, name, class string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var v vector
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if got := Hash([]byte(v.Canonical)); got != v.ReceiptHash {
		t.Errorf("%s: Hash(canonical) = %s, want receiptHash %s", name, got, v.ReceiptHash)
	}
	seed, err := base64.StdEncoding.DecodeString(v.SeedB64)
	if err != nil || len(seed) != ed25519.SeedSize {
		t.Fatalf("%s: bad seedB64", name)
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	sig, err := base64.StdEncoding.DecodeString(v.Signature.SigB64)
	if err != nil || !ed25519.Verify(pub, []byte(v.ReceiptHash), sig) {
		t.Errorf("%s: signature does not verify over the receiptHash string", name)
	}
	if got, want := v.Signature.PubB64, base64.StdEncoding.EncodeToString(pub); got != want {
		t.Errorf("%s: pubB64 = %s, want %s", name, got, want)
	}
	d, err := Parse(v.Receipt)
	if err != nil {
		t.Fatalf("%s: Parse(receipt): %v", name, err)
	}
	if got := d.Class(); got != class {
		t.Errorf("%s: class %q, want %q", name, got, class)
	}
	if err := Verify(d, keySetOf(statusActive, vectorSigner())); err != nil {
		t.Errorf("%s: Verify: %v", name, err)
	}
}

// TestAnswerPayloadByHand states the canonical payload of the answer
// vector a second time, written out by hand from the protocol rules, so
// that a change to the payload builder fails even if the golden file is
// regenerated. Checked against JavaScript: JSON.stringify of the payload
// with keys sorted gives the same text.
func TestAnswerPayloadByHand(t *testing.T) {
	want := `{` +
		`"answerId":"ans_7f3c",` +
		`"citations":[` +
		`{"id":"src_1","quoteHash":"sha256:` + bareQuoteHash + `"},` +
		`{"id":"src_3","quoteHash":"sha256:` + upperQuoteHash + `"}],` +
		`"counterfactual":[{"id":"src_2","quoteHash":"` + sha256Prefixed + `"}],` +
		`"fusion":{"rrf_k":60,"w_bm25":0.35,"w_vec":0.65},` +
		`"generatedAt":"2025-05-04T03:02:05.250Z",` +
		`"llmModel":null,` +
		`"llmRequestId":null,` +
		`"mode":"grounded",` +
		`"modeRequested":"auto",` +
		`"queryHash":"blake3:1b5e6c3e0e7f1b1c2f0a7f4e5d6c7b8a99887766554433221100ffeeddccbbaa",` +
		`"retrieval":{"corpus":"Zürich handbook","rerankK":4,"topK":8},` +
		`"selection":{"citationIds":["src_1","src_3"],"coverage":{"pricing":["src_1"],"prévision":["src_3"]},"miSESSize":2},` +
		`"timings":{"rerankMs":3,"retrieveMs":12,"totalMs":21}` +
		`}`
	d := signedAnswer(t)
	if diff := cmp.Diff(want, string(answerCanonical(t, d))); diff != "" {
		t.Errorf("canonical payload mismatch (-hand +code):\n%s", diff)
	}
	if got, want := d.ClaimedHash(), Hash([]byte(want)); got != want {
		t.Errorf("receiptHash = %s, want %s", got, want)
	}
}

// TestEventCanonicalByHand does the same for the event vector.
func TestEventCanonicalByHand(t *testing.T) {
	want := `{"actor":"user:alice@example.com","agentId":"agent:triage",` +
		`"details":{"approval":null,"decision":"deny","policyVersion":7,` +
		`"reason":"naïve <script> & \"quotes\"\tand\nnewline","ruleIds":["r-12","r-40"],"score":0.92},` +
		`"inputHash":"blake3:9f64a747e1b97f131fabb6b447296c9b6f0201e79fb3c5356e6c77e89b6a806a",` +
		`"kind":"shield.decision","occurredAt":"2025-05-04T03:02:01.123Z","receiptId":"rcpt_01JTQ4Z6M8",` +
		`"subject":"tool:email.send","tenantId":"ten_acme"}`
	d := signedEvent(t)
	if diff := cmp.Diff(want, string(eventCanonical(t, d))); diff != "" {
		t.Errorf("canonical event mismatch (-hand +code):\n%s", diff)
	}
	if got, want := d.ClaimedHash(), Hash([]byte(want)); got != want {
		t.Errorf("receiptHash = %s, want %s", got, want)
	}
}
