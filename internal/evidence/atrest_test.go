package evidence_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/store/postgres"
	"github.com/vaultcrux/vaultcrux/internal/store/postgres/pgtest"
	"github.com/vaultcrux/vaultcrux/internal/store/sqlite"
	"github.com/vaultcrux/vaultcrux/internal/vctest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var byteaHex = regexp.MustCompile(`\\\\x[0-9a-f]+`)

// secretWords are made up: they occur nowhere but in the documents below.
var secretWords = []string{"vorpalquux", "snarfblattine", "quibbleworth", "zentrifungal", "plovamorric", "grizzlewomp"}

// secretDocs returns documents whose content holds the secret words
// (titles, which are plaintext metadata by design, do not).
func secretDocs() []map[string]any {
	return []map[string]any{
		doc("alpha", "The vorpalquux protocol requires snarfblattine clearance.\n\nEvery quibbleworth must be logged twice."),
		doc("beta", "Zentrifungal reactors run hot. The plovamorric valve limits them."),
		doc("gamma", "Queued grizzlewomp content that no worker has touched yet."),
	}
}

// ingestSecrets ingests the secret documents through the API, indexes the
// first two, leaves the third queued, and runs a retrieval and a
// citations check (whose quote must not be stored either).
func ingestSecrets(t *testing.T, env *vctest.Env) []string {
	t.Helper()
	a := newClient(env, "acme")
	docs := secretDocs()
	a.ingest(docs[0])
	a.ingest(docs[1])
	env.Drain()
	a.ingest(docs[2])
	got := a.retrieve(map[string]any{"query": "vorpalquux snarfblattine"})
	if len(got.Results) != 1 {
		t.Fatalf("retrieve: %+v", got.Results)
	}
	r := a.do("POST", "/v1/citations", map[string]any{
		"answerId": got.AnswerID, "answerText": "The quibbleworth rule.",
		"citations": []map[string]any{{"chunkId": "alpha#0", "quote": "Every quibbleworth must be logged twice."}},
	})
	if r.Status != 200 {
		t.Fatalf("citations: %d %s", r.Status, r.Raw)
	}
	var texts []string
	for _, d := range docs {
		texts = append(texts, d["content"].(string))
	}
	return texts
}

// findPlaintext reports every secret word or content sentence found in b.
func findPlaintext(b []byte, texts []string) []string {
	var found []string
	lower := bytes.ToLower(b)
	for _, w := range secretWords {
		if bytes.Contains(lower, []byte(w)) {
			found = append(found, w)
		}
	}
	for _, t := range texts {
		for _, s := range strings.FieldsFunc(t, func(r rune) bool { return r == '.' || r == '\n' }) {
			if s = strings.TrimSpace(s); len(s) > 12 && bytes.Contains(b, []byte(s)) {
				found = append(found, s)
			}
		}
	}
	return found
}

// scanDir reads every file under dir.
func scanDir(t *testing.T, dir string, texts []string) (files int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		if found := findPlaintext(b, texts); len(found) > 0 {
			t.Errorf("%s holds plaintext: %q", p, found)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestNoPlaintextAtRestSQLite(t *testing.T) {
	dbDir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dbDir, "vaultcrux.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	env := vctest.NewWithStore(t, st)
	texts := ingestSecrets(t, env)
	// The scan must be able to see plaintext: the title is plaintext
	// metadata by design, and is found.
	probe := false
	filepath.WalkDir(dbDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			probe = probe || bytes.Contains(b, []byte("Title of alpha"))
		}
		return nil
	})
	if !probe {
		t.Fatal("the scan does not see the plaintext title: it would not see content either")
	}
	// While open (the WAL holds the recent pages) and after closing.
	if n := scanDir(t, dbDir, texts) + scanDir(t, env.Config.DataDir, texts); n < 2 {
		t.Fatalf("scanned only %d files", n)
	}
	env.Ledger.Close()
	st.Close()
	scanDir(t, dbDir, texts)
}

func TestNoPlaintextAtRestPostgres(t *testing.T) {
	dsn, adminDSN := pgtest.DSNPair(t)
	st, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	env := vctest.NewWithStore(t, st)
	texts := ingestSecrets(t, env)
	pgDump, err := pgtest.Binary("pg_dump")
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(pgDump, "--no-owner", "--data-only", "-d", adminDSN)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pg_dump: %v: %s", err, stderr.Bytes())
	}
	if !bytes.Contains(out, []byte("Title of alpha")) || !bytes.Contains(out, []byte("chunks")) {
		t.Fatalf("the dump does not hold the expected tables (%d bytes)", len(out))
	}
	// bytea columns are dumped as hex: decode them, so that plaintext
	// in a binary column would be seen too.
	decoded := append([]byte(nil), out...)
	runs := byteaHex.FindAll(out, -1)
	if len(runs) < 5 { // sealed chunks and jobs, term vectors, receipt log hashes
		t.Fatalf("found %d bytea values in the dump: the hex pattern is wrong", len(runs))
	}
	for _, m := range runs {
		if b, err := hex.DecodeString(string(m[3:])); err == nil {
			decoded = append(append(decoded, '\n'), b...)
		}
	}
	if !bytes.Contains(decoded, []byte("vc1:vaultcrux-master:v1:")) && !bytes.Contains(out, []byte("vc1:vaultcrux-master:v1:")) {
		t.Fatal("the dump holds no wrapped KEK: the scan is not looking at the key tables")
	}
	if found := findPlaintext(decoded, texts); len(found) > 0 {
		t.Fatalf("the PostgreSQL dump holds plaintext: %q", found)
	}
	var _ store.Store = st
}
