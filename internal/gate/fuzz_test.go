package gate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/gate"
	"github.com/vaultcrux/vaultcrux/internal/shield"
)

// FuzzInputRefValidate checks the validation of the inputs an agent
// declares: what it accepts names exactly one reference, on one line, of
// at most 512 bytes; what it refuses is Invalid.
func FuzzInputRefValidate(f *testing.F) {
	f.Add("01M8RDA4M0PMDT1GHSTGXPYFF2", "", "")
	f.Add("", "handbook#0", "")
	f.Add("", "", "tool:srv/fetch")
	f.Add("", "", "")
	f.Add("r", "c", "")
	f.Add("", "a\nb", "")
	f.Add("", "", strings.Repeat("x", 513))
	f.Add("\x00", "", "")
	f.Fuzz(func(t *testing.T, receiptID, chunkID, source string) {
		in := gate.InputRef{ReceiptID: receiptID, ChunkID: chunkID, Source: source}
		err := in.Validate()
		if err != nil {
			if vaultcrux.ErrorKind(err) != vaultcrux.Invalid {
				t.Fatalf("%+v: error of kind %s", in, vaultcrux.ErrorKind(err))
			}
			return
		}
		set := 0
		for _, v := range []string{receiptID, chunkID, source} {
			if v == "" {
				continue
			}
			set++
			if len(v) > 512 || strings.ContainsAny(v, "\x00\r\n") {
				t.Fatalf("accepted %q", v)
			}
		}
		if set != 1 {
			t.Fatalf("accepted %d references in %+v", set, in)
		}
	})
}

// FuzzDecideArgs sends arbitrary argument bytes through the whole gate:
// it must never panic, always record, deny anything that is not strict
// JSON (policy_error), deny JSON that is not an object, and allow an
// object for a tool without argument rules.
func FuzzDecideArgs(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"query":"q","topK":3}`, `[]`, `null`, `"str"`, `1e400`, `{"a":1,"a":2}`,
		`{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `{"a":`, `{} {}`, ` { "x" : [1, 2.50, {"y": null}] } `,
		`{"__proto__":{}}`, `{"a":1}garbage`, "\ufeff{}",
	} {
		f.Add([]byte(s))
	}
	e := newEnv(f, envOpts{})
	owner := e.tenant("acme")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, args []byte) {
		r := e.g.Decide(ctx, &gate.Call{Principal: owner, Tool: gate.ToolQueryVault, Args: json.RawMessage(args)})
		if !r.Recorded {
			t.Fatalf("%q: unrecorded %+v", args, r.Decision)
		}
		h, err := shield.ArgsHash(args)
		d := r.Decision
		switch {
		case err != nil:
			if d.Outcome != shield.OutcomeDeny || d.DenialType != shield.DenialPolicyError || d.ArgsHash != "" {
				t.Fatalf("%q is not strict JSON (%v), yet: %+v", args, err, d)
			}
		case len(bytes.TrimSpace(args)) > 0 && bytes.TrimSpace(args)[0] != '{':
			if d.Outcome != shield.OutcomeDeny || d.DenialType != shield.DenialArgumentRuleViolation || d.ArgsHash != h {
				t.Fatalf("%q is not an object, yet: %+v", args, d)
			}
		default:
			if d.Outcome != shield.OutcomeAllow || d.ArgsHash != h {
				t.Fatalf("%q: %+v", args, d)
			}
		}
	})
}
