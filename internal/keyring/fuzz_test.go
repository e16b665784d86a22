package keyring

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// FuzzDecodeSecret checks that the secret file decoder never panics and
// accepts exactly the canonical encodings: whatever it accepts re-encodes,
// padded or not, to the input less its one optional line ending.
func FuzzDecodeSecret(f *testing.F) {
	f.Add([]byte(base64.StdEncoding.EncodeToString(key32) + "\n"))
	f.Add([]byte(base64.RawStdEncoding.EncodeToString(key32) + "\r\n"))
	f.Add([]byte(base64.StdEncoding.EncodeToString(key48)))
	f.Add([]byte(base64.StdEncoding.EncodeToString(key48[:31])))
	f.Add([]byte("AAAA\nAAAA"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		b, err := decodeSecret(data)
		if !bytes.Equal(in, data) {
			t.Fatalf("decodeSecret modified its input")
		}
		if err != nil {
			return
		}
		if len(b) < MinSecretLen || len(b) > maxSecretLen {
			t.Fatalf("accepted a secret of %d bytes", len(b))
		}
		line := bytes.TrimSuffix(bytes.TrimSuffix(in, []byte("\n")), []byte("\r"))
		if len(in) > 0 && in[len(in)-1] == '\r' {
			t.Fatalf("accepted %q, which ends in a lone CR", in)
		}
		std := base64.StdEncoding.EncodeToString(b)
		raw := base64.RawStdEncoding.EncodeToString(b)
		if s := string(line); s != std && s != raw {
			t.Fatalf("accepted %q, which is neither %q nor %q", in, std, raw)
		}
	})
}
