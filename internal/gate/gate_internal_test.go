package gate

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/keyring"
	"github.com/vaultcrux/vaultcrux/internal/ledger"
	"github.com/vaultcrux/vaultcrux/internal/shield"
	"github.com/vaultcrux/vaultcrux/internal/store/sqlite"
)

type noKeys struct{}

func (noKeys) Current() (*keyring.SigningKey, error) { return nil, keyring.ErrSignerUnavailable }

type nopSealer struct{}

func (nopSealer) Seal(_ context.Context, _ vaultcrux.TenantID, _ string, b []byte) ([]byte, error) {
	return b, nil
}
func (nopSealer) Open(_ context.Context, _ vaultcrux.TenantID, _ string, b []byte) ([]byte, error) {
	return b, nil
}

func minimalConfig(t *testing.T) Config {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	led := ledger.New(ledger.Config{Store: st, Keys: noKeys{}, Now: time.Now, Rand: rand.Reader})
	t.Cleanup(led.Close)
	return Config{Store: st, Ledger: led, Sealer: nopSealer{}, Flags: shield.Flags{Enabled: true}, Builtin: BuiltinTools()}
}

// The defaults the contract relies on: a kill switch engaged anywhere
// takes effect here within a second, so the poll must be well under it;
// approval tokens live 15 minutes.
func TestNewDefaults(t *testing.T) {
	g, err := New(minimalConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	c := g.cfg
	if c.Poll <= 0 || c.Poll > 250*time.Millisecond {
		t.Errorf("Poll %v, want at most 250ms", c.Poll)
	}
	if c.StaleAfter <= c.Poll || c.StaleAfter > 2*time.Second {
		t.Errorf("StaleAfter %v, want between Poll and 2s", c.StaleAfter)
	}
	if c.TokenTTL != 15*time.Minute || c.ApprovalTTL != time.Hour || c.SessionTaintTTL != time.Hour {
		t.Errorf("TTLs token %v approval %v taint %v", c.TokenTTL, c.ApprovalTTL, c.SessionTaintTTL)
	}
	if g.mode != shield.ModeEnforce || g.taintAc != shield.TaintBlock || c.Now == nil || c.Rand == nil || g.log == nil {
		t.Errorf("mode %q taint action %q", g.mode, g.taintAc)
	}
	if g.fresh() {
		t.Error("a new gate claims a fresh state before its first poll")
	}
}

func TestNewRejects(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"no store":        func(c *Config) { c.Store = nil },
		"no ledger":       func(c *Config) { c.Ledger = nil },
		"no sealer":       func(c *Config) { c.Sealer = nil },
		"bad mode":        func(c *Config) { c.Mode = "sometimes" },
		"bad taint":       func(c *Config) { c.TaintAction = "shrug" },
		"duplicate tools": func(c *Config) { c.Builtin = append(BuiltinTools(), BuiltinTools()[0]) },
	} {
		c := minimalConfig(t)
		mod(&c)
		if g, err := New(c); err == nil || g != nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// FuzzAnswerChunks feeds receipt bodies (stored bytes, possibly another
// kind of receipt, possibly damaged) to the parser that decides which
// chunks an answer receipt cites.
func FuzzAnswerChunks(f *testing.F) {
	f.Add([]byte(`{"answerId":"a1","evidence":[{"chunkId":"doc#0"},{"chunkId":"doc#1"}]}`))
	f.Add([]byte(`{"answerId":"a1","evidence":[]}`))
	f.Add([]byte(`{"answerId":"a1","evidence":[{"sourceId":"doc"}]}`))
	f.Add([]byte(`{"kind":"shield.decision","details":{}}`))
	f.Add([]byte(`{"answerId":"","evidence":[{"chunkId":"x"}]}`))
	f.Add([]byte(`{"answerId":"a","evidence":null}`))
	f.Add([]byte(`[1,2,3]`))
	f.Add([]byte(`{"answerId":"a","evidence":[{"chunkId":7}]}`))
	f.Add([]byte{0xff, 0xfe})
	f.Fuzz(func(t *testing.T, body []byte) {
		ids, ok := answerChunks(body)
		if !ok {
			if ids != nil {
				t.Fatalf("not an answer, yet ids %q", ids)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var doc struct {
			AnswerID string            `json:"answerId"`
			Evidence []json.RawMessage `json:"evidence"`
		}
		if err := json.Unmarshal(body, &doc); err != nil || doc.AnswerID == "" || len(doc.Evidence) != len(ids) {
			t.Fatalf("accepted %q: answer %q, %d evidence, ids %q (%v)", body, doc.AnswerID, len(doc.Evidence), ids, err)
		}
		for _, id := range ids {
			if id == "" {
				t.Fatalf("empty chunk id accepted from %q", body)
			}
		}
	})
}

// A decision on a gate whose every store access fails is a deny that no
// panic and no nil state can turn into anything else.
func TestDecideWithoutStateNeverAllows(t *testing.T) {
	c := minimalConfig(t)
	g, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	// The tenant does not exist, the signer is down: nothing can be
	// recorded, and nothing is allowed.
	r := g.Decide(context.Background(), &Call{Principal: vaultcrux.Principal{Tenant: "ghost", ID: "key:x"}, Tool: ToolQueryVault})
	if r.Decision.Outcome != shield.OutcomeDeny || r.Decision.DenialType != shield.DenialPolicyError {
		t.Fatalf("got %+v", r.Decision)
	}
	var de *DecisionError
	if !errors.As(r.Err(), &de) || de.Message() == "" {
		t.Fatalf("Err() = %v", r.Err())
	}
}
