package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestGlobalKillSwitchFromCLI engages the operator's global kill switch
// from another process while the server runs: the server stops every
// call (reads too) once its next poll sees it, the engage is receipted in
// the tenant's log, and releasing it lets calls through again.
func TestGlobalKillSwitchFromCLI(t *testing.T) {
	dataDir := t.TempDir()
	s := serve(t, dataDir)
	n := 0
	retrieve := func() (int, map[string]any) {
		n++
		return post(t, s, "/v1/retrieve", fmt.Sprintf("ks-%d", n), `{"query":"anything"}`)
	}
	if code, m := retrieve(); code != 200 {
		t.Fatalf("retrieve before: %d %v", code, m)
	}
	if code, _, _ := runCLI(t, "shield", "kill-switch", "engage", "--data-dir", dataDir); code != 2 {
		t.Fatalf("engage without --reason: exit %d, want 2", code)
	}
	code, out, errOut := runCLI(t, "shield", "kill-switch", "engage", "--reason", "incident 42", "--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, "engaged") {
		t.Fatalf("engage: %d %s %s", code, out, errOut)
	}
	id := strings.Fields(strings.TrimPrefix(out, "global kill switch "))[0]

	// The server polls every 250 ms; wait (functionally, not as a timing
	// claim) for the deny.
	var m map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		var code int
		code, m = retrieve()
		if code == 403 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still answers %d %v after the global kill switch", code, m)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e := m["error"].(map[string]any)
	if e["type"] != "shield_denied" || e["code"] != "kill_switch_active" || e["stage"] != "kill_switch" || e["decisionId"] == nil {
		t.Fatalf("kill switch answer %v", e)
	}
	if code, body := fetch(t, s, "/v1/receipts?kind=shield.kill_switch.engaged"); code != 200 || !strings.Contains(string(body), id) {
		t.Fatalf("engage receipt: %d %s", code, body)
	}
	if code, out, _ := runCLI(t, "shield", "kill-switch", "list", "--data-dir", dataDir); code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "ENGAGED") {
		t.Fatalf("list: %d %s", code, out)
	}
	if code, out, errOut := runCLI(t, "shield", "kill-switch", "release", id, "--data-dir", dataDir); code != 0 || !strings.Contains(out, "released") {
		t.Fatalf("release: %d %s %s", code, out, errOut)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		code, m := retrieve()
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still answers %d %v after the release", code, m)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, out, _ := runCLI(t, "shield", "kill-switch", "list", "--data-dir", dataDir); code != 0 || !strings.Contains(out, "no global kill switch") {
		t.Fatalf("list after release: %d %s", code, out)
	}
	if code, _, _ := runCLI(t, "shield", "kill-switch", "release", "nope", "--data-dir", dataDir); code != 1 {
		t.Fatalf("release of an unknown switch: exit %d, want 1", code)
	}
	if code := s.stop(); code != 0 {
		t.Fatalf("stop: %d", code)
	}
}
