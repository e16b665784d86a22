// Package ledger is the one write path of receipts: build → sign → append to
// the tenant's transparency log → durable commit. Every capability that
// issues receipts goes through Ledger.Commit; nothing else writes receipt
// or log rows.
//
// Invariants:
//
//   - Receipts are signed in the caller's goroutine, before they are queued,
//     so signing runs on every core; the single writer goroutine only
//     appends to the logs and commits.
//   - Group commit: the writer takes every request waiting when it is free
//     and commits them in one transaction (one fsync). A request's own
//     writes run in a savepoint, so a failing request loses only its own
//     writes and receipts; then each tenant's receipts are appended in one
//     statement. A caller returns only once its receipts are durable.
//   - Per tenant, log order is queue order; a tenant's requests in one
//     batch are appended in the order they were queued. Tenants are locked
//     in id order, so two replicas' batches cannot deadlock.
//   - The writer keeps each tenant's log frontier in memory and checks it
//     against the stored log head in every batch, so another process's
//     appends are picked up, never overwritten.
//   - When no signing key is available the receipt is still stored and
//     logged, as pending_signature (signature null). A worker later signs
//     it by a detached attestation; the receipt row is never updated.
//   - A checkpoint is signed only after proving that the log is consistent
//     with the previous checkpoint; a log rewritten underneath is refused
//     loudly rather than signed over.
package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/ident"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/translog"
)

// Config configures a Ledger.
type Config struct {
	Store  store.Store
	Keys   KeySource
	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger
	// MaxBatch bounds the requests committed in one transaction
	// (default 1024).
	MaxBatch int
}

// Ledger issues receipts. Its methods are safe for concurrent use.
type Ledger struct {
	st       store.Store
	keys     KeySource
	now      func() time.Time
	rand     io.Reader
	log      *slog.Logger
	maxBatch int

	reqs chan *request

	lineageMu sync.RWMutex
	lineage   Lineage

	mu     sync.RWMutex // guards closed against Commit's sends
	closed bool
	quit   chan struct{}
	done   chan struct{}

	randMu sync.Mutex // ident.New reads rand, which need not be safe for concurrent use

	stats stats

	// trees is the writer goroutine's own: the log frontier per tenant.
	trees map[vaultcrux.TenantID]*translog.Tree
}

// New starts a ledger's writer. Close stops it.
func New(cfg Config) *Ledger {
	l := &Ledger{
		st:       cfg.Store,
		keys:     cfg.Keys,
		now:      cfg.Now,
		rand:     cfg.Rand,
		log:      cfg.Logger,
		maxBatch: cfg.MaxBatch,
		reqs:     make(chan *request, 4096),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		trees:    make(map[vaultcrux.TenantID]*translog.Tree),
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.maxBatch <= 0 {
		l.maxBatch = 1024
	}
	go l.loop()
	return l
}

// stats are the ledger's counters, read by the metrics endpoint.
type stats struct {
	batches, failedBatches, requests, receipts, pending, attested, checkpoints atomic.Uint64
}

// Stats is a snapshot of the ledger's counters since it started.
type Stats struct {
	Batches       uint64 // group commits
	FailedBatches uint64
	Requests      uint64 // Commit calls committed (or failed) by the writer
	Receipts      uint64 // receipts made durable
	Pending       uint64 // of those, stored pending_signature
	Attested      uint64 // pending receipts signed since by attestation
	Checkpoints   uint64 // checkpoints signed
}

// Stats returns the counters.
func (l *Ledger) Stats() Stats {
	return Stats{
		Batches: l.stats.batches.Load(), FailedBatches: l.stats.failedBatches.Load(),
		Requests: l.stats.requests.Load(), Receipts: l.stats.receipts.Load(),
		Pending: l.stats.pending.Load(), Attested: l.stats.attested.Load(),
		Checkpoints: l.stats.checkpoints.Load(),
	}
}

// Close lets the writer commit what is queued, stops it and waits for it.
// Commit fails with Unavailable afterwards.
func (l *Ledger) Close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.quit)
	}
	l.mu.Unlock()
	<-l.done
}

// NewID returns a fresh receipt (or answer, snapshot) id.
func (l *Ledger) NewID() (string, error) {
	l.randMu.Lock()
	defer l.randMu.Unlock()
	return ident.New(l.now(), l.rand)
}

// Now returns the ledger's clock reading, UTC, in milliseconds.
func (l *Ledger) Now() time.Time { return l.now().UTC().Truncate(time.Millisecond) }

// Event builds an unsigned event receipt with a fresh id, now as its time.
func (l *Ledger) Event(tenant vaultcrux.TenantID, kind string, actor vaultcrux.Principal, subject string, details map[string]any) (*receipt.Doc, error) {
	id, err := l.NewID()
	if err != nil {
		return nil, err
	}
	return receipt.NewEvent(&receipt.Event{
		ReceiptID:  id,
		Kind:       kind,
		TenantID:   string(tenant),
		Actor:      actor.ID,
		AgentID:    actor.AgentID,
		Subject:    subject,
		Details:    details,
		OccurredAt: l.Now(),
	})
}

// Item is one unit of group commit: optional writes, and the receipts that
// record them, committed together or not at all.
type Item struct {
	Tenant vaultcrux.TenantID
	// System, when set, runs first (creating the tenant itself).
	System func(store.SystemTx) error
	// Apply, when set, runs next, scoped to the tenant. An error from
	// System or Apply fails the item alone and is returned by Commit as is.
	Apply func(store.TenantTx) error
	// Receipts are unsigned documents (receipt.NewEvent, NewAnswer);
	// Commit signs them.
	Receipts []*receipt.Doc
	// Signed makes Commit refuse the item (ErrUnsigned) when no signing
	// key is available, instead of storing the receipts
	// pending_signature: for records whose meaning is that they were
	// signed when the action happened (Shield's allows).
	Signed bool
}

// ErrUnsigned is Commit's error for an item that must be signed when no
// signing key is available.
var ErrUnsigned = vaultcrux.E(vaultcrux.Unavailable, "the receipt signer is unavailable")

// Issued describes a receipt that Commit made durable.
type Issued struct {
	ID       string
	Hash     string
	LogIndex int64
	Pending  bool // stored pending_signature
	Doc      *receipt.Doc
}

type request struct {
	item *Item
	recs []*store.ReceiptRecord
	err  error
	done chan struct{}
}

// Commit signs it.Receipts, then waits until the writer has committed the
// item. Its error is the item's own (from System or Apply), or Internal /
// Unavailable when the batch could not be committed.
func (l *Ledger) Commit(ctx context.Context, it *Item) (_ []Issued, err error) {
	defer vaultcrux.Wrap(&err, "ledger.Commit")
	if !vaultcrux.ValidTenantID(string(it.Tenant)) {
		return nil, errors.New("invalid tenant id")
	}
	issued := make([]Issued, len(it.Receipts))
	r := &request{item: it, recs: make([]*store.ReceiptRecord, len(it.Receipts)), done: make(chan struct{})}
	var key receipt.Signer
	if len(it.Receipts) > 0 {
		if k, kerr := l.keys.Current(); kerr == nil {
			key = k
		}
	}
	if it.Signed && key == nil {
		return nil, ErrUnsigned
	}
	now := l.Now()
	for i, d := range it.Receipts {
		pending := key == nil
		if !pending {
			if d, err = receipt.Sign(d, key, now); err != nil {
				return nil, err
			}
		}
		body, err := d.Bytes()
		if err != nil {
			return nil, err
		}
		r.recs[i] = &store.ReceiptRecord{
			ID:           d.ID(),
			Kind:         d.Kind(),
			AnswerID:     d.AnswerID(),
			SnapshotID:   d.SnapshotID(),
			ParentSnapID: d.ParentSnapID(),
			Hash:         d.ClaimedHash(),
			Body:         body,
			Pending:      pending,
			CreatedAt:    now,
		}
		issued[i] = Issued{ID: d.ID(), Hash: d.ClaimedHash(), Pending: pending, Doc: d}
	}

	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return nil, vaultcrux.E(vaultcrux.Unavailable, "the server is shutting down")
	}
	select {
	case l.reqs <- r:
	case <-ctx.Done():
		l.mu.RUnlock()
		return nil, ctx.Err()
	}
	l.mu.RUnlock()

	select {
	case <-r.done:
	case <-ctx.Done():
		// The item may still commit; the caller learns only that it
		// stopped waiting.
		return nil, ctx.Err()
	}
	if r.err != nil {
		return nil, r.err
	}
	for i, rec := range r.recs {
		issued[i].LogIndex = rec.LogIndex
	}
	return issued, nil
}

func (l *Ledger) loop() {
	defer close(l.done)
	for {
		var first *request
		select {
		case first = <-l.reqs:
		case <-l.quit:
			// Commit sends only under mu with closed unset, so after
			// quit nothing new arrives: finish what is queued.
			for {
				select {
				case r := <-l.reqs:
					l.runBatch(l.collect(r))
				default:
					return
				}
			}
		}
		l.runBatch(l.collect(first))
	}
}

// collect returns first and every request already waiting, up to maxBatch.
func (l *Ledger) collect(first *request) []*request {
	batch := []*request{first}
	for len(batch) < l.maxBatch {
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// batchTimeout bounds one group commit, whatever the callers' contexts: a
// caller giving up must not abort the others' writes.
const batchTimeout = 30 * time.Second

func (l *Ledger) runBatch(batch []*request) {
	groups := make(map[vaultcrux.TenantID][]*request)
	var order []vaultcrux.TenantID
	for _, r := range batch {
		if _, ok := groups[r.item.Tenant]; !ok {
			order = append(order, r.item.Tenant)
		}
		groups[r.item.Tenant] = append(groups[r.item.Tenant], r)
	}
	slices.Sort(order)

	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	trees := make(map[vaultcrux.TenantID]*translog.Tree, len(order))
	err := l.st.Batch(ctx, func(btx store.BatchTx) error {
		for _, t := range order {
			tree, err := l.applyTenant(btx, t, groups[t])
			if err != nil {
				return err
			}
			if tree != nil {
				trees[t] = tree
			}
		}
		return nil
	})
	if err != nil {
		l.log.Error("receipt batch failed", "requests", len(batch), "err", err)
		for _, t := range order {
			delete(l.trees, t)
		}
		for _, r := range batch {
			if r.err == nil {
				r.err = err
			}
		}
	} else {
		for t, tree := range trees {
			l.trees[t] = tree
		}
	}
	l.stats.batches.Add(1)
	l.stats.requests.Add(uint64(len(batch)))
	if err != nil {
		l.stats.failedBatches.Add(1)
	} else {
		for _, r := range batch {
			if r.err != nil {
				continue
			}
			l.stats.receipts.Add(uint64(len(r.recs)))
			for _, rec := range r.recs {
				if rec.Pending {
					l.stats.pending.Add(1)
				}
			}
		}
	}
	for _, r := range batch {
		close(r.done)
	}
}

// applyTenant runs one tenant's requests of a batch: each request's own
// writes in a savepoint (a failure costs that request alone), then one
// append of the receipts of every request that succeeded, in queue order.
// It returns the tenant's log frontier afterwards (nil when nothing was
// appended). An error fails the whole batch: it can only come from the
// store, and a half-appended log must not commit.
func (l *Ledger) applyTenant(btx store.BatchTx, t vaultcrux.TenantID, reqs []*request) (*translog.Tree, error) {
	var recs []*store.ReceiptRecord
	for _, r := range reqs {
		if r.item.System != nil || r.item.Apply != nil {
			r.err = btx.Savepoint(func() error {
				if r.item.System != nil {
					if err := r.item.System(btx.System()); err != nil {
						return err
					}
				}
				if r.item.Apply != nil {
					return r.item.Apply(btx.Tenant(t))
				}
				return nil
			})
			if r.err != nil {
				continue
			}
		}
		recs = append(recs, r.recs...)
	}
	if len(recs) == 0 {
		return nil, nil
	}
	tx := btx.Tenant(t)
	size, err := tx.LogHead()
	if err != nil {
		return nil, err
	}
	tree := l.trees[t]
	if tree == nil || tree.Size() != size {
		// First use, or another process appended since: reload.
		if tree, err = translog.LoadTree(size, tx.LogHashes); err != nil {
			return nil, err
		}
	}
	work := tree.Clone()
	for _, rec := range recs {
		blob, err := work.Append(rec.Hash)
		if err != nil {
			return nil, err
		}
		rec.LogIndex = work.Size() - 1
		rec.LogHashes = blob
	}
	if err := tx.AppendReceipts(recs); err != nil {
		return nil, err
	}
	return work, nil
}

// Checkpoint returns a signed checkpoint covering the tenant's whole log,
// signing a new one when the log has grown since the latest. NotFound when
// the log is empty; Unavailable when a checkpoint is needed and no signing
// key is.
func (l *Ledger) Checkpoint(ctx context.Context, tenant vaultcrux.TenantID) (cp *store.Checkpoint, err error) {
	defer vaultcrux.Wrap(&err, "ledger.Checkpoint")
	err = l.st.ForTenant(tenant).Tx(ctx, func(tx store.TenantTx) error {
		size, err := tx.LogHead()
		if err != nil {
			return err
		}
		latest, err := tx.LatestCheckpoint()
		if err != nil && vaultcrux.ErrorKind(err) != vaultcrux.NotFound {
			return err
		}
		if latest != nil && latest.Size >= size {
			cp = latest
			return nil
		}
		if size == 0 {
			return vaultcrux.E(vaultcrux.NotFound, "the log is empty")
		}
		key, err := l.keys.Current()
		if err != nil {
			return vaultcrux.E(vaultcrux.Unavailable, "no signing key is available to sign a checkpoint")
		}
		root, err := tlog.TreeHash(size, translog.HashReader(tx.LogHashes))
		if err != nil {
			return err
		}
		if latest != nil {
			if err := checkConsistent(tx, latest, size, root); err != nil {
				l.log.Error("tenant log is not consistent with its last checkpoint; refusing to sign a new one",
					"tenant", string(tenant), "checkpointSize", latest.Size, "size", size, "err", err)
				return vaultcrux.E(vaultcrux.Internal, "the log is not consistent with its last checkpoint")
			}
		}
		now := l.Now()
		note, err := translog.SignCheckpoint(translog.Checkpoint{
			Origin: translog.Origin(string(tenant)), Size: size, Root: root, Time: now,
		}, key)
		if err != nil {
			return err
		}
		cp = &store.Checkpoint{Size: size, Root: root[:], Note: note, CreatedAt: now}
		if err := tx.AddCheckpoint(cp); err != nil {
			return err
		}
		l.stats.checkpoints.Add(1)
		return nil
	})
	return cp, err
}

func checkConsistent(tx store.TenantTx, latest *store.Checkpoint, size int64, root translog.Hash) error {
	if len(latest.Root) != len(translog.Hash{}) {
		return fmt.Errorf("stored checkpoint root is %d bytes", len(latest.Root))
	}
	proof, err := translog.ProveConsistency(latest.Size, size, tx.LogHashes)
	if err != nil {
		return err
	}
	return translog.CheckConsistency(proof, size, root, latest.Size, translog.Hash(latest.Root))
}

// CheckpointAll signs a checkpoint for every tenant whose log grew since
// its latest one.
func (l *Ledger) CheckpointAll(ctx context.Context) error {
	var tenants []vaultcrux.TenantID
	err := l.st.Tx(ctx, func(tx store.SystemTx) error {
		var err error
		tenants, err = tx.LogsNeedingCheckpoint()
		return err
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range tenants {
		if _, err := l.Checkpoint(ctx, t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// AttestPending signs receipts stored pending_signature, by detached
// attestation, when a signing key is available again. It returns how many
// it signed.
func (l *Ledger) AttestPending(ctx context.Context) (n int, err error) {
	defer vaultcrux.Wrap(&err, "ledger.AttestPending")
	key, err := l.keys.Current()
	if err != nil {
		return 0, nil // still down: try again later
	}
	var tenants []vaultcrux.TenantID
	err = l.st.Tx(ctx, func(tx store.SystemTx) error {
		tenants, err = tx.TenantsWithPendingReceipts()
		return err
	})
	if err != nil {
		return 0, err
	}
	for _, t := range tenants {
		err := l.st.ForTenant(t).Tx(ctx, func(tx store.TenantTx) error {
			recs, err := tx.PendingReceipts(256)
			if err != nil {
				return err
			}
			now := l.Now()
			for _, rec := range recs {
				sig, err := receipt.SignHash(rec.Hash, key, now)
				if err != nil {
					return err
				}
				b, err := json.Marshal(sig)
				if err != nil {
					return err
				}
				if err := tx.AddAttestation(&store.Attestation{ReceiptID: rec.ID, Signature: b, CreatedAt: now}); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return n, err
		}
	}
	l.stats.attested.Add(uint64(n))
	if n > 0 {
		l.log.Info("signed pending receipts by attestation", "count", n, "kid", key.KID())
	}
	return n, nil
}

// Refresher is a KeySource that follows the signing key registry.
type Refresher interface {
	Refresh(ctx context.Context) error
}

// RunBackground refreshes the signing key, attests pending receipts and
// checkpoints grown logs every interval until ctx ends.
func (l *Ledger) RunBackground(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.Tick(ctx)
	}
}

// Tick runs one round of the background work.
func (l *Ledger) Tick(ctx context.Context) {
	if r, ok := l.keys.(Refresher); ok {
		if err := r.Refresh(ctx); err != nil && ctx.Err() == nil {
			l.log.Error("refreshing the signing key", "err", err)
		}
	}
	if _, err := l.AttestPending(ctx); err != nil && ctx.Err() == nil {
		l.log.Error("attesting pending receipts", "err", err)
	}
	if err := l.CheckpointAll(ctx); err != nil && ctx.Err() == nil {
		l.log.Error("signing checkpoints", "err", err)
	}
}
