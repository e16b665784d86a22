package server

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/vaultcrux/vaultcrux/internal/authz"
	"github.com/vaultcrux/vaultcrux/internal/gate"
)

// idem says how a route treats x-idempotency-key.
type idem uint8

const (
	idemNone     idem = iota // safe method: the header is ignored
	idemRequired             // mutation: 428 without it
	idemOptional             // query-style POST: honoured when sent
	idemExempt               // public mutations: /frontdoor/auth/*, accept-invite
)

// feature names the flag a route is behind. A route behind an off flag
// answers 404 feature_disabled before anything else runs.
type feature uint8

const (
	featureNone      feature = iota // always served
	featureTeamSeats                // FEATURE_TEAM_SEATS: /v1/org/*
)

// featureOn reports whether the flag f is on.
func (s *Server) featureOn(f feature) bool {
	switch f {
	case featureNone:
		return true
	case featureTeamSeats:
		return s.cfg.FeatureTeamSeats
	}
	return false
}

// bodyKind says what a route accepts as a body.
type bodyKind uint8

const (
	bodyNone   bodyKind = iota // any body is refused
	bodyJSON                   // a JSON object, limited to Config.BodyLimit
	bodyIngest                 // a JSON object, limited to Config.IngestBodyLimit
)

// route is one entry of the route table.
type route struct {
	method  string
	path    string // ServeMux pattern path, e.g. /v1/keys/{id}
	perm    authz.Permission
	idem    idem
	body    bodyKind
	feature feature
	// sealed marks a route whose answer holds tenant content or a
	// one-time secret: the copy kept for idempotent replay is sealed under
	// the tenant's keys (or, when it cannot be, not kept).
	sealed bool
	// tool names the built-in Shield tool that a mutating /v1/* route
	// performs: the mutation guard decides every call before the handler
	// runs. Every such route must have one but the approval flow's; on
	// Shield's control plane the guard runs for agents only.
	tool string
	// sessionOnly refuses API keys (403 forbidden): the route is for a
	// person in a frontdoor session (resolving an approval).
	sessionOnly bool
	handler     func(*request) (*response, error)
}

// pattern is the route as the access log and metrics name it.
func (rt route) pattern() string { return rt.method + " " + rt.path }

// routeTable is the one list of routes. Nothing else registers a handler.
func (s *Server) routeTable() []route {
	return slices.Concat(s.baseRoutes(), s.evidenceRoutes(), s.shieldRoutes())
}

func (s *Server) baseRoutes() []route {
	return []route{
		// Operations (contract §9).
		{method: "GET", path: "/healthz", perm: authz.Public, handler: s.handleLive},
		{method: "GET", path: "/livez", perm: authz.Public, handler: s.handleLive},
		{method: "GET", path: "/readyz", perm: authz.Public, handler: s.handleReady},
		{method: "GET", path: "/metrics", perm: authz.Ops, handler: s.handleMetrics},
		{method: "GET", path: "/build-info", perm: authz.Ops, handler: s.handleBuildInfo},

		// Identity.
		{method: "GET", path: "/v1/auth/whoami", perm: authz.Read, handler: s.handleWhoami},

		// API keys (contract §3): owner only.
		{method: "POST", path: "/v1/keys", perm: authz.KeysManage, idem: idemRequired, body: bodyJSON, sealed: true, tool: gate.ToolCreateAPIKey, handler: s.handleCreateKey},
		{method: "GET", path: "/v1/keys", perm: authz.KeysManage, handler: s.handleListKeys},
		{method: "DELETE", path: "/v1/keys/{id}", perm: authz.KeysManage, idem: idemRequired, tool: gate.ToolRevokeAPIKey, handler: s.handleRevokeKey},

		// Receipts, the tenant log, proofpacks (contract §6): every role reads.
		{method: "GET", path: "/v1/receipts", perm: authz.Read, handler: s.handleListReceipts},
		{method: "GET", path: "/v1/receipts/signing-keys", perm: authz.Read, handler: s.handleSigningKeys},
		{method: "GET", path: "/v1/receipts/{receiptId}", perm: authz.Read, handler: s.handleGetReceipt},
		{method: "GET", path: "/v1/receipts/{answerId}/verify-chain", perm: authz.Read, handler: s.handleVerifyChain},
		{method: "GET", path: "/v1/proof/answers/{answerId}/receipt", perm: authz.Read, handler: s.handleGetAnswerReceipt},
		{method: "GET", path: "/v1/proof/receipts/{receiptId}/proofpack", perm: authz.Read, handler: s.handleProofpack},
		{method: "GET", path: "/v1/log/checkpoint", perm: authz.Read, handler: s.handleCheckpoint},
		{method: "GET", path: "/v1/log/consistency", perm: authz.Read, handler: s.handleConsistency},

		// Frontdoor browser session (contract §3). Public: the cookie is what
		// they manage; connect and logout pass the CSRF check themselves.
		{method: "POST", path: "/frontdoor/auth/connect", perm: authz.Public, idem: idemExempt, body: bodyJSON, handler: s.handleConnect},
		{method: "GET", path: "/frontdoor/auth/session", perm: authz.Public, handler: s.handleSession},
		{method: "POST", path: "/frontdoor/auth/logout", perm: authz.Public, idem: idemExempt, handler: s.handleLogout},

		// Team seats and sessions (contract §4), behind FEATURE_TEAM_SEATS.
		// Who may act on which seat role is authz.CheckSeatRoles, in tenancy.
		{method: "POST", path: "/v1/org/bootstrap-owner", perm: authz.KeysManage, idem: idemRequired, body: bodyJSON, feature: featureTeamSeats, tool: gate.ToolBootstrapOwner, handler: s.handleBootstrapOwner},
		{method: "POST", path: "/v1/org/invite", perm: authz.SeatsManage, idem: idemRequired, body: bodyJSON, feature: featureTeamSeats, sealed: true, tool: gate.ToolInviteSeat, handler: s.handleInvite},
		{method: "POST", path: "/v1/org/accept-invite", perm: authz.Public, idem: idemExempt, body: bodyJSON, feature: featureTeamSeats, handler: s.handleAcceptInvite},
		{method: "GET", path: "/v1/org/seats", perm: authz.Read, feature: featureTeamSeats, handler: s.handleListSeats},
		{method: "PUT", path: "/v1/org/seats/{id}", perm: authz.SeatsManage, idem: idemRequired, body: bodyJSON, feature: featureTeamSeats, tool: gate.ToolChangeSeatRole, handler: s.handleChangeSeatRole},
		{method: "DELETE", path: "/v1/org/seats/{id}", perm: authz.SeatsManage, idem: idemRequired, feature: featureTeamSeats, tool: gate.ToolRevokeSeat, handler: s.handleRevokeSeat},
		{method: "GET", path: "/v1/org/sessions", perm: authz.SeatsManage, feature: featureTeamSeats, handler: s.handleListSessions},
		{method: "DELETE", path: "/v1/org/sessions/{id}", perm: authz.SeatsManage, idem: idemRequired, feature: featureTeamSeats, tool: gate.ToolEndSession, handler: s.handleRevokeSession},
	}
}

// buildMux checks the table and registers it. A route without a valid
// permission, or a mutation without an idempotency rule, is refused here
// so that such a server never starts.
func (s *Server) buildMux(routes []route) (*http.ServeMux, error) {
	mux := http.NewServeMux()
	seen := map[string]bool{}
	for _, rt := range routes {
		if err := checkRoute(rt); err != nil {
			return nil, err
		}
		if seen[rt.pattern()] {
			return nil, fmt.Errorf("route %s: registered twice", rt.pattern())
		}
		seen[rt.pattern()] = true
		mux.Handle(rt.pattern(), s.routeHandler(rt))
	}
	mux.Handle("/", s.routeHandler(route{method: "*", path: "/", perm: authz.Public, handler: s.handleNotFound}))
	return mux, nil
}

func checkRoute(rt route) error {
	if !rt.perm.Valid() {
		return fmt.Errorf("route %s: no permission declared", rt.pattern())
	}
	if rt.handler == nil {
		return fmt.Errorf("route %s: no handler", rt.pattern())
	}
	switch rt.method {
	case "GET", "HEAD":
		if rt.idem != idemNone || rt.body != bodyNone {
			return fmt.Errorf("route %s: safe methods take no body and no idempotency key", rt.pattern())
		}
	case "POST", "PUT", "PATCH", "DELETE":
		if rt.idem == idemNone {
			return fmt.Errorf("route %s: mutation without an idempotency rule", rt.pattern())
		}
		// A public mutation has no principal to scope an idempotency
		// record by, so it must be idemExempt: only the frontdoor's auth
		// routes and accept-invite, whose credential is in the request.
		if rt.perm == authz.Public && rt.idem != idemExempt {
			return fmt.Errorf("route %s: public mutation", rt.pattern())
		}
		// Every mutation of /v1/* passes the Shield mutation guard, but
		// the query-style POSTs (which only add receipts). Shield's own
		// control plane is guarded for agents (see agentGuardOnly); only
		// propose and resolve, which are the approval flow itself, are not.
		guarded := rt.perm != authz.Public && rt.idem == idemRequired && strings.HasPrefix(rt.path, "/v1/") &&
			!approvalFlow(rt.path)
		if guarded && rt.tool == "" {
			return fmt.Errorf("route %s: mutation without a Shield tool", rt.pattern())
		}
		if !guarded && rt.tool != "" {
			return fmt.Errorf("route %s: a Shield tool on a route the guard does not cover", rt.pattern())
		}
	default:
		return fmt.Errorf("route %s: unsupported method", rt.pattern())
	}
	return nil
}

// approvalFlow reports the routes that make up the approval flow: an
// agent proposes, a person resolves. Gating them would need an approval
// to ask for one.
func approvalFlow(path string) bool {
	return path == "/v1/shield/approvals/propose" || path == "/v1/shield/approvals/{id}/resolve"
}

// agentGuardOnly reports whether a guarded route is gated only for agents:
// Shield's control plane. People (calls without x-agent-id) operate it
// ungated, so that a tenant-wide kill switch can always be released by
// its operators; an agent passes the guard there like anywhere else.
func agentGuardOnly(rt route) bool { return strings.HasPrefix(rt.path, "/v1/shield/") }
