package sqlite

import (
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

// Placeholders until the evidence-plane tables land: every method fails.
var errEvidenceTODO = vaultcrux.E(vaultcrux.Unavailable, "evidence plane storage not implemented")

func (t *tenantTx) AddTenantKEK(k *store.TenantKEK) error             { return errEvidenceTODO }
func (t *tenantTx) ActiveTenantKEK() (*store.TenantKEK, error)        { return nil, errEvidenceTODO }
func (t *tenantTx) ListTenantKEKs() ([]*store.TenantKEK, error)       { return nil, errEvidenceTODO }
func (t *tenantTx) RetireTenantKEK(version int, at time.Time) error   { return errEvidenceTODO }
func (t *tenantTx) ShredTenantKeys(at time.Time) (int, error)         { return 0, errEvidenceTODO }
func (t *tenantTx) TenantShreddedAt() (*time.Time, error)             { return nil, errEvidenceTODO }
func (t *tenantTx) GetDocument(docID string) (*store.Document, error) { return nil, errEvidenceTODO }
func (t *tenantTx) PutDocument(d *store.Document, chunks []*store.Chunk, now time.Time) (int64, error) {
	return 0, errEvidenceTODO
}
func (t *tenantTx) DeleteDocument(docID string, now time.Time) (*store.Document, int64, error) {
	return nil, 0, errEvidenceTODO
}
func (t *tenantTx) ListDocuments(after string, limit int) ([]*store.Document, error) {
	return nil, errEvidenceTODO
}
func (t *tenantTx) RewrapDEKs(from, to int, fn func(string) (string, error)) (int, error) {
	return 0, errEvidenceTODO
}
func (t *tenantTx) GetChunks(ids []string) ([]*store.Chunk, error) { return nil, errEvidenceTODO }
func (t *tenantTx) ListChunks(after string, limit int) ([]*store.Chunk, error) {
	return nil, errEvidenceTODO
}
func (t *tenantTx) DocumentChunks(docID string, version int) ([]*store.Chunk, error) {
	return nil, errEvidenceTODO
}
func (t *tenantTx) IndexHead() (int64, error) { return 0, errEvidenceTODO }
func (t *tenantTx) IndexChanges(after int64, limit int) ([]*store.IndexChange, error) {
	return nil, errEvidenceTODO
}
func (t *tenantTx) CreateIngestJob(j *store.IngestJob) error         { return errEvidenceTODO }
func (t *tenantTx) GetIngestJob(id string) (*store.IngestJob, error) { return nil, errEvidenceTODO }
func (t *tenantTx) FinishIngestJob(j *store.IngestJob, lease string) error {
	return errEvidenceTODO
}
func (s *systemTx) ClaimIngestJobs(lease string, now, leaseUntil time.Time, limit int) ([]*store.IngestJob, error) {
	return nil, errEvidenceTODO
}
func (s *systemTx) TenantsWithDocuments() ([]vaultcrux.TenantID, error) { return nil, errEvidenceTODO }
