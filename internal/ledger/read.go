package ledger

import (
	"context"
	"encoding/base64"
	"encoding/json"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/translog"
)

// Receipt statuses as the API shows them.
const (
	StatusSigned   = "signed"
	StatusPending  = "pending_signature"
	StatusAttested = "attested" // stored pending, signed since by attestation
)

// MaxChain is how many parent receipts a chain walk follows.
const MaxChain = 50

// Loaded is a stored receipt with its signature resolved.
type Loaded struct {
	Record *store.ReceiptRecord
	Doc    *receipt.Doc // carries the attestation's signature when attested
	Status string
}

// Load parses a stored receipt and, when it was stored pending_signature,
// attaches the signature of its attestation if there is one yet.
func Load(tx store.TenantTx, rec *store.ReceiptRecord) (*Loaded, error) {
	doc, err := receipt.Parse(rec.Body)
	if err != nil {
		return nil, err
	}
	l := &Loaded{Record: rec, Doc: doc, Status: StatusSigned}
	if !rec.Pending {
		return l, nil
	}
	l.Status = StatusPending
	att, err := tx.GetAttestation(rec.ID)
	if vaultcrux.ErrorKind(err) == vaultcrux.NotFound {
		return l, nil
	}
	if err != nil {
		return nil, err
	}
	var sig receipt.Signature
	if err := json.Unmarshal(att.Signature, &sig); err != nil {
		return nil, err
	}
	l.Doc, l.Status = doc.WithSignature(&sig), StatusAttested
	return l, nil
}

// notFound is the one answer for a receipt that does not exist in the
// caller's tenant, whether or not it exists in another.
func notFound(what string) error { return vaultcrux.E(vaultcrux.NotFound, what+" not found") }

// GetReceipt loads receipt id of tenant.
func (l *Ledger) GetReceipt(ctx context.Context, tenant vaultcrux.TenantID, id string) (*Loaded, error) {
	return l.load(ctx, tenant, "receipt", func(tx store.TenantTx) (*store.ReceiptRecord, error) { return tx.GetReceipt(id) })
}

// GetAnswerReceipt loads the receipt of answer answerID.
func (l *Ledger) GetAnswerReceipt(ctx context.Context, tenant vaultcrux.TenantID, answerID string) (*Loaded, error) {
	return l.load(ctx, tenant, "answer receipt", func(tx store.TenantTx) (*store.ReceiptRecord, error) { return tx.GetReceiptByAnswer(answerID) })
}

func (l *Ledger) load(ctx context.Context, tenant vaultcrux.TenantID, what string, find func(store.TenantTx) (*store.ReceiptRecord, error)) (out *Loaded, err error) {
	err = l.st.ForTenant(tenant).Tx(ctx, func(tx store.TenantTx) error {
		rec, err := find(tx)
		if vaultcrux.ErrorKind(err) == vaultcrux.NotFound {
			return notFound(what)
		}
		if err != nil {
			return err
		}
		out, err = Load(tx, rec)
		return err
	})
	return out, err
}

// chain walks from an answer receipt to its parents, at most MaxChain of
// them. A parent that cannot be found ends the walk with a break.
func chain(tx store.TenantTx, start *Loaded) (parents []*Loaded, breaks []receipt.Break, err error) {
	cur := start
	for len(parents) < MaxChain {
		parent := cur.Doc.ParentSnapID()
		if parent == "" {
			return parents, breaks, nil
		}
		rec, err := tx.GetReceiptBySnapshot(parent)
		if vaultcrux.ErrorKind(err) == vaultcrux.NotFound {
			return parents, append(breaks, receipt.Break{SnapID: parent, Reason: receipt.CodeReceiptMissing}), nil
		}
		if err != nil {
			return nil, nil, err
		}
		p, err := Load(tx, rec)
		if err != nil {
			return nil, nil, err
		}
		parents = append(parents, p)
		cur = p
	}
	return parents, breaks, nil
}

// ChainReport is the answer of verify-chain.
type ChainReport struct {
	Valid  bool            `json:"valid"`
	Depth  int             `json:"depth"`
	Breaks []receipt.Break `json:"breaks"`
	// Stale is set when evidence cited along the chain has changed since
	// (each such receipt also has a stale_lineage break); Valid ignores it.
	Stale bool `json:"stale"`
}

// VerifyChain checks the answer receipt answerID and up to MaxChain
// parents: every hash, every signature against the registered keys, and
// every link.
func (l *Ledger) VerifyChain(ctx context.Context, tenant vaultcrux.TenantID, answerID string) (rep *ChainReport, err error) {
	keys, err := l.KeySet(ctx)
	if err != nil {
		return nil, err
	}
	err = l.st.ForTenant(tenant).Tx(ctx, func(tx store.TenantTx) error {
		rec, err := tx.GetReceiptByAnswer(answerID)
		if vaultcrux.ErrorKind(err) == vaultcrux.NotFound {
			return notFound("answer receipt")
		}
		if err != nil {
			return err
		}
		start, err := Load(tx, rec)
		if err != nil {
			return err
		}
		parents, missing, err := chain(tx, start)
		if err != nil {
			return err
		}
		docs := []*receipt.Doc{start.Doc}
		for _, p := range parents {
			docs = append(docs, p.Doc)
		}
		breaks := receipt.VerifyChain(docs, keys)
		breaks = append(breaks, missing...)
		rep = &ChainReport{Valid: len(breaks) == 0, Depth: len(parents), Breaks: breaks}
		// Staleness does not make a chain invalid: the receipts still
		// prove what was seen; it says the evidence has changed since.
		for _, d := range docs {
			stale, err := l.stale(tx, d)
			if err != nil {
				return err
			}
			if stale {
				rep.Stale = true
				rep.Breaks = append(rep.Breaks, receipt.Break{SnapID: d.SnapshotID(), Reason: receipt.CodeStaleLineage})
			}
		}
		if rep.Breaks == nil {
			rep.Breaks = []receipt.Break{}
		}
		return nil
	})
	return rep, err
}

// KeySet returns every registered signing key with its status.
func (l *Ledger) KeySet(ctx context.Context) (receipt.KeySet, error) {
	keys, err := List(ctx, l.st)
	if err != nil {
		return nil, err
	}
	ks := make(receipt.KeySet, len(keys))
	for _, k := range keys {
		ks[k.KID] = KeyInfo(k)
	}
	return ks, nil
}

// KeyList returns every registered signing key, oldest version first.
func (l *Ledger) KeyList(ctx context.Context) ([]receipt.KeyInfo, error) {
	keys, err := List(ctx, l.st)
	if err != nil {
		return nil, err
	}
	out := make([]receipt.KeyInfo, len(keys))
	for i, k := range keys {
		out[i] = KeyInfo(k)
	}
	receipt.SortKeys(out)
	return out, nil
}

// KeyInfo is the public view of a registered signing key.
func KeyInfo(k *store.SigningKey) receipt.KeyInfo {
	ki := receipt.KeyInfo{
		KID:       k.KID,
		PubB64:    base64.StdEncoding.EncodeToString(k.Public),
		Status:    k.Status,
		CreatedAt: vaultcrux.FormatTime(k.CreatedAt),
	}
	if k.RetiredAt != nil {
		ki.RetiredAt = vaultcrux.FormatTime(*k.RetiredAt)
	}
	if k.RevokedAt != nil {
		ki.RevokedAt = vaultcrux.FormatTime(*k.RevokedAt)
	}
	return ki
}

// Proofpack assembles the proofpack of receipt id: the receipt, its chain,
// its inclusion proof against a signed checkpoint that covers it (signed
// now if the latest does not), and the keys; then it verifies the pack
// exactly as an offline verifier would and records the result in
// integrity. audience "external_share" redacts what the signatures do not
// cover.
func (l *Ledger) Proofpack(ctx context.Context, tenant vaultcrux.TenantID, id, audience string) (pp *receipt.Proofpack, err error) {
	defer vaultcrux.Wrap(&err, "ledger.Proofpack")
	if audience != "" && audience != receipt.AudienceExternal {
		return nil, vaultcrux.E(vaultcrux.Invalid, "audience must be external_share or absent")
	}
	keyList, err := l.KeyList(ctx)
	if err != nil {
		return nil, err
	}
	keys := receipt.KeySet{}
	for _, k := range keyList {
		keys[k.KID] = k
	}
	// The checkpoint first: it covers every receipt stored before it.
	var rec *store.ReceiptRecord
	var stale bool
	err = l.st.ForTenant(tenant).Tx(ctx, func(tx store.TenantTx) error {
		rec, err = tx.GetReceipt(id)
		if vaultcrux.ErrorKind(err) == vaultcrux.NotFound {
			return notFound("receipt")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	cp, err := l.Checkpoint(ctx, tenant)
	if err != nil {
		return nil, err
	}
	pp = &receipt.Proofpack{
		Version:     receipt.ProofpackVersion,
		GeneratedAt: vaultcrux.FormatTime(l.Now()),
		TenantID:    string(tenant),
		Audience:    audience,
		Checkpoint:  string(cp.Note),
		Evidence:    []map[string]any{},
		Chain:       []json.RawMessage{},
		Keys:        keyList,
	}
	err = l.st.ForTenant(tenant).Tx(ctx, func(tx store.TenantTx) error {
		start, err := Load(tx, rec)
		if err != nil {
			return err
		}
		parents, missing, err := chain(tx, start)
		if err != nil {
			return err
		}
		pp.Integrity.Breaks = missing
		body, err := receipt.ForAudience(start.Doc, audience)
		if err != nil {
			return err
		}
		pp.Receipt = body
		pp.Evidence = receipt.EvidenceFor(start.Doc, audience)
		for _, p := range parents {
			b, err := receipt.ForAudience(p.Doc, audience)
			if err != nil {
				return err
			}
			pp.Chain = append(pp.Chain, b)
		}
		proof, err := translog.ProveInclusion(rec.LogIndex, cp.Size, tx.LogHashes)
		if err != nil {
			return err
		}
		pp.Inclusion = receipt.Inclusion{LogIndex: rec.LogIndex, TreeSize: cp.Size, Proof: translog.EncodeProof(proof)}
		stale, err = l.stale(tx, start.Doc)
		return err
	})
	if err != nil {
		return nil, err
	}
	missing := pp.Integrity.Breaks
	pp.Integrity = receipt.CheckProofpack(pp, keys).Integrity
	pp.Integrity.Breaks = append(pp.Integrity.Breaks, missing...)
	pp.Integrity.Stale = stale
	if len(missing) > 0 {
		pp.Integrity.ChainOk = false
	}
	return pp, nil
}

// ConsistencyProof is the answer of /v1/log/consistency.
type ConsistencyProof struct {
	From           int64    `json:"from"`
	To             int64    `json:"to"`
	FromRoot       string   `json:"fromRoot"`
	ToRoot         string   `json:"toRoot"`
	Proof          []string `json:"proof"`
	FromCheckpoint *string  `json:"fromCheckpoint"` // the signed checkpoint of that size, if one was issued
	ToCheckpoint   *string  `json:"toCheckpoint"`
}

// Consistency proves that the log at size to extends the log at size
// from (1 <= from <= to <= current size).
func (l *Ledger) Consistency(ctx context.Context, tenant vaultcrux.TenantID, from, to int64) (out *ConsistencyProof, err error) {
	defer vaultcrux.Wrap(&err, "ledger.Consistency")
	err = l.st.ForTenant(tenant).Tx(ctx, func(tx store.TenantTx) error {
		size, err := tx.LogHead()
		if err != nil {
			return err
		}
		if from < 1 || from > to || to > size {
			return vaultcrux.Ef(vaultcrux.Invalid, "need 1 <= from <= to <= %d (the log size)", size)
		}
		r := translog.HashReader(tx.LogHashes)
		fromRoot, err := tlog.TreeHash(from, r)
		if err != nil {
			return err
		}
		toRoot, err := tlog.TreeHash(to, r)
		if err != nil {
			return err
		}
		proof, err := translog.ProveConsistency(from, to, tx.LogHashes)
		if err != nil {
			return err
		}
		out = &ConsistencyProof{
			From: from, To: to,
			FromRoot: base64.StdEncoding.EncodeToString(fromRoot[:]),
			ToRoot:   base64.StdEncoding.EncodeToString(toRoot[:]),
			Proof:    translog.EncodeProof(proof),
		}
		for _, c := range []struct {
			size int64
			dst  **string
		}{{from, &out.FromCheckpoint}, {to, &out.ToCheckpoint}} {
			cp, err := tx.GetCheckpoint(c.size)
			if vaultcrux.ErrorKind(err) == vaultcrux.NotFound {
				continue
			}
			if err != nil {
				return err
			}
			note := string(cp.Note)
			*c.dst = &note
		}
		return nil
	})
	return out, err
}

// EncodeCOSE returns the COSE_Sign1 form of d, signed now by the active
// signing key (which may be newer than the key of d's own signature).
func (l *Ledger) EncodeCOSE(d *receipt.Doc) ([]byte, error) {
	key, err := l.keys.Current()
	if err != nil {
		return nil, vaultcrux.E(vaultcrux.Unavailable, "no signing key is available for the COSE form")
	}
	return receipt.EncodeCOSE(d, key)
}

// Lineage decides whether an answer receipt's cited evidence has changed
// since it was issued (stale_lineage). The evidence plane provides it.
type Lineage func(tx store.TenantTx, d *receipt.Doc) (bool, error)

// SetLineage installs the stale-lineage check of verify-chain and
// proofpacks. Without one nothing is reported stale.
func (l *Ledger) SetLineage(fn Lineage) {
	l.lineageMu.Lock()
	l.lineage = fn
	l.lineageMu.Unlock()
}

func (l *Ledger) stale(tx store.TenantTx, d *receipt.Doc) (bool, error) {
	l.lineageMu.RLock()
	fn := l.lineage
	l.lineageMu.RUnlock()
	if fn == nil {
		return false, nil
	}
	return fn(tx, d)
}
