package server

import "runtime/debug"

// BuildInfo says what build of Canopy is running.
type BuildInfo struct {
	// Version is the main module's version: a release tag, or a
	// pseudo-version built from the commit, or "(devel)".
	Version string
	// Commit is the VCS revision the binary was built from ("" when the
	// build did not record it, as in tests), with "+dirty" when the work
	// tree had changes.
	Commit string
	// GoVersion is the Go release that built it.
	GoVersion string
}

// Build returns the running binary's build information, as the Go
// toolchain recorded it.
func Build() BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return BuildInfo{Version: "(unknown)"}
	}
	out := BuildInfo{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if out.Version == "" {
		out.Version = "(devel)"
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			out.Commit = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && out.Commit != "" {
		out.Commit += "+dirty"
	}
	return out
}

// String formats the build as one line: "VERSION (commit COMMIT, GO)".
func (b BuildInfo) String() string {
	commit := b.Commit
	if commit == "" {
		commit = "unknown"
	}
	return b.Version + " (commit " + commit + ", " + b.GoVersion + ")"
}
