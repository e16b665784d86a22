// Package config is the only reader of command-line flags and VAULTCRUX_*
// environment variables. A Config is parsed once in run and passed down;
// nothing below it reads the environment.
//
// Precedence: flag, then environment, then default. Every secret setting
// also has a …_FILE form naming a file that a secrets agent renders; the
// secret itself is never a flag (it would show in the process list) and a
// Config is logged or printed only through Redacted.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vaultcrux/vaultcrux"
)

// Config is the effective configuration of a vaultcrux process.
type Config struct {
	Listen          string
	DataDir         string
	BootstrapTenant vaultcrux.TenantID

	// DatabaseURL selects PostgreSQL when set; empty means the embedded
	// SQLite database in DataDir. It is a secret (it may hold a password).
	DatabaseURL     string
	DatabaseURLFile string

	// APIKeyPepperFile holds the server secret keyed into API key hashes.
	// Default: DataDir/keys/api-key-pepper, created on first start.
	APIKeyPepperFile string

	// SigningKeyFile holds the Ed25519 receipt signing key seed, rendered
	// by a secrets agent; such a key is never rotated by vaultcrux itself.
	// Default: DataDir/keys/signing-key, created on first start and
	// replaced by `vaultcrux keys rotate-signing`.
	SigningKeyFile string

	// MasterKeyFile holds the local key provider's master key (32 bytes,
	// base64), which wraps every tenant's key-encryption key. Default:
	// DataDir/keys/master-key, created 0600 on first start.
	MasterKeyFile string

	// SessionSecretFile holds the server secret that authenticates
	// frontdoor session cookies (HMAC-SHA-256). Default:
	// DataDir/keys/session-secret, created 0600 on first start. Replicas
	// must share it.
	SessionSecretFile string

	// ShieldMode is "observe" (decisions are recorded, nothing is
	// blocked) or "enforce"; Shield holds the defaults of the nine Shield
	// flags (contract §7). Tenants may override both at run time.
	ShieldMode string
	Shield     ShieldFlags
	// ShieldTaintAction is what a dangerous action with tainted inputs
	// gets: "block" (deny) or "approval" (sent to the approval gate).
	ShieldTaintAction string

	// FeatureTeamSeats turns on the /v1/org/* routes (contract §4,
	// FEATURE_TEAM_SEATS); off, they answer 404 feature_disabled.
	FeatureTeamSeats bool

	// SessionTTL is a frontdoor session's absolute lifetime;
	// SessionIdleTimeout ends it after this long without use.
	SessionTTL         time.Duration
	SessionIdleTimeout time.Duration

	// DevInsecureCookie drops the Secure attribute of the session cookie,
	// for a browser talking plain HTTP to a loopback listener during
	// development. Validate refuses it on any other listen address.
	DevInsecureCookie bool

	// InviteTTL is how long a seat invite can be accepted.
	InviteTTL time.Duration

	// AuthFailuresPerAddress and AuthFailuresPerTenant are the budgets of
	// failed authentication attempts per minute (bad keys, forged
	// cookies, failed connects and invite accepts) before 429.
	AuthFailuresPerAddress int
	AuthFailuresPerTenant  int

	OpsAllowlist   []netip.Prefix
	TrustedProxies []netip.Prefix

	BodyLimit       int64
	IngestBodyLimit int64

	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration

	// AuthCacheTTL bounds how long a verified API key record is reused
	// without asking the store: the longest a revocation made by another
	// process (CLI, replica) takes to be seen here.
	AuthCacheTTL time.Duration

	LogLevel string
}

// ShieldFlags are the Shield feature flags, in the contract's promotion
// order.
type ShieldFlags struct {
	Enabled, EnforceCapability, EnforceDigest, SandboxRunner, EnforceTaint,
	EnforceApprovals, SamplingGuardian, UIAppSandbox, KillSwitches bool
}

// DefaultShieldFlags enforce every stage that can work in this binary:
// there is no sandbox runner and no tool UI sandbox yet, so those two are
// off (dangerous_local tools are then denied).
var DefaultShieldFlags = ShieldFlags{
	Enabled: true, EnforceCapability: true, EnforceDigest: true, SandboxRunner: false, EnforceTaint: true,
	EnforceApprovals: true, SamplingGuardian: true, UIAppSandbox: false, KillSwitches: true,
}

// DefaultOpsAllowlist is the tailnet ranges (Tailscale CGNAT and ULA).
// Loopback is deliberately not in it: a local process is not an operator.
var DefaultOpsAllowlist = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("fd7a:115c:a1e0::/48"),
}

// Default returns the defaults.
func Default() Config {
	return Config{
		Listen:            "127.0.0.1:14333",
		DataDir:           "./data",
		BootstrapTenant:   "default",
		OpsAllowlist:      append([]netip.Prefix(nil), DefaultOpsAllowlist...),
		BodyLimit:         1 << 20,
		IngestBodyLimit:   8 << 20,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ShutdownTimeout:   20 * time.Second,
		AuthCacheTTL:      time.Second,
		LogLevel:          "info",
		ShieldMode:        "enforce",
		Shield:            DefaultShieldFlags,
		ShieldTaintAction: "block",

		SessionTTL:             12 * time.Hour,
		SessionIdleTimeout:     30 * time.Minute,
		InviteTTL:              7 * 24 * time.Hour,
		AuthFailuresPerAddress: 20,
		AuthFailuresPerTenant:  200,
	}
}

// setting describes one configuration value: its flag name, its env
// variable and how to parse it into the Config.
type setting struct {
	flag, env, usage string
	alias            string // another accepted env name (the contract's FEATURE_* names)
	boolean          bool   // a flag that may be given without a value
	secret           bool   // no flag; env only (and its _FILE form)
	set              func(c *Config, v string) error
	get              func(c *Config) string
}

var settings = []setting{
	{flag: "listen", env: "VAULTCRUX_LISTEN", usage: "address to listen on",
		set: func(c *Config, v string) error { c.Listen = v; return nil },
		get: func(c *Config) string { return c.Listen }},
	{flag: "data-dir", env: "VAULTCRUX_DATA_DIR", usage: "data directory (SQLite database, local keys)",
		set: func(c *Config, v string) error { c.DataDir = v; return nil },
		get: func(c *Config) string { return c.DataDir }},
	{flag: "bootstrap-tenant", env: "VAULTCRUX_BOOTSTRAP_TENANT", usage: "tenant created on an empty data dir",
		set: func(c *Config, v string) error {
			if !vaultcrux.ValidTenantID(v) {
				return fmt.Errorf("invalid tenant id %q: use 1-63 of a-z 0-9 - _", v)
			}
			c.BootstrapTenant = vaultcrux.TenantID(v)
			return nil
		},
		get: func(c *Config) string { return string(c.BootstrapTenant) }},
	{env: "VAULTCRUX_DATABASE_URL", secret: true, usage: "PostgreSQL URL; empty selects embedded SQLite",
		set: func(c *Config, v string) error { c.DatabaseURL = v; return nil },
		get: func(c *Config) string { return c.DatabaseURL }},
	{flag: "api-key-pepper-file", env: "VAULTCRUX_API_KEY_PEPPER_FILE", usage: "file holding the API key pepper (base64); default <data-dir>/keys/api-key-pepper",
		set: func(c *Config, v string) error { c.APIKeyPepperFile = v; return nil },
		get: func(c *Config) string { return c.APIKeyPepperFile }},
	{flag: "signing-key-file", env: "VAULTCRUX_SIGNING_KEY_FILE", usage: "file holding the receipt signing key seed (32 bytes, base64); default <data-dir>/keys/signing-key",
		set: func(c *Config, v string) error { c.SigningKeyFile = v; return nil },
		get: func(c *Config) string { return c.SigningKeyFile }},
	{flag: "master-key-file", env: "VAULTCRUX_MASTER_KEY_FILE", usage: "file holding the local key provider's master key (32 bytes, base64); default <data-dir>/keys/master-key",
		set: func(c *Config, v string) error { c.MasterKeyFile = v; return nil },
		get: func(c *Config) string { return c.MasterKeyFile }},
	{flag: "ops-allowlist", env: "VAULTCRUX_OPS_ALLOWLIST", usage: "comma-separated CIDRs allowed to read /metrics and /build-info without a key (\"none\" for empty)",
		set: func(c *Config, v string) (err error) { c.OpsAllowlist, err = parsePrefixes(v); return err },
		get: func(c *Config) string { return formatPrefixes(c.OpsAllowlist) }},
	{flag: "trusted-proxies", env: "VAULTCRUX_TRUSTED_PROXIES", usage: "comma-separated CIDRs of proxies whose X-Forwarded-For is believed",
		set: func(c *Config, v string) (err error) { c.TrustedProxies, err = parsePrefixes(v); return err },
		get: func(c *Config) string { return formatPrefixes(c.TrustedProxies) }},
	{flag: "body-limit", env: "VAULTCRUX_BODY_LIMIT", usage: "request body limit in bytes",
		set: func(c *Config, v string) (err error) { c.BodyLimit, err = parseSize(v); return err },
		get: func(c *Config) string { return strconv.FormatInt(c.BodyLimit, 10) }},
	{flag: "ingest-body-limit", env: "VAULTCRUX_INGEST_BODY_LIMIT", usage: "ingest request body limit in bytes",
		set: func(c *Config, v string) (err error) { c.IngestBodyLimit, err = parseSize(v); return err },
		get: func(c *Config) string { return strconv.FormatInt(c.IngestBodyLimit, 10) }},
	durationSetting("read-header-timeout", "VAULTCRUX_READ_HEADER_TIMEOUT", func(c *Config) *time.Duration { return &c.ReadHeaderTimeout }),
	durationSetting("read-timeout", "VAULTCRUX_READ_TIMEOUT", func(c *Config) *time.Duration { return &c.ReadTimeout }),
	durationSetting("write-timeout", "VAULTCRUX_WRITE_TIMEOUT", func(c *Config) *time.Duration { return &c.WriteTimeout }),
	durationSetting("idle-timeout", "VAULTCRUX_IDLE_TIMEOUT", func(c *Config) *time.Duration { return &c.IdleTimeout }),
	durationSetting("shutdown-timeout", "VAULTCRUX_SHUTDOWN_TIMEOUT", func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
	durationSetting("auth-cache-ttl", "VAULTCRUX_AUTH_CACHE_TTL", func(c *Config) *time.Duration { return &c.AuthCacheTTL }),
	{flag: "session-secret-file", env: "VAULTCRUX_SESSION_SECRET_FILE", usage: "file holding the session cookie secret (base64); default <data-dir>/keys/session-secret",
		set: func(c *Config, v string) error { c.SessionSecretFile = v; return nil },
		get: func(c *Config) string { return c.SessionSecretFile }},
	{flag: "shield-mode", env: "VAULTCRUX_SHIELD_MODE", alias: "SHIELD_MODE", usage: "observe (record decisions, block nothing) or enforce",
		set: func(c *Config, v string) error {
			if v != "observe" && v != "enforce" {
				return fmt.Errorf("shield mode %q: want observe or enforce", v)
			}
			c.ShieldMode = v
			return nil
		},
		get: func(c *Config) string { return c.ShieldMode }},
	{flag: "shield-taint-action", env: "VAULTCRUX_SHIELD_TAINT_ACTION", usage: "block (deny) or approval: what a write, dangerous_local or egress action with tainted inputs gets",
		set: func(c *Config, v string) error {
			if v != "block" && v != "approval" {
				return fmt.Errorf("shield taint action %q: want block or approval", v)
			}
			c.ShieldTaintAction = v
			return nil
		},
		get: func(c *Config) string { return c.ShieldTaintAction }},
	boolSetting("feature-shield-enabled", "VAULTCRUX_FEATURE_SHIELD_ENABLED", "FEATURE_SHIELD_ENABLED", "evaluate Shield at all", func(c *Config) *bool { return &c.Shield.Enabled }),
	boolSetting("feature-shield-enforce-capability", "VAULTCRUX_FEATURE_SHIELD_ENFORCE_CAPABILITY", "FEATURE_SHIELD_ENFORCE_CAPABILITY", "enforce the capability firewall", func(c *Config) *bool { return &c.Shield.EnforceCapability }),
	boolSetting("feature-trust-registry-enforce-digest", "VAULTCRUX_FEATURE_TRUST_REGISTRY_ENFORCE_DIGEST", "FEATURE_TRUST_REGISTRY_ENFORCE_DIGEST", "enforce pinned server digests", func(c *Config) *bool { return &c.Shield.EnforceDigest }),
	boolSetting("feature-sandbox-runner", "VAULTCRUX_FEATURE_SANDBOX_RUNNER", "FEATURE_SANDBOX_RUNNER", "allow dangerous_local tools (a sandbox runs them)", func(c *Config) *bool { return &c.Shield.SandboxRunner }),
	boolSetting("feature-shield-enforce-taint", "VAULTCRUX_FEATURE_SHIELD_ENFORCE_TAINT", "FEATURE_SHIELD_ENFORCE_TAINT", "enforce the taint stage", func(c *Config) *bool { return &c.Shield.EnforceTaint }),
	boolSetting("feature-shield-enforce-approvals", "VAULTCRUX_FEATURE_SHIELD_ENFORCE_APPROVALS", "FEATURE_SHIELD_ENFORCE_APPROVALS", "enforce the approval gate", func(c *Config) *bool { return &c.Shield.EnforceApprovals }),
	boolSetting("feature-sampling-guardian", "VAULTCRUX_FEATURE_SAMPLING_GUARDIAN", "FEATURE_SAMPLING_GUARDIAN", "enforce sampling policies", func(c *Config) *bool { return &c.Shield.SamplingGuardian }),
	boolSetting("feature-ui-app-sandbox", "VAULTCRUX_FEATURE_UI_APP_SANDBOX", "FEATURE_UI_APP_SANDBOX", "enforce UI integrity sessions for tool UIs", func(c *Config) *bool { return &c.Shield.UIAppSandbox }),
	boolSetting("feature-kill-switches", "VAULTCRUX_FEATURE_KILL_SWITCHES", "FEATURE_KILL_SWITCHES", "honour kill switches", func(c *Config) *bool { return &c.Shield.KillSwitches }),
	boolSetting("feature-team-seats", "VAULTCRUX_FEATURE_TEAM_SEATS", "FEATURE_TEAM_SEATS", "serve the team seat routes /v1/org/*", func(c *Config) *bool { return &c.FeatureTeamSeats }),
	durationSetting("session-ttl", "VAULTCRUX_SESSION_TTL", func(c *Config) *time.Duration { return &c.SessionTTL }),
	durationSetting("session-idle-timeout", "VAULTCRUX_SESSION_IDLE_TIMEOUT", func(c *Config) *time.Duration { return &c.SessionIdleTimeout }),
	boolSetting("dev-insecure-cookie", "VAULTCRUX_DEV_INSECURE_COOKIE", "", "drop Secure from the session cookie (development over plain HTTP on a loopback listener only)", func(c *Config) *bool { return &c.DevInsecureCookie }),
	durationSetting("invite-ttl", "VAULTCRUX_INVITE_TTL", func(c *Config) *time.Duration { return &c.InviteTTL }),
	intSetting("auth-failures-per-address", "VAULTCRUX_AUTH_FAILURES_PER_ADDRESS", "failed authentication attempts per minute per client address before 429", func(c *Config) *int { return &c.AuthFailuresPerAddress }),
	intSetting("auth-failures-per-tenant", "VAULTCRUX_AUTH_FAILURES_PER_TENANT", "failed authentication attempts per minute per tenant before further failures get 429", func(c *Config) *int { return &c.AuthFailuresPerTenant }),
	{flag: "log-level", env: "VAULTCRUX_LOG_LEVEL", usage: "debug, info, warn or error",
		set: func(c *Config, v string) error {
			switch v {
			case "debug", "info", "warn", "error":
				c.LogLevel = v
				return nil
			}
			return fmt.Errorf("log level %q: want debug, info, warn or error", v)
		},
		get: func(c *Config) string { return c.LogLevel }},
}

func durationSetting(name, env string, field func(*Config) *time.Duration) setting {
	return setting{flag: name, env: env, usage: name + " (Go duration, e.g. 5s)",
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return fmt.Errorf("%s: want a non-negative duration such as 5s", name)
			}
			*field(c) = d
			return nil
		},
		get: func(c *Config) string { return field(c).String() }}
}

func boolSetting(name, env, alias, usage string, field func(*Config) *bool) setting {
	return setting{flag: name, env: env, alias: alias, usage: usage, boolean: true,
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s: want true or false", name)
			}
			*field(c) = b
			return nil
		},
		get: func(c *Config) string { return strconv.FormatBool(*field(c)) }}
}

func intSetting(name, env, usage string, field func(*Config) *int) setting {
	return setting{flag: name, env: env, usage: usage,
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("%s: want a positive integer", name)
			}
			*field(c) = n
			return nil
		},
		get: func(c *Config) string { return strconv.Itoa(*field(c)) }}
}

// boolFlag is a string-valued flag that, like flag.Bool, may be given
// without a value ("--feature-team-seats" means true).
type boolFlag struct{ v *string }

func (b boolFlag) String() string {
	if b.v == nil {
		return ""
	}
	return *b.v
}
func (b boolFlag) Set(s string) error { *b.v = s; return nil }
func (b boolFlag) IsBoolFlag() bool   { return true }

// ReadFile reads a …_FILE secret; injected so that tests need no files.
type ReadFile func(path string) ([]byte, error)

// Parse registers every setting on fs, parses args (flags may come before
// or after positional arguments), and layers flags over env (getenv) over
// Default. It returns the validated Config and the positional arguments.
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string, readFile ReadFile) (*Config, []string, error) {
	c := Default()
	flagVals := map[string]*string{}
	for _, s := range settings {
		switch {
		case s.flag != "" && s.boolean:
			v := s.get(&c)
			flagVals[s.flag] = &v
			fs.Var(boolFlag{&v}, s.flag, s.usage+" (env "+s.env+")")
		case s.flag != "":
			flagVals[s.flag] = fs.String(s.flag, s.get(&c), s.usage+" (env "+s.env+")")
		}
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	setFlags := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { setFlags[f.Name] = true })

	for _, s := range settings {
		var v string
		var have bool
		switch {
		case s.flag != "" && setFlags[s.flag]:
			v, have = *flagVals[s.flag], true
		case getenv(s.env) != "":
			v, have = getenv(s.env), true
		case s.alias != "" && getenv(s.alias) != "":
			v, have = getenv(s.alias), true
		case s.secret && getenv(s.env+"_FILE") != "":
			b, err := readFile(getenv(s.env + "_FILE"))
			if err != nil {
				return nil, nil, fmt.Errorf("%s_FILE: %w", s.env, err)
			}
			v, have = strings.TrimRight(string(b), "\r\n"), true
			if s.env == "VAULTCRUX_DATABASE_URL" {
				c.DatabaseURLFile = getenv(s.env + "_FILE")
			}
		}
		if s.alias != "" && getenv(s.env) != "" && getenv(s.alias) != "" && getenv(s.env) != getenv(s.alias) {
			return nil, nil, fmt.Errorf("%s and %s disagree; set one of them", s.env, s.alias)
		}
		if s.secret && getenv(s.env) != "" && getenv(s.env+"_FILE") != "" {
			return nil, nil, fmt.Errorf("set only one of %s and %s_FILE", s.env, s.env)
		}
		if !have {
			continue
		}
		if err := s.set(&c, v); err != nil {
			return nil, nil, err
		}
	}
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	return &c, positional, nil
}

// Validate checks cross-field rules.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data-dir must not be empty"))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: %v", c.Listen, err))
	}
	if c.BodyLimit < 1024 || c.IngestBodyLimit < c.BodyLimit {
		errs = append(errs, errors.New("body-limit must be ≥ 1024 and ingest-body-limit ≥ body-limit"))
	}
	if c.ReadHeaderTimeout <= 0 || c.IdleTimeout <= 0 {
		errs = append(errs, errors.New("read-header-timeout and idle-timeout must be positive"))
	}
	if c.SessionTTL <= 0 || c.SessionIdleTimeout <= 0 || c.SessionIdleTimeout > c.SessionTTL {
		errs = append(errs, errors.New("session-ttl and session-idle-timeout must be positive, the idle timeout no longer than the ttl"))
	}
	if c.InviteTTL < time.Minute || c.InviteTTL > 90*24*time.Hour {
		errs = append(errs, errors.New("invite-ttl must be between 1m and 2160h (90 days)"))
	}
	if c.AuthFailuresPerAddress < 1 || c.AuthFailuresPerTenant < 1 {
		errs = append(errs, errors.New("auth-failures-per-address and auth-failures-per-tenant must be at least 1"))
	}
	if c.DevInsecureCookie && !loopbackListen(c.Listen) {
		errs = append(errs, fmt.Errorf("dev-insecure-cookie is allowed only on a loopback IP listen address, not %q: a session cookie without Secure must never cross a network", c.Listen))
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		errs = append(errs, errors.New("VAULTCRUX_DATABASE_URL must be a postgres:// URL"))
	}
	return errors.Join(errs...)
}

// loopbackListen reports whether listen is host:port with host a loopback
// IP literal (a name such as localhost may resolve elsewhere).
func loopbackListen(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// SessionSecretPath is the effective path of the session cookie secret;
// SessionSecretManaged reports whether it was configured (it then must
// exist and is never created by vaultcrux).
func (c *Config) SessionSecretPath() string {
	if c.SessionSecretFile != "" {
		return c.SessionSecretFile
	}
	return filepath.Join(c.DataDir, "keys", "session-secret")
}

// SessionSecretManaged reports whether the session secret file was configured.
func (c *Config) SessionSecretManaged() bool { return c.SessionSecretFile != "" }

// PepperFile is the effective path of the API key pepper.
func (c *Config) PepperFile() string {
	if c.APIKeyPepperFile != "" {
		return c.APIKeyPepperFile
	}
	return filepath.Join(c.DataDir, "keys", "api-key-pepper")
}

// SigningKeyPath is the effective path of the receipt signing key seed;
// SigningKeyManaged reports whether it was configured (and so is rendered
// by a secrets agent, not created or replaced here).
func (c *Config) SigningKeyPath() string {
	if c.SigningKeyFile != "" {
		return c.SigningKeyFile
	}
	return filepath.Join(c.DataDir, "keys", "signing-key")
}

// MasterKeyPath is the effective path of the local provider's master key.
func (c *Config) MasterKeyPath() string {
	if c.MasterKeyFile != "" {
		return c.MasterKeyFile
	}
	return filepath.Join(c.DataDir, "keys", "master-key")
}

// MasterKeyManaged reports whether the master key file was configured (it
// is then rendered by a secrets agent and never created by vaultcrux).
func (c *Config) MasterKeyManaged() bool { return c.MasterKeyFile != "" }

// SigningKeyManaged reports whether the signing key file was configured.
func (c *Config) SigningKeyManaged() bool { return c.SigningKeyFile != "" }

// SQLitePath is the path of the embedded database.
func (c *Config) SQLitePath() string { return filepath.Join(c.DataDir, "vaultcrux.db") }

// Backend is "postgres" when a database URL is set, else "sqlite".
func (c *Config) Backend() string {
	if c.DatabaseURL != "" {
		return "postgres"
	}
	return "sqlite"
}

// Redacted returns the effective settings as name → value with every
// secret replaced, fit for logs and `vaultcrux config`.
func (c *Config) Redacted() map[string]string {
	out := map[string]string{"backend": c.Backend(), "api_key_pepper_file": c.PepperFile(), "signing_key_file": c.SigningKeyPath(), "master_key_file": c.MasterKeyPath(), "session_secret_file": c.SessionSecretPath()}
	for _, s := range settings {
		v := s.get(c)
		if s.secret && v != "" {
			v = "[REDACTED]"
		}
		out[s.env] = v
	}
	if c.DatabaseURLFile != "" {
		out["VAULTCRUX_DATABASE_URL_FILE"] = c.DatabaseURLFile
	}
	return out
}

func parsePrefixes(v string) ([]netip.Prefix, error) {
	v = strings.TrimSpace(v)
	if v == "" || v == "none" {
		return nil, nil
	}
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("bad CIDR %q", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func formatPrefixes(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func parseSize(v string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(v, "MiB"):
		mult, v = 1<<20, strings.TrimSuffix(v, "MiB")
	case strings.HasSuffix(v, "KiB"):
		mult, v = 1<<10, strings.TrimSuffix(v, "KiB")
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want bytes, or a number with KiB/MiB", v)
	}
	return n * mult, nil
}
