package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vaultcrux/vaultcrux/internal/ledger"
)

// metrics are the server's Prometheus collectors, on a registry of its own
// (no global state: two servers in one test binary do not collide).
type metrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	inFlight       prometheus.Gauge
	storeErrors    *prometheus.CounterVec
	internalErrors prometheus.Counter
	authFailures   *prometheus.CounterVec
	rateLimited    *prometheus.CounterVec
	// shieldDecisions counts Shield decisions by outcome.
	shieldDecisions *prometheus.CounterVec
}

func newMetrics(led *ledger.Ledger) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaultcrux_http_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vaultcrux_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern and status code.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vaultcrux_http_in_flight_requests",
			Help: "HTTP requests being served.",
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaultcrux_store_errors_total",
			Help: "Store operations that failed, by operation.",
		}, []string{"op"}),
		internalErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vaultcrux_internal_errors_total",
			Help: "Responses that were 500 internal errors.",
		}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaultcrux_auth_failures_total",
			Help: "Failed authentication attempts that spend rate-limit budget, by credential (api_key, session_cookie, connect, invite).",
		}, []string{"credential"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaultcrux_auth_rate_limited_total",
			Help: "Authentication attempts answered 429, by the budget that was spent (address, tenant).",
		}, []string{"scope"}),
		shieldDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaultcrux_shield_decisions_total",
			Help: "Shield decisions made for HTTP calls, by outcome (allow, deny, approval_required).",
		}, []string{"outcome"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.inFlight, m.storeErrors, m.internalErrors, m.authFailures, m.rateLimited, m.shieldDecisions,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The receipt ledger's counters, read when scraped.
	for _, c := range []struct {
		name, help string
		get        func(ledger.Stats) uint64
	}{
		{"vaultcrux_receipts_total", "Receipts made durable.", func(s ledger.Stats) uint64 { return s.Receipts }},
		{"vaultcrux_receipts_pending_signature_total", "Receipts stored pending_signature because no signing key was available.", func(s ledger.Stats) uint64 { return s.Pending }},
		{"vaultcrux_receipts_attested_total", "Pending receipts signed since by detached attestation.", func(s ledger.Stats) uint64 { return s.Attested }},
		{"vaultcrux_receipt_batches_total", "Group commits of the receipt ledger.", func(s ledger.Stats) uint64 { return s.Batches }},
		{"vaultcrux_receipt_batches_failed_total", "Group commits that failed as a whole.", func(s ledger.Stats) uint64 { return s.FailedBatches }},
		{"vaultcrux_receipt_requests_total", "Ledger commit requests handled (batches × their size).", func(s ledger.Stats) uint64 { return s.Requests }},
		{"vaultcrux_log_checkpoints_total", "Tenant log checkpoints signed.", func(s ledger.Stats) uint64 { return s.Checkpoints }},
	} {
		get := c.get
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(get(led.Stats())) }))
	}
	return m
}
