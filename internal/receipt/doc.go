// Package receipt owns the formats of vaultcrux receipts and the code that
// decides whether one is genuine: canonical JSON, the receiptHash, the
// signature object, event receipts, CROWN answer receipts (protocol v0.1),
// their COSE_Sign1 form, and verification against a set of trusted keys.
// It is pure: no store, no network, no clock (time is passed in) and no
// private key — signing goes through the Signer interface, which the
// keyring implements.
//
// # Canonical JSON and the receipt hash
//
// Canonical JSON is what JavaScript's JSON.stringify writes for a value
// whose object keys have been sorted: keys in UTF-16 code unit order at
// every level, arrays in order, nulls kept, no whitespace, only '"', '\\'
// and control characters escaped (no HTML escaping, U+2028 and U+2029 as
// they are), numbers as ECMAScript Number::toString writes them (shortest
// round-trip digits; exponent form from 1e+21 up and from 1e-7 down; -0 is
// 0). The receiptHash is "blake3:" followed by the lowercase hex
// BLAKE3-256 of the canonical bytes:
//
//   - event receipt: the canonical JSON of the whole object less
//     receiptHash and signature, unknown fields included;
//   - answer receipt: the canonical JSON of the CROWN canonical payload
//     (see AnswerPayload), built from answerId, mode, modeRequested,
//     queryHash, fusion, retrieval, selection, timings, generatedAt,
//     llmModel, llmRequestId and the sourceId, role and quoteHash of each
//     evidence item. Everything else in an answer receipt — receiptId,
//     snapshotId, parentSnapId, claimId, observedAt, scoreComponents,
//     chunkId, corpusId, evidence of other roles — is outside the hash and
//     so outside the signature. That is the public protocol, kept so that
//     independent CROWN verifiers accept these receipts; whoever relies on
//     those fields (the chain walk relies on parentSnapId) must
//     authenticate them another way, such as the tenant log.
//
// The signature object {sigB64, kid, pubB64, signedAt} carries the Ed25519
// signature of the UTF-8 bytes of the receiptHash string. kid, pubB64 and
// signedAt are not signed.
//
// # Invariants
//
//   - ParseJSON accepts only input whose meaning is unambiguous (valid
//     UTF-8, no duplicate keys, no lone surrogates, finite numbers, one
//     value, bounded depth), and Canonical of what it accepts is a fixed
//     point: Canonical(ParseJSON(Canonical(v))) == Canonical(v).
//   - A Doc has passed the checks of Parse, however it was made: NewEvent,
//     NewAnswer, WithSignature and DecodeCOSE give the Doc that Parse gives
//     for its Bytes. A Doc is immutable: WithSignature returns a copy, and
//     Field and AnswerPayload return copies.
//   - Nothing here signs a value that is not a well-formed receipt hash,
//     and Sign and EncodeCOSE refuse a Doc whose receiptHash does not match
//     its content. Every signature is verified before it is returned.
//   - Given a KeySet, Verify trusts only the registered key of the kid,
//     never the receipt's own pubB64, and fails a revoked key whatever its
//     signedAt says. Without one it checks self-consistency only.
//   - DecodeCOSE accepts only envelopes EncodeCOSE can produce (up to the
//     COSE tag, which may be omitted, and the unprotected header, which is
//     ignored), checks the signature before it decodes the payload, and
//     reads at most 1 MiB.
//   - Errors from parsing and verification never echo raw input; values
//     from a receipt appear in a Failure's Detail only quoted.
package receipt

import (
	"errors"
	"maps"
	"strings"

	"github.com/vaultcrux/vaultcrux"
)

// The receipt classes.
const (
	ClassEvent  = "event"
	ClassAnswer = "answer"
)

// Doc is a parsed receipt: a JSON object (values as ParseJSON returns
// them) of one class. The zero Doc is not valid; Docs come from Parse,
// NewEvent, NewAnswer, WithSignature, Sign and DecodeCOSE.
type Doc struct {
	obj   map[string]any
	class string
	// built: NewEvent or NewAnswer computed receiptHash from obj, which
	// nothing changes afterwards (WithSignature copies, and the signature
	// is outside the hash), so Sign need not compute it again. Parsed
	// documents are never built.
	built bool
}

// Parse parses a receipt document: JSON as ParseJSON accepts it, holding
// an object of one of the two classes. An object with "kind" is an event
// receipt; otherwise one with "answerId" is an answer receipt.
//
// Parse checks the types of the fields that the hash and the accessors
// use. Both classes: receiptId and receiptHash are strings; signature is
// null, absent, or an object of exactly sigB64, kid, pubB64 and signedAt,
// all strings. Events: kind, tenantId, actor, subject and occurredAt are
// strings, agentId, inputHash and outputHash strings when present, details
// an object. Answers: answerId, mode and queryHash are strings; fusion,
// retrieval, selection and timings objects; evidence an array of objects
// whose sourceId, role and quoteHash are strings; modeRequested a string
// when present; snapshotId, parentSnapId and generatedAt strings or null.
// Other fields may hold any JSON value.
//
// Parse does not check the hash or the signature; Verify does. Every error
// is a *Failure with CodeMalformed.
func Parse(data []byte) (*Doc, error) {
	v, err := ParseJSON(data)
	if err != nil {
		return nil, fail(CodeMalformed, "%s", vaultcrux.ErrorMessage(err))
	}
	return newDoc(v)
}

// newDoc checks v as Parse does and wraps it, without copying.
func newDoc(v any) (*Doc, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fail(CodeMalformed, "receipt is not a JSON object")
	}
	var class string
	switch {
	case has(obj, "kind"):
		class = ClassEvent
	case has(obj, "answerId"):
		class = ClassAnswer
	default:
		return nil, fail(CodeMalformed, "receipt has neither kind nor answerId")
	}
	for _, k := range []string{"receiptId", "receiptHash"} {
		if err := requireString(obj, k); err != nil {
			return nil, err
		}
	}
	if err := checkSignature(obj["signature"]); err != nil {
		return nil, err
	}
	var err error
	if class == ClassEvent {
		err = checkEvent(obj)
	} else {
		err = checkAnswer(obj)
	}
	if err != nil {
		return nil, err
	}
	return &Doc{obj: obj, class: class}, nil
}

// checkEvent makes the event checks listed at Parse.
func checkEvent(obj map[string]any) error {
	for _, k := range []string{"kind", "tenantId", "actor", "subject", "occurredAt"} {
		if err := requireString(obj, k); err != nil {
			return err
		}
	}
	for _, k := range []string{"agentId", "inputHash", "outputHash"} {
		if _, ok := obj[k]; ok {
			if err := requireString(obj, k); err != nil {
				return err
			}
		}
	}
	return requireObject(obj, "details")
}

// checkAnswer makes the answer checks listed at Parse.
//
// modeRequested may not be null: the protocol defaults an absent one to
// mode, and readers disagree on whether a null one is absent, so null is
// refused rather than hashed one way or the other.
func checkAnswer(obj map[string]any) error {
	for _, k := range []string{"answerId", "mode", "queryHash"} {
		if err := requireString(obj, k); err != nil {
			return err
		}
	}
	for _, k := range []string{"fusion", "retrieval", "selection", "timings"} {
		if err := requireObject(obj, k); err != nil {
			return err
		}
	}
	if v, ok := obj["modeRequested"]; ok {
		if _, ok := v.(string); !ok {
			return fail(CodeMalformed, "modeRequested is not a string")
		}
	}
	for _, k := range []string{"snapshotId", "parentSnapId", "generatedAt"} {
		switch obj[k].(type) {
		case nil, string:
		default:
			return fail(CodeMalformed, "%s is not a string or null", k)
		}
	}
	ev, ok := obj["evidence"].([]any)
	if !ok {
		return fail(CodeMalformed, "evidence is missing or not an array")
	}
	for i, e := range ev {
		m, ok := e.(map[string]any)
		if !ok {
			return fail(CodeMalformed, "evidence[%d] is not an object", i)
		}
		for _, k := range []string{"sourceId", "role", "quoteHash"} {
			if _, ok := m[k].(string); !ok {
				return fail(CodeMalformed, "evidence[%d].%s is missing or not a string", i, k)
			}
		}
	}
	return nil
}

func checkSignature(v any) error {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return fail(CodeMalformed, "signature is not an object or null")
	}
	fields := []string{"sigB64", "kid", "pubB64", "signedAt"}
	for _, k := range fields {
		if _, ok := m[k].(string); !ok {
			return fail(CodeMalformed, "signature.%s is missing or not a string", k)
		}
	}
	if len(m) != len(fields) {
		// The signature object is outside the hash: extra members would be
		// unauthenticated text riding along with a valid receipt.
		return fail(CodeMalformed, "signature has members other than sigB64, kid, pubB64 and signedAt")
	}
	return nil
}

func has(obj map[string]any, k string) bool {
	_, ok := obj[k]
	return ok
}

func requireString(obj map[string]any, k string) error {
	if _, ok := obj[k].(string); !ok {
		return fail(CodeMalformed, "%s is missing or not a string", k)
	}
	return nil
}

func requireObject(obj map[string]any, k string) error {
	if _, ok := obj[k].(map[string]any); !ok {
		return fail(CodeMalformed, "%s is missing or not an object", k)
	}
	return nil
}

// Class returns ClassEvent or ClassAnswer.
func (d *Doc) Class() string { return d.class }

func (d *Doc) str(k string) string {
	s, _ := d.obj[k].(string)
	return s
}

// ID returns the receiptId.
func (d *Doc) ID() string { return d.str("receiptId") }

// ClaimedHash returns the receiptHash as the document states it.
func (d *Doc) ClaimedHash() string { return d.str("receiptHash") }

// Kind returns the kind of an event receipt, or "answer" for an answer
// receipt.
func (d *Doc) Kind() string {
	if d.class == ClassAnswer {
		return ClassAnswer
	}
	return d.str("kind")
}

// AnswerID returns the answerId of an answer receipt ("" for events).
func (d *Doc) AnswerID() string {
	if d.class != ClassAnswer {
		return ""
	}
	return d.str("answerId")
}

// SnapshotID returns the snapshotId, or "" when it is null or absent.
func (d *Doc) SnapshotID() string { return d.str("snapshotId") }

// ParentSnapID returns the parentSnapId, or "" when it is null or absent
// (the root of a chain). It is not covered by the receipt hash.
func (d *Doc) ParentSnapID() string { return d.str("parentSnapId") }

// Signature returns the signature object, or nil when it is null or
// absent.
func (d *Doc) Signature() *Signature {
	m, ok := d.obj["signature"].(map[string]any)
	if !ok {
		return nil
	}
	s := &Signature{}
	s.SigB64, _ = m["sigB64"].(string)
	s.KID, _ = m["kid"].(string)
	s.PubB64, _ = m["pubB64"].(string)
	s.SignedAt, _ = m["signedAt"].(string)
	return s
}

// ComputeHash returns the receipt hash of the document's content, as the
// class defines it (see the package documentation).
func (d *Doc) ComputeHash() (string, error) {
	var v map[string]any
	switch d.class {
	case ClassEvent:
		v = maps.Clone(d.obj)
		delete(v, "receiptHash")
		delete(v, "signature")
	case ClassAnswer:
		v = d.payload()
	default:
		return "", errors.New("receipt: Doc of no class")
	}
	c, err := canonical(v)
	if err != nil {
		return "", err
	}
	return Hash(c), nil
}

// AnswerPayload returns the CROWN canonical payload of an answer receipt,
// the value whose canonical JSON is hashed: exactly the keys answerId;
// citations, the [{id: sourceId, quoteHash}] of the evidence of role
// "support" in evidence order; counterfactual, the same for role
// "counterfactual" or null when there is none; fusion; generatedAt (null
// when absent); llmModel and llmRequestId when the receipt has them, null
// included; mode; modeRequested (mode when absent); queryHash; retrieval;
// selection; timings. A quoteHash of exactly 64 hex digits and no prefix
// is written with "sha256:" in front. The result is a copy.
func (d *Doc) AnswerPayload() (map[string]any, error) {
	if d.class != ClassAnswer {
		return nil, vaultcrux.E(vaultcrux.Invalid, "not an answer receipt")
	}
	return deepCopy(d.payload()).(map[string]any), nil
}

// payload builds the canonical payload of an answer Doc, sharing values
// with d.obj: callers must not modify it.
func (d *Doc) payload() map[string]any {
	citations := []any{}
	var counterfactual []any
	ev, _ := d.obj["evidence"].([]any)
	for _, e := range ev {
		m, _ := e.(map[string]any)
		qh, _ := m["quoteHash"].(string)
		c := map[string]any{"id": m["sourceId"], "quoteHash": prefixQuoteHash(qh)}
		switch m["role"] {
		case "support":
			citations = append(citations, c)
		case "counterfactual":
			counterfactual = append(counterfactual, c)
		}
	}
	p := map[string]any{
		"answerId":       d.obj["answerId"],
		"citations":      citations,
		"counterfactual": nil,
		"fusion":         d.obj["fusion"],
		"generatedAt":    d.obj["generatedAt"], // nil when absent
		"mode":           d.obj["mode"],
		"modeRequested":  d.obj["mode"],
		"queryHash":      d.obj["queryHash"],
		"retrieval":      d.obj["retrieval"],
		"selection":      d.obj["selection"],
		"timings":        d.obj["timings"],
	}
	if counterfactual != nil {
		p["counterfactual"] = counterfactual
	}
	if v, ok := d.obj["modeRequested"]; ok {
		p["modeRequested"] = v
	}
	for _, k := range []string{"llmModel", "llmRequestId"} {
		if v, ok := d.obj[k]; ok {
			p[k] = v
		}
	}
	return p
}

// prefixQuoteHash writes a bare 64-hex-digit quote hash (either case) as
// "sha256:<hash>"; anything else is left as it is.
func prefixQuoteHash(qh string) string {
	if len(qh) != 64 || strings.ContainsFunc(qh, func(r rune) bool {
		return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F')
	}) {
		return qh
	}
	return "sha256:" + qh
}

// WithSignature returns a copy of d with "signature" set to sig, or to
// null when sig is nil. d is unchanged.
func (d *Doc) WithSignature(sig *Signature) *Doc {
	obj := maps.Clone(d.obj)
	if sig == nil {
		obj["signature"] = nil
	} else {
		obj["signature"] = map[string]any{
			"sigB64":   sig.SigB64,
			"kid":      sig.KID,
			"pubB64":   sig.PubB64,
			"signedAt": sig.SignedAt,
		}
	}
	return &Doc{obj: obj, class: d.class, built: d.built}
}

// Bytes returns the canonical JSON of the whole receipt object: the form
// in which a receipt is stored and served.
func (d *Doc) Bytes() ([]byte, error) { return Canonical(d.obj) }

// Field returns a copy of the value of the named top-level field, as
// ParseJSON would return it, or nil when it is absent.
func (d *Doc) Field(name string) any { return deepCopy(d.obj[name]) }

// deepCopy copies the maps and slices of a JSON value.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		a := make([]any, len(v))
		for i, e := range v {
			a[i] = deepCopy(e)
		}
		return a
	default:
		return v
	}
}
