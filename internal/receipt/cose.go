package receipt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/vaultcrux/vaultcrux"
)

// COSEContentType is the content type (protected header 3) of a receipt's
// COSE_Sign1 envelope.
const COSEContentType = "application/vnd.crown.receipt+cbor"

// maxCOSELen bounds the envelopes DecodeCOSE reads and EncodeCOSE writes.
const maxCOSELen = 1 << 20

// The CBOR modes of the payload. Encoding is RFC 8949 Core Deterministic
// Encoding. Decoding refuses what that encoding never contains (tags,
// indefinite lengths, duplicate keys, invalid UTF-8) and bounds nesting;
// DecodeCOSE then re-encodes and compares, which refuses everything else
// that is not deterministic.
var payloadEnc, payloadDec = payloadModes()

func payloadModes() (cbor.EncMode, cbor.DecMode) {
	enc, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err) // constant options
	}
	dec, err := cbor.DecOptions{
		DupMapKey:       cbor.DupMapKeyEnforcedAPF,
		IndefLength:     cbor.IndefLengthForbidden,
		TagsMd:          cbor.TagsForbidden,
		MaxNestedLevels: maxDepth + 1,
		DefaultMapType:  reflect.TypeOf(map[string]any(nil)),
		UTF8:            cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err) // constant options
	}
	return enc, dec
}

// coseSigner adapts a Signer to go-cose. Ed25519 needs no randomness.
type coseSigner struct{ s Signer }

func (c coseSigner) Algorithm() cose.Algorithm { return cose.AlgorithmEdDSA }

func (c coseSigner) Sign(_ io.Reader, content []byte) ([]byte, error) {
	return signChecked(c.s, content)
}

// EncodeCOSE returns the receipt as a tagged COSE_Sign1 message (RFC 9052)
// signed by s. The protected header holds alg EdDSA (-8), kid (the bytes
// of s.KID()) and content type COSEContentType; the unprotected header is
// empty. The payload is the whole receipt object, signature field included,
// in CBOR Core Deterministic Encoding: a number is an integer when its
// value is a whole number in int64 range, a float (in its shortest exact
// width) otherwise. The output is deterministic.
//
// Like Sign, it refuses a Doc whose receiptHash does not match its
// content, with a *Failure of CodeHashMismatch.
func EncodeCOSE(d *Doc, s Signer) ([]byte, error) {
	if err := checkHash(d); err != nil {
		return nil, err
	}
	out, err := encodeCOSE(d, s)
	if err != nil {
		return nil, &vaultcrux.Error{Op: "receipt.EncodeCOSE", Err: err}
	}
	return out, nil
}

func encodeCOSE(d *Doc, s Signer) ([]byte, error) {
	if s == nil {
		return nil, errors.New("no signer")
	}
	v, err := toCBOR(d.obj)
	if err != nil {
		return nil, err
	}
	payload, err := payloadEnc.Marshal(v)
	if err != nil {
		return nil, err
	}
	msg := cose.NewSign1Message()
	msg.Headers.Protected.SetAlgorithm(cose.AlgorithmEdDSA)
	msg.Headers.Protected[cose.HeaderLabelKeyID] = []byte(s.KID())
	msg.Headers.Protected[cose.HeaderLabelContentType] = COSEContentType
	msg.Payload = payload
	if err := msg.Sign(nil, nil, coseSigner{s}); err != nil {
		return nil, err
	}
	out, err := msg.MarshalCBOR()
	if err != nil {
		return nil, err
	}
	if len(out) > maxCOSELen {
		return nil, fmt.Errorf("envelope of %d bytes is over the %d-byte limit", len(out), maxCOSELen)
	}
	return out, nil
}

// toCBOR converts a JSON value of a Doc to the value EncodeCOSE encodes.
func toCBOR(v any) (any, error) {
	switch v := v.(type) {
	case nil, bool, string:
		return v, nil
	case json.Number:
		f, err := parseNumber(v)
		if err != nil {
			return nil, err
		}
		if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
			return int64(f), nil // also turns -0 into 0, as JSON does
		}
		return f, nil
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			c, err := toCBOR(e)
			if err != nil {
				return nil, err
			}
			m[k] = c
		}
		return m, nil
	case []any:
		a := make([]any, len(v))
		for i, e := range v {
			c, err := toCBOR(e)
			if err != nil {
				return nil, err
			}
			a[i] = c
		}
		return a, nil
	default:
		return nil, fmt.Errorf("unsupported type %T in a receipt", v)
	}
}

// DecodeCOSE verifies a receipt's COSE_Sign1 envelope and returns the
// receipt in it. Both the tagged (tag 18) and the untagged form are
// accepted: the tag only names the structure, and the content type already
// says what the payload is.
//
// It refuses, as a *Failure:
//
//   - CodeMalformed: input over 1 MiB, not one COSE_Sign1 message, a
//     protected header parameter other than alg, content type and kid, a
//     content type other than COSEContentType, a detached payload, or a
//     payload that is not the deterministic CBOR of a receipt as
//     EncodeCOSE writes it (maps with text keys, no byte strings, tags or
//     simple values other than false, true and null);
//   - CodeSignatureMismatch: an alg other than EdDSA, no kid in the
//     protected header, a kid not in keys (a nil keys knows no kid), or a
//     signature that does not verify;
//   - CodeKeyRevoked: a kid that keys lists as revoked;
//   - CodeHashMismatch: a receipt whose receiptHash does not match its
//     content.
//
// The signature is checked before the payload is decoded. The unprotected
// header is not signed and is ignored. The signature object inside the
// receipt is not checked: Verify does that.
func DecodeCOSE(data []byte, keys KeySet) (*Doc, error) {
	if len(data) > maxCOSELen {
		return nil, fail(CodeMalformed, "COSE input larger than 1 MiB")
	}
	var msg cose.Sign1Message
	var err error
	switch {
	case len(data) > 0 && data[0] == 0xd2: // tag 18
		err = msg.UnmarshalCBOR(data)
	case len(data) > 0 && data[0] == 0x84: // array of 4
		err = (*cose.UntaggedSign1Message)(&msg).UnmarshalCBOR(data)
	default:
		return nil, fail(CodeMalformed, "not a COSE_Sign1 message")
	}
	if err != nil {
		return nil, fail(CodeMalformed, "not a valid COSE_Sign1 message")
	}
	kid, err := checkProtected(msg.Headers.Protected)
	if err != nil {
		return nil, err
	}
	if msg.Payload == nil {
		return nil, fail(CodeMalformed, "COSE payload is detached")
	}
	pub, err := keys.Public(kid)
	if err != nil {
		return nil, err
	}
	verifier, err := cose.NewVerifier(cose.AlgorithmEdDSA, pub)
	if err != nil {
		return nil, fail(CodeSignatureMismatch, "unusable key %q", kid)
	}
	if err := msg.Verify(nil, verifier); err != nil {
		return nil, fail(CodeSignatureMismatch, "COSE signature does not verify")
	}
	v, err := decodePayload(msg.Payload)
	if err != nil {
		return nil, err
	}
	d, err := newDoc(v)
	if err != nil {
		return nil, err
	}
	if err := checkHash(d); err != nil {
		return nil, err
	}
	return d, nil
}

// checkProtected checks the protected header and returns its kid.
func checkProtected(h cose.ProtectedHeader) (string, error) {
	for label := range h {
		switch label {
		case cose.HeaderLabelAlgorithm, cose.HeaderLabelContentType, cose.HeaderLabelKeyID:
		default:
			// Includes crit (2): a parameter this code does not understand
			// may change the meaning of the message, so none is accepted.
			return "", fail(CodeMalformed, "unexpected COSE protected header parameter")
		}
	}
	if alg, err := h.Algorithm(); err != nil || alg != cose.AlgorithmEdDSA {
		return "", fail(CodeSignatureMismatch, "COSE algorithm is not EdDSA")
	}
	if ct, ok := h[cose.HeaderLabelContentType].(string); !ok || ct != COSEContentType {
		return "", fail(CodeMalformed, "COSE content type is not %s", COSEContentType)
	}
	kid, ok := h[cose.HeaderLabelKeyID].([]byte)
	if !ok || len(kid) == 0 {
		return "", fail(CodeSignatureMismatch, "COSE protected header has no kid")
	}
	return string(kid), nil
}

// decodePayload decodes the CBOR payload into JSON values and checks that
// it is exactly what EncodeCOSE writes for them.
func decodePayload(payload []byte) (any, error) {
	var raw any
	if err := payloadDec.Unmarshal(payload, &raw); err != nil {
		return nil, fail(CodeMalformed, "COSE payload is not valid CBOR for a receipt")
	}
	v, err := fromCBOR(raw)
	if err != nil {
		return nil, err
	}
	c, err := toCBOR(v)
	if err != nil {
		return nil, fail(CodeMalformed, "COSE payload holds an invalid value")
	}
	again, err := payloadEnc.Marshal(c)
	if err != nil || !bytes.Equal(again, payload) {
		return nil, fail(CodeMalformed, "COSE payload is not in deterministic encoding")
	}
	return v, nil
}

// fromCBOR converts a decoded CBOR value to the value model of ParseJSON.
// Numbers become the json.Number of the float64 JavaScript would hold;
// one that loses precision on the way fails the re-encoding check.
func fromCBOR(v any) (any, error) {
	switch v := v.(type) {
	case nil, bool, string:
		return v, nil
	case uint64:
		return json.Number(appendFloat(nil, float64(v))), nil
	case int64:
		return json.Number(appendFloat(nil, float64(v))), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fail(CodeMalformed, "COSE payload holds NaN or an infinity")
		}
		return json.Number(appendFloat(nil, v)), nil
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			c, err := fromCBOR(e)
			if err != nil {
				return nil, err
			}
			m[k] = c
		}
		return m, nil
	case []any:
		a := make([]any, len(v))
		for i, e := range v {
			c, err := fromCBOR(e)
			if err != nil {
				return nil, err
			}
			a[i] = c
		}
		return a, nil
	default:
		return nil, fail(CodeMalformed, "COSE payload holds a CBOR item JSON does not have")
	}
}
