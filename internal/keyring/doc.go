// Package keyring owns key custody in vaultcrux: it is the one package that
// reads, creates and holds secret key material: symmetric secrets (the API
// key pepper, the session MAC key) and the Ed25519 receipt signing keys,
// kept in files; key encryption keys will join them here.
//
// Invariants:
//
//   - Secret bytes leave a Secret only through Bytes, and only to keyed
//     primitives (HMAC, KDFs). Every other way of showing a Secret — fmt with
//     any verb, log/slog, encoding/json, encoding.TextMarshaler — yields
//     "[REDACTED]". Secrets are compared only with Equal, in constant time;
//     Secret is not comparable with ==, so the compiler refuses that mistake.
//   - A secret is at least MinSecretLen (32) bytes. Shorter material is
//     refused, never padded or stretched.
//   - A secret file accessible to "other" users (any of mode 0007) is
//     refused, not silently used.
//   - A created secret file is complete before it becomes visible: it is
//     written and synced under a temporary name (O_EXCL, mode 0600) and then
//     linked into place without replacing anything, so processes racing to
//     create the same file end up sharing one secret.
//   - A signing key's private half never leaves its SigningKey: callers get
//     signatures, the key id ("vaultcrux-signing:v<n>") and the public key.
//     Rotation replaces the seed file by rename; the retired seed is gone.
//
// # Secret file format
//
// A secret file holds one line: the secret in standard base64 (RFC 4648 §4,
// "+/" alphabet), padded or unpadded, in canonical form (unused trailing bits
// zero), optionally followed by a newline ("\n" or "\r\n"). Nothing else — no
// leading space, no comment, no line wrapping. Base64 text rather than raw
// bytes lets a secrets agent (a Vault Agent or OpenBao Agent template)
// render the file, and lets an operator make one by hand:
//
//	umask 077; head -c 32 /dev/urandom | base64 > pepper.key
package keyring
