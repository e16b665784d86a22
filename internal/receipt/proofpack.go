package receipt

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/vaultcrux/vaultcrux/internal/translog"
)

// ProofpackVersion is the proofpack format this package writes and reads.
const ProofpackVersion = "1"

// AudienceExternal is the proofpack audience that redacts what the
// signatures do not cover.
const AudienceExternal = "external_share"

// Proofpack bundles a receipt with everything needed to verify it offline:
// its chain of parent answers, its inclusion in the tenant log at a signed
// checkpoint, and the signing keys. Integrity is what the issuer found;
// verifiers recompute it and never trust it.
type Proofpack struct {
	Version     string            `json:"version"`
	GeneratedAt string            `json:"generatedAt"`
	TenantID    string            `json:"tenantId"`
	Audience    string            `json:"audience,omitempty"`
	Receipt     json.RawMessage   `json:"receipt"`
	Evidence    []map[string]any  `json:"evidence"`
	Chain       []json.RawMessage `json:"chain"`
	Inclusion   Inclusion         `json:"inclusion"`
	Checkpoint  string            `json:"checkpoint"`
	Keys        []KeyInfo         `json:"keys"`
	Integrity   Integrity         `json:"integrity"`
}

// Inclusion is the Merkle audit path of the receipt in its tenant log.
type Inclusion struct {
	LogIndex int64    `json:"logIndex"`
	TreeSize int64    `json:"treeSize"`
	Proof    []string `json:"proof"`
}

// Integrity is the outcome of each check.
type Integrity struct {
	HashOk      bool    `json:"hashOk"`
	SignatureOk bool    `json:"signatureOk"`
	ChainOk     bool    `json:"chainOk"`
	InclusionOk bool    `json:"inclusionOk"`
	Breaks      []Break `json:"breaks"`
	Stale       bool    `json:"stale"`
}

// Break is one failed link or receipt of a chain.
type Break struct {
	SnapID string `json:"snapId"`
	Reason string `json:"reason"`
}

// SortKeys orders keys by version (kid), oldest first.
func SortKeys(keys []KeyInfo) {
	slices.SortFunc(keys, func(a, b KeyInfo) int {
		if c := len(a.KID) - len(b.KID); c != 0 {
			return c
		}
		return strings.Compare(a.KID, b.KID)
	})
}

// redactedAnswerEvidence lists the evidence fields of an answer receipt
// that its hash does not cover: external_share drops them. sourceId and
// quoteHash are covered and stay, or the receipt would no longer verify.
var redactedAnswerEvidence = []string{"claimId", "chunkId", "corpusId", "scoreComponents", "observedAt"}

// ForAudience returns the receipt document as the audience may see it.
// Only fields outside the hashed payload are ever removed, so the result
// verifies exactly as the original does.
func ForAudience(d *Doc, audience string) (json.RawMessage, error) {
	if audience != AudienceExternal || d.Class() != ClassAnswer {
		return d.Bytes()
	}
	obj := deepCopy(d.obj).(map[string]any)
	if ev, ok := obj["evidence"].([]any); ok {
		for _, e := range ev {
			if m, ok := e.(map[string]any); ok {
				for _, f := range redactedAnswerEvidence {
					delete(m, f)
				}
			}
		}
	}
	return Canonical(obj)
}

// EvidenceFor returns the proofpack's evidence section: one entry per
// evidence record of an answer receipt (none for event receipts).
func EvidenceFor(d *Doc, audience string) []map[string]any {
	out := []map[string]any{}
	if d.Class() != ClassAnswer {
		return out
	}
	ev, _ := d.obj["evidence"].([]any)
	for _, e := range ev {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		entry := map[string]any{}
		for k, v := range m {
			if audience == AudienceExternal && slices.Contains(redactedAnswerEvidence, k) {
				continue
			}
			entry[k] = v
		}
		out = append(out, entry)
	}
	return out
}

// VerifyChain checks docs, an answer receipt followed by its parents
// (docs[i+1] is the parent of docs[i]): each receipt's hash and signature,
// and each link. It returns the breaks; none means the chain holds.
func VerifyChain(docs []*Doc, keys KeySet) []Break {
	var breaks []Break
	for i, d := range docs {
		snap := d.SnapshotID()
		if d.Class() != ClassAnswer {
			breaks = append(breaks, Break{SnapID: d.ID(), Reason: CodeChainBreak})
			continue
		}
		if err := Verify(d, keys); err != nil {
			breaks = append(breaks, Break{SnapID: snap, Reason: failCode(err)})
		} else if !linksBound(d) {
			breaks = append(breaks, Break{SnapID: snap, Reason: CodeChainBreak})
		}
		if i+1 < len(docs) && d.ParentSnapID() != docs[i+1].SnapshotID() {
			breaks = append(breaks, Break{SnapID: docs[i+1].SnapshotID(), Reason: CodeChainBreak})
		}
	}
	return breaks
}

// linksBound reports whether the chain links of an answer receipt agree
// with their signed copies. The CROWN payload does not cover snapshotId or
// parentSnapId, so vaultcrux also writes them into retrieval (which it
// covers) as retrieval.snapshotId and retrieval.parentSnapId; when those
// are present, the unsigned top-level links must equal them, so that a
// chain cannot be re-linked without breaking a signature. Receipts from
// issuers that do not bind their links are checked on the links alone.
func linksBound(d *Doc) bool {
	r, _ := d.obj["retrieval"].(map[string]any)
	for _, k := range []string{"snapshotId", "parentSnapId"} {
		signed, ok := r[k]
		if !ok {
			continue
		}
		top := d.obj[k]
		if signed != top {
			return false
		}
	}
	return true
}

func failCode(err error) string {
	if f, ok := err.(*Failure); ok {
		return f.Code
	}
	return CodeMalformed
}

// Report is the outcome of verifying one document.
type Report struct {
	Kind      string    `json:"kind"`
	ReceiptID string    `json:"receiptId,omitempty"`
	OK        bool      `json:"ok"`
	Failures  []Problem `json:"failures"`
	Integrity Integrity `json:"integrity"`
	// KeysFrom says where the public keys came from: "trusted" (given by
	// the verifier's user) or "document" (the document's own list, which
	// proves integrity but not who signed).
	KeysFrom string `json:"keysFrom"`
}

// Problem is a failure as reports show it.
type Problem struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

func (r *Report) fail(code, format string, args ...any) {
	r.Failures = append(r.Failures, Problem{Code: code, Detail: fmt.Sprintf(format, args...)})
}

func (r *Report) failErr(what string, err error) {
	r.fail(failCode(err), "%s: %v", what, err)
}

// ParseProofpack parses a proofpack strictly: no duplicate or unknown
// fields, version ProofpackVersion.
func ParseProofpack(data []byte) (*Proofpack, error) {
	if _, err := ParseJSON(data); err != nil {
		return nil, &Failure{Code: CodeMalformed, Detail: err.Error()}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var pp Proofpack
	if err := dec.Decode(&pp); err != nil {
		return nil, &Failure{Code: CodeMalformed, Detail: "proofpack: " + err.Error()}
	}
	if pp.Version != ProofpackVersion {
		return nil, &Failure{Code: CodeMalformed, Detail: fmt.Sprintf("proofpack version %q, this verifier reads %q", pp.Version, ProofpackVersion)}
	}
	return &pp, nil
}

// VerifyProofpack verifies a proofpack offline. trusted, when not nil, is
// the verifier's own list of signing keys and overrides the pack's.
func VerifyProofpack(data []byte, trusted KeySet) (*Report, error) {
	pp, err := ParseProofpack(data)
	if err != nil {
		return nil, err
	}
	keys := trusted
	from := "trusted"
	if keys == nil {
		keys = KeySet{}
		for _, k := range pp.Keys {
			keys[k.KID] = k
		}
		from = "document"
	}
	rep := CheckProofpack(pp, keys)
	rep.KeysFrom = from
	return rep, nil
}

// CheckProofpack verifies pp against keys: the receipt (hash, signature,
// key status), the chain, the checkpoint signature and the receipt's
// inclusion under the checkpoint's root. Integrity.Stale is the issuer's
// claim that the cited evidence changed since; it is reported as
// stale_lineage, which only the issuer or an evidence export can decide.
func CheckProofpack(pp *Proofpack, keys KeySet) *Report {
	rep := &Report{Kind: "proofpack", Integrity: Integrity{Breaks: []Break{}}}
	d, err := Parse(pp.Receipt)
	if err != nil {
		rep.failErr("receipt", err)
		rep.Failures = append(rep.Failures[:len(rep.Failures)-1], Problem{Code: CodeReceiptMissing, Detail: "receipt: " + err.Error()})
		return rep
	}
	rep.ReceiptID = d.ID()
	computed, herr := d.ComputeHash()
	rep.Integrity.HashOk = herr == nil && computed == d.ClaimedHash()
	if err := Verify(d, keys); err != nil {
		rep.failErr("receipt "+d.ID(), err)
	} else {
		rep.Integrity.SignatureOk = true
	}
	if !rep.Integrity.HashOk {
		rep.Integrity.SignatureOk = false
	}

	// Chain.
	docs := []*Doc{d}
	chainParsed := true
	for i, raw := range pp.Chain {
		p, err := Parse(raw)
		if err != nil {
			rep.fail(CodeChainBreak, "chain[%d]: %v", i, err)
			chainParsed = false
			break
		}
		docs = append(docs, p)
	}
	if len(pp.Chain) > 0 || d.ParentSnapID() != "" {
		if chainParsed {
			rep.Integrity.Breaks = VerifyChain(docs, keys)
		}
		if len(pp.Chain) == 0 && d.ParentSnapID() != "" {
			rep.Integrity.Breaks = append(rep.Integrity.Breaks, Break{SnapID: d.ParentSnapID(), Reason: CodeReceiptMissing})
		}
		// The receipt's own failure is reported above, not as a break.
		var own []Break
		for _, b := range rep.Integrity.Breaks {
			if b.SnapID == d.SnapshotID() && b.Reason != CodeChainBreak {
				continue
			}
			own = append(own, b)
		}
		rep.Integrity.Breaks = own
		for _, b := range own {
			rep.fail(CodeChainBreak, "chain at %s: %s", b.SnapID, b.Reason)
		}
	}
	rep.Integrity.ChainOk = chainParsed && len(rep.Integrity.Breaks) == 0
	if rep.Integrity.Breaks == nil {
		rep.Integrity.Breaks = []Break{}
	}

	// Checkpoint and inclusion.
	pubs := map[string]ed25519.PublicKey{}
	for kid, k := range keys {
		if k.Status == "revoked" {
			continue
		}
		if pub, err := keys.Public(kid); err == nil {
			pubs[kid] = pub
		}
	}
	cp, kid, err := translog.OpenCheckpoint([]byte(pp.Checkpoint), pubs)
	switch {
	case err != nil:
		rep.fail(CodeCheckpointSignatureMismatch, "checkpoint: %v", err)
	case cp.Origin != translog.Origin(pp.TenantID):
		rep.fail(CodeCheckpointSignatureMismatch, "checkpoint is of log %q, not of tenant %q", cp.Origin, pp.TenantID)
	case pp.Inclusion.TreeSize != cp.Size:
		rep.fail(CodeInclusionFailed, "inclusion proof is for tree size %d, checkpoint (signed by %s) is of size %d", pp.Inclusion.TreeSize, kid, cp.Size)
	default:
		proof, err := translog.DecodeProof(pp.Inclusion.Proof)
		if err == nil {
			err = translog.CheckInclusion(proof, cp.Size, cp.Root, pp.Inclusion.LogIndex, d.ClaimedHash())
		}
		if err != nil {
			rep.fail(CodeInclusionFailed, "receipt %s at log index %d: %v", d.ID(), pp.Inclusion.LogIndex, err)
		} else {
			rep.Integrity.InclusionOk = true
		}
	}
	if pp.Integrity.Stale {
		rep.Integrity.Stale = true
		rep.fail(CodeStaleLineage, "the issuer reports that evidence cited by this receipt has changed since it was issued")
	}
	rep.OK = len(rep.Failures) == 0
	return rep
}
