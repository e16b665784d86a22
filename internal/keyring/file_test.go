package keyring

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

// key32 and key48 are secrets whose base64 forms differ in padding.
var (
	key32 = bytes.Repeat([]byte{0xA5}, 32) // 44 chars, one '='
	key48 = []byte("0123456789abcdef0123456789abcdef0123456789abcdef")
)

func writeFile(t *testing.T, content string, perm fs.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	// Chmod, not WriteFile's perm, so the umask does not interfere.
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadSecretFileFormat(t *testing.T) {
	std32 := base64.StdEncoding.EncodeToString(key32)
	raw32 := base64.RawStdEncoding.EncodeToString(key32)
	std48 := base64.StdEncoding.EncodeToString(key48)
	tests := []struct {
		name    string
		content string
		want    []byte
		wantErr error
	}{
		{"padded, newline", std32 + "\n", key32, nil},
		{"padded, CRLF", std32 + "\r\n", key32, nil},
		{"padded, no newline", std32, key32, nil},
		{"unpadded, newline", raw32 + "\n", key32, nil},
		{"unpadded, no newline", raw32, key32, nil},
		{"no padding needed", std48 + "\n", key48, nil},
		{"1024 bytes", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 1024)), bytes.Repeat([]byte{7}, 1024), nil},

		{"empty", "", nil, errEmpty},
		{"only a newline", "\n", nil, errEmpty},
		{"31 bytes", base64.StdEncoding.EncodeToString(key32[:31]) + "\n", nil, errTooShort},
		{"1 byte", "AA==\n", nil, errTooShort},
		{"1025 bytes", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 1025)), nil, errTooLong},
		{"raw bytes", string(key32), nil, errNotBase64},
		{"plain text", "correct horse battery staple correct horse battery staple\n", nil, errNotBase64},
		{"two newlines", std32 + "\n\n", nil, errNotBase64},
		{"lone CR", std32 + "\r", nil, errNotBase64},
		{"leading space", " " + std32, nil, errNotBase64},
		{"trailing space", std32 + " \n", nil, errNotBase64},
		{"wrapped line", std48[:32] + "\n" + std48[32:] + "\n", nil, errNotBase64},
		{"URL alphabet", strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xFB, 0xFF}, 24))), nil, errNotBase64},
		{"padding in the middle", std32[:20] + "=" + std32[21:], nil, errNotBase64},
		{"wrong padding", raw32 + "==", nil, errNotBase64},
		{"non-canonical trailing bits", raw32[:len(raw32)-1] + "V", nil, errNotBase64},
		{"too large", strings.Repeat("A", maxFileLen+1), nil, errFileTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.content, 0o600)
			got, err := ReadSecretFile(path)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadSecretFile: got error %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if c := strings.TrimSpace(tt.content); len(c) >= 8 && strings.Contains(err.Error(), c[:8]) {
					t.Errorf("error %q quotes the file content", err)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not name the file %s", err, path)
				}
				if got.Len() != 0 {
					t.Errorf("with an error, got a secret of %d bytes, want none", got.Len())
				}
				return
			}
			if !bytes.Equal(got.Bytes(), tt.want) {
				t.Errorf("got secret %x, want %x", got.Bytes(), tt.want)
			}
		})
	}
}

func TestReadSecretFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no permission bits on Windows")
	}
	content := base64.StdEncoding.EncodeToString(key32) + "\n"
	tests := []struct {
		perm fs.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o400, true},
		{0o640, true},
		{0o660, true},
		{0o644, false},
		{0o604, false},
		{0o602, false},
		{0o601, false},
		{0o666, false},
		{0o777, false},
	}
	for _, tt := range tests {
		path := writeFile(t, content, tt.perm)
		_, err := ReadSecretFile(path)
		if tt.ok {
			if err != nil {
				t.Errorf("mode %04o: got error %v, want none", tt.perm, err)
			}
			continue
		}
		if !errors.Is(err, errOthersAccess) {
			t.Errorf("mode %04o: got error %v, want %v", tt.perm, err, errOthersAccess)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "chmod o-rwx "+path) {
			t.Errorf("mode %04o: error %q does not say how to fix it", tt.perm, msg)
		}
	}
}

func TestReadSecretFileSymlink(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need privileges on Windows")
	}
	content := base64.StdEncoding.EncodeToString(key32) + "\n"
	target := writeFile(t, content, 0o600)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSecretFile(link)
	if err != nil {
		t.Fatalf("through a symlink: %v", err)
	}
	if !bytes.Equal(got.Bytes(), key32) {
		t.Errorf("through a symlink: got %x, want %x", got.Bytes(), key32)
	}
	// The permission check applies to the file, not to the link (whose own
	// mode is 0777 on Linux).
	if err := os.Chmod(target, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecretFile(link); !errors.Is(err, errOthersAccess) {
		t.Errorf("through a symlink to a 0644 file: got error %v, want %v", err, errOthersAccess)
	}
}

func TestReadSecretFileNotRegular(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadSecretFile(dir); !errors.Is(err, errNotRegular) {
		t.Errorf("directory: got error %v, want %v", err, errNotRegular)
	}
	missing := filepath.Join(dir, "missing")
	if _, err := ReadSecretFile(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got error %v, want %v", err, fs.ErrNotExist)
	}
}

func TestLoadOrCreateSecret(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "keys") // neither exists yet
	path := filepath.Join(dir, "pepper.key")
	random := bytes.Repeat([]byte{0x5A}, 40)

	s, created, err := LoadOrCreateSecret(path, 40, bytes.NewReader(random))
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Errorf("first call: created = false, want true")
	}
	if !bytes.Equal(s.Bytes(), random) {
		t.Errorf("first call: got secret %x, want %x", s.Bytes(), random)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(content), base64.StdEncoding.EncodeToString(random)+"\n"; got != want {
		t.Errorf("file content: got %q, want %q", got, want)
	}
	if runtime.GOOS != "windows" {
		for _, c := range []struct {
			path string
			want fs.FileMode
		}{{path, 0o600}, {dir, 0o700}} {
			fi, err := os.Stat(c.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != c.want {
				t.Errorf("mode of %s: got %04o, want %04o", c.path, got, c.want)
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %q, want only the secret file (no temporary files)", names)
	}

	// Second call: the file is read, the reader not touched.
	again, created, err := LoadOrCreateSecret(path, 32, iotest.ErrReader(errors.New("rand must not be read")))
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Errorf("second call: created = true, want false")
	}
	if !again.Equal(s) {
		t.Errorf("second call returned a different secret")
	}
	read, err := ReadSecretFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !read.Equal(s) {
		t.Errorf("ReadSecretFile returned a different secret than LoadOrCreateSecret")
	}
}

func TestLoadOrCreateSecretRefusals(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		for _, size := range []int{-1, 0, 16, 31, 1025} {
			path := filepath.Join(t.TempDir(), "k")
			if _, _, err := LoadOrCreateSecret(path, size, bytes.NewReader(make([]byte, 2048))); err == nil {
				t.Errorf("size %d: got no error", size)
			}
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("size %d: file was created (stat: %v)", size, err)
			}
		}
	})
	t.Run("short random", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "k")
		_, _, err := LoadOrCreateSecret(path, 32, bytes.NewReader(make([]byte, 31)))
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("got error %v, want %v", err, io.ErrUnexpectedEOF)
		}
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("file was created (stat: %v)", err)
		}
	})
	t.Run("world-readable existing file", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("no permission bits on Windows")
		}
		content := base64.StdEncoding.EncodeToString(key32) + "\n"
		path := writeFile(t, content, 0o644)
		_, created, err := LoadOrCreateSecret(path, 32, bytes.NewReader(make([]byte, 32)))
		if !errors.Is(err, errOthersAccess) {
			t.Errorf("got error %v, want %v", err, errOthersAccess)
		}
		if created {
			t.Errorf("created = true, want false")
		}
		if got, _ := os.ReadFile(path); string(got) != content {
			t.Errorf("the existing file was changed to %q", got)
		}
	})
	t.Run("malformed existing file", func(t *testing.T) {
		path := writeFile(t, "not a secret\n", 0o600)
		if _, _, err := LoadOrCreateSecret(path, 32, bytes.NewReader(make([]byte, 32))); !errors.Is(err, errNotBase64) {
			t.Errorf("got error %v, want %v", err, errNotBase64)
		}
		if got, _ := os.ReadFile(path); string(got) != "not a secret\n" {
			t.Errorf("the existing file was changed to %q", got)
		}
	})
}

// TestLoadOrCreateSecretRace checks that processes starting together agree
// on one secret: creation never replaces a file another one created.
func TestLoadOrCreateSecretRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "pepper.key")
	const n = 16
	secrets := make([]Secret, n)
	created := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			random := bytes.Repeat([]byte{byte(i + 1)}, 32)
			secrets[i], created[i], errs[i] = LoadOrCreateSecret(path, 32, bytes.NewReader(random))
		})
	}
	wg.Wait()
	creators := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("goroutine %d: %v", i, errs[i])
		}
		if created[i] {
			creators++
		}
		if !secrets[i].Equal(secrets[0]) {
			t.Errorf("goroutine %d got a different secret than goroutine 0", i)
		}
	}
	if creators != 1 {
		t.Errorf("%d goroutines report having created the file, want 1", creators)
	}
	onDisk, err := ReadSecretFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !onDisk.Equal(secrets[0]) {
		t.Errorf("the file holds a different secret than the one returned")
	}
}
