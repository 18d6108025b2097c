// Package buildinfo says what a chunked-uploader binary was built from: its module version
// and, for a build from a version-controlled tree, the commit (go build stamps it unless
// -buildvcs=false). Every binary prints it for --version, and the server exports it as the
// chunked_uploader_build_info metric, so an operator can tell what runs.
//
// Plugin authors can use it too: check for --version before calling sdk.Serve (the host
// never passes arguments to a plugin):
//
//	func main() {
//		if buildinfo.PrintVersion(os.Stdout, "chunked-uploader-plugin-mine", os.Args[1:]) {
//			return
//		}
//		sdk.Serve("mine", open)
//	}
package buildinfo

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// Unknown stands for a value the binary does not carry (a build without VCS information,
// such as `go test` or `go run` outside a repository).
const Unknown = "unknown"

// Info describes a build. Fields the binary does not carry are Unknown (Modified is false).
type Info struct {
	Module    string // main module path
	Version   string // module version: a tag such as v1.2.0, a pseudo-version, or "(devel)"
	Revision  string // VCS commit of the build's tree
	Time      string // commit time, RFC 3339
	Modified  bool   // the tree had uncommitted changes
	GoVersion string // the Go toolchain, such as go1.26.8
}

// Set by the linker (-ldflags "-X ...vcsRevision=..."; make build does, through
// scripts/buildinfo-ldflags.sh): the go command's own VCS stamp is missing in a linked git
// worktree and with -buildvcs=false.
var vcsRevision, vcsTime, vcsModified string

// Read returns the running binary's build information. A revision stamped by the linker
// (make build) takes precedence over the go command's VCS stamp.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{GoVersion: runtime.Version()}
	}
	return stamped(FromBuildInfo(bi), vcsRevision, vcsTime, vcsModified)
}

// stamped is in with the linker-stamped revision, time and modified flag, when rev is set.
func stamped(in Info, rev, time, modified string) Info {
	if rev == "" {
		return in
	}
	in.Revision, in.Time, in.Modified = rev, time, modified == "true"
	if in.Time == "" {
		in.Time = Unknown
	}
	return in
}

// FromBuildInfo extracts Info from bi (as debug.ReadBuildInfo or debug/buildinfo.ReadFile
// return it).
func FromBuildInfo(bi *debug.BuildInfo) Info {
	in := Info{Module: bi.Main.Path, Version: bi.Main.Version, GoVersion: bi.GoVersion}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	for _, p := range []*string{&in.Module, &in.Version, &in.Revision, &in.Time, &in.GoVersion} {
		if *p == "" {
			*p = Unknown
		}
	}
	return in
}

// String is the one line --version prints after the program's name, such as
// "version (devel), revision 8459316c0f1e, 2026-12-01T12:00:00Z, modified, go1.26.8".
func (in Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "version %s, revision %s", in.Version, in.Revision)
	if in.Time != Unknown {
		fmt.Fprintf(&b, ", %s", in.Time)
	}
	if in.Modified {
		b.WriteString(", modified")
	}
	fmt.Fprintf(&b, ", %s", in.GoVersion)
	return b.String()
}

// IsVersionFlag reports whether args (the command line without the program name) ask for
// the version: exactly one argument, --version or -version.
func IsVersionFlag(args []string) bool {
	return len(args) == 1 && (args[0] == "--version" || args[0] == "-version")
}

// PrintVersion writes "<program> <Read()>" and a newline to w and returns true when
// IsVersionFlag(args); otherwise it writes nothing and returns false.
func PrintVersion(w io.Writer, program string, args []string) bool {
	if !IsVersionFlag(args) {
		return false
	}
	fmt.Fprintf(w, "%s %s\n", program, Read())
	return true
}
