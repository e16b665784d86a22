package server_test

import (
	"regexp"
	"testing"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/authz"
	"github.com/vaultcrux/vaultcrux/internal/server"
	"github.com/vaultcrux/vaultcrux/internal/vctest"
)

func routes(e *vctest.Env) []server.RouteInfo { return server.Routes(e.Server) }

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

// fillPath puts a placeholder id (a well-formed ULID that names nothing)
// into every path parameter.
func fillPath(p string) string { return pathParam.ReplaceAllString(p, "00000000000000000000000000") }

// matrixRequest is the request the route matrix makes of rt: placeholder
// path values, an empty JSON object as body, an idempotency key on
// mutations, and the credential of the mode.
func matrixRequest(rt server.RouteInfo, key, cookie string) vctest.Request {
	q := vctest.Request{Method: rt.Method, Path: fillPath(rt.Path)}
	if rt.Body {
		q.Body = "{}"
	}
	if rt.Mutation {
		q.Idem = idem()
	}
	if cookie != "" {
		return withCookie(q, cookie)
	}
	q.Tenant, q.Key = "acme", key
	return q
}

// TestRouteMatrix walks the actual route table × the four roles × {API
// key, session cookie} and checks every answer against the role matrix of
// internal/authz: a role without the route's permission gets 403
// forbidden; a role with it gets past authentication and authorization
// (whatever the handler then says of a placeholder request: 400, 404,
// 409… — but never 401, nor 403 forbidden or tenant_mismatch). Routes
// added later are covered without changing this test.
func TestRouteMatrix(t *testing.T) { testRouteMatrix(t, vctest.New(t, seatsOn)) }

func testRouteMatrix(t *testing.T, e *vctest.Env) {
	e.Tenant("acme")
	roles := []vaultcrux.Role{vaultcrux.RoleOwner, vaultcrux.RoleAdmin, vaultcrux.RoleMember, vaultcrux.RoleViewer}
	type cred struct{ key, cookie string }
	creds := map[vaultcrux.Role]cred{}
	for _, role := range roles {
		key, _ := e.Key("acme", role)
		creds[role] = cred{key: key, cookie: connect(t, e, "acme", key)}
	}
	checked := 0
	for _, rt := range routes(e) {
		if rt.Perm == authz.Public || rt.Perm == authz.Ops {
			continue // TestRouteMatrixPublicAndOps
		}
		for _, role := range roles {
			for _, mode := range []string{"key", "cookie"} {
				c := creds[role]
				q := matrixRequest(rt, c.key, "")
				if mode == "cookie" {
					q = matrixRequest(rt, "", c.cookie)
				}
				r := e.Do(q)
				checked++
				switch {
				case !rt.Served:
					if r.Status != 404 || r.Code() != "feature_disabled" {
						t.Errorf("%s as %s by %s: %d %s, want 404 feature_disabled (flag off)", rt.Pattern, role, mode, r.Status, r.Raw)
					}
				case !authz.Allowed(role, rt.Perm):
					if r.Status != 403 || r.Code() != "forbidden" {
						t.Errorf("%s as %s by %s: %d %s, want 403 forbidden (%s lacks %s)", rt.Pattern, role, mode, r.Status, r.Raw, role, rt.Perm)
					}
				case rt.SessionOnly && mode == "key":
					if r.Status != 403 || r.Code() != "forbidden" {
						t.Errorf("%s as %s by key: %d %s, want 403 forbidden (session only)", rt.Pattern, role, r.Status, r.Raw)
					}
				default:
					if r.Status == 401 || r.Status == 403 && (r.Code() == "forbidden" || r.Code() == "tenant_mismatch") || r.Status >= 500 {
						t.Errorf("%s as %s by %s: %d %s, want past authorization (%s holds %s)", rt.Pattern, role, mode, r.Status, r.Raw, role, rt.Perm)
					}
				}
			}
		}
	}
	if checked < 8*20 {
		t.Errorf("checked %d answers; the table looks too small", checked)
	}
	// The walk changed nothing that matters: every credential still works.
	for role, c := range creds {
		wantOK(t, whoami(e, "acme", c.key), 200)
		if r := whoamiCookie(e, c.cookie); r.Status != 200 {
			t.Errorf("%s cookie after the walk: %d %s", role, r.Status, r.Raw)
		}
	}
}

// TestRouteMatrixPublicAndOps: public routes answer without a credential
// (never 401/403, never 428); ops routes refuse an anonymous client off
// the allowlist and a cookie alone (403), and serve any role's API key.
func TestRouteMatrixPublicAndOps(t *testing.T) {
	e := vctest.New(t, seatsOn)
	e.Tenant("acme")
	viewer, _ := e.Key("acme", vaultcrux.RoleViewer)
	cookie := connect(t, e, "acme", viewer)
	for _, rt := range routes(e) {
		switch rt.Perm {
		case authz.Public:
			q := vctest.Request{Method: rt.Method, Path: fillPath(rt.Path)}
			if rt.Body {
				q.Body = "{}"
			}
			r := e.Do(q)
			if r.Status == 401 || r.Status == 403 || r.Status == 428 || r.Status >= 500 {
				t.Errorf("public %s: %d %s", rt.Pattern, r.Status, r.Raw)
			}
		case authz.Ops:
			wantErr(t, e.Do(vctest.Request{Method: rt.Method, Path: rt.Path}), 403, "forbidden")
			wantErr(t, e.Do(withCookie(vctest.Request{Method: rt.Method, Path: rt.Path}, cookie)), 403, "forbidden")
			if r := e.Do(vctest.Request{Method: rt.Method, Path: rt.Path, Key: viewer}); r.Status != 200 {
				t.Errorf("ops %s with a viewer key: %d %s", rt.Pattern, r.Status, r.Raw)
			}
		}
	}
}

// contractPerms is contract §3/§4 restated independently of routes.go, so
// that a route declared with the wrong permission is caught (the walk
// above checks that the pipeline enforces what the table declares).
// Routes not listed here are still walked; add them when their contract
// row is settled.
var contractPerms = map[string]authz.Permission{
	"GET /v1/auth/whoami":          authz.Read,
	"POST /v1/keys":                authz.KeysManage,
	"GET /v1/keys":                 authz.KeysManage,
	"DELETE /v1/keys/{id}":         authz.KeysManage,
	"POST /frontdoor/auth/connect": authz.Public,
	"GET /frontdoor/auth/session":  authz.Public,
	"POST /frontdoor/auth/logout":  authz.Public,
	"POST /v1/org/bootstrap-owner": authz.KeysManage, // only an owner key claims ownership
	"POST /v1/org/invite":          authz.SeatsManage,
	"POST /v1/org/accept-invite":   authz.Public, // the invite token is the credential
	"GET /v1/org/seats":            authz.Read,   // "list seats": every role
	"PUT /v1/org/seats/{id}":       authz.SeatsManage,
	"DELETE /v1/org/seats/{id}":    authz.SeatsManage,
	"GET /v1/org/sessions":         authz.SeatsManage, // session activity: owner and admin
	"DELETE /v1/org/sessions/{id}": authz.SeatsManage,
	"GET /v1/receipts":             authz.Read,
	"GET /v1/receipts/{receiptId}": authz.Read,
	"GET /metrics":                 authz.Ops,
	"GET /build-info":              authz.Ops,
	"GET /healthz":                 authz.Public,
	"GET /readyz":                  authz.Public,
}

func TestRoutePermissionsMatchContract(t *testing.T) {
	e := vctest.New(t)
	got := map[string]authz.Permission{}
	for _, rt := range routes(e) {
		got[rt.Pattern] = rt.Perm
	}
	for pattern, want := range contractPerms {
		p, ok := got[pattern]
		switch {
		case !ok:
			t.Errorf("route %s is missing from the table", pattern)
		case p != want:
			t.Errorf("route %s declares %s, contract says %s", pattern, p, want)
		}
	}
}
