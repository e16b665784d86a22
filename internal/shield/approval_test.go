package shield

import (
	"strings"
	"testing"

	"github.com/vaultcrux/vaultcrux"
)

func TestArgsHashCanonical(t *testing.T) {
	h := func(s string) string {
		t.Helper()
		got, err := ArgsHash([]byte(s))
		if err != nil {
			t.Fatalf("ArgsHash(%s): %v", s, err)
		}
		return got
	}
	base := h(`{"to":"bob@example.com","n":[1,2.5],"opts":{"a":true,"b":null}}`)
	if !strings.HasPrefix(base, "blake3:") || len(base) != 7+64 {
		t.Fatalf("ArgsHash = %q", base)
	}
	for _, same := range []string{
		`{"opts":{"b":null,"a":true},"n":[1,2.5],"to":"bob@example.com"}`,
		" {\n\t\"to\" : \"bob@example.com\" , \"n\" : [ 1.0 , 25e-1 ] ,\"opts\":{\"a\":true,\"b\":null} } ",
		`{"to":"bob\u0040example.com","n":[1,2.5],"opts":{"a":true,"b":null}}`,
	} {
		if got := h(same); got != base {
			t.Errorf("ArgsHash(%s) differs from the same arguments written otherwise", same)
		}
	}
	for _, other := range []string{
		`{"to":"bob@example.com","n":[2,1],"opts":{"a":true,"b":null}}`,
		`{"to":"bob@example.com","n":[1,2.5],"opts":{"a":true}}`,
		`{"to":"Bob@example.com","n":[1,2.5],"opts":{"a":true,"b":null}}`,
		`{"to":"bob@example.com","n":[1,"2.5"],"opts":{"a":true,"b":null}}`,
	} {
		if got := h(other); got == base {
			t.Errorf("ArgsHash(%s) equals the hash of other arguments", other)
		}
	}
	if h("") != h("{}") || h("{}") == h("[]") {
		t.Error("empty arguments must hash as {} and only as {}")
	}
	for _, bad := range []string{`{"a":`, `{"a":1,"a":2}`, "{\"a\":\"\xff\"}", `{"a":1} x`, `NaN`} {
		if got, err := ArgsHash([]byte(bad)); err == nil || vaultcrux.ErrorKind(err) != vaultcrux.Invalid {
			t.Errorf("ArgsHash(%q) = %q, %v; want an Invalid error", bad, got, err)
		}
	}
}

func TestApprovalBinding(t *testing.T) {
	args, _ := ArgsHash([]byte(`{"amount":100}`))
	fields := [6]string{"t1", "ap_1", "acme", "wire", args, "blake3:" + strings.Repeat("1", 64)}
	bind := func(f [6]string) string { return ApprovalBinding(f[0], f[1], f[2], f[3], f[4], f[5]) }
	base := bind(fields)
	if !strings.HasPrefix(base, "blake3:") || len(base) != 7+64 || bind(fields) != base {
		t.Fatalf("ApprovalBinding = %q, not a stable blake3 value", base)
	}
	otherArgs, _ := ArgsHash([]byte(`{"amount":1000}`))
	changes := map[string][6]string{}
	for i, v := range []string{"t2", "ap_2", "acme-b", "wire_all", otherArgs, "blake3:" + strings.Repeat("2", 64)} {
		f := fields
		f[i] = v
		changes[[]string{"tenant", "approval", "server", "tool", "args", "manifest"}[i]] = f
	}
	// Moving bytes across a field boundary, or swapping fields, is a
	// change too: the encoding is length-prefixed.
	changes["shifted boundary"] = [6]string{"t1a", "p_1", "acme", "wire", args, fields[5]}
	changes["swapped fields"] = [6]string{"ap_1", "t1", "acme", "wire", args, fields[5]}
	changes["empty tenant"] = [6]string{"", "t1ap_1", "acme", "wire", args, fields[5]}
	seen := map[string]string{base: "base"}
	for name, f := range changes {
		got := bind(f)
		if prev, dup := seen[got]; dup {
			t.Errorf("%s: binding equals that of %s", name, prev)
		}
		seen[got] = name
	}
}

func TestApprovalOutcomes(t *testing.T) {
	m := mustManifest(t, builtins(), pinned(t, acme()))
	args := []byte(`{"to":"bob@example.com"}`)
	tests := []struct {
		name  string
		tool  string
		check ApprovalCheck
		tiers []RiskTier
		want  brief
	}{
		{"high risk, no token", "wire", ApprovalCheck{}, nil,
			brief{Outcome: OutcomeApprovalRequired, Verdict: OutcomeApprovalRequired, Stage: StageApproval, Enforced: true, WouldBlock: true}},
		{"high risk, valid token", "wire", ApprovalCheck{Presented: true, Status: ApprovalValid, ApprovalID: "ap_1"}, nil, allowed},
		{"high risk, invalid token", "wire", ApprovalCheck{Presented: true, Status: ApprovalInvalid}, nil, denied(StageApproval, DenialApprovalTokenInvalid)},
		{"high risk, expired token", "wire", ApprovalCheck{Presented: true, Status: ApprovalExpired}, nil, denied(StageApproval, DenialApprovalTokenExpired)},
		{"high risk, used token", "wire", ApprovalCheck{Presented: true, Status: ApprovalUsed}, nil, denied(StageApproval, DenialApprovalTokenExpired)},
		{"high risk, unknown status", "wire", ApprovalCheck{Presented: true, Status: "ok"}, nil, denied(StageApproval, DenialApprovalTokenInvalid)},
		{"high risk, presented without status", "wire", ApprovalCheck{Presented: true}, nil, denied(StageApproval, DenialApprovalTokenInvalid)},
		{"tool requires approval", "flagged", ApprovalCheck{}, nil,
			brief{Outcome: OutcomeApprovalRequired, Verdict: OutcomeApprovalRequired, Stage: StageApproval, Enforced: true, WouldBlock: true}},
		{"low risk, no token", "lookup", ApprovalCheck{}, nil, allowed},
		{"low risk, valid token", "lookup", ApprovalCheck{Presented: true, Status: ApprovalValid, ApprovalID: "ap_1"}, nil, allowed},
		{"low risk, expired token", "lookup", ApprovalCheck{Presented: true, Status: ApprovalExpired}, nil, denied(StageApproval, DenialApprovalTokenExpired)},
		{"tiers: none", "wire", ApprovalCheck{}, []RiskTier{}, allowed},
		{"tiers: low", "lookup", ApprovalCheck{}, []RiskTier{RiskLow},
			brief{Outcome: OutcomeApprovalRequired, Verdict: OutcomeApprovalRequired, Stage: StageApproval, Enforced: true, WouldBlock: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := enforceAll()
			p.ApprovalTiers = tt.tiers
			d := Evaluate(p, m, nil, &Request{Tenant: "t1", Server: "acme", Tool: tt.tool, Args: args, Approval: tt.check})
			if got := briefOf(d); got != tt.want {
				t.Errorf("Evaluate = %+v, want %+v", got, tt.want)
			}
			if d.ApprovalID != tt.check.ApprovalID {
				t.Errorf("ApprovalID = %q, want %q", d.ApprovalID, tt.check.ApprovalID)
			}
		})
	}
}
