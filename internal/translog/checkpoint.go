package translog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vaultcrux/vaultcrux"
	"golang.org/x/mod/sumdb/note"
)

// Errors of OpenCheckpoint (and ErrCheckpointMalformed of
// ParseCheckpointText). Test with errors.Is; the wrapping error says more.
var (
	// ErrCheckpointSignature: no signature by a known key verifies, because
	// a signature is wrong, the signer is unknown or the note is unsigned.
	ErrCheckpointSignature = errors.New("checkpoint signature does not verify")
	// ErrCheckpointMalformed: the input is not a signed note, or the signed
	// text is not a checkpoint.
	ErrCheckpointMalformed = errors.New("malformed checkpoint")
)

const (
	originPrefix = "vaultcrux/tenant/"
	timePrefix   = "time "

	// maxSignedCheckpoint bounds the input of OpenCheckpoint. A checkpoint
	// text is under 200 bytes and a signature line about 120.
	maxSignedCheckpoint = 64 << 10

	algEd25519 = 1 // sumdb/note's algorithm byte for Ed25519 keys
)

// Checkpoint is a commitment to the state of a tenant's log.
type Checkpoint struct {
	Origin string    // the log's name: Origin(tenant)
	Size   int64     // number of records
	Root   Hash      // root hash of those records
	Time   time.Time // when it was issued; carried in UTC to the millisecond
}

// Origin returns the origin line of the log of tenant:
// "vaultcrux/tenant/<tenant>". Only a valid vaultcrux.TenantID gives an
// origin that ParseCheckpointText accepts.
func Origin(tenant string) string { return originPrefix + tenant }

// Text returns the checkpoint's note text, four lines each ending in "\n":
// the origin, the size in decimal, the root in standard base64, and "time "
// followed by the time in vaultcrux.TimeFormat (UTC, truncated to the
// millisecond). Text formats whatever c holds; ParseCheckpointText tells
// whether the result is a valid checkpoint.
func (c Checkpoint) Text() []byte {
	b := make([]byte, 0, len(c.Origin)+100)
	b = append(b, c.Origin...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, c.Size, 10)
	b = append(b, '\n')
	b = base64.StdEncoding.AppendEncode(b, c.Root[:])
	b = append(b, '\n')
	b = append(b, timePrefix...)
	b = c.Time.UTC().AppendFormat(b, vaultcrux.TimeFormat)
	b = append(b, '\n')
	return b
}

// ParseCheckpointText parses a checkpoint text. It is strict: it accepts
// exactly the texts that Text produces for a checkpoint whose origin is
// Origin of a valid vaultcrux.TenantID, whose size is in [0, 2^56], whose
// root is the empty-tree root when the size is 0, and whose time has a
// four-digit year. Every error wraps ErrCheckpointMalformed and echoes no
// input.
func ParseCheckpointText(text []byte) (c Checkpoint, err error) {
	var lines [4][]byte
	rest := text
	for i := range lines {
		var ok bool
		if lines[i], rest, ok = bytes.Cut(rest, []byte("\n")); !ok {
			return Checkpoint{}, malformed("want 4 lines ending in newline")
		}
	}
	if len(rest) != 0 {
		return Checkpoint{}, malformed("want 4 lines ending in newline")
	}

	tenant, ok := strings.CutPrefix(string(lines[0]), originPrefix)
	if !ok || !vaultcrux.ValidTenantID(tenant) {
		return Checkpoint{}, malformed("bad origin line")
	}
	c.Origin = string(lines[0])

	sizeText := string(lines[1])
	c.Size, err = strconv.ParseInt(sizeText, 10, 64)
	if err != nil || c.Size < 0 || c.Size > maxSize || strconv.FormatInt(c.Size, 10) != sizeText {
		return Checkpoint{}, malformed("bad size line")
	}

	if c.Root, ok = decodeHash(string(lines[2])); !ok {
		return Checkpoint{}, malformed("bad root line")
	}
	if c.Size == 0 && c.Root != emptyRoot {
		return Checkpoint{}, malformed("size 0 with a root other than the empty tree's")
	}

	timeText, ok := strings.CutPrefix(string(lines[3]), timePrefix)
	if !ok {
		return Checkpoint{}, malformed("bad time line")
	}
	c.Time, err = time.Parse(vaultcrux.TimeFormat, timeText)
	if err != nil || c.Time.Format(vaultcrux.TimeFormat) != timeText {
		return Checkpoint{}, malformed("bad time line")
	}
	return c, nil
}

func malformed(why string) error {
	return fmt.Errorf("%w: %s", ErrCheckpointMalformed, why)
}

// Signer is a checkpoint signing key: an Ed25519 key with its kid
// ("vaultcrux-signing:v3"). It has the shape of the keyring's signing key.
type Signer interface {
	KID() string
	Public() ed25519.PublicKey
	Sign(msg []byte) ([]byte, error)
}

// noteSigner is a note.Signer over a Signer.
type noteSigner struct {
	s    Signer
	name string
	hash uint32
}

func newNoteSigner(s Signer) (*noteSigner, error) {
	kid, pub := s.KID(), s.Public()
	if _, err := newVerifier(kid, pub); err != nil {
		return nil, err
	}
	return &noteSigner{s: s, name: kid, hash: keyHash(kid, pub)}, nil
}

// keyHash is sumdb/note's key hash of an Ed25519 key: the first four bytes,
// big endian, of SHA-256(name || "\n" || 0x01 || public key).
func keyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', algEd25519})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func (n *noteSigner) Name() string    { return n.name }
func (n *noteSigner) KeyHash() uint32 { return n.hash }
func (n *noteSigner) Sign(msg []byte) ([]byte, error) {
	sig, err := n.s.Sign(msg)
	if err != nil {
		return nil, err
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("key %s made a %d-byte signature, want %d", n.name, len(sig), ed25519.SignatureSize)
	}
	return sig, nil
}

// SignCheckpoint returns c signed by s as a sumdb/note: c.Text(), a blank
// line and the signature line "— <kid> <base64(key hash || signature)>".
// It refuses a checkpoint whose text does not parse, and checks the
// signature against s.Public() before returning it, so that a signer whose
// public key does not match its private key cannot publish a checkpoint.
func SignCheckpoint(c Checkpoint, s Signer) (signed []byte, err error) {
	defer vaultcrux.Wrap(&err, "translog.SignCheckpoint")
	text := c.Text()
	if _, err := ParseCheckpointText(text); err != nil {
		return nil, err
	}
	ns, err := newNoteSigner(s)
	if err != nil {
		return nil, err
	}
	signed, err = note.Sign(&note.Note{Text: string(text)}, ns)
	if err != nil {
		return nil, err
	}
	if _, _, err := OpenCheckpoint(signed, map[string]ed25519.PublicKey{ns.name: s.Public()}); err != nil {
		return nil, fmt.Errorf("signature by key %s does not verify under its public key: %w", ns.name, err)
	}
	return signed, nil
}

// VerifierKey returns the sumdb/note verifier key of the Ed25519 key pub
// named kid: "<kid>+<key hash, 8 hex digits>+<base64(0x01 || pub)>". kid
// must be a valid note key name (non-empty UTF-8 without spaces or '+').
func VerifierKey(kid string, pub ed25519.PublicKey) (vkey string, err error) {
	defer vaultcrux.Wrap(&err, "translog.VerifierKey")
	vkey, _, err = verifierKey(kid, pub)
	return vkey, err
}

func verifierKey(kid string, pub ed25519.PublicKey) (string, note.Verifier, error) {
	vkey, err := note.NewEd25519VerifierKey(kid, pub)
	if err != nil {
		return "", nil, err
	}
	v, err := note.NewVerifier(vkey) // checks kid against note's name rules
	if err != nil {
		return "", nil, fmt.Errorf("key %q: %w", kid, err)
	}
	return vkey, v, nil
}

func newVerifier(kid string, pub ed25519.PublicKey) (note.Verifier, error) {
	_, v, err := verifierKey(kid, pub)
	return v, err
}

// OpenCheckpoint verifies a signed checkpoint against keys (kid → public
// key) and returns the checkpoint and the kid of the first signature line
// that verified. Signatures by keys not in keys are ignored, as sumdb/note
// does for cosigners; one known signature that fails rejects the note.
//
// A note that is not signed by any key in keys, or whose known signature
// does not verify, gives an error wrapping ErrCheckpointSignature; an input
// over 64 KiB, one that is not a signed note, or a verified text that is not
// a checkpoint, an error wrapping ErrCheckpointMalformed. A key that is not
// a valid Ed25519 key under a valid note name is an error wrapping neither.
//
// The caller must still check that c.Origin is Origin of the tenant it
// expects and that the key with the returned kid may sign for it.
func OpenCheckpoint(signed []byte, keys map[string]ed25519.PublicKey) (c Checkpoint, kid string, err error) {
	defer vaultcrux.Wrap(&err, "translog.OpenCheckpoint")
	if len(signed) > maxSignedCheckpoint {
		return Checkpoint{}, "", malformed("over 64 KiB")
	}
	verifiers := make([]note.Verifier, 0, len(keys))
	for kid, pub := range keys {
		v, err := newVerifier(kid, pub)
		if err != nil {
			return Checkpoint{}, "", err
		}
		verifiers = append(verifiers, v)
	}
	n, err := note.Open(signed, note.VerifierList(verifiers...))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			return Checkpoint{}, "", fmt.Errorf("%w: signed by no known key", ErrCheckpointSignature)
		case errors.As(err, &invalid):
			return Checkpoint{}, "", fmt.Errorf("%w: bad signature by key %s", ErrCheckpointSignature, invalid.Name)
		case isUnsigned(signed):
			return Checkpoint{}, "", fmt.Errorf("%w: not signed", ErrCheckpointSignature)
		default:
			return Checkpoint{}, "", fmt.Errorf("%w: %v", ErrCheckpointMalformed, err)
		}
	}
	c, err = ParseCheckpointText([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, "", err
	}
	return c, n.Sigs[0].Name, nil
}

// isUnsigned reports whether msg is a checkpoint text with no signature
// lines: the text alone, or the text and the blank line that would precede
// signatures. note.Open calls both malformed; for the verifier they are an
// unsigned checkpoint.
func isUnsigned(msg []byte) bool {
	if bytes.HasSuffix(msg, []byte("\n\n")) {
		msg = msg[:len(msg)-1]
	}
	_, err := ParseCheckpointText(msg)
	return err == nil
}
