package server

import "github.com/vaultcrux/vaultcrux/internal/authz"

// RouteInfo is what the tests outside the package learn of a route, so
// that they can walk the real table (and cover routes added later).
type RouteInfo struct {
	Method, Path, Pattern string
	Perm                  authz.Permission
	Mutation              bool // requires x-idempotency-key
	Body                  bool // takes a JSON body
	Served                bool // false when behind a flag that is off: 404 feature_disabled
	SessionOnly           bool // refuses API keys: a frontdoor session only
	Tool                  string
}

// Routes returns s's route table.
func Routes(s *Server) []RouteInfo {
	out := make([]RouteInfo, 0, len(s.routes))
	for _, rt := range s.routes {
		out = append(out, RouteInfo{
			Method: rt.method, Path: rt.path, Pattern: rt.pattern(), Perm: rt.perm,
			Mutation: rt.idem == idemRequired, Body: rt.body != bodyNone, Served: s.featureOn(rt.feature),
			SessionOnly: rt.sessionOnly, Tool: rt.tool,
		})
	}
	return out
}
