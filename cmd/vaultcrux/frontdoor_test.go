package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeFrontdoorSession: serve creates the session secret 0600 on
// first start, a cookie it issued survives a restart, and the bare
// contract flag name FEATURE_TEAM_SEATS turns the seat routes on.
func TestServeFrontdoorSession(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	env := func(k string) string {
		if k == "FEATURE_TEAM_SEATS" {
			return "true"
		}
		return ""
	}
	s := serveWith(t, env, dir)
	secret := filepath.Join(dir, "keys", "session-secret")
	if fi, err := os.Stat(secret); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("session secret: %v, %v; want a 0600 file", fi, err)
	}
	body, _ := json.Marshal(map[string]string{"tenantId": "default", "apiKey": s.key})
	resp, err := http.Post(s.url+"/frontdoor/auth/connect", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	set := resp.Header.Get("Set-Cookie")
	if resp.StatusCode != 200 || !strings.Contains(set, "Secure") || !strings.Contains(set, "HttpOnly") || !strings.Contains(set, "SameSite=Strict") {
		t.Fatalf("connect: %d, Set-Cookie %q", resp.StatusCode, set)
	}
	cookie := strings.SplitN(set, ";", 2)[0]
	withCookie := func(url string) int {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Cookie", cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := withCookie(s.url + "/v1/org/seats"); code != 200 {
		t.Errorf("GET /v1/org/seats with the cookie and FEATURE_TEAM_SEATS=true: %d", code)
	}
	if code := s.stop(); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
	s2 := serve(t, dir) // the flag is off now
	if code := withCookie(s2.url + "/v1/auth/whoami"); code != 200 {
		t.Errorf("cookie after a restart: %d, want 200 (same secret, same row)", code)
	}
	if code := withCookie(s2.url + "/v1/org/seats"); code != 404 {
		t.Errorf("seat route with the flag off: %d, want 404", code)
	}
	s2.stop()
	if strings.Contains(s.stderr.String()+s2.stderr.String(), strings.TrimPrefix(cookie, "vc_session=")) {
		t.Error("the cookie reached the log")
	}
}

// TestServeRefusesMissingSessionSecretFile: a configured secret file is
// rendered by a secrets agent; vaultcrux never invents it.
func TestServeRefusesMissingSessionSecretFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "session-secret")
	env := func(k string) string {
		if k == "VAULTCRUX_SESSION_SECRET_FILE" {
			return missing
		}
		return ""
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "data")}, env, strings.NewReader(""), &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "session secret") {
		t.Errorf("serve with a missing session secret file: exit %d, stderr %q", code, errb.String())
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("serve created the configured session secret file")
	}
}
