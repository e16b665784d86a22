package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// waitIndexed polls an ingest job until it is indexed.
func waitIndexed(t *testing.T, s *served, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, b := fetch(t, s, "/v1/ingest/"+id)
		var m struct {
			Data map[string]any `json:"data"`
		}
		if code != 200 || json.Unmarshal(b, &m) != nil {
			t.Fatalf("GET /v1/ingest/%s: %d %s", id, code, b)
		}
		switch m.Data["status"] {
		case "indexed":
			return m.Data
		case "failed":
			t.Fatalf("job %s failed: %v", id, m.Data)
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %v", id, m.Data["status"])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ingestDoc(t *testing.T, s *served, idem, docID, content string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"corpusId": "kb", "docId": docID, "title": "Doc " + docID, "content": content})
	code, m := post(t, s, "/v1/ingest", idem, string(body))
	if code != 202 {
		t.Fatalf("ingest %s: %d %v", docID, code, m)
	}
	return m["data"].(map[string]any)["ingestId"].(string)
}

// TestEvidenceEndToEnd runs the real program: ingest, retrieve with an
// answer receipt, a tenant key rotation and a restart with queued jobs
// while serving, crypto-shredding from the CLI while serving, and offline
// verification of the answer and erasure proofpacks after the server is
// gone. No file of the data dir holds a content word at the end.
func TestEvidenceEndToEnd(t *testing.T) {
	dataDir := t.TempDir()
	s := serve(t, dataDir)
	// The local provider's master key was created 0600 beside the other keys.
	if fi, err := os.Stat(filepath.Join(dataDir, "keys", "master-key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("master key file: %v %v", fi, err)
	}
	id := ingestDoc(t, s, "i1", "runbook", "The blorptastic reactor must be vented hourly.\n\nVenting uses the snergle valve.")
	waitIndexed(t, s, id)

	code, m := post(t, s, "/v1/retrieve", "r1", `{"query":"how is the blorptastic reactor vented?"}`)
	if code != 200 {
		t.Fatalf("retrieve: %d %v", code, m)
	}
	data := m["data"].(map[string]any)
	results := data["results"].([]any)
	if len(results) != 1 || !strings.Contains(results[0].(map[string]any)["text"].(string), "snergle") {
		t.Fatalf("results %v", results)
	}
	answerReceipt := data["receiptId"].(string)

	// Rotate the tenant key from the CLI while the server runs: the next
	// request uses the new version (nothing is cached).
	if code, out, errOut := runCLI(t, "keys", "rotate-tenant", "default", "--data-dir", dataDir); code != 0 || !strings.Contains(out, "v2 is active") {
		t.Fatalf("rotate-tenant: %d %s %s", code, out, errOut)
	}
	if code, m := post(t, s, "/v1/retrieve", "r2", `{"query":"snergle"}`); code != 200 || len(m["data"].(map[string]any)["results"].([]any)) != 1 {
		t.Fatalf("retrieve after rotation: %d %v", code, m)
	}

	// Queue a batch and stop at once; the restarted server finishes it.
	var ids []string
	for i := range 12 {
		ids = append(ids, ingestDoc(t, s, fmt.Sprintf("q%d", i), fmt.Sprintf("q%d", i), fmt.Sprintf("Queued zarquonian note %d.", i)))
	}
	key := s.key
	if code := s.stop(); code != 0 {
		t.Fatalf("stop: %d\n%s", code, s.stderr)
	}
	s = serve(t, dataDir)
	s.key = key
	for _, id := range ids {
		waitIndexed(t, s, id)
	}
	if code, m := post(t, s, "/v1/retrieve", "r3", `{"query":"zarquonian","topK":20}`); code != 200 || len(m["data"].(map[string]any)["results"].([]any)) != 12 {
		t.Fatalf("after restart: %d %v", code, m)
	}

	out := t.TempDir()
	save := func(name, path string) string {
		code, b := fetch(t, s, path)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, b)
		}
		p := filepath.Join(out, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	answerPack := save("answer.json", "/v1/proof/receipts/"+answerReceipt+"/proofpack")

	// Shred from the CLI while serving: content is gone for the server at once.
	code, stdout, errOut := runCLI(t, "tenant", "shred", "default", "--confirm", "default", "--data-dir", dataDir)
	if code != 0 || !strings.Contains(stdout, "crypto-shredded") {
		t.Fatalf("tenant shred: %d %s %s", code, stdout, errOut)
	}
	erasure := strings.TrimSpace(stdout[strings.LastIndex(stdout, "erasure receipt ")+len("erasure receipt "):])
	if code, m := post(t, s, "/v1/retrieve", "r4", `{"query":"snergle"}`); code != 409 {
		t.Fatalf("retrieve after shred: %d %v", code, m)
	}
	if code, _, _ := runCLI(t, "tenant", "shred", "default", "--data-dir", dataDir); code != 2 {
		t.Fatalf("shred without --confirm: exit %d, want 2", code)
	}
	erasurePack := save("erasure.json", "/v1/proof/receipts/"+erasure+"/proofpack")
	keys := save("keys.json", "/v1/receipts/signing-keys")
	if code := s.stop(); code != 0 {
		t.Fatalf("stop: %d", code)
	}

	// No file of the data dir holds a content word.
	filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		for _, w := range []string{"blorptastic", "snergle", "zarquonian"} {
			if bytes.Contains(bytes.ToLower(b), []byte(w)) {
				t.Errorf("%s holds %q", p, w)
			}
		}
		return nil
	})

	// Both proofpacks verify offline, with the server gone.
	if err := os.RemoveAll(dataDir); err != nil {
		t.Fatal(err)
	}
	if code, stdout, errOut := runCLI(t, "verify", "--keys", keys, answerPack, erasurePack); code != 0 {
		t.Fatalf("verify: %d\n%s\n%s", code, stdout, errOut)
	}
}

// TestServeRefusesMissingMasterKeyFile: a master key named by
// VAULTCRUX_MASTER_KEY_FILE (rendered by a secrets agent) must exist;
// vaultcrux never creates one there.
func TestServeRefusesMissingMasterKeyFile(t *testing.T) {
	dataDir := t.TempDir()
	missing := filepath.Join(t.TempDir(), "master-key")
	getenv := func(k string) string {
		if k == "VAULTCRUX_MASTER_KEY_FILE" {
			return missing
		}
		return ""
	}
	code, _, stderr := runCLIWith(t, getenv, "serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir)
	if code != 1 || !strings.Contains(stderr, "master key") {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("the managed master key file was created: %v", err)
	}
}
