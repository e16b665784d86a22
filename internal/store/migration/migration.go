// Package migration reads the embedded, numbered, forward-only schema
// migrations of a store backend. It owns only the naming rule; applying
// migrations is the backend's job because locking differs per dialect.
//
// Invariants: versions are 1, 2, 3, … with no gap or duplicate, so that
// "applied version n" means "files 1..n ran"; a malformed set is a build
// bug and is reported before any SQL runs.
package migration

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
)

// Migration is one schema change, read from a file NNNN_name.sql.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

var fileName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)

// Load returns the migrations in dir of fsys, ordered by version.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries { // ReadDir sorts by name, hence by version
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			return nil, fmt.Errorf("migration: unexpected file %q", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v != len(ms)+1 {
			return nil, fmt.Errorf("migration: %q: want version %d", e.Name(), len(ms)+1)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: m[2], SQL: string(b)})
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("migration: no migrations in %q", dir)
	}
	return ms, nil
}

// MustLoad is Load for embedded sets, which are fixed at build time.
func MustLoad(fsys fs.FS, dir string) []Migration {
	ms, err := Load(fsys, dir)
	if err != nil {
		panic(err)
	}
	return ms
}
