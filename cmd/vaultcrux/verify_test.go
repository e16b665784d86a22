package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fetch GETs path with the tenant's key and returns the raw body.
func fetch(t *testing.T, s *served, path string, header ...string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url+path, nil)
	req.Header.Set("x-tenant-id", "default")
	req.Header.Set("x-api-key", s.key)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func post(t *testing.T, s *served, path, idem, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.url+path, strings.NewReader(body))
	req.Header.Set("x-tenant-id", "default")
	req.Header.Set("x-api-key", s.key)
	req.Header.Set("x-idempotency-key", idem)
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// TestProofpackVerifiesOffline fetches a proofpack and the signing keys
// from a running server, stops it, deletes its data dir, and verifies the
// files with `vaultcrux verify` alone; then tampers with them.
func TestProofpackVerifiesOffline(t *testing.T) {
	dataDir := t.TempDir()
	s := serve(t, dataDir)
	code, m := post(t, s, "/v1/keys", "k1", `{"label":"ci","role":"viewer"}`)
	if code != 201 {
		t.Fatalf("POST /v1/keys: %d %v", code, m)
	}
	rid := m["data"].(map[string]any)["receiptId"].(string)

	out := t.TempDir()
	save := func(name, path string, header ...string) string {
		code, b := fetch(t, s, path, header...)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, b)
		}
		p := filepath.Join(out, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pack := save("pack.json", "/v1/proof/receipts/"+rid+"/proofpack")
	shared := save("shared.json", "/v1/proof/receipts/"+rid+"/proofpack?audience=external_share")
	keys := save("keys.json", "/v1/receipts/signing-keys")
	rec := save("receipt.json", "/v1/receipts/"+rid)
	cose := save("receipt.cose", "/v1/receipts/"+rid, "Accept", "application/cose")
	cp := save("checkpoint.json", "/v1/log/checkpoint")

	if code := s.stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	if err := os.RemoveAll(dataDir); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runCLI(t, "verify", "--keys", keys, pack, shared, rec, cose, cp)
	if code != 0 {
		t.Fatalf("verify exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if n := strings.Count(stdout, "OK  "); n != 5 {
		t.Errorf("%d OK lines, want 5:\n%s", n, stdout)
	}
	// Without --keys it still verifies, and says where the keys came from.
	code, stdout, _ = runCLI(t, "verify", pack)
	if code != 0 || !strings.Contains(stdout, "keys in the document itself") {
		t.Errorf("verify without --keys: exit %d\n%s", code, stdout)
	}
	// JSON output for machines.
	code, stdout, _ = runCLI(t, "verify", "--json", "--keys", keys, pack)
	var reports []map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &reports) != nil || len(reports) != 1 || reports[0]["ok"] != true {
		t.Errorf("--json: exit %d %s", code, stdout)
	}
	// stdin.
	data, _ := os.ReadFile(pack)
	var outb, errb bytes.Buffer
	if code := run(context.Background(), []string{"verify", "-"}, noenv, bytes.NewReader(data), &outb, &errb); code != 0 {
		t.Errorf("verify - : exit %d %s %s", code, outb.String(), errb.String())
	}

	// Tampering: each change gives its own code and exit status 1.
	tamper := func(name string, edit func(map[string]any)) string {
		var doc map[string]any
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		edit(doc["data"].(map[string]any))
		b, _ := json.Marshal(doc)
		p := filepath.Join(out, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, code string
		edit       func(pp map[string]any)
	}{
		{"subject", "hash_mismatch", func(pp map[string]any) { pp["receipt"].(map[string]any)["subject"] = "apikey:other" }},
		{"signature", "signature_mismatch", func(pp map[string]any) {
			sig := pp["receipt"].(map[string]any)["signature"].(map[string]any)
			b := []byte(sig["sigB64"].(string))
			b[3] ^= 1
			sig["sigB64"] = string(b)
		}},
		{"unsigned", "unsigned", func(pp map[string]any) { pp["receipt"].(map[string]any)["signature"] = nil }},
		{"inclusion", "inclusion_failed", func(pp map[string]any) {
			inc := pp["inclusion"].(map[string]any)
			inc["logIndex"] = inc["logIndex"].(float64) + 1
		}},
		{"checkpoint", "checkpoint_signature_mismatch", func(pp map[string]any) {
			pp["checkpoint"] = strings.Replace(pp["checkpoint"].(string), "\ntime ", "\ntime 2", 1)
		}},
		{"missing", "receipt_missing", func(pp map[string]any) { pp["receipt"] = "gone" }},
	}
	for _, c := range cases {
		p := tamper(c.name+".json", c.edit)
		code, stdout, _ := runCLI(t, "verify", "--keys", keys, p)
		if code != 1 || !strings.Contains(stdout, c.code+":") {
			t.Errorf("%s: exit %d, want 1 with %s:\n%s", c.name, code, c.code, stdout)
		}
	}
	if code, _, _ := runCLI(t, "verify"); code != 2 {
		t.Errorf("verify with no file: exit %d, want 2", code)
	}
	if code, stdout, _ := runCLI(t, "verify", filepath.Join(out, "nope.json")); code != 1 || !strings.Contains(stdout, "receipt_missing") {
		t.Errorf("missing file: exit %d %s", code, stdout)
	}
}

// TestRotateSigningWhileServing rotates the signing key from the CLI while
// the server runs: the server signs with the new version within seconds,
// and both tenants' logs record the rotation.
func TestRotateSigningWhileServing(t *testing.T) {
	dataDir := t.TempDir()
	s := serve(t, dataDir)
	code, stdout, stderr := runCLI(t, "keys", "rotate-signing", "--data-dir", dataDir)
	if code != 0 || !strings.Contains(stdout, "vaultcrux-signing:v2 is active") {
		t.Fatalf("rotate-signing: exit %d\n%s%s", code, stdout, stderr)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, m := post(t, s, "/v1/keys", "r"+time.Now().Format("150405.000000"), `{"label":"x","role":"viewer"}`)
		if code != 201 {
			t.Fatalf("POST /v1/keys: %d %v", code, m)
		}
		rid := m["data"].(map[string]any)["receiptId"].(string)
		_, b := fetch(t, s, "/v1/receipts/"+rid)
		if strings.Contains(string(b), `"kid":"vaultcrux-signing:v2"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server still signs with the old key: %s", b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	_, b := fetch(t, s, "/v1/receipts?kind=signing_key.rotated")
	if !strings.Contains(string(b), `vaultcrux-signing:v2`) {
		t.Errorf("no signing_key.rotated receipt in the tenant log: %s", b)
	}
	code, stdout, _ = runCLI(t, "keys", "list-signing", "--data-dir", dataDir)
	if code != 0 || !strings.Contains(stdout, "vaultcrux-signing:v1  retired") || !strings.Contains(stdout, "vaultcrux-signing:v2  active") {
		t.Errorf("list-signing:\n%s", stdout)
	}
}
