package receipt

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/vaultcrux/vaultcrux"
)

// Event holds the fields of an event receipt. ReceiptID, Kind, TenantID,
// Actor and Subject are required; AgentID, InputHash and OutputHash are
// left out of the receipt when empty. Details holds hashes and ids, never
// document text or secrets; its values are built as Canonical accepts them.
type Event struct {
	ReceiptID, Kind, TenantID, Actor, AgentID, Subject, InputHash, OutputHash string
	Details                                                                   map[string]any
	OccurredAt                                                                time.Time
}

// NewEvent builds an unsigned event receipt: details {} when nil,
// occurredAt in vaultcrux.TimeFormat, receiptHash set, signature null.
// Details is copied, so later changes to it do not reach the receipt.
func NewEvent(e *Event) (d *Doc, err error) {
	defer vaultcrux.Wrap(&err, "receipt.NewEvent")
	if e == nil {
		return nil, vaultcrux.E(vaultcrux.Invalid, "no event")
	}
	for _, f := range []struct{ name, v string }{
		{"receiptId", e.ReceiptID}, {"kind", e.Kind}, {"tenantId", e.TenantID},
		{"actor", e.Actor}, {"subject", e.Subject},
	} {
		if f.v == "" {
			return nil, vaultcrux.Ef(vaultcrux.Invalid, "event receipt needs a %s", f.name)
		}
	}
	if e.OccurredAt.IsZero() {
		return nil, vaultcrux.E(vaultcrux.Invalid, "event receipt needs occurredAt")
	}
	details, err := normalizeObject(e.Details)
	if err != nil {
		return nil, err
	}
	obj := map[string]any{
		"receiptId":  e.ReceiptID,
		"kind":       e.Kind,
		"tenantId":   e.TenantID,
		"actor":      e.Actor,
		"subject":    e.Subject,
		"details":    details,
		"occurredAt": vaultcrux.FormatTime(e.OccurredAt),
	}
	for k, v := range map[string]string{"agentId": e.AgentID, "inputHash": e.InputHash, "outputHash": e.OutputHash} {
		if v != "" {
			obj[k] = v
		}
	}
	c, err := canonical(obj) // before receiptHash and signature exist
	if err != nil {
		return nil, err
	}
	obj["receiptHash"] = Hash(c)
	obj["signature"] = nil
	return &Doc{obj: obj, class: ClassEvent, built: true}, nil
}

// Evidence is one evidence item of an answer receipt. ClaimID, SourceID,
// Role and QuoteHash are required; Role is "support" or "counterfactual".
// ScoreComponents, ChunkID and CorpusID are left out when empty.
type Evidence struct {
	ClaimID, SourceID, Role, QuoteHash string
	ObservedAt                         time.Time
	ScoreComponents                    map[string]any
	ChunkID, CorpusID                  string
}

// Answer holds the fields of a CROWN answer receipt. ReceiptID, SnapshotID,
// AnswerID, Mode, QueryHash and GeneratedAt are required; ModeRequested
// defaults to Mode; ParentSnapID "" is written as null (the root of a
// chain); LLMModel and LLMRequestID nil are left out. NoLLM states that no
// language model took part: llmModel and llmRequestId are then written as
// null, which the protocol distinguishes from their absence (both pointers
// must be nil). Nil maps are written as {}.
type Answer struct {
	ReceiptID, SnapshotID, AnswerID, Mode, ModeRequested, QueryHash string
	Fusion, Retrieval, Selection, Timings                           map[string]any
	Evidence                                                        []Evidence
	GeneratedAt                                                     time.Time
	ParentSnapID                                                    string
	LLMModel, LLMRequestID                                          *string
	NoLLM                                                           bool
}

// NewAnswer builds an unsigned answer receipt: generatedAt and observedAt
// in vaultcrux.TimeFormat, modeRequested always written, receiptHash set
// over the canonical payload, signature null. The maps are copied.
//
// Evidence roles are limited to support and counterfactual, the two the
// canonical payload includes: evidence of another role would be outside
// the hash, and this package does not make receipts with unsigned parts
// it could avoid.
func NewAnswer(a *Answer) (d *Doc, err error) {
	defer vaultcrux.Wrap(&err, "receipt.NewAnswer")
	if a == nil {
		return nil, vaultcrux.E(vaultcrux.Invalid, "no answer")
	}
	for _, f := range []struct{ name, v string }{
		{"receiptId", a.ReceiptID}, {"snapshotId", a.SnapshotID}, {"answerId", a.AnswerID},
		{"mode", a.Mode}, {"queryHash", a.QueryHash},
	} {
		if f.v == "" {
			return nil, vaultcrux.Ef(vaultcrux.Invalid, "answer receipt needs a %s", f.name)
		}
	}
	if a.GeneratedAt.IsZero() {
		return nil, vaultcrux.E(vaultcrux.Invalid, "answer receipt needs generatedAt")
	}
	if a.NoLLM && (a.LLMModel != nil || a.LLMRequestID != nil) {
		return nil, vaultcrux.E(vaultcrux.Invalid, "NoLLM with an LLM model or request id")
	}
	obj := map[string]any{
		"receiptId":     a.ReceiptID,
		"snapshotId":    a.SnapshotID,
		"answerId":      a.AnswerID,
		"mode":          a.Mode,
		"modeRequested": a.ModeRequested,
		"queryHash":     a.QueryHash,
		"generatedAt":   vaultcrux.FormatTime(a.GeneratedAt),
		"parentSnapId":  nil,
	}
	if a.ModeRequested == "" {
		obj["modeRequested"] = a.Mode
	}
	if a.ParentSnapID != "" {
		obj["parentSnapId"] = a.ParentSnapID
	}
	for k, m := range map[string]map[string]any{
		"fusion": a.Fusion, "retrieval": a.Retrieval, "selection": a.Selection, "timings": a.Timings,
	} {
		if obj[k], err = normalizeObject(m); err != nil {
			return nil, err
		}
	}
	switch {
	case a.NoLLM:
		obj["llmModel"] = nil
		obj["llmRequestId"] = nil
	default:
		if a.LLMModel != nil {
			obj["llmModel"] = *a.LLMModel
		}
		if a.LLMRequestID != nil {
			obj["llmRequestId"] = *a.LLMRequestID
		}
	}
	evidence := make([]any, 0, len(a.Evidence))
	for i, e := range a.Evidence {
		item, err := evidenceItem(&e)
		if err != nil {
			if vaultcrux.ErrorKind(err) == vaultcrux.Invalid {
				return nil, vaultcrux.Ef(vaultcrux.Invalid, "evidence[%d]: %s", i, vaultcrux.ErrorMessage(err))
			}
			return nil, fmt.Errorf("evidence[%d]: %w", i, err)
		}
		evidence = append(evidence, item)
	}
	obj["evidence"] = evidence
	d = &Doc{obj: obj, class: ClassAnswer}
	if _, err := canonical(obj); err != nil { // every string valid UTF-8, every number finite
		return nil, err
	}
	h, err := d.ComputeHash()
	if err != nil {
		return nil, err
	}
	obj["receiptHash"] = h
	obj["signature"] = nil
	d.built = true
	return d, nil
}

func evidenceItem(e *Evidence) (map[string]any, error) {
	for _, f := range []struct{ name, v string }{
		{"claimId", e.ClaimID}, {"sourceId", e.SourceID}, {"role", e.Role}, {"quoteHash", e.QuoteHash},
	} {
		if f.v == "" {
			return nil, vaultcrux.Ef(vaultcrux.Invalid, "needs a %s", f.name)
		}
	}
	if e.Role != "support" && e.Role != "counterfactual" {
		return nil, vaultcrux.E(vaultcrux.Invalid, "role is neither support nor counterfactual")
	}
	if e.ObservedAt.IsZero() {
		return nil, vaultcrux.E(vaultcrux.Invalid, "needs observedAt")
	}
	m := map[string]any{
		"claimId":    e.ClaimID,
		"sourceId":   e.SourceID,
		"role":       e.Role,
		"quoteHash":  e.QuoteHash,
		"observedAt": vaultcrux.FormatTime(e.ObservedAt),
	}
	if len(e.ScoreComponents) > 0 {
		sc, err := normalizeObject(e.ScoreComponents)
		if err != nil {
			return nil, err
		}
		m["scoreComponents"] = sc
	}
	if e.ChunkID != "" {
		m["chunkId"] = e.ChunkID
	}
	if e.CorpusID != "" {
		m["corpusId"] = e.CorpusID
	}
	return m, nil
}

// Sign returns a copy of d signed by s at now: d.WithSignature of the
// signature of its receiptHash. It refuses, with a *Failure of
// CodeHashMismatch, a Doc whose receiptHash does not match its content, so
// that a signer never vouches for a hash it was merely told.
func Sign(d *Doc, s Signer, now time.Time) (*Doc, error) {
	if err := checkHash(d); err != nil {
		return nil, err
	}
	sig, err := SignHash(d.ClaimedHash(), s, now)
	if err != nil {
		return nil, err
	}
	return d.WithSignature(sig), nil
}

// checkHash reports a Doc whose claimed hash is not its computed one.
func checkHash(d *Doc) error {
	if d == nil {
		return fail(CodeReceiptMissing, "no receipt")
	}
	if d.built {
		return nil // its hash was computed from this very content
	}
	h, err := d.ComputeHash()
	if err != nil {
		return fail(CodeMalformed, "cannot compute the receipt hash")
	}
	if h != d.ClaimedHash() {
		return fail(CodeHashMismatch, "receiptHash is %q, content hashes to %s", d.ClaimedHash(), h)
	}
	return nil
}

// normalizeObject copies m into the value model of ParseJSON (nil → {}).
func normalizeObject(m map[string]any) (map[string]any, error) {
	if m == nil {
		return map[string]any{}, nil
	}
	v, err := normalize(m, 0)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// normalize deep-copies a value built as Canonical accepts it into the
// value model of ParseJSON: int, int64 and float64 become the json.Number
// of their canonical text, so that a built Doc equals the parsed one.
func normalize(v any, depth int) (any, error) {
	switch v := v.(type) {
	case nil, bool:
		return v, nil
	case string:
		return v, nil // checked by Canonical
	case json.Number:
		f, err := parseNumber(v)
		if err != nil {
			return nil, err
		}
		return json.Number(appendFloat(nil, f)), nil
	case int:
		return normalizeInt(int64(v))
	case int64:
		return normalizeInt(v)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, invalidValue("number is NaN or infinite")
		}
		return json.Number(appendFloat(nil, v)), nil
	case map[string]any:
		if depth >= maxDepth {
			return nil, invalidValue("value nested more than 64 deep")
		}
		m := make(map[string]any, len(v))
		for k, e := range v {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = n
		}
		return m, nil
	case []any:
		if depth >= maxDepth {
			return nil, invalidValue("value nested more than 64 deep")
		}
		a := make([]any, len(v))
		for i, e := range v {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			a[i] = n
		}
		return a, nil
	default:
		return nil, fmt.Errorf("unsupported type %T in a receipt value", v)
	}
}

func normalizeInt(i int64) (any, error) {
	if i > maxSafeInteger || i < -maxSafeInteger {
		return nil, invalidValue("integer beyond 2**53 cannot be represented exactly")
	}
	return json.Number(strconv.FormatInt(i, 10)), nil
}
