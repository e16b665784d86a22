package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer collects a writer's output safely across goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func noenv(string) string { return "" }

// runCLI runs one command of the real program and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runCLIWith(t, noenv, args...)
}

func runCLIWith(t *testing.T, getenv func(string) string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, getenv, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

type served struct {
	url, key string
	stderr   *lockedBuffer
	stop     func() int
}

var keyRE = regexp.MustCompile(`vcrx_[a-z2-7]{16}_[a-z2-7]{52}`)

// serve starts `vaultcrux serve` in-process on port 0 with dataDir.
func serve(t *testing.T, dataDir string, extra ...string) *served {
	t.Helper()
	return serveWith(t, noenv, dataDir, extra...)
}

func serveWith(t *testing.T, getenv func(string) string, dataDir string, extra ...string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &lockedBuffer{}
	done := make(chan int, 1)
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir}, extra...)
	go func() {
		done <- run(ctx, args, getenv, strings.NewReader(""), pw, stderr)
		pw.Close()
	}()
	s := &served{stderr: stderr}
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		if k := keyRE.FindString(line); k != "" && s.key == "" {
			s.key = k
		}
		if u, ok := strings.CutPrefix(line, "vaultcrux listening on "); ok {
			s.url = u
			break
		}
	}
	if s.url == "" {
		cancel()
		t.Fatalf("server did not start; stderr:\n%s", stderr)
	}
	go io.Copy(io.Discard, pr)
	var once sync.Once
	var code int
	s.stop = func() int {
		once.Do(func() { cancel(); code = <-done })
		return code
	}
	t.Cleanup(func() { s.stop() })
	return s
}

func get(t *testing.T, url, tenant, key string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if tenant != "" {
		req.Header.Set("x-tenant-id", tenant)
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestServeBootstrapAndCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := serve(t, dir)
	if s.key == "" {
		t.Fatal("first start printed no owner key")
	}
	if code, m := get(t, s.url+"/v1/auth/whoami", "default", s.key); code != 200 || m["data"].(map[string]any)["role"] != "owner" {
		t.Fatalf("whoami with the bootstrap key: %d %v", code, m)
	}
	// The key is printed once and stored only hashed: not in any file.
	filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(path)
			if bytes.Contains(b, []byte(s.key[len("vcrx_")+17:])) {
				t.Errorf("%s contains the API key secret", path)
			}
		}
		return nil
	})
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode = %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "keys", "api-key-pepper")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("pepper mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}

	// CLI against the data dir while the server runs.
	code, out, errs := runCLI(t, "tenant", "create", "acme", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("tenant create: %d %s", code, errs)
	}
	acmeOwner := keyRE.FindString(out)
	code, out, _ = runCLI(t, "key", "create", "--tenant", "acme", "--role", "viewer", "--data-dir", dir)
	viewer := keyRE.FindString(out)
	if code != 0 || viewer == "" {
		t.Fatalf("key create: %d %q", code, out)
	}
	if code, m := get(t, s.url+"/v1/auth/whoami", "acme", viewer); code != 200 || m["data"].(map[string]any)["role"] != "viewer" {
		t.Fatalf("viewer key minted by the CLI: %d %v", code, m)
	}
	if code, _ := get(t, s.url+"/v1/auth/whoami", "default", acmeOwner); code != 403 {
		t.Errorf("acme key with default tenant: %d, want 403", code)
	}
	code, out, _ = runCLI(t, "tenant", "list", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "acme") || !strings.Contains(out, "default") {
		t.Errorf("tenant list: %d %q", code, out)
	}
	viewerID := strings.Split(viewer, "_")[1]
	code, out, _ = runCLI(t, "key", "list", "--tenant", "acme", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, viewerID) || strings.Contains(out, "vcrx_") {
		t.Errorf("key list: %d %q", code, out)
	}
	if code, _, _ := runCLI(t, "key", "revoke", "--tenant", "acme", viewerID, "--data-dir", dir); code != 0 {
		t.Fatalf("key revoke: %d", code)
	}
	// Seen by the running server within the auth cache TTL (1 s).
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _ := get(t, s.url+"/v1/auth/whoami", "acme", viewer)
		if code == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked key still accepted after 5 s: %d", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Mistakes: exit 1 with a clear message, exit 2 for usage.
	if code, _, errs := runCLI(t, "key", "create", "--tenant", "nope", "--data-dir", dir); code != 1 || !strings.Contains(errs, "not found") {
		t.Errorf("key create for a missing tenant: %d %q", code, errs)
	}
	if code, _, _ := runCLI(t, "tenant", "create", "Bad Name", "--data-dir", dir); code != 1 {
		t.Errorf("bad tenant id: exit %d, want 1", code)
	}
	if code, _, _ := runCLI(t, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}

	// Graceful stop; a restart does not bootstrap again or print a key.
	if code := s.stop(); code != 0 {
		t.Fatalf("serve exit %d; stderr:\n%s", code, s.stderr)
	}
	// The drain flushed last-use times: the bootstrap key shows one.
	ownerID := strings.Split(s.key, "_")[1]
	_, out, _ = runCLI(t, "key", "list", "--tenant", "default", "--data-dir", dir)
	stamp := regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`)
	found := false
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, ownerID+" ") {
			found = true
			if n := len(stamp.FindAllString(line, -1)); n != 2 { // created, last used
				t.Errorf("owner key line has %d times, want created and last used: %q", n, line)
			}
		}
	}
	if !found {
		t.Errorf("owner key %s not in key list:\n%s", ownerID, out)
	}
	s2 := serve(t, dir)
	if s2.key != "" {
		t.Errorf("second start printed a key")
	}
	if code, _ := get(t, s2.url+"/v1/auth/whoami", "default", s.key); code != 200 {
		t.Errorf("bootstrap key after restart: %d", code)
	}
	if code, _ := get(t, s2.url+"/readyz", "", ""); code != 200 {
		t.Errorf("readyz: %d", code)
	}
	// The access log has the fields and no secrets.
	s2.stop()
	log := s.stderr.String() + s2.stderr.String()
	if strings.Contains(log, s.key[len("vcrx_")+17:]) || strings.Contains(log, viewer[len("vcrx_")+17:]) {
		t.Error("a key secret reached the log")
	}
	for _, f := range []string{`"request_id"`, `"route":"GET /v1/auth/whoami"`, `"tenant":"acme"`, `"latency_ms"`, `"user_agent"`, `"ip":"127.0.0.1"`} {
		if !strings.Contains(log, f) {
			t.Errorf("access log lacks %s", f)
		}
	}
}

func TestConfigRedacts(t *testing.T) {
	env := func(k string) string {
		if k == "VAULTCRUX_DATABASE_URL" {
			return "postgres://u:hunter2@db/vc"
		}
		return ""
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"config"}, env, nil, &out, &errb); code != 0 {
		t.Fatalf("config: %d %s", code, errb.String())
	}
	if strings.Contains(out.String(), "hunter2") || !strings.Contains(out.String(), "[REDACTED]") {
		t.Errorf("config output: %s", out.String())
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	var bi map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &bi) != nil || bi["service"] != "vaultcrux" || bi["goVersion"] == "" || bi["commit"] == "" {
		t.Errorf("version: %d %q", code, out)
	}
}
