package ledger_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/store/postgres"
	"github.com/vaultcrux/vaultcrux/internal/store/postgres/pgtest"
	"github.com/vaultcrux/vaultcrux/internal/store/sqlite"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// benchStore opens a migrated store of the named backend with one tenant.
func benchStore(b *testing.B, backend string) store.Store {
	b.Helper()
	ctx := context.Background()
	var st store.Store
	switch backend {
	case "sqlite":
		db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		st = db
	case "postgres":
		db, err := postgres.Open(ctx, pgtest.DSN(b))
		if err != nil {
			b.Fatal(err)
		}
		st = db
	}
	b.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	err := st.Tx(ctx, func(tx store.SystemTx) error {
		return tx.CreateTenant(&vaultcrux.Tenant{ID: "bench", Name: "bench", CreatedAt: time.Now()}, nil)
	})
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// BenchmarkCommit measures receipts issued end to end — build, sign,
// append to the tenant log, durable commit — with W concurrent writers,
// each waiting for its receipt to be durable before issuing the next. It
// reports receipts/s and the p50/p99 latency of one Commit.
func BenchmarkCommit(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, writers := range []int{1, 8, 64, 256} {
			b.Run(fmt.Sprintf("%s/writers=%d", backend, writers), func(b *testing.B) {
				st := benchStore(b, backend)
				keys, _, err := ledger.OpenKeys(context.Background(), ledger.KeysConfig{
					Store: st, SeedPath: filepath.Join(b.TempDir(), "signing-key"), Now: time.Now, Rand: rand.Reader,
				})
				if err != nil {
					b.Fatal(err)
				}
				l := ledger.New(ledger.Config{Store: st, Keys: keys, Now: time.Now, Rand: rand.Reader})
				defer l.Close()
				details := map[string]any{"keyId": "0123456789abcdef", "role": "member", "inputHash": "blake3:" + fmt.Sprintf("%064x", 7)}
				var next atomic.Int64
				lat := make([][]time.Duration, writers)
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for w := range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= int64(b.N) {
							t0 := time.Now()
							d, err := l.Event("bench", "bench.event", actor, "bench", details)
							if err == nil {
								_, err = l.Commit(context.Background(), &ledger.Item{Tenant: "bench", Receipts: []*receipt.Doc{d}})
							}
							if err != nil {
								b.Error(err)
								return
							}
							lat[w] = append(lat[w], time.Since(t0))
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				all := slices.Concat(lat...)
				slices.Sort(all)
				if len(all) > 0 {
					b.ReportMetric(float64(len(all))/elapsed.Seconds(), "receipts/s")
					b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
					b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
				}
			})
		}
	}
}
