package receipt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The files testdata/{proofpack,checkpoint,consistency,signing-keys}.json
// are answers saved from a real server (a tenant, two API keys created).
// They must verify forever: a change of format that breaks them breaks
// every proofpack users have kept.
func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSavedServerAnswersVerify(t *testing.T) {
	keys, err := ParseKeyList(readVector(t, "signing-keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, kind string }{
		{"proofpack.json", "proofpack"},
		{"checkpoint.json", "checkpoint"},
		{"consistency.json", "consistency"},
	} {
		data := readVector(t, tc.file)
		rep := VerifyDocument(data, keys)
		if !rep.OK || rep.Kind != tc.kind || rep.KeysFrom != "trusted" {
			t.Errorf("%s: ok=%v kind=%q keysFrom=%q failures=%+v", tc.file, rep.OK, rep.Kind, rep.KeysFrom, rep.Failures)
		}
	}
	// Unsigned summary fields must agree with what is signed.
	cp := string(readVector(t, "checkpoint.json"))
	for _, edit := range [][2]string{{`"treeSize":3`, `"treeSize":4`}, {`"origin":"vaultcrux/tenant/default"`, `"origin":"vaultcrux/tenant/other"`}} {
		bad := strings.Replace(cp, edit[0], edit[1], 1)
		if bad == cp {
			t.Fatalf("vector lacks %s", edit[0])
		}
		if rep := VerifyDocument([]byte(bad), keys); rep.OK || rep.Failures[0].Code != CodeCheckpointSignatureMismatch {
			t.Errorf("checkpoint answer with %s: %+v", edit[1], rep)
		}
	}
	pp := string(readVector(t, "proofpack.json"))
	for _, edit := range [][2]string{{`"logIndex":1`, `"logIndex":0`}, {`"tenantId":"default"`, `"tenantId":"other"`}, {`"kind":"apikey.created"`, `"kind":"apikey.revoked"`}} {
		bad := strings.Replace(pp, edit[0], edit[1], 1)
		if bad == pp {
			t.Fatalf("vector lacks %s", edit[0])
		}
		if rep := VerifyDocument([]byte(bad), keys); rep.OK {
			t.Errorf("proofpack with %s verifies", edit[1])
		}
	}
	// An API error answer is named as such.
	rep := VerifyDocument([]byte(`{"ok":false,"error":{"code":"not_found","message":"x","requestId":"r","type":"not_found"}}`), keys)
	if rep.OK || rep.Failures[0].Code != CodeReceiptMissing {
		t.Errorf("error answer: %+v", rep)
	}
}

// FuzzVerifyDocument: VerifyDocument never panics on any input, and a
// document it accepts with the saved keys is one of the saved ones (the
// fuzzer cannot forge a signature).
func FuzzVerifyDocument(f *testing.F) {
	for _, name := range []string{"proofpack.json", "checkpoint.json", "consistency.json", "event.golden.json"} {
		f.Add(readVector(f, name))
	}
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"ok":true,"data":[{"receiptHash":"x"}]}`))
	f.Add([]byte("vaultcrux/tenant/a\n1\nAAAA\n"))
	keys, err := ParseKeyList(readVector(f, "signing-keys.json"))
	if err != nil {
		f.Fatal(err)
	}
	saved := VerifyDocument(readVector(f, "proofpack.json"), keys)
	if !saved.OK {
		f.Fatalf("saved proofpack: %+v", saved)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep := VerifyDocument(data, keys)
		if rep == nil {
			t.Fatal("nil report")
		}
		if rep.OK != (len(rep.Failures) == 0) {
			t.Fatalf("ok=%v with failures %+v", rep.OK, rep.Failures)
		}
		// Only the saved receipt is signed by the saved keys: no fuzzed
		// proofpack or receipt may verify as another one.
		if rep.OK && (rep.Kind == "proofpack" || rep.Kind == "receipt") && rep.ReceiptID != saved.ReceiptID {
			t.Errorf("fuzzed %s for receipt %q verifies: %q", rep.Kind, rep.ReceiptID, data)
		}
	})
}

func BenchmarkVerifyProofpack(b *testing.B) {
	keys, err := ParseKeyList(readVector(b, "signing-keys.json"))
	if err != nil {
		b.Fatal(err)
	}
	data := readVector(b, "proofpack.json")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if rep := VerifyDocument(data, keys); !rep.OK {
			b.Fatal(rep.Failures)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "proofpacks/s")
}
