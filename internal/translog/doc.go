// Package translog owns the per-tenant transparency log of vaultcrux: the
// Merkle tree of receipt hashes, the shape in which its hashes are stored,
// the signed checkpoints that commit to it, and the inclusion and
// consistency proofs that tie receipts and checkpoints together.
//
// The package is pure. It reads stored hashes through a BlobReader that the
// caller supplies and never touches a store, a clock or a private key: the
// caller passes in the time of a checkpoint and a Signer.
//
// # Tree
//
// The log is an RFC 6962 / RFC 9162 Merkle tree over SHA-256, hashed by
// golang.org/x/mod/sumdb/tlog. The data of record i is the UTF-8 bytes of
// the receiptHash string of the tenant's i-th receipt ("blake3:" and 64 hex
// digits), so its leaf hash is SHA-256(0x00 || receiptHash); an interior node
// is SHA-256(0x01 || left || right); a tree of n > 1 leaves splits at the
// largest power of two smaller than n. The root of the empty tree is
// SHA-256 of the empty string, as in RFC 6962 §2.1 and tlog.TreeHash(0, …).
//
// # Storage shape
//
// Appending record i yields the hashes that tlog.StoredHashes returns for
// it: the leaf hash, then the root of every perfect subtree that record i
// completes, lowest level first. They are stored concatenated as the blob of
// record i, 32*k bytes where k is 1 plus the number of trailing one bits of
// i. So the hash at tlog stored-hash index idx is found at
//
//	level, n := tlog.SplitStoredHashIndex(idx)
//	record   := ((n+1) << level) - 1   // the last leaf of that subtree
//	offset   := 32 * level
//
// A blob is written with its record, once, and never changes; HashReader
// refuses a blob whose length is not exactly the one its record index
// implies.
//
// # Checkpoints
//
// A checkpoint is the body of a C2SP tlog-checkpoint with one extension
// line, four lines each ending in "\n":
//
//	vaultcrux/tenant/<tenant id>
//	<tree size in decimal>
//	<root hash in standard base64>
//	time <RFC 3339 UTC with milliseconds, vaultcrux.TimeFormat>
//
// It is signed as a golang.org/x/mod/sumdb/note with Ed25519 (note algorithm
// byte 1): the note key name is the kid of the signing key
// ("vaultcrux-signing:v3") and the key hash is the first four bytes of
// SHA-256(kid || "\n" || 0x01 || public key), so any sumdb/note or C2SP
// signed-note verifier given VerifierKey(kid, pub) can check it.
//
// # Invariants
//
//   - Append only. Tree can only grow; a record keeps its index, its leaf
//     and its blob forever, and the blob of record i depends only on records
//     0..i. The tree at size n is a prefix of the tree at every later size.
//   - A leaf is exactly the bytes of one receiptHash string, with no
//     framing, length prefix or normalisation. translog does not parse the
//     string (internal/receipt owns its format): CheckInclusion hashes the
//     string it is given, so only the very string that was logged matches.
//   - A checkpoint never contradicts an earlier one: a checkpoint is issued
//     only for the tree the log holds, which extends every tree signed
//     before it. Anyone holding two checkpoints of a tenant can check this
//     with ProveConsistency and CheckConsistency.
//   - One spelling. ParseCheckpointText accepts exactly the texts that
//     Checkpoint.Text produces for a valid checkpoint (canonical decimal and
//     base64, one time format, one origin form), so a signature covers one
//     checkpoint and a checkpoint has one signed text. SignCheckpoint signs
//     only texts that parse back, and only if the signature verifies under
//     the signer's own public key.
//   - The Check and Open functions fail closed: any error means "not
//     proven". They take untrusted data (proofs, signed notes) and what the
//     caller trusts (public keys; a size and its root, taken together from
//     one opened checkpoint), never the other way round.
//   - Tree sizes are at most 2^56 everywhere. Larger sizes are refused
//     before they reach tlog, whose int64 index arithmetic overflows, and
//     whose proof checks never terminate, for sizes above 2^62.
//   - OpenCheckpoint reports which key signed. Whether that key may vouch
//     for this tenant (its status, revoked or not) and whether the origin is
//     the expected tenant's are the caller's checks.
//
// Errors are not classified (their kind is Internal): a failed proof or
// signature is a verification result, and the caller maps it to its code
// (inclusion_failed, checkpoint_signature_mismatch) at the edge.
package translog
