// Package pgtest gives tests throwaway PostgreSQL databases.
//
// One server runs per test binary: the one named by the admin DSN in
// VAULTCRUX_TEST_POSTGRES_DSN, or else a private server that pgtest
// starts from the installed binaries (the newest under
// /usr/lib/postgresql/*/bin, or initdb and postgres on PATH) in a
// temporary directory, on a free 127.0.0.1 port, with password
// authentication. Without either, tests that ask for a database are
// skipped, loudly.
//
// Invariants:
//   - DSN connects as a role without SUPERUSER or BYPASSRLS, so that
//     row-level security applies as in production.
//   - A test binary that uses pgtest runs it through Main, which stops the
//     private server and removes its directory when the tests end. The
//     server also gets a parent-death signal, so that a test binary that
//     is killed or panics does not leave it running (its directory then
//     stays behind in the temporary directory).
//   - Every database and role pgtest creates is dropped again, also on an
//     external server.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// EnvDSN names the environment variable with the admin DSN of an existing
// server to use instead of starting one.
const EnvDSN = "VAULTCRUX_TEST_POSTGRES_DSN"

// EnvRequire, when set, turns the skip into a failure.
const EnvRequire = "VAULTCRUX_REQUIRE_POSTGRES"

const skipMessage = "PostgreSQL not installed: SKIPPING PostgreSQL tests; install postgresql or set " + EnvDSN

var warnOnce sync.Once

var (
	mainRunning bool // set by Main, so that DSN can insist on it

	once    sync.Once
	srv     *server
	srvErr  error
	skipped bool
)

// server is a PostgreSQL server with a superuser connection and a test
// role. proc is nil for an external server.
type server struct {
	adminDSN string
	admin    *pgxpool.Pool
	role     string
	password string

	proc *process
}

// Main runs the tests of a package and then shuts the server down. Call
// it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	mainRunning = true
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// DSN returns the DSN of a new, empty database owned by the test role,
// dropped again when t ends. It skips t if PostgreSQL is not available.
func DSN(t testing.TB) string {
	t.Helper()
	s := get(t)
	return withUser(withDatabase(s.adminDSN, s.database(t)), s.role, s.password)
}

// AdminDSN is DSN connecting as the superuser: row-level security does
// not bind it. For tests of what happens when it does not.
func AdminDSN(t testing.TB) string {
	t.Helper()
	s := get(t)
	return withDatabase(s.adminDSN, s.database(t))
}

func get(t testing.TB) *server {
	t.Helper()
	if !mainRunning {
		t.Fatal("pgtest: the package's TestMain must call pgtest.Main")
	}
	once.Do(func() { srvErr = start() })
	if skipped {
		// CI sets EnvRequire: there, a missing PostgreSQL is a failure,
		// not a skip, so a broken install step cannot pass silently.
		if os.Getenv(EnvRequire) != "" {
			t.Fatalf("pgtest: %s is set but no PostgreSQL is available", EnvRequire)
		}
		// t.Skip alone shows only under -v: say it on stderr once too.
		warnOnce.Do(func() { fmt.Fprintln(os.Stderr, "WARNING: "+skipMessage) })
		t.Skip(skipMessage)
	}
	if srvErr != nil {
		t.Fatalf("pgtest: %v", srvErr)
	}
	return srv
}

func (s *server) database(t testing.TB) string {
	t.Helper()
	name := "vctest_" + randomHex(8)
	ctx := context.Background()
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+name+" OWNER "+s.role); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := s.admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database: %v", err)
		}
	})
	return name
}

// start sets srv as soon as there is something for shutdown to undo.
func start() error {
	s := &server{role: "vctest_" + randomHex(6), password: randomHex(16)}
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		s.adminDSN = dsn
	} else {
		bin, err := findBinaries()
		if err != nil {
			skipped = true
			return err
		}
		if s.proc, err = startProcess(bin); err != nil {
			return err
		}
		s.adminDSN = s.proc.adminDSN
	}
	srv = s
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(s.adminDSN)
	if err == nil {
		cfg.MaxConns = 4
		s.admin, err = pgxpool.NewWithConfig(ctx, cfg)
	}
	if err == nil {
		err = s.admin.Ping(ctx)
	}
	if err != nil {
		return err
	}
	// The identifier and the password are hex from randomHex, so
	// formatting them into DDL is safe.
	_, err = s.admin.Exec(ctx, fmt.Sprintf(
		"CREATE ROLE %s LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD '%s'",
		s.role, s.password))
	return err
}

// shutdown drops the test role and stops the private server.
func shutdown() error {
	s := srv
	if s == nil {
		return nil
	}
	var errs []error
	if s.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		// DROP ROLE fails if a database is left; DSN's cleanups drop them.
		if _, err := s.admin.Exec(ctx, "DROP ROLE IF EXISTS "+s.role); err != nil {
			errs = append(errs, err)
		}
		cancel()
		s.admin.Close()
	}
	if s.proc != nil {
		errs = append(errs, s.proc.stop())
	}
	return errors.Join(errs...)
}

func findBinaries() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL binaries found")
}

// process is a postgres server started by pgtest.
type process struct {
	dir      string
	adminDSN string
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the server has exited
	waitErr  error
}

func startProcess(bin string) (_ *process, err error) {
	dir, err := os.MkdirTemp("", "vaultcrux-pgtest-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	// PostgreSQL refuses to run as root: run it as the postgres user.
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root and no postgres user to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	password := randomHex(16)
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(pwfile, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := command(cred, dir, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=scram-sha-256", "--pwfile="+pwfile, "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	os.Remove(pwfile)

	// The port is free when chosen but could be taken before postgres
	// binds it; then postgres exits and we try another.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		p := &process{
			dir:      dir,
			adminDSN: fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", password, port),
		}
		err = p.start(cred, bin, data, port)
		if err == nil || attempt == 2 {
			return p, err
		}
	}
}

func (p *process) start(cred *syscall.Credential, bin, data string, port int) error {
	logPath := filepath.Join(p.dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	p.cmd = command(cred, p.dir, filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+p.dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200")
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	// SIGQUIT is immediate shutdown, if the test binary dies first.
	p.cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	p.exited = make(chan struct{})
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that started the child exits,
		// not the process: keep this thread for as long as the child.
		runtime.LockOSThread()
		if err := p.cmd.Start(); err != nil {
			started <- err
			close(p.exited)
			return
		}
		started <- nil
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return err
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, p.adminDSN)
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-p.exited:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres exited: %v\n%s", p.waitErr, tail(log))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.kill()
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres did not accept connections: %v\n%s", err, tail(log))
		}
	}
}

// stop shuts the server down and removes its directory.
func (p *process) stop() error {
	p.kill()
	return os.RemoveAll(p.dir)
}

// kill asks for a fast shutdown, and kills the server if that hangs.
func (p *process) kill() {
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
	}
}

func command(cred *syscall.Credential, dir, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "LC_ALL=C", "TZ=UTC"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	return cmd
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(b []byte) []byte {
	if i := len(b) - 2000; i > 0 {
		b = b[i:]
	}
	return bytes.TrimSpace(b)
}

// withUser returns dsn with its user and password replaced.
func withUser(dsn, user, password string) string {
	if u, ok := parseURL(dsn); ok {
		u.User = url.UserPassword(user, password)
		return u.String()
	}
	return dsn + " user=" + user + " password=" + password
}

// withDatabase returns dsn with its database replaced.
func withDatabase(dsn, db string) string {
	if u, ok := parseURL(dsn); ok {
		u.Path = "/" + db
		return u.String()
	}
	return dsn + " dbname=" + db
}

// parseURL parses a URL DSN; keyword/value DSNs are not URLs, and a later
// keyword overrides an earlier one in them, so they are extended instead.
func parseURL(dsn string) (*url.URL, bool) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return nil, false
	}
	u, err := url.Parse(dsn)
	return u, err == nil
}

// Binary returns the path of a PostgreSQL client program (pg_dump, psql)
// of the installation pgtest uses.
func Binary(name string) (string, error) {
	dir, err := findBinaries()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

// DSNPair is DSN together with a superuser DSN of the same database: for
// tests that inspect what the application wrote as a backup tool would
// (pg_dump), past row-level security.
func DSNPair(t testing.TB) (user, admin string) {
	t.Helper()
	s := get(t)
	db := s.database(t)
	return withUser(withDatabase(s.adminDSN, db), s.role, s.password), withDatabase(s.adminDSN, db)
}
