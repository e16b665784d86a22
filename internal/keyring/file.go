package keyring

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vaultcrux/vaultcrux"
)

// maxSecretLen bounds the secrets this package reads or creates: far above
// any key in use, small enough that a wrong path (a log file, /dev/zero) is
// refused after reading a few bytes.
const maxSecretLen = 1024

// maxFileLen is the longest secret file: maxSecretLen bytes in padded
// base64, plus "\r\n".
const maxFileLen = (maxSecretLen+2)/3*4 + 2

var (
	errOthersAccess = errors.New("accessible to other users")
	errNotRegular   = errors.New("not a regular file")
	errFileTooLarge = errors.New("too large to be a secret file")
	errEmpty        = errors.New("empty")
	errNotBase64    = errors.New("not one line of standard base64")
	errTooShort     = errors.New("secret too short")
	errTooLong      = errors.New("secret too long")
)

// ReadSecretFile reads the secret in the file at path, in the format given
// in the package documentation. It is meant for the …_FILE settings that a
// secrets agent renders, and creates nothing.
//
// It refuses a file that is not a regular file (after following symbolic
// links), one that other users may access (any of mode 0007), one that is
// not in the format, and a secret shorter than MinSecretLen bytes. Errors
// name the path, never the content.
func ReadSecretFile(path string) (s Secret, err error) {
	defer vaultcrux.Wrap(&err, "keyring.ReadSecretFile")
	return readSecretFile(path)
}

// LoadOrCreateSecret reads the secret in the file at path as ReadSecretFile
// does. If the file does not exist it creates it, and its parent directory
// (mode 0700) when missing, holding size bytes read from rand, and reports
// created. size must be between MinSecretLen and 1024; an existing file is
// accepted whatever its length, as long as it is at least MinSecretLen.
//
// Creation is atomic and never replaces a file: when another process creates
// the file first, its secret is read and returned instead.
func LoadOrCreateSecret(path string, size int, rand io.Reader) (s Secret, created bool, err error) {
	defer vaultcrux.Wrap(&err, "keyring.LoadOrCreateSecret")
	if size < MinSecretLen || size > maxSecretLen {
		return Secret{}, false, fmt.Errorf("secret size %d out of range [%d, %d]", size, MinSecretLen, maxSecretLen)
	}
	s, err = readSecretFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return s, false, err
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(rand, b); err != nil {
		return Secret{}, false, fmt.Errorf("reading random bytes: %w", err)
	}
	text := encodeSecretFile(b)
	linked, err := createFile(path, text)
	clear(text)
	if err != nil {
		clear(b)
		return Secret{}, false, err
	}
	if !linked {
		clear(b)
		s, err = readSecretFile(path)
		return s, false, err
	}
	s = NewSecret(b)
	clear(b)
	return s, true, nil
}

// encodeSecretFile returns the content of a secret file holding b.
func encodeSecretFile(b []byte) []byte {
	text := make([]byte, base64.StdEncoding.EncodedLen(len(b))+1)
	base64.StdEncoding.Encode(text, b)
	text[len(text)-1] = '\n'
	return text
}

func readSecretFile(path string) (Secret, error) {
	// Stat before opening so that a FIFO or a device is refused rather than
	// opened (opening a FIFO blocks); the open file is checked again below,
	// which is the check that counts.
	fi, err := os.Stat(path)
	if err != nil {
		return Secret{}, err
	}
	if !fi.Mode().IsRegular() {
		return Secret{}, fmt.Errorf("secret file %s: %w", path, errNotRegular)
	}
	f, err := os.Open(path)
	if err != nil {
		return Secret{}, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return Secret{}, err
	}
	if !fi.Mode().IsRegular() {
		return Secret{}, fmt.Errorf("secret file %s: %w", path, errNotRegular)
	}
	// Windows reports no meaningful permission bits; its ACLs are the
	// operator's to set.
	if perm := fi.Mode().Perm(); perm&0o007 != 0 && runtime.GOOS != "windows" {
		return Secret{}, fmt.Errorf("secret file %s is %w (mode %04o); restrict it with: chmod o-rwx %s",
			path, errOthersAccess, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileLen+1))
	defer clear(data)
	if err != nil {
		return Secret{}, err
	}
	if len(data) > maxFileLen {
		return Secret{}, fmt.Errorf("secret file %s: %w", path, errFileTooLarge)
	}
	b, err := decodeSecret(data)
	if err != nil {
		return Secret{}, fmt.Errorf("secret file %s: %w", path, err)
	}
	s := NewSecret(b)
	clear(b)
	return s, nil
}

// decodeSecret decodes the content of a secret file. Its errors say what is
// wrong with the content without quoting any of it.
func decodeSecret(data []byte) ([]byte, error) {
	switch {
	case bytes.HasSuffix(data, []byte("\r\n")):
		data = data[:len(data)-2]
	case bytes.HasSuffix(data, []byte("\n")):
		data = data[:len(data)-1]
	}
	if len(data) == 0 {
		return nil, errEmpty
	}
	// The decoders of encoding/base64 skip '\r' and '\n' anywhere; the
	// format is one line, so refuse them (and anything else outside the
	// alphabet) first.
	for _, c := range data {
		if !isBase64Byte(c) {
			return nil, fmt.Errorf("%w; expected the output of: head -c 32 /dev/urandom | base64", errNotBase64)
		}
	}
	enc := base64.RawStdEncoding.Strict()
	if data[len(data)-1] == '=' {
		enc = base64.StdEncoding.Strict()
	}
	b := make([]byte, enc.DecodedLen(len(data)))
	n, err := enc.Decode(b, data)
	if err != nil {
		clear(b)
		// A base64.CorruptInputError holds an offset, not content.
		return nil, fmt.Errorf("%w: %v", errNotBase64, err)
	}
	b = b[:n]
	switch {
	case n < MinSecretLen:
		clear(b)
		return nil, fmt.Errorf("%w: %d bytes, at least %d are required", errTooShort, n, MinSecretLen)
	case n > maxSecretLen:
		clear(b)
		return nil, fmt.Errorf("%w: %d bytes, at most %d are allowed", errTooLong, n, maxSecretLen)
	}
	return b, nil
}

func isBase64Byte(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '='
}

// createFile makes a file at path holding content, with mode 0600, unless a
// file already exists there; it reports whether it made it. The content is
// written and synced under a temporary name first and then hard-linked into
// place: link(2), unlike rename(2), fails rather than replace a file that a
// concurrent process created in the meantime.
func createFile(path string, content []byte) (linked bool, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	// os.CreateTemp opens with O_CREATE|O_EXCL and mode 0600.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return false, err
	}
	// After a successful link the temporary name is a second name of the
	// same file; removing it leaves path in place.
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(content)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("%w (if this file system has no hard links, create the secret file by hand)", err)
	}
	return true, syncDir(dir)
}

// syncDir makes a new directory entry in dir durable, so that a crash right
// after creating a secret cannot lose it while the process went on to use it.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for syncing there
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
