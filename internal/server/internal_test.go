package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/authz"
)

// publicV1 are the /v1 routes that take no credential, each for a reason:
// accept-invite's credential is the invite token in its body.
var publicV1 = map[string]bool{
	"POST /v1/org/accept-invite": true,
}

// TestEveryRouteDeclaresAPermission walks the real route table.
func TestEveryRouteDeclaresAPermission(t *testing.T) {
	s := &Server{}
	routes := s.routeTable()
	if len(routes) == 0 {
		t.Fatal("empty route table")
	}
	for _, rt := range routes {
		if err := checkRoute(rt); err != nil {
			t.Errorf("%v", err)
		}
		if strings.HasPrefix(rt.path, "/v1/") && (rt.perm == authz.Public || rt.perm == authz.Ops) && !publicV1[rt.pattern()] {
			t.Errorf("route %s: /v1 routes must require a role permission, has %s", rt.pattern(), rt.perm)
		}
	}
}

func TestCheckRouteRefuses(t *testing.T) {
	h := func(*request) (*response, error) { return nil, nil }
	cases := []struct {
		name string
		rt   route
	}{
		{"no permission", route{method: "GET", path: "/x", handler: h}},
		{"no handler", route{method: "GET", path: "/x", perm: authz.Read}},
		{"mutation without idempotency rule", route{method: "POST", path: "/x", perm: authz.Ingest, handler: h, body: bodyJSON}},
		{"public mutation", route{method: "POST", path: "/x", perm: authz.Public, idem: idemRequired, handler: h}},
		{"GET with body", route{method: "GET", path: "/x", perm: authz.Read, body: bodyJSON, handler: h}},
		{"odd method", route{method: "TRACE", path: "/x", perm: authz.Read, handler: h}},
		{"unguarded mutation", route{method: "POST", path: "/v1/things", perm: authz.Ingest, idem: idemRequired, body: bodyJSON, handler: h}},
		{"unguarded Shield change", route{method: "PUT", path: "/v1/shield/settings/{name}", perm: authz.ShieldWrite, idem: idemRequired, body: bodyJSON, handler: h}},
		{"tool on the approval flow", route{method: "POST", path: "/v1/shield/approvals/propose", perm: authz.Read, idem: idemRequired, body: bodyJSON, tool: "x", handler: h}},
		{"tool on a query-style POST", route{method: "POST", path: "/v1/retrieve", perm: authz.Retrieve, idem: idemOptional, body: bodyJSON, tool: "x", handler: h}},
	}
	for _, c := range cases {
		if err := checkRoute(c.rt); err == nil {
			t.Errorf("%s: checkRoute accepted %+v", c.name, c.rt)
		}
	}
	s := &Server{}
	if _, err := s.buildMux([]route{{method: "GET", path: "/x", handler: h}}); err == nil {
		t.Error("buildMux accepted a route without a permission")
	}
}

func TestPanicAndInternalErrorsAreOpaque(t *testing.T) {
	s := newBareServer(t)
	mux, err := s.buildMux([]route{
		{method: "GET", path: "/panic", perm: authz.Public, handler: func(*request) (*response, error) { panic("secret detail /etc/passwd") }},
		{method: "GET", path: "/fail", perm: authz.Public, handler: func(*request) (*response, error) {
			return nil, &vaultcrux.Error{Op: "store.Get", Err: context.DeadlineExceeded, Msg: "SELECT * FROM api_keys"}
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := s.outer(mux)
	for _, path := range []string{"/panic", "/fail"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		var env struct {
			Error map[string]string `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
			t.Fatalf("%s: %v: %s", path, err, w.Body)
		}
		if w.Code != http.StatusInternalServerError || env.Error["code"] != "internal" || env.Error["message"] != "internal error" || env.Error["requestId"] == "" {
			t.Errorf("%s: got %d %v", path, w.Code, env.Error)
		}
		if strings.Contains(w.Body.String(), "passwd") || strings.Contains(w.Body.String(), "SELECT") {
			t.Errorf("%s leaks: %s", path, w.Body)
		}
	}
}
