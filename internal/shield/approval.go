package shield

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"

	"github.com/zeebo/blake3"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/receipt"
)

// ApprovalStatus is what the caller found when it checked a presented
// approval token against its store.
type ApprovalStatus string

// The statuses. Anything else counts as invalid.
const (
	ApprovalValid   ApprovalStatus = "valid"   // genuine, unexpired, unused, and its binding matches this call
	ApprovalInvalid ApprovalStatus = "invalid" // unknown, forged, or bound to another call, tenant or manifest
	ApprovalExpired ApprovalStatus = "expired" // genuine but past its expiry
	ApprovalUsed    ApprovalStatus = "used"    // genuine but already spent (tokens are single-use)
)

// ApprovalCheck is the approval token a call presents, as the caller found
// it. The engine neither sees the token nor verifies it: the caller hashes
// it, looks it up, and compares the stored binding with ApprovalBinding of
// this call; the engine maps the result to an outcome.
type ApprovalCheck struct {
	Presented  bool           `json:"presented"`
	Status     ApprovalStatus `json:"status,omitempty"`
	ApprovalID string         `json:"approvalId,omitempty"`
}

// verdict maps the check to the outcome of a stage that needs an approval
// (need) or merely sees a token (!need): a valid token passes; a token that
// is presented and not valid is denied whether or not one was needed, since
// it shows that the caller acts on an approval that does not cover this
// call; no token where one is needed asks for one.
func (a *ApprovalCheck) verdict(need bool) (Outcome, DenialType) {
	if !a.Presented {
		if need {
			return OutcomeApprovalRequired, ""
		}
		return OutcomeAllow, ""
	}
	switch a.Status {
	case ApprovalValid:
		return OutcomeAllow, ""
	case ApprovalExpired, ApprovalUsed:
		return OutcomeDeny, DenialApprovalTokenExpired
	default:
		return OutcomeDeny, DenialApprovalTokenInvalid
	}
}

// parseArgs parses the arguments of a call strictly (receipt.ParseJSON) and
// hashes their canonical JSON. Empty arguments are the empty object: MCP
// leaves "arguments" out of a call that has none.
func parseArgs(args []byte) (any, string, error) {
	if len(args) == 0 {
		args = []byte("{}")
	}
	v, err := receipt.ParseJSON(args)
	if err != nil {
		return nil, "", err
	}
	b, err := receipt.Canonical(v)
	if err != nil {
		return nil, "", err
	}
	return v, receipt.Hash(b), nil
}

// ArgsHash returns the canonical-args hash of a call: "blake3:" and the hex
// BLAKE3-256 of the canonical JSON of args, so that key order, whitespace
// and number spelling do not matter and any change of value does. Empty
// args hash as {}. Arguments that are not strict JSON (see
// receipt.ParseJSON: duplicate keys, invalid UTF-8, …) are an Invalid error.
func ArgsHash(args json.RawMessage) (h string, err error) {
	defer vaultcrux.Wrap(&err, "shield.ArgsHash")
	_, h, err = parseArgs(args)
	return h, err
}

// bindingDomain separates approval bindings from every other BLAKE3 input
// and versions their encoding.
const bindingDomain = "vaultcrux/shield/approval-binding/v1"

// ApprovalBinding returns the value an approval token is bound to: "blake3:"
// and the hex BLAKE3-256 of a domain string and then each of tenant,
// approval ID, server, tool, args hash and manifest hash as an 8-byte
// big-endian length and its bytes. The lengths make the encoding
// injective: no two different tuples share a binding, whatever bytes the
// fields hold, so any change of tenant, approval, tool, arguments or
// manifest invalidates a token.
func ApprovalBinding(tenant, approvalID, server, tool, argsHash, manifestHash string) string {
	h := blake3.New()
	var n [8]byte
	for _, f := range [...]string{bindingDomain, tenant, approvalID, server, tool, argsHash, manifestHash} {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.WriteString(f)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return "blake3:" + hex.EncodeToString(sum[:])
}
