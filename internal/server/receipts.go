package server

import (
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/ident"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/translog"
)

// Receipt routes (contract §6). Receipts are served exactly as stored —
// canonical JSON, so that saving data verifies offline — with the
// signature of an attestation attached when the receipt was stored
// pending_signature. Their status comes in the x-receipt-status header.

// validReceiptRef accepts the ids this server issues (ULIDs) and nothing
// else, so a malformed id is a plain 404 that reaches no store.
func validReceiptRef(id string) bool { return ident.Valid(id) }

func receiptResponse(l *ledger.Loaded) (*response, error) {
	body, err := l.Doc.Bytes()
	if err != nil {
		return nil, err
	}
	return &response{data: json.RawMessage(body), headers: map[string]string{"X-Receipt-Status": l.Status}}, nil
}

// wantsCOSE reports whether the Accept header asks for application/cose
// (and not for JSON first).
func wantsCOSE(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/cose":
			return true
		case "application/json", "*/*", "application/*":
			return false
		}
	}
	return false
}

func (s *Server) handleGetReceipt(req *request) (*response, error) {
	id := req.http.PathValue("receiptId")
	if !validReceiptRef(id) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "receipt not found")
	}
	l, err := s.ledger.GetReceipt(req.ctx, req.principal.Tenant, id)
	if err != nil {
		return nil, err
	}
	if !wantsCOSE(req.http) {
		return receiptResponse(l)
	}
	if l.Doc.Signature() == nil {
		return nil, vaultcrux.E(vaultcrux.Conflict, "the receipt is pending_signature; its COSE form exists once it is signed")
	}
	b, err := s.ledger.EncodeCOSE(l.Doc)
	if err != nil {
		return nil, err
	}
	return &response{raw: &rendered{status: http.StatusOK, body: b, header: map[string]string{
		"Content-Type":     "application/cose",
		"X-Receipt-Status": l.Status,
	}}}, nil
}

func (s *Server) handleGetAnswerReceipt(req *request) (*response, error) {
	id := req.http.PathValue("answerId")
	if !validReceiptRef(id) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "answer receipt not found")
	}
	l, err := s.ledger.GetAnswerReceipt(req.ctx, req.principal.Tenant, id)
	if err != nil {
		return nil, err
	}
	return receiptResponse(l)
}

func (s *Server) handleProofpack(req *request) (*response, error) {
	id := req.http.PathValue("receiptId")
	if !validReceiptRef(id) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "receipt not found")
	}
	q := req.http.URL.Query()
	for k := range q {
		if k != "audience" {
			return nil, vaultcrux.Ef(vaultcrux.Invalid, "unknown query parameter %q", k)
		}
	}
	pp, err := s.ledger.Proofpack(req.ctx, req.principal.Tenant, id, q.Get("audience"))
	if err != nil {
		return nil, err
	}
	return &response{data: pp}, nil
}

func (s *Server) handleVerifyChain(req *request) (*response, error) {
	id := req.http.PathValue("answerId")
	if !validReceiptRef(id) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "answer receipt not found")
	}
	rep, err := s.ledger.VerifyChain(req.ctx, req.principal.Tenant, id)
	if err != nil {
		return nil, err
	}
	return &response{data: rep}, nil
}

type receiptItem struct {
	ReceiptID string          `json:"receiptId"`
	Kind      string          `json:"kind"`
	LogIndex  int64           `json:"logIndex"`
	Status    string          `json:"status"`
	CreatedAt string          `json:"createdAt"`
	Receipt   json.RawMessage `json:"receipt"`
}

func (s *Server) handleListReceipts(req *request) (*response, error) {
	q := req.http.URL.Query()
	for k := range q {
		switch k {
		case "kind", "since", "limit", "cursor":
		default:
			return nil, vaultcrux.Ef(vaultcrux.Invalid, "unknown query parameter %q", k)
		}
	}
	limit, after, err := pageParams(req.http)
	if err != nil {
		return nil, err
	}
	f := store.ReceiptFilter{Kind: q.Get("kind"), BeforeIndex: -1, Limit: limit + 1}
	if len(f.Kind) > 100 {
		return nil, vaultcrux.E(vaultcrux.Invalid, "kind is too long")
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return nil, vaultcrux.E(vaultcrux.Invalid, "since must be an RFC 3339 time")
		}
		f.Since = t
	}
	if after != "" {
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil || n < 0 || strconv.FormatInt(n, 10) != after {
			return nil, vaultcrux.E(vaultcrux.Invalid, "invalid cursor")
		}
		f.BeforeIndex = n
	}
	var items []receiptItem
	err = req.tenant(s).Tx(req.ctx, func(tx store.TenantTx) error {
		recs, err := tx.ListReceipts(f)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			l, err := ledger.Load(tx, rec)
			if err != nil {
				return err
			}
			body, err := l.Doc.Bytes()
			if err != nil {
				return err
			}
			items = append(items, receiptItem{
				ReceiptID: rec.ID, Kind: rec.Kind, LogIndex: rec.LogIndex, Status: l.Status,
				CreatedAt: vaultcrux.FormatTime(rec.CreatedAt), Receipt: body,
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var next *string
	if len(items) > limit {
		items = items[:limit]
		c := encodeCursor(strconv.FormatInt(items[limit-1].LogIndex, 10))
		next = &c
	}
	if items == nil {
		items = []receiptItem{}
	}
	return &response{data: map[string]any{"items": items, "nextCursor": next}}, nil
}

// checkpointView is the answer of /v1/log/checkpoint. keys lets a client
// verify it on the spot; an auditor should pin keys of its own.
type checkpointView struct {
	TreeSize   int64             `json:"treeSize"`
	RootHash   string            `json:"rootHash"`
	Timestamp  string            `json:"timestamp"`
	Origin     string            `json:"origin"`
	Checkpoint string            `json:"checkpoint"`
	Keys       []receipt.KeyInfo `json:"keys"`
}

func (s *Server) handleCheckpoint(req *request) (*response, error) {
	cp, err := s.ledger.Checkpoint(req.ctx, req.principal.Tenant)
	if err != nil {
		return nil, err
	}
	keys, err := s.ledger.KeyList(req.ctx)
	if err != nil {
		return nil, err
	}
	return &response{data: checkpointView{
		TreeSize:   cp.Size,
		RootHash:   base64.StdEncoding.EncodeToString(cp.Root),
		Timestamp:  vaultcrux.FormatTime(cp.CreatedAt),
		Origin:     translog.Origin(string(req.principal.Tenant)),
		Checkpoint: string(cp.Note),
		Keys:       keys,
	}}, nil
}

func (s *Server) handleConsistency(req *request) (*response, error) {
	q := req.http.URL.Query()
	parse := func(name string) (int64, error) {
		v := q.Get(name)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != v {
			return 0, vaultcrux.Ef(vaultcrux.Invalid, "%s must be a tree size (a decimal integer)", name)
		}
		return n, nil
	}
	for k := range q {
		if k != "from" && k != "to" {
			return nil, vaultcrux.Ef(vaultcrux.Invalid, "unknown query parameter %q", k)
		}
	}
	from, err := parse("from")
	if err != nil {
		return nil, err
	}
	to, err := parse("to")
	if err != nil {
		return nil, err
	}
	p, err := s.ledger.Consistency(req.ctx, req.principal.Tenant, from, to)
	if err != nil {
		return nil, err
	}
	return &response{data: p}, nil
}

func (s *Server) handleSigningKeys(req *request) (*response, error) {
	keys, err := s.ledger.KeyList(req.ctx)
	if err != nil {
		return nil, err
	}
	return &response{data: map[string]any{"items": keys}}, nil
}
