package versions

import "runtime/debug"

// Kubeup is this release of kubeup: the commands, the agent and the Packer plugin.
const Kubeup = "0.1.0"

// Commit is the git commit the binary was built from, stamped by the build
// (-ldflags "-X kubeup.dev/kubeup/internal/versions.Commit=..."; `make build` does).
var Commit string

// BuildCommit is Commit, or else the commit Go recorded when it built from a git checkout, or
// else "unknown" (go run, -buildvcs=false).
func BuildCommit() string {
	if Commit != "" {
		return Commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if dirty {
				rev += "-dirty"
			}
			return rev
		}
	}
	return "unknown"
}
