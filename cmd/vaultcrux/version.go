package main

import (
	"context"
	"encoding/json"
	"flag"
	"runtime"
	"runtime/debug"

	"github.com/vaultcrux/vaultcrux"
)

// Set by the build script: -ldflags "-X main.version=… -X main.commit=… -X main.builtAt=…".
var (
	version string
	commit  string
	builtAt string
)

// buildInfo reports the ldflags values, falling back to what the Go
// toolchain recorded in the binary (module version, VCS revision and time).
func buildInfo() vaultcrux.BuildInfo {
	bi := vaultcrux.BuildInfo{Service: "vaultcrux", Version: version, Commit: commit, BuiltAt: builtAt, GoVersion: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		if bi.Version == "" && info.Main.Version != "" {
			bi.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision" && bi.Commit == "":
				bi.Commit = s.Value
			case s.Key == "vcs.time" && bi.BuiltAt == "":
				bi.BuiltAt = s.Value
			}
		}
	}
	if bi.Version == "" {
		bi.Version = "(devel)"
	}
	if bi.Commit == "" {
		bi.Commit = "unknown"
	}
	return bi
}

func runVersion(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(buildInfo())
}
