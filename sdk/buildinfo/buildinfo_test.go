package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/chunked-uploader/chunked-uploader/host", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{
			{Key: "-trimpath", Value: "true"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "8459316c0f1e2d3c4b5a69788796a5b4c3d2e1f0"},
			{Key: "vcs.time", Value: "2026-12-01T12:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	in := FromBuildInfo(bi)
	want := Info{Module: "github.com/chunked-uploader/chunked-uploader/host", Version: "v1.2.3",
		Revision: "8459316c0f1e2d3c4b5a69788796a5b4c3d2e1f0", Time: "2026-12-01T12:00:00Z", Modified: true, GoVersion: "go1.26.8"}
	if in != want {
		t.Fatalf("FromBuildInfo = %+v, want %+v", in, want)
	}
	if got, want := in.String(), "version v1.2.3, revision 8459316c0f1e2d3c4b5a69788796a5b4c3d2e1f0, 2026-12-01T12:00:00Z, modified, go1.26.8"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}

	bi.Settings[4].Value = "false"
	if s := FromBuildInfo(bi).String(); strings.Contains(s, "modified") {
		t.Fatalf("a clean tree says modified: %q", s)
	}
}

// A build without VCS stamps (go test, -buildvcs=false) says unknown, not "".
func TestFromBuildInfoWithoutVCS(t *testing.T) {
	in := FromBuildInfo(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "example.com/p", Version: "(devel)"}})
	if in.Revision != Unknown || in.Time != Unknown || in.Modified {
		t.Fatalf("FromBuildInfo without vcs settings = %+v", in)
	}
	if got, want := in.String(), "version (devel), revision unknown, go1.26.8"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	if in := FromBuildInfo(&debug.BuildInfo{}); in.Module != Unknown || in.Version != Unknown || in.GoVersion != Unknown {
		t.Fatalf("FromBuildInfo(empty) = %+v", in)
	}
}

func TestReadRunningBinary(t *testing.T) {
	in := Read()
	if in.GoVersion != runtime.Version() {
		t.Fatalf("Read().GoVersion = %q, want %q", in.GoVersion, runtime.Version())
	}
	if in.Module == Unknown || in.Version == Unknown {
		t.Fatalf("Read() of the test binary lacks its module: %+v", in)
	}
}

func TestPrintVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}} {
		var b strings.Builder
		if !PrintVersion(&b, "prog", args) {
			t.Fatalf("PrintVersion(%q) = false", args)
		}
		if want := "prog " + Read().String() + "\n"; b.String() != want {
			t.Fatalf("PrintVersion(%q) wrote %q, want %q", args, b.String(), want)
		}
	}
	for _, args := range [][]string{nil, {}, {"--versions"}, {"--version", "x"}, {"serve"}} {
		var b strings.Builder
		if PrintVersion(&b, "prog", args) || b.Len() != 0 {
			t.Fatalf("PrintVersion(%q) acted (wrote %q)", args, b.String())
		}
	}
}

// A revision stamped by the linker wins over the go command's (which a linked worktree lacks
// or, nested in another checkout, gets wrong); without one the go command's stays.
func TestStamped(t *testing.T) {
	goStamp := Info{Module: "m", Version: "(devel)", Revision: "aaaa", Time: "2026-01-01T00:00:00Z", Modified: true, GoVersion: "go1.26.8"}
	if got := stamped(goStamp, "", "", ""); got != goStamp {
		t.Fatalf("stamped without a linker revision = %+v, want %+v", got, goStamp)
	}
	want := Info{Module: "m", Version: "(devel)", Revision: "bbbb", Time: "2026-12-01T12:00:00Z", Modified: false, GoVersion: "go1.26.8"}
	if got := stamped(goStamp, "bbbb", "2026-12-01T12:00:00Z", "false"); got != want {
		t.Fatalf("stamped = %+v, want %+v", got, want)
	}
	if got := stamped(Info{Time: Unknown}, "cccc", "", "true"); got.Revision != "cccc" || got.Time != Unknown || !got.Modified {
		t.Fatalf("stamped without a time = %+v", got)
	}
}
