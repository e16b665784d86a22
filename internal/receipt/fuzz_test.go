package receipt

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"testing"

	"github.com/veraison/go-cose"

	"github.com/vaultcrux/vaultcrux"
)

// FuzzParseJSON checks that ParseJSON never panics, fails only with an
// Invalid *vaultcrux.Error, accepts only what encoding/json also takes for
// JSON, and that Canonical of what it accepts is a fixed point.
func FuzzParseJSON(f *testing.F) {
	f.Add([]byte(`{"b":[1,2.50,-0,1e21,1E-7],"a":{"\u00e9":null,"\ud83d\ude00":true}}`))
	f.Add([]byte(`{"a":1,"\u0061":2}`))
	f.Add([]byte(`"\ud800"`))
	f.Add([]byte("\"\u2028<>&\x7f\""))
	f.Add([]byte(`[1e309]`))
	f.Add([]byte(`0.30000000000000004`))
	f.Add([]byte(" [ ] "))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseJSON(data)
		if err != nil {
			var e *vaultcrux.Error
			if !errors.As(err, &e) || e.Kind != vaultcrux.Invalid {
				t.Fatalf("ParseJSON(%q): error %v is not an Invalid *vaultcrux.Error", data, err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("ParseJSON accepted %q, which encoding/json rejects", data)
		}
		c1, err := Canonical(v)
		if err != nil {
			t.Fatalf("Canonical(ParseJSON(%q)): %v", data, err)
		}
		if !json.Valid(c1) {
			t.Fatalf("Canonical wrote %q, which encoding/json rejects", c1)
		}
		v2, err := ParseJSON(c1)
		if err != nil {
			t.Fatalf("ParseJSON(Canonical(%q)) = %q: %v", data, c1, err)
		}
		c2, err := Canonical(v2)
		if err != nil {
			t.Fatalf("Canonical again: %v", err)
		}
		if !bytes.Equal(c1, c2) {
			t.Fatalf("Canonical not a fixed point for %q:\n%q\n%q", data, c1, c2)
		}
	})
}

// FuzzFormatNumber checks that FormatNumber writes a JSON number that reads
// back as the same float64 and that it is a fixed point.
func FuzzFormatNumber(f *testing.F) {
	for _, v := range []float64{0, math.Copysign(0, -1), 1, -1.5, 0.1, 1e21, 1e20, 1e-7, 1e-6, 5e-324, math.MaxFloat64, 1 << 53, 0.30000000000000004, 123456789012345680} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		in := json.Number(strconv.FormatFloat(v, 'g', -1, 64))
		s, err := FormatNumber(in)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			if err == nil {
				t.Fatalf("FormatNumber(%v) = %q, want an error", v, s)
			}
			return
		}
		if err != nil {
			t.Fatalf("FormatNumber(%v): %v", v, err)
		}
		got, err := strconv.ParseFloat(s, 64)
		if err != nil || got != v {
			t.Fatalf("FormatNumber(%v) = %q, which reads back as %v, %v", v, s, got, err)
		}
		if numberLen([]byte(s)) != len(s) {
			t.Fatalf("FormatNumber(%v) = %q, not a JSON number", v, s)
		}
		if again, err := FormatNumber(json.Number(s)); err != nil || again != s {
			t.Fatalf("FormatNumber(%q) = %q, %v; want it unchanged", s, again, err)
		}
	})
}

// FuzzParse checks that Parse never panics, fails only with a malformed
// *Failure, and that what it accepts serialises, parses back to the same
// bytes, hashes, and verifies without panicking.
func FuzzParse(f *testing.F) {
	e, a := signedEvent(f), signedAnswer(f)
	f.Add(mustBytes(f, e))
	f.Add(mustBytes(f, a))
	f.Add(mustBytes(f, e.WithSignature(nil)))
	f.Add([]byte(`{"answerId":"a","receiptId":"r","receiptHash":"h","mode":"m","queryHash":"q","fusion":{},"retrieval":{},"selection":{},"timings":{},"evidence":[{"sourceId":"s","role":"support","quoteHash":"` + bareQuoteHash + `"}]}`))
	f.Add([]byte(`{"kind":"k"}`))
	keys := keySetOf(statusActive, vectorSigner())
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err != nil {
			if got := failureCode(err); got != CodeMalformed {
				t.Fatalf("Parse(%q): code %q, want %q", data, got, CodeMalformed)
			}
			return
		}
		b, err := d.Bytes()
		if err != nil {
			t.Fatalf("Bytes: %v", err)
		}
		d2, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse(Bytes()) of %q: %v", data, err)
		}
		if b2 := mustBytes(t, d2); !bytes.Equal(b, b2) || d2.Class() != d.Class() {
			t.Fatalf("Parse(Bytes()) changed the receipt:\n%q\n%q", b, b2)
		}
		if _, err := d.ComputeHash(); err != nil {
			t.Fatalf("ComputeHash: %v", err)
		}
		if d.Class() == ClassAnswer {
			if _, err := d.AnswerPayload(); err != nil {
				t.Fatalf("AnswerPayload: %v", err)
			}
		}
		for _, ks := range []KeySet{keys, nil} {
			if err := Verify(d, ks); err != nil {
				var fl *Failure
				if !errors.As(err, &fl) {
					t.Fatalf("Verify: %v is not a *Failure", err)
				}
			}
		}
	})
}

// FuzzDecodeCOSE feeds each input to DecodeCOSE twice: as an envelope,
// and as the payload of an envelope validly signed by a trusted key, so
// that the payload decoder is reached. Whatever is accepted must be what
// EncodeCOSE writes for the decoded receipt.
func FuzzDecodeCOSE(f *testing.F) {
	d := signedEvent(f)
	good, err := EncodeCOSE(d, vectorSigner())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[1:])
	ans, err := EncodeCOSE(signedAnswer(f), vectorSigner())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ans)
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(good); err != nil {
		f.Fatal(err)
	}
	f.Add(msg.Payload)
	f.Add([]byte{0xa0})
	keys := keySetOf(statusActive, vectorSigner())
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(env []byte) {
			got, err := DecodeCOSE(env, keys)
			if err != nil {
				var fl *Failure
				if !errors.As(err, &fl) {
					t.Fatalf("DecodeCOSE: %v is not a *Failure", err)
				}
				return
			}
			var in cose.Sign1Message
			if err := (*cose.UntaggedSign1Message)(&in).UnmarshalCBOR(bytes.TrimPrefix(env, []byte{0xd2})); err != nil {
				t.Fatalf("DecodeCOSE accepted what go-cose cannot parse: %v", err)
			}
			out, err := EncodeCOSE(got, vectorSigner())
			if err != nil {
				t.Fatalf("EncodeCOSE of an accepted receipt: %v", err)
			}
			var re cose.Sign1Message
			if err := re.UnmarshalCBOR(out); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(in.Payload, re.Payload) {
				t.Fatalf("accepted payload %x, EncodeCOSE writes %x", in.Payload, re.Payload)
			}
			p, err := Parse(mustBytes(t, got))
			if err != nil || !bytes.Equal(mustBytes(t, p), mustBytes(t, got)) {
				t.Fatalf("Parse(Bytes()) of a decoded receipt: %v", err)
			}
		}
		if len(data) <= maxCOSELen+16 {
			check(data)
		}
		if len(data) < 1<<16 {
			check(rawEnvelope(t, stdHeader(vectorKID), data, vectorSigner()))
		}
	})
}
