package evidence

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/apikey"
	"github.com/vaultcrux/vaultcrux/internal/envelope"
	"github.com/vaultcrux/vaultcrux/internal/keyring"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/store/sqlite"
	"github.com/vaultcrux/vaultcrux/internal/tenancy"
)

// benchEnv is a service over a real SQLite store (synchronous=FULL) with
// one tenant.
func benchEnv(b *testing.B) (*Service, vaultcrux.Principal) {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	keys, _, err := ledger.OpenKeys(ctx, ledger.KeysConfig{Store: st, SeedPath: filepath.Join(b.TempDir(), "seed"), Now: time.Now, Rand: rand.Reader})
	if err != nil {
		b.Fatal(err)
	}
	led := ledger.New(ledger.Config{Store: st, Keys: keys, Now: time.Now, Rand: rand.Reader})
	b.Cleanup(led.Close)
	master := make([]byte, 32)
	rand.Read(master)
	prov, _ := envelope.NewLocal(keyring.NewSecret(master), rand.Reader)
	s := New(Config{Store: st, Ledger: led, Keys: prov})
	hasher, _ := apikey.NewHasher(keyring.NewSecret(master))
	p := &tenancy.Provisioner{Store: st, Ledger: led, Hasher: hasher, Now: time.Now, Rand: rand.Reader, TenantSetup: s.SetupTenant}
	if _, _, _, _, err := p.CreateTenant(ctx, vaultcrux.Principal{ID: "operator:bench"}, "bench", ""); err != nil {
		b.Fatal(err)
	}
	return s, vaultcrux.Principal{Tenant: "bench", ID: "key:bench"}
}

// vocabulary is a Zipf-distributed synthetic vocabulary.
type vocabulary struct {
	words []string
	zipf  *mrand.Zipf
}

func newVocabulary(r *mrand.Rand, n int) *vocabulary {
	v := &vocabulary{zipf: mrand.NewZipf(r, 1.07, 2, uint64(n-1))}
	for i := range n {
		v.words = append(v.words, fmt.Sprintf("w%xq%d", i*2654435761%1000003, i%7))
	}
	return v
}

// paragraph makes n words in sentences.
func (v *vocabulary) paragraph(n int) string {
	var sb strings.Builder
	for i := range n {
		if i > 0 {
			if i%12 == 0 {
				sb.WriteString(". ")
			} else {
				sb.WriteByte(' ')
			}
		}
		sb.WriteString(v.words[v.zipf.Uint64()])
	}
	sb.WriteByte('.')
	return sb.String()
}

// document makes a document of about chunks chunks (paragraphs of ~400
// words, so each becomes one chunk).
func (v *vocabulary) document(chunks int) string {
	ps := make([]string, chunks)
	for i := range ps {
		ps[i] = v.paragraph(400)
	}
	return strings.Join(ps, "\n\n")
}

// BenchmarkIngest measures the whole ingest path, 8 documents per op, of 8 chunks
// (~3,200 words, ~26 KB): submit (seal + durable job), then the worker
// (open, chunk, analyze, hash, seal each chunk, durable commit with the
// receipt).
func BenchmarkIngest(b *testing.B) {
	s, p := benchEnv(b)
	v := newVocabulary(mrand.New(mrand.NewPCG(1, 2)), 50000)
	docs := make([]string, 64)
	for i := range docs {
		docs[i] = v.document(8)
	}
	ctx := context.Background()
	var bytes int64
	// Each round: 8 clients submit one document each, concurrently, then
	// the worker indexes the batch.
	for i := 0; b.Loop(); i++ {
		var wg sync.WaitGroup
		for c := range 8 {
			content := docs[(i*8+c)%len(docs)]
			bytes += int64(len(content))
			wg.Go(func() {
				if _, err := s.Submit(ctx, p, &IngestRequest{CorpusID: "kb", DocID: fmt.Sprintf("d%d-%d", i, c), Title: "t", Content: content}); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		if n, err := s.RunOnce(ctx); err != nil || n != 8 {
			b.Fatal(n, err)
		}
	}
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(bytes)/secs/1e6, "MB/s")
	b.ReportMetric(float64(8*b.N)/secs, "docs/s")
}

// BenchmarkRetrieve measures POST /v1/retrieve's work (catch-up check,
// BM25 over the tenant's chunks, read and decrypt the top 8, and — with
// receipt — build, sign and durably commit the CROWN answer receipt) at
// 1k, 10k and 100k chunks, reporting p50 and p99.
func BenchmarkRetrieve(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		s, p := benchEnv(b)
		v := newVocabulary(mrand.New(mrand.NewPCG(3, 4)), 50000)
		ctx := context.Background()
		const perDoc = 50
		for d := 0; d < n/perDoc; d++ {
			if _, err := s.Submit(ctx, p, &IngestRequest{CorpusID: "kb", DocID: fmt.Sprintf("d%d", d), Title: "t", Content: v.document(perDoc)}); err != nil {
				b.Fatal(err)
			}
			if d%8 == 7 {
				for {
					k, err := s.RunOnce(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if k == 0 {
						break
					}
				}
			}
		}
		for {
			k, err := s.RunOnce(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if k == 0 {
				break
			}
		}
		queries := make([]string, 256)
		qr := mrand.New(mrand.NewPCG(5, 6))
		for i := range queries {
			queries[i] = fmt.Sprintf("%s %s %s", v.words[10+qr.IntN(2000)], v.words[100+qr.IntN(5000)], v.words[qr.IntN(200)])
		}
		for _, withReceipt := range []bool{false, true} {
			name := fmt.Sprintf("chunks=%d/receipt=%v", n, withReceipt)
			b.Run(name, func(b *testing.B) {
				lat := make([]time.Duration, 0, b.N)
				for i := 0; b.Loop(); i++ {
					t0 := time.Now()
					r, err := s.retrieve(ctx, p, &RetrieveRequest{Query: queries[i%len(queries)]}, withReceipt)
					if err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
					if len(r.Results) == 0 {
						b.Fatal("no results")
					}
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			})
		}
	}
}
