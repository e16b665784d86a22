package gate

import (
	"context"

	"github.com/vaultcrux/vaultcrux/internal/shield"
)

// Builtin tool names: vaultcrux's own actions, as its routes and MCP
// tools perform them. They form the built-in server of every manifest.
const (
	ToolQueryVault     = "query_vault"
	ToolCite           = "cite"
	ToolIngestDocument = "ingest_document"
	ToolDeleteDocument = "delete_document"
	ToolCreateAPIKey   = "create_api_key"
	ToolRevokeAPIKey   = "revoke_api_key"
	ToolRotateTenant   = "rotate_tenant_key"
	ToolCryptoShred    = "crypto_shred_tenant"
	ToolBootstrapOwner = "bootstrap_owner"
	ToolInviteSeat     = "invite_seat"
	ToolChangeSeatRole = "change_seat_role"
	ToolRevokeSeat     = "revoke_seat"
	ToolEndSession     = "end_session"

	// Shield's own control plane. A person operates it ungated; an agent
	// (a call that declares x-agent-id) passes the guard like any other
	// action, so that a killed or tainted agent cannot loosen the policy
	// that stops it. What tightens the policy is medium risk; what loosens
	// it or widens what agents may call is high, which by default needs
	// an approval resolved by a person.
	ToolEngageKillSwitch  = "shield_engage_kill_switch"
	ToolReleaseKillSwitch = "shield_release_kill_switch"
	ToolTrustPublisher    = "shield_trust_publisher"
	ToolPinDigest         = "shield_pin_digest"
	ToolRevokeDigest      = "shield_revoke_digest"
	ToolRegisterServer    = "shield_register_server"
	ToolSetServerStatus   = "shield_set_server_status"
	ToolChangeSetting     = "shield_change_setting"
	ToolChangeSampling    = "shield_change_sampling_policy"
	ToolChangeUISession   = "shield_change_ui_session"
	ToolRunDrill          = "shield_run_incident_drill"
)

// BuiltinTools returns the built-in manifest. Reads are class read; every
// mutation is class write, so tainted sessions cannot trigger one.
// Crypto-shredding a tenant cannot be undone: its risk tier is critical,
// so by default it needs an approval resolved by a person.
func BuiltinTools() []shield.Tool {
	t := func(name, desc string, class shield.CapabilityClass, risk shield.RiskTier) shield.Tool {
		return shield.Tool{Name: name, Description: desc, Class: class, Risk: risk}
	}
	return []shield.Tool{
		t(ToolQueryVault, "Retrieve ranked evidence from the vault (POST /v1/retrieve).", shield.ClassRead, shield.RiskLow),
		t(ToolCite, "Resolve citations with a receipt (POST /v1/citations).", shield.ClassRead, shield.RiskLow),
		t(ToolIngestDocument, "Ingest or replace a document (POST /v1/ingest).", shield.ClassWrite, shield.RiskLow),
		t(ToolDeleteDocument, "Delete a document (DELETE /v1/documents/:docId).", shield.ClassWrite, shield.RiskMedium),
		t(ToolCreateAPIKey, "Create an API key (POST /v1/keys).", shield.ClassWrite, shield.RiskMedium),
		t(ToolRevokeAPIKey, "Revoke an API key (DELETE /v1/keys/:id).", shield.ClassWrite, shield.RiskMedium),
		t(ToolRotateTenant, "Rotate the tenant key (POST /v1/tenant/rotate-key).", shield.ClassWrite, shield.RiskMedium),
		t(ToolCryptoShred, "Destroy the tenant's keys (POST /v1/tenant/crypto-shred).", shield.ClassWrite, shield.RiskCritical),
		t(ToolBootstrapOwner, "Create the first owner seat (POST /v1/org/bootstrap-owner).", shield.ClassWrite, shield.RiskMedium),
		t(ToolInviteSeat, "Invite a seat (POST /v1/org/invite).", shield.ClassWrite, shield.RiskMedium),
		t(ToolChangeSeatRole, "Change a seat's role (PUT /v1/org/seats/:id).", shield.ClassWrite, shield.RiskMedium),
		t(ToolRevokeSeat, "Revoke a seat (DELETE /v1/org/seats/:id).", shield.ClassWrite, shield.RiskMedium),
		t(ToolEndSession, "End a frontdoor session (DELETE /v1/org/sessions/:id).", shield.ClassWrite, shield.RiskMedium),
		t(ToolEngageKillSwitch, "Engage a kill switch (POST /v1/shield/kill-switches).", shield.ClassWrite, shield.RiskMedium),
		t(ToolReleaseKillSwitch, "Release a kill switch (DELETE /v1/shield/kill-switches/:id).", shield.ClassWrite, shield.RiskHigh),
		t(ToolTrustPublisher, "Add a trusted publisher (POST /v1/shield/trust/publishers).", shield.ClassWrite, shield.RiskHigh),
		t(ToolPinDigest, "Pin a server digest (POST /v1/shield/trust/digests).", shield.ClassWrite, shield.RiskHigh),
		t(ToolRevokeDigest, "Revoke a pinned digest (POST /v1/shield/trust/digests/revoke).", shield.ClassWrite, shield.RiskMedium),
		t(ToolRegisterServer, "Register or re-register a tool server (POST /v1/shield/servers).", shield.ClassWrite, shield.RiskHigh),
		t(ToolSetServerStatus, "Change a server's status (POST /v1/shield/servers/:id/status).", shield.ClassWrite, shield.RiskHigh),
		t(ToolChangeSetting, "Override or reset a Shield setting (PUT|DELETE /v1/shield/settings/:name).", shield.ClassWrite, shield.RiskHigh),
		t(ToolChangeSampling, "Create or delete a sampling policy (/v1/shield/sampling-policies).", shield.ClassWrite, shield.RiskMedium),
		t(ToolChangeUISession, "Create or revoke a UI-integrity session (/v1/shield/ui-integrity-sessions).", shield.ClassWrite, shield.RiskMedium),
		t(ToolRunDrill, "Run an incident drill (POST /v1/shield/incident-drills).", shield.ClassWrite, shield.RiskMedium),
	}
}

// ReadKilled decides a read only when a kill switch stops it: reads are
// not recorded one by one (their answer receipts record them), but a
// killed agent must not read either. It returns nil when the read may go
// on, else the recorded decision (a kill-switch deny, or a policy_error
// when the state cannot be loaded).
func (g *Gate) ReadKilled(ctx context.Context, call *Call) *Result {
	st, err := g.state(ctx, call.Principal.Tenant)
	if err == nil && st.kills.Len() == 0 {
		return nil
	}
	if err == nil {
		if _, hit := st.kills.Match(string(call.Principal.Tenant), call.Principal.AgentID, shield.BuiltinServerID, call.Tool, shield.ClassRead); !hit {
			return nil
		}
	}
	res := g.Decide(ctx, call)
	if !res.Blocked() {
		return nil
	}
	return res
}
