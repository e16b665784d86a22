package config

import (
	"errors"
	"flag"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func parse(t *testing.T, args []string, env map[string]string, files map[string]string) (*Config, []string, error) {
	t.Helper()
	read := func(p string) ([]byte, error) {
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, errors.New("no such file")
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	return Parse(fs, args, func(k string) string { return env[k] }, read)
}

func TestDefaults(t *testing.T) {
	c, pos, err := parse(t, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:14333" || c.DataDir != "./data" || c.BootstrapTenant != "default" || c.Backend() != "sqlite" || len(pos) != 0 {
		t.Errorf("defaults = %+v", c)
	}
	want := []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("fd7a:115c:a1e0::/48")}
	if diff := cmp.Diff(want, c.OpsAllowlist, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("ops allowlist (-want +got):\n%s", diff)
	}
	for _, p := range c.OpsAllowlist {
		if p.Contains(netip.MustParseAddr("127.0.0.1")) || p.Contains(netip.MustParseAddr("::1")) {
			t.Errorf("loopback is in the default ops allowlist")
		}
	}
}

func TestPrecedence(t *testing.T) {
	env := map[string]string{"VAULTCRUX_LISTEN": "0.0.0.0:1", "VAULTCRUX_DATA_DIR": "/env", "VAULTCRUX_IDLE_TIMEOUT": "7s"}
	c, pos, err := parse(t, []string{"--listen", "127.0.0.1:2", "x", "--body-limit", "2MiB", "y"}, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:2" || c.DataDir != "/env" || c.IdleTimeout != 7*time.Second || c.BodyLimit != 2<<20 {
		t.Errorf("got %+v", c)
	}
	if diff := cmp.Diff([]string{"x", "y"}, pos); diff != "" {
		t.Errorf("positional (-want +got):\n%s", diff)
	}
}

func TestSecretFile(t *testing.T) {
	files := map[string]string{"/run/db": "postgres://u:pw@h/db\n"}
	c, _, err := parse(t, nil, map[string]string{"VAULTCRUX_DATABASE_URL_FILE": "/run/db"}, files)
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "postgres://u:pw@h/db" || c.Backend() != "postgres" {
		t.Errorf("database url from file = %q", c.DatabaseURL)
	}
	r := c.Redacted()
	if r["VAULTCRUX_DATABASE_URL"] != "[REDACTED]" || r["VAULTCRUX_DATABASE_URL_FILE"] != "/run/db" {
		t.Errorf("redacted = %v", r)
	}
	for k, v := range r {
		if strings.Contains(v, "pw@") {
			t.Errorf("%s leaks the password: %q", k, v)
		}
	}
}

func TestRejects(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"both secret forms", nil, map[string]string{"VAULTCRUX_DATABASE_URL": "postgres://a", "VAULTCRUX_DATABASE_URL_FILE": "/x"}},
		{"missing secret file", nil, map[string]string{"VAULTCRUX_DATABASE_URL_FILE": "/nope"}},
		{"not a postgres url", nil, map[string]string{"VAULTCRUX_DATABASE_URL": "mysql://a"}},
		{"bad cidr", []string{"--ops-allowlist", "10.0.0.0/33"}, nil},
		{"bad duration", []string{"--idle-timeout", "soon"}, nil},
		{"bad size", []string{"--body-limit", "-1"}, nil},
		{"ingest below body", []string{"--body-limit", "4MiB", "--ingest-body-limit", "1MiB"}, nil},
		{"bad listen", []string{"--listen", "nowhere"}, nil},
		{"bad tenant", []string{"--bootstrap-tenant", "Has Space"}, nil},
		{"bad log level", []string{"--log-level", "loud"}, nil},
		{"secret as a flag", []string{"--database-url", "postgres://x"}, nil},
	}
	for _, c := range cases {
		if _, _, err := parse(t, c.args, c.env, nil); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

func TestOpsAllowlistNone(t *testing.T) {
	c, _, err := parse(t, []string{"--ops-allowlist", "none", "--trusted-proxies", "10.0.0.1, 192.168.0.0/16"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.OpsAllowlist) != 0 || len(c.TrustedProxies) != 2 || c.TrustedProxies[0] != netip.MustParsePrefix("10.0.0.1/32") {
		t.Errorf("allowlist %v proxies %v", c.OpsAllowlist, c.TrustedProxies)
	}
}
