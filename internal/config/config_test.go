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

func TestSeatAndSessionDefaults(t *testing.T) {
	c, _, err := parse(t, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.FeatureTeamSeats || c.DevInsecureCookie || c.SessionTTL != 12*time.Hour || c.SessionIdleTimeout != 30*time.Minute ||
		c.InviteTTL != 7*24*time.Hour || c.AuthFailuresPerAddress != 20 || c.AuthFailuresPerTenant != 200 {
		t.Errorf("defaults = %+v", c)
	}
	if got, want := c.SessionSecretPath(), "data/keys/session-secret"; got != want || c.SessionSecretManaged() {
		t.Errorf("SessionSecretPath = %q (managed %v), want %q unmanaged", got, c.SessionSecretManaged(), want)
	}
	if got := c.Redacted()["session_secret_file"]; got != "data/keys/session-secret" {
		t.Errorf("Redacted session_secret_file = %q", got)
	}
	c, _, err = parse(t, []string{"--session-secret-file", "/run/vc/session"}, nil, nil)
	if err != nil || c.SessionSecretPath() != "/run/vc/session" || !c.SessionSecretManaged() {
		t.Errorf("--session-secret-file: %v, %q", err, c.SessionSecretPath())
	}
}

func TestFeatureTeamSeats(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want bool
	}{
		{"default off", nil, nil, false},
		{"contract name", nil, map[string]string{"FEATURE_TEAM_SEATS": "true"}, true},
		{"prefixed name", nil, map[string]string{"VAULTCRUX_FEATURE_TEAM_SEATS": "1"}, true},
		{"both agreeing", nil, map[string]string{"VAULTCRUX_FEATURE_TEAM_SEATS": "true", "FEATURE_TEAM_SEATS": "true"}, true},
		{"bare flag", []string{"--feature-team-seats"}, nil, true},
		{"flag over env", []string{"--feature-team-seats=false"}, map[string]string{"FEATURE_TEAM_SEATS": "true"}, false},
	}
	for _, c := range cases {
		got, _, err := parse(t, c.args, c.env, nil)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got.FeatureTeamSeats != c.want {
			t.Errorf("%s: FeatureTeamSeats = %v, want %v", c.name, got.FeatureTeamSeats, c.want)
		}
	}
	for name, env := range map[string]map[string]string{
		"disagreeing names": {"VAULTCRUX_FEATURE_TEAM_SEATS": "true", "FEATURE_TEAM_SEATS": "false"},
		"not a bool":        {"FEATURE_TEAM_SEATS": "yes please"},
	} {
		if _, _, err := parse(t, nil, env, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDevInsecureCookieOnlyOnLoopback(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:0", "127.0.0.2:8080", "[::1]:14333"} {
		c, _, err := parse(t, []string{"--dev-insecure-cookie", "--listen", listen}, nil, nil)
		if err != nil || !c.DevInsecureCookie {
			t.Errorf("listen %s: %v, DevInsecureCookie=%v; want accepted", listen, err, c != nil && c.DevInsecureCookie)
		}
	}
	for _, listen := range []string{"0.0.0.0:14333", ":14333", "localhost:14333", "192.168.1.5:80", "[::]:80"} {
		_, _, err := parse(t, nil, map[string]string{"VAULTCRUX_DEV_INSECURE_COOKIE": "true", "VAULTCRUX_LISTEN": listen}, nil)
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("listen %s: err = %v, want a refusal naming loopback", listen, err)
		}
	}
}

func TestSessionSettingsRejected(t *testing.T) {
	for name, args := range map[string][]string{
		"idle longer than ttl":   {"--session-ttl", "1h", "--session-idle-timeout", "2h"},
		"zero ttl":               {"--session-ttl", "0s"},
		"zero idle":              {"--session-idle-timeout", "0s"},
		"invite ttl too short":   {"--invite-ttl", "10s"},
		"invite ttl too long":    {"--invite-ttl", "2200h"},
		"zero address budget":    {"--auth-failures-per-address", "0"},
		"negative tenant budget": {"--auth-failures-per-tenant", "-5"},
		"budget not a number":    {"--auth-failures-per-address", "many"},
	} {
		if _, _, err := parse(t, args, nil, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c, _, err := parse(t, []string{"--session-ttl", "2h", "--session-idle-timeout", "2h", "--invite-ttl", "24h", "--auth-failures-per-address", "5"}, nil, nil)
	if err != nil || c.SessionTTL != 2*time.Hour || c.SessionIdleTimeout != 2*time.Hour || c.InviteTTL != 24*time.Hour || c.AuthFailuresPerAddress != 5 {
		t.Errorf("valid session settings: %v %+v", err, c)
	}
}
