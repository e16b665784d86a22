// Package vaultcrux holds the vocabulary of the vaultcrux evidence vault and
// tool-call firewall: tenants, principals, roles, API key records and the
// error type every layer speaks. It imports nothing from this module; every
// other package points inward to it.
//
// Invariants that the rest of the code relies on:
//
//   - A request is authenticated to exactly one tenant. The tenant of a
//     request comes from its credential (an API key or a session), never from
//     a header or a body field; those are only checked against it.
//   - Storage is reached through a tenant-scoped handle whose methods take no
//     tenant argument, so code holding the handle of tenant A cannot name an
//     object of tenant B. Another tenant's object is NotFound, never Forbidden.
//   - Secrets (API keys, peppers, session secrets) are never stored, logged or
//     returned in clear after the one response that creates them.
//   - Errors carry a Kind for the edges (HTTP, MCP, CLI) and an optional
//     user-safe message; anything else reaching a client is "internal error".
package vaultcrux
