package gate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vaultcrux/vaultcrux/internal/gate"
	"github.com/vaultcrux/vaultcrux/internal/shield"
)

// BenchmarkDecideRecorded measures decisions per second end to end on
// SQLite: state from memory, the seven stages, and the durable record —
// the shield_decisions row, its outbox event and its signed receipt
// appended to the tenant log — through the ledger's group commit. Calls
// come from many goroutines at once (b.RunParallel with the parallelism
// of the sub-benchmark per GOMAXPROCS), so that commits batch; each
// waits for its own record, as a guarded route does. It reports
// decisions/s and the p50/p99 latency of one Decide.
func BenchmarkDecideRecorded(b *testing.B) {
	for _, par := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("parallelism=%d", par), func(b *testing.B) {
			e := newEnv(b, envOpts{realTime: true})
			owner := e.tenant("bench")
			e.registerPinned(owner, "mail", shield.Tool{Name: "send_email", Description: "Sends an email.", Class: shield.ClassEgress, Risk: shield.RiskMedium,
				ArgRules: []shield.ArgRule{{Arg: "to", Required: true, Pattern: `[a-z0-9.]+@(example|acme)\.com`, Type: "string"}, {Arg: "body", MaxLen: 4096}}})
			args := json.RawMessage(`{"to":"alice@example.com","body":"Quarterly numbers attached."}`)
			ctx := context.Background()
			if r := e.g.Decide(ctx, &gate.Call{Principal: asAgent(owner, "warm"), Tool: "send_email", Args: args}); r.Decision.Outcome != shield.OutcomeAllow {
				b.Fatalf("the benchmark call is not allowed: %+v", r.Decision)
			}
			var mu sync.Mutex
			var lat []time.Duration
			var worker int
			b.SetParallelism(par)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				mu.Lock()
				worker++
				p := asAgent(owner, fmt.Sprintf("agent-%d", worker))
				mu.Unlock()
				mine := make([]time.Duration, 0, 1024)
				for pb.Next() {
					t0 := time.Now()
					r := e.g.Decide(ctx, &gate.Call{Principal: p, Tool: "send_email", Args: args})
					mine = append(mine, time.Since(t0))
					if r.Decision.Outcome != shield.OutcomeAllow || !r.Recorded {
						b.Errorf("decision %+v recorded %v", r.Decision, r.Recorded)
						return
					}
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
			if len(lat) > 0 {
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			}
			st := e.led.Stats()
			if st.Batches > 0 {
				b.ReportMetric(float64(st.Requests)/float64(st.Batches), "commits/batch")
			}
		})
	}
}
