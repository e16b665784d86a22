package receipt

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/veraison/go-cose"

	"github.com/vaultcrux/vaultcrux/internal/translog"
)

// MaxDocument bounds what VerifyDocument reads: a proofpack with a full
// chain of 50 answer receipts is far below it.
const MaxDocument = 16 << 20

// VerifyDocument verifies one document offline, recognising its form:
// a receipt, a proofpack, a chain (a JSON array of answer receipts, each
// followed by its parent), a checkpoint (the signed note, or the answer of
// /v1/log/checkpoint), a consistency proof (the answer of
// /v1/log/consistency) or a COSE_Sign1 receipt. An API envelope
// {"ok":true,"data":…} is unwrapped first. trusted, when not nil, is the
// verifier's own key list; otherwise the document's keys, or a receipt's
// own public key, are used, and the report says so.
func VerifyDocument(data []byte, trusted KeySet) *Report {
	if len(data) > MaxDocument {
		return failed("unknown", CodeMalformed, "document larger than %d bytes", MaxDocument)
	}
	if len(data) > 0 && (data[0] == 0xd2 || data[0] == 0x84) {
		return verifyCOSE(data, trusted)
	}
	if bytes.HasPrefix(data, []byte("vaultcrux/")) {
		return verifyCheckpointNote(data, nil, trusted, nil)
	}
	v, err := ParseJSON(data)
	if err != nil {
		return failed("unknown", CodeMalformed, "%v", err)
	}
	if m, ok := v.(map[string]any); ok {
		if e, ok := m["error"].(map[string]any); ok && m["ok"] == false {
			return failed("unknown", CodeReceiptMissing, "the file is an API error answer (%v), not a document", e["code"])
		}
		if inner, ok := m["data"]; ok && m["ok"] == true {
			data, err = Canonical(inner)
			if err != nil {
				return failed("unknown", CodeMalformed, "%v", err)
			}
			v = inner
		}
	}
	switch x := v.(type) {
	case []any:
		return verifyChainDoc(x, trusted)
	case map[string]any:
		switch {
		case x["inclusion"] != nil && x["receipt"] != nil:
			rep, err := VerifyProofpack(data, trusted)
			if err != nil {
				return failed("proofpack", failCode(err), "%v", err)
			}
			return rep
		case x["receiptHash"] != nil:
			return verifyReceiptDoc(data, trusted)
		case x["checkpoint"] != nil && x["treeSize"] != nil:
			note, _ := x["checkpoint"].(string)
			rep := verifyCheckpointNote([]byte(note), x, trusted, x["keys"])
			return rep
		case x["proof"] != nil && x["fromRoot"] != nil:
			return verifyConsistencyDoc(data, trusted)
		}
	}
	return failed("unknown", CodeMalformed, "not a receipt, proofpack, chain, checkpoint or consistency proof")
}

func failed(kind, code, format string, args ...any) *Report {
	r := &Report{Kind: kind, Integrity: Integrity{Breaks: []Break{}}}
	r.fail(code, format, args...)
	return r
}

// selfKeys is the key set of a lone receipt verified without trusted
// keys: its own public key under its own kid.
func selfKeys(d *Doc) KeySet {
	sig := d.Signature()
	if sig == nil {
		return KeySet{}
	}
	return KeySet{sig.KID: {KID: sig.KID, PubB64: sig.PubB64, Status: "active"}}
}

func verifyReceiptDoc(data []byte, trusted KeySet) *Report {
	rep := &Report{Kind: "receipt", Integrity: Integrity{Breaks: []Break{}}, KeysFrom: "trusted"}
	d, err := Parse(data)
	if err != nil {
		rep.failErr("receipt", err)
		return rep
	}
	rep.ReceiptID = d.ID()
	keys := trusted
	if keys == nil {
		keys, rep.KeysFrom = selfKeys(d), "document"
	}
	computed, herr := d.ComputeHash()
	rep.Integrity.HashOk = herr == nil && computed == d.ClaimedHash()
	if err := Verify(d, keys); err != nil {
		rep.failErr("receipt "+d.ID(), err)
	} else {
		rep.Integrity.SignatureOk = true
	}
	rep.OK = len(rep.Failures) == 0
	return rep
}

func verifyCOSE(data []byte, trusted KeySet) *Report {
	rep := &Report{Kind: "cose", Integrity: Integrity{Breaks: []Break{}}, KeysFrom: "trusted"}
	keys := trusted
	if keys == nil {
		// Without trusted keys, the only key on offer is the one named in
		// the payload receipt's own signature.
		payloadKeys, err := coseSelfKeys(data)
		if err != nil {
			rep.failErr("COSE", err)
			return rep
		}
		keys, rep.KeysFrom = payloadKeys, "document"
	}
	d, err := DecodeCOSE(data, keys)
	if err != nil {
		rep.failErr("COSE envelope", err)
		return rep
	}
	rep.ReceiptID = d.ID()
	rep.Integrity.SignatureOk = true
	inner := verifyReceiptDocParsed(d, keys)
	rep.Failures = append(rep.Failures, inner.Failures...)
	rep.Integrity.HashOk = inner.Integrity.HashOk
	rep.OK = len(rep.Failures) == 0
	return rep
}

func verifyReceiptDocParsed(d *Doc, keys KeySet) *Report {
	b, err := d.Bytes()
	if err != nil {
		return failed("receipt", CodeMalformed, "%v", err)
	}
	return verifyReceiptDoc(b, keys)
}

func verifyChainDoc(items []any, trusted KeySet) *Report {
	rep := &Report{Kind: "chain", Integrity: Integrity{Breaks: []Break{}}, KeysFrom: "trusted"}
	if len(items) == 0 {
		rep.fail(CodeReceiptMissing, "empty chain")
		return rep
	}
	var docs []*Doc
	keys := trusted
	for i, it := range items {
		b, err := Canonical(it)
		if err != nil {
			rep.fail(CodeMalformed, "chain[%d]: %v", i, err)
			return rep
		}
		d, err := Parse(b)
		if err != nil {
			rep.fail(failCode(err), "chain[%d]: %v", i, err)
			return rep
		}
		docs = append(docs, d)
	}
	if keys == nil {
		keys, rep.KeysFrom = KeySet{}, "document"
		for _, d := range docs {
			for k, v := range selfKeys(d) {
				keys[k] = v
			}
		}
	}
	rep.ReceiptID = docs[0].ID()
	rep.Integrity.Breaks = VerifyChain(docs, keys)
	if rep.Integrity.Breaks == nil {
		rep.Integrity.Breaks = []Break{}
	}
	for _, b := range rep.Integrity.Breaks {
		code := b.Reason
		if code != CodeChainBreak && code != CodeKeyRevoked {
			code = CodeChainBreak
		}
		rep.fail(code, "at %s: %s", b.SnapID, b.Reason)
	}
	rep.Integrity.ChainOk = len(rep.Integrity.Breaks) == 0
	rep.Integrity.HashOk, rep.Integrity.SignatureOk = rep.Integrity.ChainOk, rep.Integrity.ChainOk
	rep.OK = len(rep.Failures) == 0
	return rep
}

// keysFromValue reads a key list as the API gives it: an array of KeyInfo.
func keysFromValue(v any) (KeySet, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var list []KeyInfo
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, err
	}
	ks := KeySet{}
	for _, k := range list {
		ks[k.KID] = k
	}
	return ks, nil
}

func pubKeys(keys KeySet) map[string]ed25519.PublicKey {
	out := map[string]ed25519.PublicKey{}
	for kid, k := range keys {
		if k.Status == "revoked" {
			continue
		}
		if pub, err := keys.Public(kid); err == nil {
			out[kid] = pub
		}
	}
	return out
}

// verifyCheckpointNote opens a signed checkpoint. view, when not nil, is
// the /v1/log/checkpoint answer around it: its summary fields (origin,
// treeSize, rootHash, timestamp) are unsigned, so each one present must
// equal what the note signs, or a reader of the summary would be misled.
func verifyCheckpointNote(note []byte, view map[string]any, trusted KeySet, docKeys any) *Report {
	rep := &Report{Kind: "checkpoint", Integrity: Integrity{Breaks: []Break{}}, KeysFrom: "trusted"}
	keys := trusted
	if keys == nil {
		if docKeys == nil {
			rep.fail(CodeCheckpointSignatureMismatch, "no keys to check the checkpoint with: pass --keys")
			return rep
		}
		ks, err := keysFromValue(docKeys)
		if err != nil {
			rep.fail(CodeMalformed, "keys: %v", err)
			return rep
		}
		keys, rep.KeysFrom = ks, "document"
	}
	cp, _, err := translog.OpenCheckpoint(note, pubKeys(keys))
	if err != nil {
		rep.fail(CodeCheckpointSignatureMismatch, "checkpoint: %v", err)
		return rep
	}
	if view != nil {
		want := map[string]string{
			"origin":    cp.Origin,
			"treeSize":  fmt.Sprint(cp.Size),
			"rootHash":  base64.StdEncoding.EncodeToString(cp.Root[:]),
			"timestamp": cp.Time.UTC().Format("2006-01-02T15:04:05.000Z"),
		}
		for k, w := range want {
			v, ok := view[k]
			if !ok {
				continue
			}
			if got := fmt.Sprint(v); got != w {
				rep.fail(CodeCheckpointSignatureMismatch, "the answer says %s %s, the signed checkpoint says %s", k, got, w)
			}
		}
	}
	rep.Integrity.SignatureOk = len(rep.Failures) == 0
	rep.OK = len(rep.Failures) == 0
	return rep
}

type consistencyDoc struct {
	From           int64    `json:"from"`
	To             int64    `json:"to"`
	FromRoot       string   `json:"fromRoot"`
	ToRoot         string   `json:"toRoot"`
	Proof          []string `json:"proof"`
	FromCheckpoint *string  `json:"fromCheckpoint"`
	ToCheckpoint   *string  `json:"toCheckpoint"`
}

func decodeRoot(s string) (translog.Hash, error) {
	var h translog.Hash
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("root is not a base64 SHA-256 hash")
	}
	copy(h[:], b)
	return h, nil
}

// verifyConsistencyDoc checks that the log at size to extends the log at
// size from; when the document carries the signed checkpoints of those
// sizes (and keys are at hand), it also checks that the roots are the
// signed ones: a history rewritten between two checkpoints fails here.
func verifyConsistencyDoc(data []byte, trusted KeySet) *Report {
	rep := &Report{Kind: "consistency", Integrity: Integrity{Breaks: []Break{}}, KeysFrom: "trusted"}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c consistencyDoc
	if err := dec.Decode(&c); err != nil {
		rep.fail(CodeMalformed, "consistency proof: %v", err)
		return rep
	}
	fromRoot, err1 := decodeRoot(c.FromRoot)
	toRoot, err2 := decodeRoot(c.ToRoot)
	proof, err3 := translog.DecodeProof(c.Proof)
	if err1 != nil || err2 != nil || err3 != nil {
		rep.fail(CodeMalformed, "consistency proof: bad root or proof encoding")
		return rep
	}
	if err := translog.CheckConsistency(proof, c.To, toRoot, c.From, fromRoot); err != nil {
		rep.fail(CodeInclusionFailed, "the log at size %d does not extend the log at size %d: %v", c.To, c.From, err)
	}
	for _, side := range []struct {
		note *string
		size int64
		root translog.Hash
	}{{c.FromCheckpoint, c.From, fromRoot}, {c.ToCheckpoint, c.To, toRoot}} {
		if side.note == nil {
			continue
		}
		if trusted == nil {
			rep.fail(CodeCheckpointSignatureMismatch, "checkpoint of size %d present but no keys to check it with: pass --keys", side.size)
			continue
		}
		cp, _, err := translog.OpenCheckpoint([]byte(*side.note), pubKeys(trusted))
		switch {
		case err != nil:
			rep.fail(CodeCheckpointSignatureMismatch, "checkpoint of size %d: %v", side.size, err)
		case cp.Size != side.size || cp.Root != side.root:
			rep.fail(CodeInclusionFailed, "checkpoint of size %d signs a different tree than the proof's", side.size)
		}
	}
	rep.Integrity.InclusionOk = len(rep.Failures) == 0
	rep.OK = len(rep.Failures) == 0
	return rep
}

// ParseKeyList reads a trusted key list: the answer of
// GET /v1/receipts/signing-keys (with or without its envelope), or a bare
// JSON array of keys.
func ParseKeyList(data []byte) (KeySet, error) {
	v, err := ParseJSON(data)
	if err != nil {
		return nil, err
	}
	if m, ok := v.(map[string]any); ok {
		if inner, ok := m["data"]; ok {
			v = inner
		}
	}
	if m, ok := v.(map[string]any); ok {
		v = m["items"]
	}
	if _, ok := v.([]any); !ok {
		return nil, fmt.Errorf("not a list of signing keys")
	}
	ks, err := keysFromValue(v)
	if err != nil {
		return nil, err
	}
	for kid := range ks {
		if _, err := ks.Public(kid); err != nil {
			return nil, fmt.Errorf("key %s: %v", kid, err)
		}
	}
	if len(ks) == 0 {
		return nil, fmt.Errorf("no signing keys in the list")
	}
	return ks, nil
}

// coseSelfKeys returns the key of the signature inside a COSE message's
// payload receipt, read without verifying anything: the key to try when
// the user gave none.
func coseSelfKeys(data []byte) (KeySet, error) {
	if len(data) > maxCOSELen {
		return nil, fail(CodeMalformed, "COSE input larger than 1 MiB")
	}
	var msg cose.Sign1Message
	var err error
	if data[0] == 0xd2 {
		err = msg.UnmarshalCBOR(data)
	} else {
		err = (*cose.UntaggedSign1Message)(&msg).UnmarshalCBOR(data)
	}
	if err != nil || msg.Payload == nil {
		return nil, fail(CodeMalformed, "not a valid COSE_Sign1 message")
	}
	v, err := decodePayload(msg.Payload)
	if err != nil {
		return nil, err
	}
	d, err := newDoc(v)
	if err != nil {
		return nil, err
	}
	return selfKeys(d), nil
}
