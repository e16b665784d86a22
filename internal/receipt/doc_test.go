package receipt

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vaultcrux/vaultcrux"
)

func TestAccessors(t *testing.T) {
	e, a := signedEvent(t), signedAnswer(t)
	type view struct {
		Class, ID, Kind, AnswerID, SnapshotID, ParentSnapID string
		HasSignature                                        bool
	}
	viewOf := func(d *Doc) view {
		return view{d.Class(), d.ID(), d.Kind(), d.AnswerID(), d.SnapshotID(), d.ParentSnapID(), d.Signature() != nil}
	}
	rootAnswer := vectorAnswer()
	rootAnswer.ParentSnapID = ""
	root, err := NewAnswer(rootAnswer)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		d    *Doc
		want view
	}{
		{"event", e, view{ClassEvent, "rcpt_01JTQ4Z6M8", "shield.decision", "", "", "", true}},
		{"answer", a, view{ClassAnswer, "rcpt_01JTQ50A1B", ClassAnswer, "ans_7f3c", "snap_0042", "snap_0041", true}},
		{"root answer, unsigned", root, view{ClassAnswer, "rcpt_01JTQ50A1B", ClassAnswer, "ans_7f3c", "snap_0042", "", false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, viewOf(tt.d)); diff != "" {
				t.Errorf("accessors mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if got := root.Field("parentSnapId"); got != nil {
		t.Errorf("root parentSnapId = %#v, want JSON null", got)
	}
	if _, err := e.AnswerPayload(); err == nil {
		t.Errorf("AnswerPayload of an event receipt succeeded")
	}
}

// TestBuiltEqualsParsed checks the invariant that a built Doc is the Doc
// Parse gives for its bytes.
func TestBuiltEqualsParsed(t *testing.T) {
	for _, d := range []*Doc{signedEvent(t), signedAnswer(t), signedEvent(t).WithSignature(nil)} {
		t.Run(d.Class(), func(t *testing.T) {
			p, err := Parse(mustBytes(t, d))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(d.obj, p.obj); diff != "" {
				t.Errorf("Parse(Bytes()) mismatch (-built +parsed):\n%s", diff)
			}
			if got, want := p.Class(), d.Class(); got != want {
				t.Errorf("class %q, want %q", got, want)
			}
		})
	}
}

func TestNewEventOptionalFields(t *testing.T) {
	e := vectorEvent()
	e.AgentID, e.InputHash, e.OutputHash, e.Details = "", "", "blake3:ab", nil
	d, err := NewEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"agentId", "inputHash"} {
		if _, ok := d.obj[k]; ok {
			t.Errorf("%s present, want it left out when empty", k)
		}
	}
	if got, want := d.Field("outputHash"), any("blake3:ab"); got != want {
		t.Errorf("outputHash = %#v, want %#v", got, want)
	}
	if diff := cmp.Diff(map[string]any{}, d.Field("details")); diff != "" {
		t.Errorf("details mismatch (-want +got):\n%s", diff)
	}
	if d.Signature() != nil || !strings.Contains(string(mustBytes(t, d)), `"signature":null`) {
		t.Errorf("new event is not pending signature: %s", mustBytes(t, d))
	}
	if err := Verify(d, nil); failureCode(err) != CodeUnsigned {
		t.Errorf("Verify(new event) = %v, want %s", err, CodeUnsigned)
	}
}

func TestNewEventCopiesDetails(t *testing.T) {
	e := vectorEvent()
	d, err := NewEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	e.Details["decision"] = "allow"
	e.Details["ruleIds"].([]any)[0] = "r-0"
	if err := Verify(mustSigned(t, d, nil), nil); err != nil {
		t.Errorf("changing the input after NewEvent changed the receipt: %v", err)
	}
}

func TestNewEventErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(e *Event)
	}{
		{"no receiptId", func(e *Event) { e.ReceiptID = "" }},
		{"no kind", func(e *Event) { e.Kind = "" }},
		{"no tenantId", func(e *Event) { e.TenantID = "" }},
		{"no actor", func(e *Event) { e.Actor = "" }},
		{"no subject", func(e *Event) { e.Subject = "" }},
		{"no occurredAt", func(e *Event) { e.OccurredAt = time.Time{} }},
		{"invalid UTF-8 field", func(e *Event) { e.Subject = "\xff" }},
		{"invalid UTF-8 detail key", func(e *Event) { e.Details["\xff"] = 1 }},
		{"NaN detail", func(e *Event) { e.Details["x"] = math.NaN() }},
		{"inexact integer detail", func(e *Event) { e.Details["x"] = int64(1)<<53 + 1 }},
		{"bad json.Number detail", func(e *Event) { e.Details["x"] = json.Number("1e999") }},
		{"unsupported detail type", func(e *Event) { e.Details["x"] = []string{"a"} }},
		{"details too deep", func(e *Event) {
			v := any(nil)
			for range maxDepth - 1 {
				v = []any{v}
			}
			e.Details["x"] = v
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := vectorEvent()
			tt.change(e)
			if d, err := NewEvent(e); err == nil {
				t.Errorf("NewEvent = %s, want an error", mustBytes(t, d))
			}
		})
	}
	if _, err := NewEvent(nil); err == nil {
		t.Errorf("NewEvent(nil) succeeded")
	}
	e := vectorEvent()
	e.Kind = ""
	_, err := NewEvent(e)
	if got, want := vaultcrux.ErrorKind(err), vaultcrux.Invalid; got != want {
		t.Errorf("kind of NewEvent error = %v, want %v", got, want)
	}
}

func TestNewAnswerDefaults(t *testing.T) {
	model, request := "m-1", "req-9"
	a := vectorAnswer()
	a.ModeRequested, a.ParentSnapID, a.NoLLM = "", "", false
	a.LLMModel, a.LLMRequestID = &model, &request
	a.Fusion, a.Retrieval, a.Selection, a.Timings, a.Evidence = nil, nil, nil, nil, nil
	d, err := NewAnswer(a)
	if err != nil {
		t.Fatal(err)
	}
	p, err := d.AnswerPayload()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"answerId":       "ans_7f3c",
		"citations":      []any{},
		"counterfactual": nil,
		"fusion":         map[string]any{},
		"generatedAt":    "2025-05-04T03:02:05.250Z",
		"llmModel":       "m-1",
		"llmRequestId":   "req-9",
		"mode":           "grounded",
		"modeRequested":  "grounded",
		"queryHash":      a.QueryHash,
		"retrieval":      map[string]any{},
		"selection":      map[string]any{},
		"timings":        map[string]any{},
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("payload mismatch (-want +got):\n%s", diff)
	}
	if got := d.Field("parentSnapId"); got != nil {
		t.Errorf("parentSnapId = %#v, want null", got)
	}
	if got, want := d.Field("modeRequested"), any("grounded"); got != want {
		t.Errorf("modeRequested = %#v, want %#v", got, want)
	}

	a.LLMModel, a.LLMRequestID = nil, nil
	d, err = NewAnswer(a)
	if err != nil {
		t.Fatal(err)
	}
	p, _ = d.AnswerPayload()
	for _, k := range []string{"llmModel", "llmRequestId"} {
		if _, ok := p[k]; ok {
			t.Errorf("payload has %s, want it absent", k)
		}
	}
}

// TestAnswerPayloadOfParsed covers what only parsed receipts can have:
// absent modeRequested and generatedAt, and evidence of other roles.
func TestAnswerPayloadOfParsed(t *testing.T) {
	in := `{"receiptId":"r","answerId":"a","mode":"m","queryHash":"q","fusion":{},"retrieval":{},"selection":{},"timings":{},` +
		`"evidence":[{"sourceId":"s1","role":"context","quoteHash":"x"},{"sourceId":"s2","role":"support","quoteHash":"` +
		strings.Repeat("a", 63) + `"},{"sourceId":"s3","role":"Support","quoteHash":"y"}],"receiptHash":"h"}`
	d, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	p, err := d.AnswerPayload()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Canonical(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"answerId":"a","citations":[{"id":"s2","quoteHash":"` + strings.Repeat("a", 63) + `"}],"counterfactual":null,` +
		`"fusion":{},"generatedAt":null,"mode":"m","modeRequested":"m","queryHash":"q","retrieval":{},"selection":{},"timings":{}}`
	if got := string(c); got != want {
		t.Errorf("payload\n got %s\nwant %s", got, want)
	}
}

func TestNewAnswerErrors(t *testing.T) {
	model := "m"
	tests := []struct {
		name   string
		change func(a *Answer)
	}{
		{"no receiptId", func(a *Answer) { a.ReceiptID = "" }},
		{"no snapshotId", func(a *Answer) { a.SnapshotID = "" }},
		{"no answerId", func(a *Answer) { a.AnswerID = "" }},
		{"no mode", func(a *Answer) { a.Mode = "" }},
		{"no queryHash", func(a *Answer) { a.QueryHash = "" }},
		{"no generatedAt", func(a *Answer) { a.GeneratedAt = time.Time{} }},
		{"NoLLM with a model", func(a *Answer) { a.LLMModel = &model }},
		{"evidence without claimId", func(a *Answer) { a.Evidence[0].ClaimID = "" }},
		{"evidence without sourceId", func(a *Answer) { a.Evidence[0].SourceID = "" }},
		{"evidence without quoteHash", func(a *Answer) { a.Evidence[1].QuoteHash = "" }},
		{"evidence without observedAt", func(a *Answer) { a.Evidence[2].ObservedAt = time.Time{} }},
		{"evidence of another role", func(a *Answer) { a.Evidence[0].Role = "context" }},
		{"evidence with bad score", func(a *Answer) { a.Evidence[0].ScoreComponents["x"] = math.Inf(1) }},
		{"invalid UTF-8 in fusion", func(a *Answer) { a.Fusion["\xfe"] = 1 }},
		{"invalid UTF-8 in a field", func(a *Answer) { a.Mode = "\xfe" }},
		{"unsupported type in timings", func(a *Answer) { a.Timings["x"] = time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := vectorAnswer()
			tt.change(a)
			if d, err := NewAnswer(a); err == nil {
				t.Errorf("NewAnswer = %s, want an error", mustBytes(t, d))
			}
		})
	}
	if _, err := NewAnswer(nil); err == nil {
		t.Errorf("NewAnswer(nil) succeeded")
	}
}

func TestParseMalformed(t *testing.T) {
	event := string(mustBytes(t, signedEvent(t)))
	answer := string(mustBytes(t, signedAnswer(t)))
	tests := []struct {
		name, in string
	}{
		{"not JSON", `{`},
		{"duplicate key", `{"kind":"a","kind":"b"}`},
		{"array", `[]`},
		{"string", `"receipt"`},
		{"neither kind nor answerId", `{"receiptId":"r","receiptHash":"h"}`},
		{"event kind not a string", strings.Replace(event, `"kind":"shield.decision"`, `"kind":1`, 1)},
		{"event kind null", strings.Replace(event, `"kind":"shield.decision"`, `"kind":null`, 1)},
		{"event without receiptId", strings.Replace(event, `"receiptId":"rcpt_01JTQ4Z6M8",`, ``, 1)},
		{"event receiptHash not a string", `{"kind":"k","receiptId":"r","receiptHash":1,"tenantId":"t","actor":"a","subject":"s","occurredAt":"o","details":{}}`},
		{"event without tenantId", strings.Replace(event, `"tenantId":"ten_acme"`, `"tenantIdx":"ten_acme"`, 1)},
		{"event actor number", strings.Replace(event, `"actor":"user:alice@example.com"`, `"actor":7`, 1)},
		{"event without subject", strings.Replace(event, `"subject":"tool:email.send",`, ``, 1)},
		{"event occurredAt number", strings.Replace(event, `"occurredAt":"2025-05-04T03:02:01.123Z"`, `"occurredAt":0`, 1)},
		{"event details array", `{"kind":"k","receiptId":"r","receiptHash":"h","tenantId":"t","actor":"a","subject":"s","occurredAt":"o","details":[]}`},
		{"event without details", `{"kind":"k","receiptId":"r","receiptHash":"h","tenantId":"t","actor":"a","subject":"s","occurredAt":"o"}`},
		{"event agentId null", `{"kind":"k","receiptId":"r","receiptHash":"h","tenantId":"t","actor":"a","subject":"s","occurredAt":"o","details":{},"agentId":null}`},
		{"event inputHash number", strings.Replace(event, `"inputHash":"blake3:9f64a747e1b97f131fabb6b447296c9b6f0201e79fb3c5356e6c77e89b6a806a"`, `"inputHash":1`, 1)},
		{"signature string", strings.Replace(event, `"signature":{`, `"signature":"x","sig":{`, 1)},
		{"signature missing sigB64", strings.Replace(event, `"sigB64":`, `"sigB65":`, 1)},
		{"signature kid number", strings.Replace(event, `"kid":"vaultcrux-signing:v1"`, `"kid":1`, 1)},
		{"signature extra member", strings.Replace(event, `"signature":{`, `"signature":{"alg":"EdDSA",`, 1)},
		{"answer answerId number", strings.Replace(answer, `"answerId":"ans_7f3c"`, `"answerId":7`, 1)},
		{"answer without mode", strings.Replace(answer, `"mode":"grounded",`, ``, 1)},
		{"answer without queryHash", strings.Replace(answer, `"queryHash":`, `"queryHashX":`, 1)},
		{"answer fusion null", strings.Replace(answer, `"fusion":{"rrf_k":60,"w_bm25":0.35,"w_vec":0.65}`, `"fusion":null`, 1)},
		{"answer without retrieval", strings.Replace(answer, `"retrieval":`, `"retrievalX":`, 1)},
		{"answer without selection", strings.Replace(answer, `"selection":{`, `"selectionX":{`, 1)},
		{"answer selection array", `{"answerId":"a","receiptId":"r","receiptHash":"h","mode":"m","queryHash":"q","fusion":{},"retrieval":{},"selection":[],"timings":{},"evidence":[]}`},
		{"answer without timings", strings.Replace(answer, `"timings":`, `"timingsX":`, 1)},
		{"answer without evidence", strings.Replace(answer, `"evidence":`, `"evidenceX":`, 1)},
		{"answer evidence object", `{"answerId":"a","receiptId":"r","receiptHash":"h","mode":"m","queryHash":"q","fusion":{},"retrieval":{},"selection":{},"timings":{},"evidence":{}}`},
		{"answer evidence item string", `{"answerId":"a","receiptId":"r","receiptHash":"h","mode":"m","queryHash":"q","fusion":{},"retrieval":{},"selection":{},"timings":{},"evidence":["x"]}`},
		{"answer evidence without quoteHash", strings.Replace(answer, `"quoteHash":"5891`, `"quoteHashX":"5891`, 1)},
		{"answer evidence role null", strings.Replace(answer, `"role":"support"`, `"role":null`, 1)},
		{"answer evidence sourceId number", strings.Replace(answer, `"sourceId":"src_2"`, `"sourceId":2`, 1)},
		{"answer modeRequested null", strings.Replace(answer, `"modeRequested":"auto"`, `"modeRequested":null`, 1)},
		{"answer generatedAt number", strings.Replace(answer, `"generatedAt":"2025-05-04T03:02:05.250Z"`, `"generatedAt":1`, 1)},
		{"answer parentSnapId object", strings.Replace(answer, `"parentSnapId":"snap_0041"`, `"parentSnapId":{}`, 1)},
		{"answer snapshotId number", strings.Replace(answer, `"snapshotId":"snap_0042"`, `"snapshotId":42`, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.in))
			if got := failureCode(err); got != CodeMalformed {
				t.Fatalf("Parse = %v, %v; want a %s failure", d, err, CodeMalformed)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name, in, class string
	}{
		{"minimal event", `{"kind":"k","receiptId":"r","receiptHash":"h","tenantId":"t","actor":"a","subject":"s","occurredAt":"o","details":{}}`, ClassEvent},
		{"event with unknown fields", `{"kind":"k","receiptId":"r","receiptHash":"h","tenantId":"t","actor":"a","subject":"s","occurredAt":"o","details":{},"x":[1]}`, ClassEvent},
		{"kind wins over answerId", `{"kind":"k","answerId":1,"receiptId":"r","receiptHash":"h","tenantId":"t","actor":"a","subject":"s","occurredAt":"o","details":{}}`, ClassEvent},
		{"minimal answer", `{"answerId":"a","receiptId":"r","receiptHash":"h","mode":"m","queryHash":"q","fusion":{},"retrieval":{},"selection":{},"timings":{},"evidence":[],"signature":null}`, ClassAnswer},
		{"answer with null ids", `{"answerId":"a","receiptId":"r","receiptHash":"h","mode":"m","queryHash":"q","fusion":{},"retrieval":{},"selection":{},"timings":{},"evidence":[],"snapshotId":null,"parentSnapId":null,"generatedAt":null,"llmModel":7}`, ClassAnswer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := d.Class(); got != tt.class {
				t.Errorf("Class() = %q, want %q", got, tt.class)
			}
			if _, err := d.ComputeHash(); err != nil {
				t.Errorf("ComputeHash: %v", err)
			}
		})
	}
}
