package receipt

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestVerifyValid(t *testing.T) {
	for _, d := range []*Doc{signedEvent(t), signedAnswer(t)} {
		t.Run(d.Class(), func(t *testing.T) {
			for _, status := range []string{statusActive, statusRetired} {
				if err := Verify(d, keySetOf(status, vectorSigner())); err != nil {
					t.Errorf("Verify with key %s: %v", status, err)
				}
			}
			if err := Verify(d, nil); err != nil {
				t.Errorf("Verify with nil keys: %v", err)
			}
		})
	}
}

type tamper struct {
	name   string
	change func(obj map[string]any)
}

func set(path string, v any) func(obj map[string]any) {
	return func(obj map[string]any) {
		keys := strings.Split(path, ".")
		var cur any = obj
		for _, k := range keys[:len(keys)-1] {
			switch c := cur.(type) {
			case map[string]any:
				cur = c[k]
			case []any:
				cur = c[int(k[0]-'0')]
			}
		}
		m := cur.(map[string]any)
		last := keys[len(keys)-1]
		if v == deleted {
			delete(m, last)
		} else {
			m[last] = v
		}
	}
}

// deleted, as the value for set, removes the field.
var deleted = &struct{}{}

func TestVerifyEventTampered(t *testing.T) {
	tests := []tamper{
		{"receiptId", set("receiptId", "rcpt_other")},
		{"kind", set("kind", "shield.allow")},
		{"tenantId", set("tenantId", "ten_evil")},
		{"actor", set("actor", "user:mallory")},
		{"agentId", set("agentId", "agent:other")},
		{"agentId removed", set("agentId", deleted)},
		{"subject", set("subject", "tool:email.read")},
		{"inputHash", set("inputHash", "blake3:00")},
		{"outputHash added", set("outputHash", "blake3:00")},
		{"details value", set("details.decision", "allow")},
		{"details number", set("details.policyVersion", json.Number("8"))},
		{"details null to value", set("details.approval", "apr_1")},
		{"details key removed", set("details.approval", deleted)},
		{"details array element", set("details.ruleIds", []any{"r-12"})},
		{"details emptied", set("details", map[string]any{})},
		{"occurredAt", set("occurredAt", "2025-05-04T03:02:01.124Z")},
		{"unknown field added", set("note", "x")},
		{"receiptHash", set("receiptHash", "blake3:"+strings.Repeat("0", 64))},
		{"receiptHash removed prefix", set("receiptHash", strings.TrimPrefix(signedEvent(t).ClaimedHash(), "blake3:"))},
	}
	runTampers(t, signedEvent(t), tests, CodeHashMismatch)
}

func TestVerifyAnswerTampered(t *testing.T) {
	tests := []tamper{
		{"answerId", set("answerId", "ans_other")},
		{"mode", set("mode", "open")},
		{"modeRequested", set("modeRequested", "grounded")},
		{"modeRequested removed", set("modeRequested", deleted)},
		{"queryHash", set("queryHash", "blake3:00")},
		{"fusion weight", set("fusion.w_vec", json.Number("0.66"))},
		{"fusion key added", set("fusion.extra", true)},
		{"retrieval", set("retrieval.topK", json.Number("9"))},
		{"retrieval non-ASCII", set("retrieval.corpus", "Zurich handbook")},
		{"selection", set("selection.miSESSize", json.Number("3"))},
		{"selection coverage", set("selection.coverage.pricing", []any{})},
		{"timings", set("timings.totalMs", json.Number("20"))},
		{"generatedAt", set("generatedAt", "2025-05-04T03:02:05.251Z")},
		{"generatedAt removed", set("generatedAt", deleted)},
		{"llmModel null to name", set("llmModel", "gpt-x")},
		{"llmModel removed", set("llmModel", deleted)},
		{"llmRequestId removed", set("llmRequestId", deleted)},
		{"evidence sourceId", set("evidence.0.sourceId", "src_9")},
		{"evidence quoteHash", set("evidence.0.quoteHash", strings.Repeat("0", 64))},
		{"evidence quoteHash case", set("evidence.2.quoteHash", strings.ToLower(upperQuoteHash))},
		{"evidence role support to counterfactual", set("evidence.0.role", "counterfactual")},
		{"evidence role counterfactual to support", set("evidence.1.role", "support")},
		{"evidence role to other", set("evidence.2.role", "context")},
		{"evidence order", func(obj map[string]any) {
			ev := obj["evidence"].([]any)
			ev[0], ev[2] = ev[2], ev[0]
		}},
		{"evidence removed", func(obj map[string]any) {
			obj["evidence"] = obj["evidence"].([]any)[1:]
		}},
		{"receiptHash", set("receiptHash", "blake3:"+strings.Repeat("f", 64))},
	}
	runTampers(t, signedAnswer(t), tests, CodeHashMismatch)
}

// TestAnswerFieldsOutsideHash pins down a property of the CROWN protocol:
// these answer receipt fields are not covered by the receiptHash, so
// changing them leaves a valid receipt. If the payload ever covers one of
// them, this test fails and the package documentation must change too.
func TestAnswerFieldsOutsideHash(t *testing.T) {
	tests := []tamper{
		{"receiptId", set("receiptId", "rcpt_other")},
		{"snapshotId", set("snapshotId", "snap_other")},
		{"parentSnapId", set("parentSnapId", "snap_forged")},
		{"parentSnapId null", set("parentSnapId", nil)},
		{"evidence claimId", set("evidence.0.claimId", "clm_9")},
		{"evidence observedAt", set("evidence.0.observedAt", "2020-01-01T00:00:00.000Z")},
		{"evidence scoreComponents", set("evidence.0.scoreComponents.bm25", json.Number("99"))},
		{"evidence chunkId", set("evidence.0.chunkId", "chk_other")},
		{"unknown field", set("note", "x")},
		{"evidence of another role added", func(obj map[string]any) {
			obj["evidence"] = append(obj["evidence"].([]any), map[string]any{"sourceId": "s", "role": "context", "quoteHash": "q"})
		}},
		// The payload writes a bare 64-hex quote hash with "sha256:", so
		// both spellings hash alike.
		{"quoteHash prefix spelled out", set("evidence.0.quoteHash", "sha256:"+bareQuoteHash)},
		{"quoteHash prefix removed", set("evidence.1.quoteHash", strings.TrimPrefix(sha256Prefixed, "sha256:"))},
	}
	runTampers(t, signedAnswer(t), tests, "")
}

func runTampers(t *testing.T, d *Doc, tests []tamper, want string) {
	t.Helper()
	keys := keySetOf(statusActive, vectorSigner())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tampered := edit(t, d, tt.change)
			if got := failureCode(Verify(tampered, keys)); got != want {
				t.Errorf("Verify: code %q, want %q", got, want)
			}
			if got := failureCode(Verify(tampered, nil)); got != want {
				t.Errorf("Verify with nil keys: code %q, want %q", got, want)
			}
		})
	}
}

func TestVerifySignatureFailures(t *testing.T) {
	d := signedEvent(t)
	sig := d.Signature()
	other := otherSigner(vectorKID, 0x42)
	otherPub := base64.StdEncoding.EncodeToString(other.Public())
	// A receipt that is self-consistent under another key with the same kid.
	forged, err := Sign(d.WithSignature(nil), other, signedAt)
	if err != nil {
		t.Fatal(err)
	}
	withSig := func(change func(s *Signature)) *Doc {
		s := *sig
		change(&s)
		return d.WithSignature(&s)
	}
	flip := func(b64 string, i int) string {
		raw, _ := base64.StdEncoding.DecodeString(b64)
		raw[i] ^= 0x01
		return base64.StdEncoding.EncodeToString(raw)
	}
	good := keySetOf(statusActive, vectorSigner())
	tests := []struct {
		name string
		d    *Doc
		keys KeySet
		want string
	}{
		{"nil doc", nil, good, CodeReceiptMissing},
		{"signature null", d.WithSignature(nil), good, CodeUnsigned},
		{"signature null, no keys", d.WithSignature(nil), nil, CodeUnsigned},
		{"first signature byte flipped", withSig(func(s *Signature) { s.SigB64 = flip(s.SigB64, 0) }), good, CodeSignatureMismatch},
		{"last signature byte flipped", withSig(func(s *Signature) { s.SigB64 = flip(s.SigB64, 63) }), nil, CodeSignatureMismatch},
		{"signature of another receipt", withSig(func(s *Signature) { s.SigB64 = signedAnswer(t).Signature().SigB64 }), good, CodeSignatureMismatch},
		{"signature truncated", withSig(func(s *Signature) { s.SigB64 = s.SigB64[:84] }), good, CodeSignatureMismatch},
		{"signature not base64", withSig(func(s *Signature) { s.SigB64 = "!" + s.SigB64[1:] }), good, CodeSignatureMismatch},
		{"signature base64 with a newline", withSig(func(s *Signature) { s.SigB64 = s.SigB64[:40] + "\n" + s.SigB64[40:] }), good, CodeSignatureMismatch},
		{"signature base64 unpadded", withSig(func(s *Signature) { s.SigB64 = strings.TrimRight(s.SigB64, "=") }), good, CodeSignatureMismatch},
		{"pubB64 not the registered key", withSig(func(s *Signature) { s.PubB64 = otherPub }), good, CodeSignatureMismatch},
		{"forged under another key, checked with keys", forged, good, CodeSignatureMismatch},
		{"pubB64 not base64", withSig(func(s *Signature) { s.PubB64 = "AAAA" }), nil, CodeSignatureMismatch},
		{"pubB64 not base64, with keys", withSig(func(s *Signature) { s.PubB64 = "AAAA" }), good, CodeSignatureMismatch},
		{"unknown kid", withSig(func(s *Signature) { s.KID = "vaultcrux-signing:v9" }), good, CodeSignatureMismatch},
		{"empty key set", d, KeySet{}, CodeSignatureMismatch},
		{"kid revoked", d, keySetOf(statusRevoked, vectorSigner()), CodeKeyRevoked},
		{"kid revoked, bad pubB64", withSig(func(s *Signature) { s.PubB64 = "x" }), keySetOf(statusRevoked, vectorSigner()), CodeKeyRevoked},
		{"kid revoked, signedAt before revocation", withSig(func(s *Signature) { s.SignedAt = "2000-01-01T00:00:00.000Z" }), KeySet{vectorKID: {
			KID: vectorKID, PubB64: good[vectorKID].PubB64, Status: statusRevoked, RevokedAt: "2025-06-01T00:00:00.000Z",
		}}, CodeKeyRevoked},
		{"key status unknown", d, keySetOf("suspended", vectorSigner()), CodeSignatureMismatch},
		{"key status empty", d, keySetOf("", vectorSigner()), CodeSignatureMismatch},
		{"entry filed under another kid", d, KeySet{vectorKID: {KID: "vaultcrux-signing:v2", PubB64: good[vectorKID].PubB64, Status: statusActive}}, CodeSignatureMismatch},
		{"registered key not base64", d, KeySet{vectorKID: {KID: vectorKID, PubB64: "not base64", Status: statusActive}}, CodeSignatureMismatch},
		{"hash checked before signature", edit(t, d.WithSignature(nil), set("kind", "x")), good, CodeHashMismatch},
		// Without keys, Verify checks self-consistency only: a receipt
		// signed by anyone who names their own key passes.
		{"forged under another key, no keys", forged, nil, ""},
		{"signedAt changed", withSig(func(s *Signature) { s.SignedAt = "2030-01-01T00:00:00.000Z" }), good, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := failureCode(Verify(tt.d, tt.keys)); got != tt.want {
				t.Errorf("Verify: code %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFailureError(t *testing.T) {
	err := Verify(signedEvent(t).WithSignature(nil), nil)
	if got, want := err.Error(), "unsigned: receipt has no signature"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestWithSignatureLeavesOriginal(t *testing.T) {
	d := signedEvent(t)
	before := string(mustBytes(t, d))
	sigBefore := *d.Signature()

	unsigned := d.WithSignature(nil)
	resigned := d.WithSignature(&Signature{SigB64: "a", KID: "b", PubB64: "c", SignedAt: "d"})

	if got := string(mustBytes(t, d)); got != before {
		t.Errorf("original changed:\n got %s\nwant %s", got, before)
	}
	if diff := cmp.Diff(sigBefore, *d.Signature()); diff != "" {
		t.Errorf("original signature changed (-want +got):\n%s", diff)
	}
	if got := unsigned.Signature(); got != nil {
		t.Errorf("WithSignature(nil).Signature() = %+v, want nil", got)
	}
	if got := unsigned.Field("signature"); got != nil {
		t.Errorf(`WithSignature(nil).Field("signature") = %v, want nil`, got)
	}
	if !strings.Contains(string(mustBytes(t, unsigned)), `"signature":null`) {
		t.Errorf("WithSignature(nil).Bytes() lacks \"signature\":null")
	}
	if got, want := resigned.Signature().KID, "b"; got != want {
		t.Errorf("WithSignature(sig).Signature().KID = %q, want %q", got, want)
	}
	if got, want := unsigned.ClaimedHash(), d.ClaimedHash(); got != want {
		t.Errorf("WithSignature changed receiptHash to %q, want %q", got, want)
	}
}

func TestFieldReturnsCopy(t *testing.T) {
	d := signedEvent(t)
	before := string(mustBytes(t, d))
	details := d.Field("details").(map[string]any)
	details["decision"] = "allow"
	details["ruleIds"].([]any)[0] = "r-0"
	if got := string(mustBytes(t, d)); got != before {
		t.Errorf("changing Field's result changed the Doc:\n got %s\nwant %s", got, before)
	}
	if err := Verify(d, nil); err != nil {
		t.Errorf("Verify after changing Field's result: %v", err)
	}

	a := signedAnswer(t)
	p, err := a.AnswerPayload()
	if err != nil {
		t.Fatal(err)
	}
	p["fusion"].(map[string]any)["w_vec"] = json.Number("1")
	if err := Verify(a, nil); err != nil {
		t.Errorf("Verify after changing AnswerPayload's result: %v", err)
	}
}

func TestSignRefusesWrongHash(t *testing.T) {
	d := edit(t, signedEvent(t), set("kind", "other"))
	if got, err := Sign(d, vectorSigner(), signedAt); failureCode(err) != CodeHashMismatch {
		t.Errorf("Sign of a tampered receipt = %v, %v; want a %s failure", got, err, CodeHashMismatch)
	}
	if got, err := EncodeCOSE(d, vectorSigner()); failureCode(err) != CodeHashMismatch {
		t.Errorf("EncodeCOSE of a tampered receipt = %x, %v; want a %s failure", got, err, CodeHashMismatch)
	}
}

// faultySigner returns a signature that does not verify, as a faulted
// signing device might.
type faultySigner struct{ *testSigner }

func (s faultySigner) Sign(msg []byte) ([]byte, error) {
	sig, _ := s.testSigner.Sign(msg)
	sig[10] ^= 0x80
	return sig, nil
}

// shortKeySigner reports a public key of the wrong size.
type shortKeySigner struct{ *testSigner }

func (s shortKeySigner) Public() ed25519.PublicKey { return s.testSigner.Public()[:31] }

func TestSignHash(t *testing.T) {
	h := signedEvent(t).ClaimedHash()
	sig, err := SignHash(h, vectorSigner(), time.Date(2025, 1, 2, 3, 4, 5, 678900000, time.FixedZone("x", 3600)))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sig.SignedAt, "2025-01-02T02:04:05.678Z"; got != want {
		t.Errorf("SignedAt = %q, want %q", got, want)
	}
	if got, want := sig.KID, vectorKID; got != want {
		t.Errorf("KID = %q, want %q", got, want)
	}
	tests := []struct {
		name string
		hash string
		s    Signer
	}{
		{"hash without prefix", strings.TrimPrefix(h, "blake3:"), vectorSigner()},
		{"hash upper case", "blake3:" + strings.ToUpper(h[7:]), vectorSigner()},
		{"hash short", h[:len(h)-1], vectorSigner()},
		{"hash other algorithm", "sha256:" + h[7:], vectorSigner()},
		{"hash empty", "", vectorSigner()},
		{"nil signer", h, nil},
		{"empty kid", h, &testSigner{kid: "", priv: vectorSigner().priv}},
		{"wrong-size public key", h, shortKeySigner{vectorSigner()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := SignHash(tt.hash, tt.s, signedAt); err == nil {
				t.Errorf("SignHash = %+v, want an error", got)
			}
		})
	}
	// SignHash does not re-verify (see its doc); a faulted signature is
	// caught by every verifier instead.
	d, err := Sign(signedEvent(t).WithSignature(nil), faultySigner{vectorSigner()}, signedAt)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(d, keySetOf(statusActive, vectorSigner())); failureCode(err) != CodeSignatureMismatch {
		t.Errorf("Verify of a faulted signature = %v, want %s", err, CodeSignatureMismatch)
	}
}
