package receipt

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"testing"
	"time"
)

// testSigner is an in-memory Ed25519 Signer, standing in for the keyring.
type testSigner struct {
	kid  string
	priv ed25519.PrivateKey
}

func (s *testSigner) KID() string                     { return s.kid }
func (s *testSigner) Public() ed25519.PublicKey       { return s.priv.Public().(ed25519.PublicKey) }
func (s *testSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.priv, msg), nil }

// vectorSeed is the fixed Ed25519 seed of the test vectors: bytes 0..31.
func vectorSeed() []byte {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	return seed
}

const vectorKID = "vaultcrux-signing:v1"

func vectorSigner() *testSigner {
	return &testSigner{kid: vectorKID, priv: ed25519.NewKeyFromSeed(vectorSeed())}
}

// otherSigner has a different key, made from seed byte b repeated.
func otherSigner(kid string, b byte) *testSigner {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = b
	}
	return &testSigner{kid: kid, priv: ed25519.NewKeyFromSeed(seed)}
}

// signedAt is the fixed signing time of the vectors; its nanoseconds are
// dropped by vaultcrux.FormatTime.
var signedAt = time.Date(2025, 5, 4, 3, 2, 9, 987654321, time.UTC)

func keySetOf(status string, signers ...*testSigner) KeySet {
	ks := KeySet{}
	for _, s := range signers {
		ks[s.kid] = KeyInfo{KID: s.kid, PubB64: base64.StdEncoding.EncodeToString(s.Public()), Status: status}
	}
	return ks
}

func vectorEvent() *Event {
	return &Event{
		ReceiptID: "rcpt_01JTQ4Z6M8",
		Kind:      "shield.decision",
		TenantID:  "ten_acme",
		Actor:     "user:alice@example.com",
		AgentID:   "agent:triage",
		Subject:   "tool:email.send",
		InputHash: "blake3:9f64a747e1b97f131fabb6b447296c9b6f0201e79fb3c5356e6c77e89b6a806a",
		Details: map[string]any{
			"decision":      "deny",
			"policyVersion": 7,
			"ruleIds":       []any{"r-12", "r-40"},
			"score":         0.92,
			"approval":      nil,
			"reason":        "naïve <script> & \"quotes\"\tand\nnewline",
		},
		OccurredAt: time.Date(2025, 5, 4, 3, 2, 1, 123456789, time.UTC),
	}
}

const (
	bareQuoteHash  = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
	upperQuoteHash = "9C56CC51B374C3BA189210D5B6D4BF57790D351C96C47C02190ECF1E430635AB"
	sha256Prefixed = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

func vectorAnswer() *Answer {
	obs := time.Date(2025, 5, 3, 22, 15, 0, 0, time.UTC)
	return &Answer{
		ReceiptID:     "rcpt_01JTQ50A1B",
		SnapshotID:    "snap_0042",
		AnswerID:      "ans_7f3c",
		Mode:          "grounded",
		ModeRequested: "auto",
		QueryHash:     "blake3:1b5e6c3e0e7f1b1c2f0a7f4e5d6c7b8a99887766554433221100ffeeddccbbaa",
		Fusion:        map[string]any{"w_bm25": 0.35, "w_vec": 0.65, "rrf_k": 60},
		Retrieval:     map[string]any{"topK": 8, "rerankK": 4, "corpus": "Zürich handbook"},
		Selection: map[string]any{
			"miSESSize":   2,
			"citationIds": []any{"src_1", "src_3"},
			"coverage":    map[string]any{"pricing": []any{"src_1"}, "prévision": []any{"src_3"}},
		},
		Timings: map[string]any{"retrieveMs": 12, "rerankMs": 3, "totalMs": 21},
		Evidence: []Evidence{
			{ClaimID: "clm_1", SourceID: "src_1", Role: "support", QuoteHash: bareQuoteHash, ObservedAt: obs,
				ScoreComponents: map[string]any{"bm25": 7.25, "vec": 0.8123}, ChunkID: "chk_9", CorpusID: "corp_main"},
			{ClaimID: "clm_2", SourceID: "src_2", Role: "counterfactual", QuoteHash: sha256Prefixed, ObservedAt: obs},
			{ClaimID: "clm_3", SourceID: "src_3", Role: "support", QuoteHash: upperQuoteHash, ObservedAt: obs},
		},
		GeneratedAt:  time.Date(2025, 5, 4, 3, 2, 5, 250000000, time.UTC),
		ParentSnapID: "snap_0041",
		NoLLM:        true,
	}
}

func mustSigned(t testing.TB, d *Doc, err error) *Doc {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	d, err = Sign(d, vectorSigner(), signedAt)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func signedEvent(t testing.TB) *Doc {
	t.Helper()
	d, err := NewEvent(vectorEvent())
	return mustSigned(t, d, err)
}

func signedAnswer(t testing.TB) *Doc {
	t.Helper()
	d, err := NewAnswer(vectorAnswer())
	return mustSigned(t, d, err)
}

func mustBytes(t testing.TB, d *Doc) []byte {
	t.Helper()
	b, err := d.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// failureCode returns the Code of err's *Failure, "" for nil, and
// "not a *Failure" otherwise.
func failureCode(err error) string {
	if err == nil {
		return ""
	}
	var f *Failure
	if !errors.As(err, &f) {
		return "not a *Failure: " + err.Error()
	}
	return f.Code
}

// edit parses the canonical form of d, applies change to the object, and
// parses the result: tampering the way an attacker with the stored bytes
// would.
func edit(t testing.TB, d *Doc, change func(obj map[string]any)) *Doc {
	t.Helper()
	v, err := ParseJSON(mustBytes(t, d))
	if err != nil {
		t.Fatal(err)
	}
	change(v.(map[string]any))
	b, err := Canonical(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse after edit: %v", err)
	}
	return out
}
