package server

import (
	"net/http"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/authz"
	"github.com/vaultcrux/vaultcrux/internal/evidence"
	"github.com/vaultcrux/vaultcrux/internal/gate"
)

// evidenceRoutes are the evidence plane's routes (contract §5) and the
// tenant key operations.
func (s *Server) evidenceRoutes() []route {
	return []route{
		{method: "POST", path: "/v1/ingest", perm: authz.Ingest, idem: idemRequired, body: bodyIngest, tool: gate.ToolIngestDocument, handler: s.handleIngest},
		{method: "GET", path: "/v1/ingest/{id}", perm: authz.Read, handler: s.handleGetIngest},
		{method: "DELETE", path: "/v1/documents/{docId}", perm: authz.Ingest, idem: idemRequired, tool: gate.ToolDeleteDocument, handler: s.handleDeleteDocument},
		{method: "POST", path: "/v1/retrieve", perm: authz.Retrieve, idem: idemOptional, body: bodyJSON, sealed: true, handler: s.handleRetrieve},
		{method: "POST", path: "/v1/citations", perm: authz.Retrieve, idem: idemOptional, body: bodyJSON, handler: s.handleCitations},
		{method: "POST", path: "/v1/tenant/rotate-key", perm: authz.KeysRotate, idem: idemRequired, tool: gate.ToolRotateTenant, handler: s.handleRotateTenantKey},
		{method: "POST", path: "/v1/tenant/crypto-shred", perm: authz.KeysRotate, idem: idemRequired, body: bodyJSON, tool: gate.ToolCryptoShred, handler: s.handleShred},
	}
}

type ingestBody struct {
	tenantRef
	evidence.IngestRequest
}

func (s *Server) handleIngest(req *request) (*response, error) {
	var in ingestBody
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	job, err := s.evidence.Submit(req.ctx, *req.principal, &in.IngestRequest)
	if err != nil {
		return nil, err
	}
	return &response{status: http.StatusAccepted, data: map[string]any{
		"ingestId": job.IngestID, "docId": job.DocID, "status": job.Status,
		"source": job.Source, "trust": job.Trust,
	}}, nil
}

func (s *Server) handleGetIngest(req *request) (*response, error) {
	id := req.http.PathValue("id")
	if !validToken(id, 64) {
		return nil, vaultcrux.E(vaultcrux.NotFound, "ingest job not found")
	}
	job, err := s.evidence.GetJob(req.ctx, req.principal.Tenant, id)
	if err != nil {
		return nil, err
	}
	return &response{data: job}, nil
}

func (s *Server) handleDeleteDocument(req *request) (*response, error) {
	res, err := s.evidence.Delete(req.ctx, *req.principal, req.http.PathValue("docId"))
	if err != nil {
		return nil, err
	}
	return &response{data: res, receiptID: res.ReceiptID}, nil
}

type retrieveBody struct {
	tenantRef
	evidence.RetrieveRequest
}

func (s *Server) handleRetrieve(req *request) (*response, error) {
	var in retrieveBody
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if err := s.readGuard(req, gate.ToolQueryVault); err != nil {
		return nil, err
	}
	out, err := s.evidence.Retrieve(req.ctx, *req.principal, &in.RetrieveRequest)
	if err != nil {
		return nil, err
	}
	// What the session read taints what it does next.
	untrusted := false
	for _, r := range out.Results {
		if r.Taint != "trusted" {
			untrusted = true
			break
		}
	}
	if err := s.gate.NoteRead(req.ctx, *req.principal, untrusted, out.ReceiptID); err != nil {
		return nil, err
	}
	return &response{data: out, receiptID: out.ReceiptID}, nil
}

type citationsBody struct {
	tenantRef
	evidence.CitationsRequest
}

func (s *Server) handleCitations(req *request) (*response, error) {
	var in citationsBody
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if err := s.readGuard(req, gate.ToolCite); err != nil {
		return nil, err
	}
	out, err := s.evidence.Citations(req.ctx, *req.principal, &in.CitationsRequest)
	if err != nil {
		return nil, err
	}
	return &response{data: out, receiptID: out.ReceiptID}, nil
}

func (s *Server) handleRotateTenantKey(req *request) (*response, error) {
	out, err := s.evidence.RotateTenantKey(req.ctx, *req.principal, req.principal.Tenant)
	if err != nil {
		return nil, err
	}
	return &response{data: out, receiptID: out.ReceiptID}, nil
}

type shredBody struct {
	tenantRef
	// Confirm must repeat the tenant id: shredding cannot be undone.
	Confirm string `json:"confirm"`
}

func (s *Server) handleShred(req *request) (*response, error) {
	var in shredBody
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if in.Confirm != string(req.principal.Tenant) {
		return nil, vaultcrux.E(vaultcrux.Invalid, `crypto-shredding cannot be undone: set "confirm" to the tenant id`)
	}
	out, err := s.evidence.ShredTenant(req.ctx, *req.principal, req.principal.Tenant)
	if err != nil {
		return nil, err
	}
	return &response{data: out, receiptID: out.ReceiptID}, nil
}
