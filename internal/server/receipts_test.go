package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
	"github.com/vaultcrux/vaultcrux/internal/vctest"
)

// createKey makes an API key through the API and returns its receipt id.
func createKey(t *testing.T, e *vctest.Env, tenant, owner, idem string) string {
	t.Helper()
	r := e.Do(vctest.Request{Method: "POST", Path: "/v1/keys", Tenant: tenant, Key: owner, Idem: idem,
		Body: map[string]any{"label": "ci", "role": "viewer"}})
	if r.Status != 201 {
		t.Fatalf("POST /v1/keys: %d %s", r.Status, r.Raw)
	}
	var out struct {
		ID        string `json:"id"`
		ReceiptID string `json:"receiptId"`
	}
	r.Into(t, &out)
	if out.ReceiptID == "" || r.Header.Get("x-receipt-id") != out.ReceiptID {
		t.Fatalf("receiptId %q, header %q: want the same non-empty id", out.ReceiptID, r.Header.Get("x-receipt-id"))
	}
	return out.ReceiptID
}

func trustedKeys(t *testing.T, e *vctest.Env, tenant, key string) receipt.KeySet {
	t.Helper()
	r := e.Do(vctest.Request{Method: "GET", Path: "/v1/receipts/signing-keys", Tenant: tenant, Key: key})
	if r.Status != 200 {
		t.Fatalf("signing-keys: %d %s", r.Status, r.Raw)
	}
	ks, err := receipt.ParseKeyList(r.Raw)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestKeyChangesAreReceipted(t *testing.T) {
	e := vctest.New(t)
	owner := e.Tenant("acme")
	viewer, _ := e.Key("acme", vaultcrux.RoleViewer)
	rid := createKey(t, e, "acme", owner, "k1")

	// A viewer may read receipts.
	r := e.Do(vctest.Request{Method: "GET", Path: "/v1/receipts/" + rid, Tenant: "acme", Key: viewer})
	if r.Status != 200 || r.Header.Get("x-receipt-status") != "signed" {
		t.Fatalf("GET receipt: %d status %q %s", r.Status, r.Header.Get("x-receipt-status"), r.Raw)
	}
	d, err := receipt.Parse(r.Data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.Kind(), "apikey.created"; got != want {
		t.Errorf("kind %q, want %q", got, want)
	}
	if !strings.HasPrefix(fmt.Sprint(d.Field("actor")), "key:") || d.Field("tenantId") != "acme" {
		t.Errorf("actor %v tenant %v", d.Field("actor"), d.Field("tenantId"))
	}
	if err := receipt.Verify(d, trustedKeys(t, e, "acme", viewer)); err != nil {
		t.Errorf("served receipt does not verify: %v", err)
	}
	if strings.Contains(string(r.Raw), "vcrx_") {
		t.Error("a receipt contains key material")
	}

	// The replay returns the same receipt and issues none.
	before := countReceipts(t, e, "acme", owner)
	if again := createKey(t, e, "acme", owner, "k1"); again != rid {
		t.Errorf("replay receipt %s, want %s", again, rid)
	}
	if after := countReceipts(t, e, "acme", owner); after != before {
		t.Errorf("replay issued receipts: %d → %d", before, after)
	}

	// Revocation: a receipt the first time, none for a no-op.
	var k struct {
		ID string `json:"id"`
	}
	e.Do(vctest.Request{Method: "GET", Path: "/v1/keys", Tenant: "acme", Key: owner})
	create := e.Do(vctest.Request{Method: "POST", Path: "/v1/keys", Tenant: "acme", Key: owner, Idem: "k2",
		Body: map[string]any{"label": "tmp", "role": "member"}})
	create.Into(t, &k)
	del := e.Do(vctest.Request{Method: "DELETE", Path: "/v1/keys/" + k.ID, Tenant: "acme", Key: owner, Idem: "d1"})
	var dv struct {
		ReceiptID string `json:"receiptId"`
	}
	del.Into(t, &dv)
	if del.Status != 200 || dv.ReceiptID == "" || del.Header.Get("x-receipt-id") != dv.ReceiptID {
		t.Fatalf("DELETE: %d %s", del.Status, del.Raw)
	}
	del2 := e.Do(vctest.Request{Method: "DELETE", Path: "/v1/keys/" + k.ID, Tenant: "acme", Key: owner, Idem: "d2"})
	dv.ReceiptID = ""
	del2.Into(t, &dv)
	if del2.Status != 200 || dv.ReceiptID != "" {
		t.Errorf("second DELETE: %d receipt %q, want 200 and no receipt", del2.Status, dv.ReceiptID)
	}
}

func countReceipts(t *testing.T, e *vctest.Env, tenant, key string) int {
	t.Helper()
	r := e.Do(vctest.Request{Method: "GET", Path: "/v1/receipts?limit=500", Tenant: tenant, Key: key})
	var out struct {
		Items []json.RawMessage `json:"items"`
	}
	r.Into(t, &out)
	return len(out.Items)
}

func TestReceiptsAreTenantScoped(t *testing.T) {
	e := vctest.New(t)
	a := e.Tenant("acme")
	b := e.Tenant("globex")
	rid := createKey(t, e, "acme", a, "k1")
	missing := "01JZZZZZZZZZZZZZZZZZZZZZZZ"
	for _, path := range []string{
		"/v1/receipts/" + rid,
		"/v1/proof/receipts/" + rid + "/proofpack",
		"/v1/proof/answers/" + rid + "/receipt",
		"/v1/receipts/" + rid + "/verify-chain",
	} {
		r := e.Do(vctest.Request{Method: "GET", Path: path, Tenant: "globex", Key: b})
		other := e.Do(vctest.Request{Method: "GET", Path: strings.Replace(path, rid, missing, 1), Tenant: "globex", Key: b})
		if r.Status != 404 || r.Error.Code != "not_found" {
			t.Errorf("%s from another tenant: %d %s", path, r.Status, r.Raw)
		}
		if r.Error != nil && other.Error != nil && r.Error.Message != other.Error.Message {
			t.Errorf("%s: message %q differs from a missing id's %q (an existence hint)", path, r.Error.Message, other.Error.Message)
		}
		// With acme's tenant header but globex's key: tenant_mismatch.
		r = e.Do(vctest.Request{Method: "GET", Path: path, Tenant: "acme", Key: b})
		if r.Status != 403 || r.Error.Code != "tenant_mismatch" {
			t.Errorf("%s with a mismatched tenant: %d %s", path, r.Status, r.Raw)
		}
	}
	// globex's log holds only its own receipts.
	r := e.Do(vctest.Request{Method: "GET", Path: "/v1/receipts", Tenant: "globex", Key: b})
	var out struct {
		Items []struct {
			Receipt json.RawMessage `json:"receipt"`
		} `json:"items"`
	}
	r.Into(t, &out)
	for _, it := range out.Items {
		if strings.Contains(string(it.Receipt), `"acme"`) {
			t.Errorf("globex lists an acme receipt: %s", it.Receipt)
		}
	}
}

func TestProofpackRoute(t *testing.T) {
	e := vctest.New(t)
	owner := e.Tenant("acme")
	rid := createKey(t, e, "acme", owner, "k1")
	createKey(t, e, "acme", owner, "k2")
	for _, q := range []string{"", "?audience=external_share"} {
		r := e.Do(vctest.Request{Method: "GET", Path: "/v1/proof/receipts/" + rid + "/proofpack" + q, Tenant: "acme", Key: owner})
		if r.Status != 200 {
			t.Fatalf("proofpack%s: %d %s", q, r.Status, r.Raw)
		}
		var pp receipt.Proofpack
		r.Into(t, &pp)
		if !pp.Integrity.HashOk || !pp.Integrity.SignatureOk || !pp.Integrity.InclusionOk || !pp.Integrity.ChainOk || pp.Integrity.Stale {
			t.Errorf("integrity %+v", pp.Integrity)
		}
		rep, err := receipt.VerifyProofpack(r.Data, trustedKeys(t, e, "acme", owner))
		if err != nil || !rep.OK {
			t.Errorf("proofpack%s does not verify: %v %+v", q, err, rep)
		}
		if pp.Inclusion.TreeSize < 3 { // tenant.created + two apikey.created
			t.Errorf("checkpoint size %d, want >= 3", pp.Inclusion.TreeSize)
		}
	}
	r := e.Do(vctest.Request{Method: "GET", Path: "/v1/proof/receipts/" + rid + "/proofpack?audience=everyone", Tenant: "acme", Key: owner})
	if r.Status != 400 {
		t.Errorf("bad audience: %d", r.Status)
	}
}

func TestCOSEReceipt(t *testing.T) {
	e := vctest.New(t)
	owner := e.Tenant("acme")
	rid := createKey(t, e, "acme", owner, "k1")
	r := e.Do(vctest.Request{Method: "GET", Path: "/v1/receipts/" + rid, Tenant: "acme", Key: owner,
		Header: map[string]string{"Accept": "application/cose"}})
	if r.Status != 200 || r.Header.Get("content-type") != "application/cose" {
		t.Fatalf("COSE: %d %q", r.Status, r.Header.Get("content-type"))
	}
	ks := trustedKeys(t, e, "acme", owner)
	d, err := receipt.DecodeCOSE(r.Raw, ks)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID() != rid {
		t.Errorf("COSE payload is receipt %s, want %s", d.ID(), rid)
	}
	if rep := receipt.VerifyDocument(r.Raw, ks); !rep.OK {
		t.Errorf("VerifyDocument(COSE): %+v", rep.Failures)
	}
	bad := append([]byte(nil), r.Raw...)
	bad[len(bad)-5] ^= 1
	if rep := receipt.VerifyDocument(bad, ks); rep.OK {
		t.Error("tampered COSE verifies")
	}
}

func TestListReceipts(t *testing.T) {
	e := vctest.New(t)
	owner := e.Tenant("acme")
	var ids []string
	for i := range 5 {
		ids = append(ids, createKey(t, e, "acme", owner, fmt.Sprint("k", i)))
	}
	type item struct {
		ReceiptID string `json:"receiptId"`
		Kind      string `json:"kind"`
		LogIndex  int64  `json:"logIndex"`
	}
	type page struct {
		Items      []item  `json:"items"`
		NextCursor *string `json:"nextCursor"`
	}
	var got []string
	path := "/v1/receipts?kind=apikey.created&limit=2"
	for range 5 {
		r := e.Do(vctest.Request{Method: "GET", Path: path, Tenant: "acme", Key: owner})
		if r.Status != 200 {
			t.Fatalf("%s: %d %s", path, r.Status, r.Raw)
		}
		var p page
		r.Into(t, &p)
		for _, it := range p.Items {
			got = append(got, it.ReceiptID)
		}
		if p.NextCursor == nil {
			break
		}
		path = "/v1/receipts?kind=apikey.created&limit=2&cursor=" + url.QueryEscape(*p.NextCursor)
	}
	want := []string{ids[4], ids[3], ids[2], ids[1], ids[0]}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pages = %v, want newest first %v", got, want)
	}
	for _, bad := range []string{"?cursor=zz", "?since=yesterday", "?limit=0", "?colour=red"} {
		if r := e.Do(vctest.Request{Method: "GET", Path: "/v1/receipts" + bad, Tenant: "acme", Key: owner}); r.Status != 400 {
			t.Errorf("%s: %d, want 400", bad, r.Status)
		}
	}
	r := e.Do(vctest.Request{Method: "GET", Path: "/v1/receipts?kind=tenant.created", Tenant: "acme", Key: owner})
	var p page
	r.Into(t, &p)
	if len(p.Items) != 1 || p.Items[0].LogIndex != 0 {
		t.Errorf("tenant.created: %+v, want the one receipt at index 0", p.Items)
	}
}

func TestCheckpointAndConsistencyRoutes(t *testing.T) {
	e := vctest.New(t)
	owner := e.Tenant("acme")
	createKey(t, e, "acme", owner, "k1")
	r := e.Do(vctest.Request{Method: "GET", Path: "/v1/log/checkpoint", Tenant: "acme", Key: owner})
	if r.Status != 200 {
		t.Fatalf("checkpoint: %d %s", r.Status, r.Raw)
	}
	var cp struct {
		TreeSize int64 `json:"treeSize"`
	}
	r.Into(t, &cp)
	ks := trustedKeys(t, e, "acme", owner)
	if rep := receipt.VerifyDocument(r.Raw, ks); !rep.OK {
		t.Fatalf("checkpoint does not verify: %+v", rep.Failures)
	}
	createKey(t, e, "acme", owner, "k2")
	createKey(t, e, "acme", owner, "k3")
	r2 := e.Do(vctest.Request{Method: "GET", Path: "/v1/log/checkpoint", Tenant: "acme", Key: owner})
	var cp2 struct {
		TreeSize int64 `json:"treeSize"`
	}
	r2.Into(t, &cp2)
	// Each key creation logs two receipts: its Shield decision and apikey.created.
	if cp2.TreeSize != cp.TreeSize+4 {
		t.Fatalf("checkpoint sizes %d then %d", cp.TreeSize, cp2.TreeSize)
	}
	c := e.Do(vctest.Request{Method: "GET", Path: fmt.Sprintf("/v1/log/consistency?from=%d&to=%d", cp.TreeSize, cp2.TreeSize), Tenant: "acme", Key: owner})
	if c.Status != 200 {
		t.Fatalf("consistency: %d %s", c.Status, c.Raw)
	}
	if rep := receipt.VerifyDocument(c.Raw, ks); !rep.OK {
		t.Errorf("consistency proof does not verify: %+v", rep.Failures)
	}
	for _, q := range []string{"from=0&to=1", "from=3&to=2", fmt.Sprintf("from=1&to=%d", cp2.TreeSize+1), "from=1", "from=01&to=2", "from=1&to=2&x=1"} {
		if r := e.Do(vctest.Request{Method: "GET", Path: "/v1/log/consistency?" + q, Tenant: "acme", Key: owner}); r.Status != 400 {
			t.Errorf("consistency?%s: %d, want 400", q, r.Status)
		}
	}
}

func TestSigningKeysRoute(t *testing.T) {
	e := vctest.New(t)
	owner := e.Tenant("acme")
	ks := trustedKeys(t, e, "acme", owner)
	if len(ks) != 1 || ks["vaultcrux-signing:v1"].Status != "active" {
		t.Fatalf("keys %+v", ks)
	}
	if _, err := e.Keys.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	ks = trustedKeys(t, e, "acme", owner)
	if ks["vaultcrux-signing:v1"].Status != "retired" || ks["vaultcrux-signing:v2"].Status != "active" || ks["vaultcrux-signing:v1"].RetiredAt == "" {
		t.Errorf("after rotation: %+v", ks)
	}
	// Receipts signed before the rotation still verify: retired is not revoked.
	rid := createKey(t, e, "acme", owner, "k1")
	r := e.Do(vctest.Request{Method: "GET", Path: "/v1/receipts/" + rid, Tenant: "acme", Key: owner})
	d, _ := receipt.Parse(r.Data)
	if d.Signature().KID != "vaultcrux-signing:v2" {
		t.Errorf("new receipt signed by %s", d.Signature().KID)
	}
}

func TestReceiptMetrics(t *testing.T) {
	e := vctest.New(t)
	owner := e.Tenant("acme")
	createKey(t, e, "acme", owner, "k1")
	if r := e.Do(vctest.Request{Method: "GET", Path: "/v1/log/checkpoint", Tenant: "acme", Key: owner}); r.Status != 200 {
		t.Fatalf("checkpoint: %d", r.Status)
	}
	m := e.Do(vctest.Request{Method: "GET", Path: "/metrics", Key: owner})
	for _, want := range []string{
		"vaultcrux_receipts_total 3\n", // tenant.created, the key creation's shield.decision, apikey.created
		"vaultcrux_receipts_pending_signature_total 0\n",
		"vaultcrux_receipt_batches_failed_total 0\n",
		"vaultcrux_log_checkpoints_total 1\n",
		`vaultcrux_shield_decisions_total{outcome="allow"} 1` + "\n",
	} {
		if !strings.Contains(string(m.Raw), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
