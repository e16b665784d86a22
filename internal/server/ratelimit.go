package server

import (
	"container/list"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/vaultcrux/vaultcrux"
)

// authLimiter is the brake on guessing credentials. Only failed attempts
// spend budget: a malformed, unknown or wrong API key, a session cookie
// whose MAC does not verify, a failed connect, a failed invite accept.
//
//   - Per client address (IPv4 address, or IPv6 /64, so that one host
//     cannot spread itself over many addresses): once its budget is spent
//     every authentication attempt from it is answered 429 before any
//     check, valid credentials included.
//   - Per tenant (the tenant the attempt names, or the key's): a larger
//     budget that only turns further failed attempts into 429. A request
//     with a valid credential is still served, so an attacker spending a
//     tenant's budget cannot lock the tenant out.
//
// Budgets are token buckets refilled evenly over a minute. Memory is
// bounded: each side tracks at most maxTracked keys and forgets the least
// recently failing first (a forgotten key starts with a full budget,
// which only ever errs towards serving).
type authLimiter struct {
	addr, tenant *failureBuckets
}

// maxTracked bounds each side of the limiter.
const maxTracked = 16384

func newAuthLimiter(perAddress, perTenant int) *authLimiter {
	return &authLimiter{addr: newFailureBuckets(perAddress, maxTracked), tenant: newFailureBuckets(perTenant, maxTracked)}
}

// blocked returns how long ip must wait before it may try again; 0 when it
// may try now.
func (l *authLimiter) blocked(ip netip.Addr, now time.Time) time.Duration {
	return l.addr.wait(addrKey(ip), now)
}

// failed records a failed attempt from ip naming tenant ("" for none). It
// returns how long the caller must wait when the attempt is to be answered
// 429 (its address or its tenant had no budget left), else 0.
func (l *authLimiter) failed(ip netip.Addr, tenant vaultcrux.TenantID, now time.Time) (wait time.Duration, scope string) {
	if w := l.addr.fail(addrKey(ip), now); w > 0 {
		wait, scope = w, "address"
	}
	if tenant != "" {
		if w := l.tenant.fail(string(tenant), now); w > wait {
			wait, scope = w, "tenant"
		}
	}
	return wait, scope
}

// addrKey is the limiter's key of a client address.
func addrKey(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return "unknown"
	case ip.Is4():
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}

// failureBuckets is a bounded set of token buckets, one per key.
type failureBuckets struct {
	burst float64 // failures allowed at once
	rate  float64 // failures refilled per second
	max   int

	mu      sync.Mutex
	entries map[string]*list.Element // of *bucket
	lru     list.List                // front: least recently failing
}

type bucket struct {
	key    string
	tokens float64
	at     time.Time
}

func newFailureBuckets(perMinute, max int) *failureBuckets {
	return &failureBuckets{burst: float64(perMinute), rate: float64(perMinute) / 60, max: max, entries: map[string]*list.Element{}}
}

func (b *failureBuckets) refill(e *bucket, now time.Time) {
	if now.After(e.at) {
		e.tokens = math.Min(b.burst, e.tokens+now.Sub(e.at).Seconds()*b.rate)
		e.at = now
	}
}

func (b *failureBuckets) waitFor(e *bucket) time.Duration {
	if e.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - e.tokens) / b.rate * float64(time.Second))
}

// wait returns how long key must wait before it has budget again.
func (b *failureBuckets) wait(key string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	el := b.entries[key]
	if el == nil {
		return 0
	}
	e := el.Value.(*bucket)
	b.refill(e, now)
	return b.waitFor(e)
}

// fail spends one unit of key's budget. When there was none left it
// spends nothing and returns how long key must wait; else 0.
func (b *failureBuckets) fail(key string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	el := b.entries[key]
	if el == nil {
		if len(b.entries) >= b.max {
			oldest := b.lru.Front()
			delete(b.entries, oldest.Value.(*bucket).key)
			b.lru.Remove(oldest)
		}
		el = b.lru.PushBack(&bucket{key: key, tokens: b.burst, at: now})
		b.entries[key] = el
	} else {
		b.lru.MoveToBack(el)
	}
	e := el.Value.(*bucket)
	b.refill(e, now)
	if w := b.waitFor(e); w > 0 {
		return w
	}
	e.tokens--
	return 0
}

// len reports how many keys are tracked.
func (b *failureBuckets) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.entries)
}

// rateLimited is the 429 answer with its retry-after, in whole seconds
// rounded up.
func (s *Server) rateLimited(wait time.Duration, scope string) error {
	s.metrics.rateLimited.WithLabelValues(scope).Inc()
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return &headersError{
		err:     vaultcrux.Ef(vaultcrux.RateLimited, "too many failed authentication attempts; retry in %d seconds", secs),
		headers: map[string]string{"Retry-After": strconv.Itoa(secs)},
	}
}
