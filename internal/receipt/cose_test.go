package receipt

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/veraison/go-cose"
)

func TestCOSERoundTrip(t *testing.T) {
	keys := keySetOf(statusActive, vectorSigner())
	unsignedAnswer, err := NewAnswer(vectorAnswer())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		d    *Doc
	}{
		{"signed event", signedEvent(t)},
		{"signed answer", signedAnswer(t)},
		{"pending event", signedEvent(t).WithSignature(nil)},
		{"pending answer", unsignedAnswer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := EncodeCOSE(tt.d, vectorSigner())
			if err != nil {
				t.Fatal(err)
			}
			again, err := EncodeCOSE(tt.d, vectorSigner())
			if err != nil || !bytes.Equal(out, again) {
				t.Errorf("EncodeCOSE is not deterministic")
			}
			for _, form := range []struct {
				name string
				data []byte
			}{{"tagged", out}, {"untagged", out[1:]}} {
				got, err := DecodeCOSE(form.data, keys)
				if err != nil {
					t.Fatalf("%s: DecodeCOSE: %v", form.name, err)
				}
				parsed, err := Parse(mustBytes(t, tt.d))
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(parsed.obj, got.obj); diff != "" {
					t.Errorf("%s: DecodeCOSE differs from Parse (-parse +cose):\n%s", form.name, diff)
				}
				if got.Class() != tt.d.Class() {
					t.Errorf("%s: class %q, want %q", form.name, got.Class(), tt.d.Class())
				}
			}
		})
	}
}

func TestCOSEHeaders(t *testing.T) {
	out, err := EncodeCOSE(signedEvent(t), vectorSigner())
	if err != nil {
		t.Fatal(err)
	}
	if out[0] != 0xd2 {
		t.Errorf("first byte %#x, want tag 18 (0xd2)", out[0])
	}
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(out); err != nil {
		t.Fatal(err)
	}
	want := cose.ProtectedHeader{
		cose.HeaderLabelAlgorithm:   cose.AlgorithmEdDSA,
		cose.HeaderLabelContentType: COSEContentType,
		cose.HeaderLabelKeyID:       []byte(vectorKID),
	}
	if diff := cmp.Diff(want, msg.Headers.Protected); diff != "" {
		t.Errorf("protected header mismatch (-want +got):\n%s", diff)
	}
	if len(msg.Headers.Unprotected) != 0 {
		t.Errorf("unprotected header %v, want empty", msg.Headers.Unprotected)
	}
	if want := rawEnvelope(t, stdHeader(vectorKID), msg.Payload, vectorSigner()); !bytes.Equal(out, want) {
		t.Errorf("EncodeCOSE differs from the envelope built by hand:\n got %x\nwant %x", out, want)
	}
}

// envelope signs payload under the given protected header with signer, as
// an attacker or a foreign implementation might.
func envelope(t *testing.T, protected cose.ProtectedHeader, payload []byte, signer cose.Signer) []byte {
	t.Helper()
	msg := cose.NewSign1Message()
	msg.Headers.Protected = protected
	msg.Payload = payload
	if err := msg.Sign(rand.Reader, nil, signer); err != nil {
		t.Fatal(err)
	}
	out, err := msg.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rawEnvelope builds a tagged COSE_Sign1 by hand (RFC 9052 §4.2, §4.4),
// without go-cose, so that it can make headers go-cose refuses to write.
func rawEnvelope(t *testing.T, protected map[any]any, payload []byte, s *testSigner) []byte {
	t.Helper()
	enc := func(v any) []byte {
		b, err := payloadEnc.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	header := enc(protected)
	toBeSigned := enc([]any{"Signature1", header, []byte{}, payload})
	sig := ed25519.Sign(s.priv, toBeSigned)
	return enc(cbor.Tag{Number: 18, Content: []any{header, map[any]any{}, payload, sig}})
}

func stdHeader(kid string) map[any]any {
	return map[any]any{
		int64(1): int64(-8), // alg: EdDSA
		int64(3): COSEContentType,
		int64(4): []byte(kid),
	}
}

// bigEvent returns a signed event receipt whose canonical JSON is about
// size bytes.
func bigEvent(t *testing.T, size int) *Doc {
	t.Helper()
	e := vectorEvent()
	e.Details = map[string]any{"x": strings.Repeat("a", size-500)}
	d, err := NewEvent(e)
	return mustSigned(t, d, err)
}

// payloadOf returns the deterministic CBOR of obj, after change.
func payloadOf(t *testing.T, d *Doc, change func(v map[string]any)) []byte {
	t.Helper()
	v, err := toCBOR(d.obj)
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	if change != nil {
		change(m)
	}
	b, err := payloadEnc.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeCOSEFailures(t *testing.T) {
	d := signedEvent(t)
	keys := keySetOf(statusActive, vectorSigner())
	good, err := EncodeCOSE(d, vectorSigner())
	if err != nil {
		t.Fatal(err)
	}
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(good); err != nil {
		t.Fatal(err)
	}
	remarshal := func(change func(m *cose.Sign1Message)) []byte {
		m := msg
		m.Payload = bytes.Clone(msg.Payload)
		m.Signature = bytes.Clone(msg.Signature)
		change(&m)
		out, err := m.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	es256, err := cose.NewSigner(cose.AlgorithmES256, p256)
	if err != nil {
		t.Fatal(err)
	}
	es256Header := cose.ProtectedHeader{
		cose.HeaderLabelAlgorithm:   cose.AlgorithmES256,
		cose.HeaderLabelContentType: COSEContentType,
		cose.HeaderLabelKeyID:       []byte(vectorKID),
	}
	ed := vectorSigner()
	payload := payloadOf(t, d, nil)
	with := func(label int64, v any) map[any]any {
		h := stdHeader(vectorKID)
		if v == nil {
			delete(h, label)
		} else {
			h[label] = v
		}
		return h
	}
	other := otherSigner("vaultcrux-signing:v2", 0x42)

	tests := []struct {
		name string
		data []byte
		keys KeySet
		want string
	}{
		{"payload byte flipped", remarshal(func(m *cose.Sign1Message) { m.Payload[40] ^= 0x01 }), keys, CodeSignatureMismatch},
		{"signature byte flipped", remarshal(func(m *cose.Sign1Message) { m.Signature[0] ^= 0x01 }), keys, CodeSignatureMismatch},
		{"signature truncated", remarshal(func(m *cose.Sign1Message) { m.Signature = m.Signature[:63] }), keys, CodeSignatureMismatch},
		{"unprotected header ignored", remarshal(func(m *cose.Sign1Message) {
			m.Headers.Unprotected = cose.UnprotectedHeader{cose.HeaderLabelKeyID: []byte("other")}
			m.Headers.RawUnprotected = nil
		}), keys, ""},
		{"kid not in keys", good, keySetOf(statusActive, other), CodeSignatureMismatch},
		{"nil keys", good, nil, CodeSignatureMismatch},
		{"kid revoked", good, keySetOf(statusRevoked, vectorSigner()), CodeKeyRevoked},
		{"kid retired", good, keySetOf(statusRetired, vectorSigner()), ""},
		{"kid names another key", rawEnvelope(t, stdHeader(other.kid), payload, ed), keySetOf(statusActive, vectorSigner(), other), CodeSignatureMismatch},
		{"signed by another key under our kid", rawEnvelope(t, stdHeader(vectorKID), payload, other), keys, CodeSignatureMismatch},
		{"alg ES256", envelope(t, es256Header, payload, es256), keys, CodeSignatureMismatch},
		{"alg missing", rawEnvelope(t, with(1, nil), payload, ed), keys, CodeSignatureMismatch},
		{"kid missing", rawEnvelope(t, with(4, nil), payload, ed), keys, CodeSignatureMismatch},
		{"kid empty", rawEnvelope(t, with(4, []byte{}), payload, ed), keys, CodeSignatureMismatch},
		{"kid as text", rawEnvelope(t, with(4, vectorKID), payload, ed), keys, CodeMalformed},
		{"alg as text", rawEnvelope(t, with(1, "EdDSA"), payload, ed), keys, CodeSignatureMismatch},
		{"alg in unprotected header only", func() []byte {
			m := msg
			m.Headers.RawProtected = nil
			m.Headers.Protected = cose.ProtectedHeader{cose.HeaderLabelContentType: COSEContentType, cose.HeaderLabelKeyID: []byte(vectorKID)}
			m.Headers.RawUnprotected = nil
			m.Headers.Unprotected = cose.UnprotectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmEdDSA}
			out, err := m.MarshalCBOR()
			if err != nil {
				t.Fatal(err)
			}
			return out
		}(), keys, CodeSignatureMismatch},
		{"hand-built envelope accepted", rawEnvelope(t, stdHeader(vectorKID), payload, ed), keys, ""},
		{"content type missing", rawEnvelope(t, with(3, nil), payload, ed), keys, CodeMalformed},
		{"content type other", rawEnvelope(t, with(3, "application/json"), payload, ed), keys, CodeMalformed},
		{"content type number", rawEnvelope(t, with(3, int64(60)), payload, ed), keys, CodeMalformed},
		{"extra protected parameter", rawEnvelope(t, with(100, "x"), payload, ed), keys, CodeMalformed},
		{"crit parameter", rawEnvelope(t, func() map[any]any {
			h := with(100, "x")
			h[int64(2)] = []any{int64(100)}
			return h
		}(), payload, ed), keys, CodeMalformed},
		{"crit naming an absent parameter", rawEnvelope(t, with(2, []any{int64(99)}), payload, ed), keys, CodeMalformed},
		{"payload not deterministic: integer as float", rawEnvelope(t, stdHeader(vectorKID), payloadOf(t, d, func(v map[string]any) {
			v["details"].(map[string]any)["policyVersion"] = float64(7)
		}), ed), keys, CodeMalformed},
		{"payload not deterministic: integer not in shortest form", rawEnvelope(t, stdHeader(vectorKID), payloadOf(t, d, func(v map[string]any) {
			v["details"].(map[string]any)["policyVersion"] = cbor.RawMessage{0x18, 0x07}
		}), ed), keys, CodeMalformed},
		{"payload not deterministic: float wider than needed", rawEnvelope(t, stdHeader(vectorKID), payloadOf(t, d, func(v map[string]any) {
			v["details"].(map[string]any)["score"] = cbor.RawMessage{0xfb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0} // 0.5 as float64
		}), ed), keys, CodeMalformed},
		{"payload with a byte string", rawEnvelope(t, stdHeader(vectorKID), payloadOf(t, d, func(v map[string]any) {
			v["details"].(map[string]any)["x"] = []byte{1}
		}), ed), keys, CodeMalformed},
		{"payload with an integer key", rawEnvelope(t, stdHeader(vectorKID), payloadOf(t, d, func(v map[string]any) {
			v["details"] = map[any]any{int64(1): "x"}
		}), ed), keys, CodeMalformed},
		{"payload with a tag", rawEnvelope(t, stdHeader(vectorKID), payloadOf(t, d, func(v map[string]any) {
			v["details"].(map[string]any)["x"] = cbor.Tag{Number: 1, Content: int64(0)}
		}), ed), keys, CodeMalformed},
		{"payload with undefined", rawEnvelope(t, stdHeader(vectorKID), payloadOf(t, d, func(v map[string]any) {
			v["details"].(map[string]any)["x"] = cbor.SimpleValue(23)
		}), ed), keys, CodeMalformed},
		{"payload with an inexact integer", rawEnvelope(t, stdHeader(vectorKID), payloadOf(t, d, func(v map[string]any) {
			v["details"].(map[string]any)["x"] = uint64(1)<<53 + 1
		}), ed), keys, CodeMalformed},
		{"payload with NaN", rawEnvelope(t, stdHeader(vectorKID), payloadOf(t, d, func(v map[string]any) {
			v["details"].(map[string]any)["x"] = cbor.RawMessage{0xf9, 0x7e, 0x00}
		}), ed), keys, CodeMalformed},
		{"payload not a receipt", rawEnvelope(t, stdHeader(vectorKID), []byte{0x80}, ed), keys, CodeMalformed},
		{"payload not CBOR", rawEnvelope(t, stdHeader(vectorKID), []byte{0xff}, ed), keys, CodeMalformed},
		{"payload with trailing bytes", rawEnvelope(t, stdHeader(vectorKID), append(bytes.Clone(payload), 0x00), ed), keys, CodeMalformed},
		{"payload hash mismatch", rawEnvelope(t, stdHeader(vectorKID), payloadOf(t, d, func(v map[string]any) {
			v["kind"] = "shield.allow"
		}), ed), keys, CodeHashMismatch},
		{"payload detached", remarshal(func(m *cose.Sign1Message) { m.Payload = nil }), keys, CodeMalformed},
		{"trailing bytes", append(bytes.Clone(good), 0x00), keys, CodeMalformed},
		{"truncated", good[:len(good)-1], keys, CodeMalformed},
		{"empty", nil, keys, CodeMalformed},
		{"other tag", append([]byte{0xd8, 0x62}, good[1:]...), keys, CodeMalformed},
		{"array of 3", append([]byte{0x83}, good[2:]...), keys, CodeMalformed},
		{"JSON", mustBytes(t, d), keys, CodeMalformed},
		{"over 1 MiB", rawEnvelope(t, stdHeader(vectorKID), payloadOf(t, bigEvent(t, 1<<20), nil), ed), keys, CodeMalformed},
		{"just under 1 MiB", rawEnvelope(t, stdHeader(vectorKID), payloadOf(t, bigEvent(t, 1<<20-1200), nil), ed), keys, ""},
	}
	// Where a later check would refuse the input too, the reason matters.
	details := map[string]string{
		"alg ES256":                 "algorithm is not EdDSA",
		"extra protected parameter": "unexpected COSE protected header parameter",
		"crit parameter":            "unexpected COSE protected header parameter",
		"over 1 MiB":                "larger than 1 MiB",
		"payload not deterministic: integer as float": "deterministic",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeCOSE(tt.data, tt.keys)
			if code := failureCode(err); code != tt.want {
				t.Errorf("DecodeCOSE: code %q (%v), want %q", code, err, tt.want)
			}
			if want, ok := details[tt.name]; ok && (err == nil || !strings.Contains(err.Error(), want)) {
				t.Errorf("DecodeCOSE: error %v, want it to say %q", err, want)
			}
			if (got == nil) != (tt.want != "") {
				t.Errorf("DecodeCOSE returned doc %v with error %v", got, err)
			}
		})
	}
}

func TestEncodeCOSEErrors(t *testing.T) {
	d := signedEvent(t)
	if _, err := EncodeCOSE(d, nil); err == nil {
		t.Errorf("EncodeCOSE with a nil signer succeeded")
	}
	if _, err := EncodeCOSE(d, faultySigner{vectorSigner()}); err == nil {
		t.Errorf("EncodeCOSE with a faulty signer succeeded")
	}
	if _, err := EncodeCOSE(nil, vectorSigner()); failureCode(err) != CodeReceiptMissing {
		t.Errorf("EncodeCOSE(nil) = %v, want %s", err, CodeReceiptMissing)
	}
	big := vectorEvent()
	big.Details = map[string]any{"x": string(make([]byte, 1<<20))}
	bd, err := NewEvent(big)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EncodeCOSE(bd, vectorSigner()); err == nil {
		t.Errorf("EncodeCOSE of a receipt over 1 MiB succeeded")
	}
}

// TestCOSENumbers checks the number mapping both ways on the edges: -0,
// integers near 2**53 and 2**63, fractions, exponents.
func TestCOSENumbers(t *testing.T) {
	e := vectorEvent()
	e.Details = map[string]any{
		"negzero": []any{json.Number("-0"), json.Number("0.0")},
		"ints":    []any{json.Number("1"), json.Number("-1"), json.Number("255"), json.Number("65536"), json.Number("9007199254740993"), json.Number("1e18"), json.Number("-9223372036854775808")},
		"edges":   []any{json.Number("9223372036854775807"), json.Number("1e19"), json.Number("1e21")},
		"floats":  []any{json.Number("0.5"), json.Number("0.65"), json.Number("1e-7"), json.Number("5e-324"), json.Number("1.7976931348623157e308"), json.Number("-2.5")},
	}
	d, err := NewEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	d = mustSigned(t, d, nil)
	out, err := EncodeCOSE(d, vectorSigner())
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeCOSE(out, keySetOf(statusActive, vectorSigner()))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(mustBytes(t, d)), string(mustBytes(t, got))); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
	if err := Verify(got, nil); err != nil {
		t.Errorf("Verify after round trip: %v", err)
	}
}
