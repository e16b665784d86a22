// Package shield is the decision engine of Shield (product contract §7):
// given a policy, the effective manifest, the engaged kill switches and a
// call, Evaluate says allow, deny or approval_required, and why, in a form
// fit for the decision's receipt.
//
// The package is pure. It reads no store, network, clock, environment or
// randomness: everything that lives elsewhere — trust labels of inputs, the
// state of an approval token, recent call counts, UI sessions, the time —
// is resolved by the caller and passed in the Request. The same inputs
// always give the same Decision. A Manifest and a KillSet are immutable
// snapshots, safe for concurrent use; the caller swaps in new ones when the
// registry or the kill switches change. Evaluate only reads its arguments.
//
// # Stages
//
// The stages run in the contract's order. Each yields at most one finding:
//
//  1. kill_switch: a switch matches → deny kill_switch_active.
//  2. trust_registry: the named server is unknown → deny unknown_tool; its
//     current digest matches a revoked pin → digest_revoked; it matches no
//     pin (or the server has no valid digest) → digest_not_trusted.
//  3. capability: the tool is not known → unknown_tool; known but not in
//     the manifest (undeclared by its server, the server disabled or
//     pinned-but-pending, or an ambiguous name) → unmanifested_tool; the
//     tool's local policy is broken → policy_error; class dangerous_local
//     without FEATURE_SANDBOX_RUNNER → dangerous_local_capability; the
//     arguments are not an object or break a rule → argument_rule_violation.
//  4. taint: an action of class write, dangerous_local or egress (or of an
//     unknown class) with a tainted input → deny
//     taint_blocked_dangerous_action, or, with TaintAction "approval", the
//     approval outcome of the presented token (see Approvals).
//  5. approval: a token presented and not valid → deny
//     approval_token_invalid or approval_token_expired; else, if the tool
//     requires approval or its risk tier is in ApprovalTiers (default high
//     and critical) and no valid token is presented → approval_required.
//  6. sampling: a covering sampling policy is at its limit, or has no count
//     in the request → deny sampling_policy_violation.
//  7. ui_integrity: a call from a tool UI that is not covered by a live UI
//     session of its origin allowing the tool → deny ui_integrity_violation.
//
// # Deciding: modes and flags
//
// Every stage is evaluated whatever the flags say; its flag decides only
// whether its finding is enforced (applied). A finding is enforced when
// FEATURE_SHIELD_ENABLED is on and:
//
//   - kill_switch: FEATURE_KILL_SWITCHES is on, in either mode. Killing must
//     work during an incident, and an operator cannot be expected to switch
//     Shield to enforce first.
//   - trust_registry, capability, taint, approval, sampling, ui_integrity:
//     SHIELD_MODE is enforce and the stage's flag is on
//     (FEATURE_TRUST_REGISTRY_ENFORCE_DIGEST, _SHIELD_ENFORCE_CAPABILITY,
//     _SHIELD_ENFORCE_TAINT, _SHIELD_ENFORCE_APPROVALS, _SAMPLING_GUARDIAN,
//     _UI_APP_SANDBOX). FEATURE_SANDBOX_RUNNER enforces nothing: it says a
//     sandbox exists, which makes dangerous_local tools usable.
//   - policy_error: always (fail closed), see below.
//
// Evaluation stops at the first enforced finding, which decides: Outcome,
// Verdict, Stage and DenialType are its own, Enforced is true. When no
// finding is enforced, the first finding is the recorded verdict (Verdict,
// Stage, DenialType) and Outcome is allow with Enforced false: that is
// observe mode's "enforced:false, wouldBlock:true". WouldBlock is always
// Verdict != allow. The record is never rewritten: an observed deny stays
// a deny in Verdict.
//
// So "the first non-allow wins" holds among the stages that enforce. A
// finding that is only observed does not end the evaluation, because
// otherwise a stage that is not yet enforced would open a way around one
// that is: with digests observed and capability enforced (a normal point
// of the promotion order), an unpinned server's call with forbidden
// arguments must still be denied for the arguments. Findings lists every
// finding up to and including the deciding one.
//
// FEATURE_SHIELD_ENABLED off is Shield's own way back: nothing is enforced,
// not kill switches, not policy_error; the verdict is still recorded. The
// one exception is a Policy that fails Validate, whose flags cannot be
// believed: it is a deny.
//
// # Fail closed
//
//   - A Policy that fails Validate (or is nil), a nil Manifest or Request,
//     arguments that are not strict JSON, a tool whose local policy is
//     broken (unknown class or risk tier, invalid pattern or rule), and a
//     panic inside Evaluate (recovered) are each a policy_error deny,
//     enforced whatever the mode and stage flags (Shield off aside). A broken
//     rule is never skipped, which would silently lift it.
//   - A tool the manifest cannot classify (unknown, ambiguous) is treated as
//     the worst case by later stages: taint-sensitive, needing approval,
//     covered by every class-scoped sampling policy, stopped by every
//     capability_class kill switch.
//   - Any trust label but "trusted" (including "", "unknown", a misspelling)
//     taints. Any approval status but the four known ones is invalid. An
//     unknown server status counts as disabled. A covering sampling policy
//     without a count, and a zero Request.Now for a UI session check, are
//     violations: the engine cannot show the call is within bounds.
//
// # Trust registry and manifest
//
// ServerDigest is BLAKE3 over the canonical JSON (receipt.Canonical) of the
// server's identity (name, url, command, publisherId — not the local ID)
// and its tools' name, description and canonicalised input schema, sorted
// by name. Class, risk, approval and argument rules are local policy and
// outside the digest. A changed tool definition ("rug pull") changes the
// digest, which then matches no pin.
//
// BuildManifest puts a server's tools in the manifest only if it is active
// and its current digest is pinned and not revoked (a digest pinned both
// ways counts as revoked). The built-in tools form server "vaultcrux" and
// are always in. Other servers are kept with the reason they are out
// (Exclusions), so that the trust stage can name digest_not_trusted or
// digest_revoked. Their declared tools stay known: when the trust finding
// is not enforced, the later stages judge the call by the declared
// definition, as they would once the digest is pinned. Server status is
// the capability stage's concern: a disabled server's tools are
// unmanifested even when digests are observed; a pending server without a
// pin is explained by the trust finding alone.
//
// A call names its server by ID, or leaves Server empty to resolve by tool
// name: a name must then be unique in the manifest (else, unique among the
// servers out of it). A name two servers share resolves to nothing and is
// denied unmanifested_tool — the caller must name the server — rather than
// guessed. Decision.Server is the server the call resolved to: the caller
// must send the call there and nowhere else.
//
// Manifest.Hash (receipts' shieldManifestHash) is BLAKE3 over the canonical
// JSON of {"version":1,"entries":[…]}, one entry per tool in the manifest
// with server ID, server digest, tool name, class, risk, requiresApproval
// and argument rules, sorted by server then tool.
//
// # Argument rules
//
// Rules name top-level arguments. The text of a value is the string for a
// string and its canonical JSON otherwise, so AllowedValues, Pattern and
// MaxLen cannot be sidestepped by sending a number, array or object.
// Patterns are RE2, anchored at both ends with \A and \z (which (?m) cannot
// weaken), and compiled once in BuildManifest. MaxLen counts bytes of text:
// for a string the string's own bytes, not its quoted JSON, which is what
// a person writing "maxLen: 10" means. A JSON null is present (Required is
// met) and has no type. Arguments that no rule names are allowed. The input
// schema is part of the digest but is not validated here.
//
// # Approvals
//
// The caller verifies a presented token (hash lookup, expiry, single use,
// ApprovalBinding) and reports the result in ApprovalCheck. A used token is
// approval_token_expired, not invalid: it is genuine and its one use is
// spent, and the remedy is the same as for expiry, a new approval; invalid
// is kept for tokens that are unknown or bound to something else. A token
// that is presented and not valid is denied even where no approval is
// needed, since the caller is acting on an approval that does not cover
// this call. ApprovalBinding hashes a versioned domain string and the
// tenant, approval ID, server, tool, args hash and manifest hash, each
// length-prefixed, so any change of one gives another binding. The
// manifest hash stands for "the policy": it covers every tool's class,
// risk, approval flag and rules, so a change of those voids outstanding
// tokens (as does any change of the manifest); flags and modes do not.
//
// # Kill switches
//
// Scopes global (target ignored), tenant, agent, server (server ID), tool
// (tool name, on any server) and capability_class. Every other scope needs
// a target: an empty one would match every call lacking the field. Lookup
// is one map probe per scope, in that order. The request's named server is
// matched even when unknown; a call resolved by name matches its resolved
// server, and an ambiguous one every server that has the name.
//
// # Taint
//
// Decision.Tainted and TaintSources are recorded for every call, reads
// included: tainted content may be read, it may not directly trigger a
// write, dangerous_local or egress action. Sources are "kind:ref" for each
// input not labelled trusted and "session:<id>" for a tainted session.
// Economy actions are not taint-sensitive in the contract; their risk tier
// and the approval gate govern them.
package shield
