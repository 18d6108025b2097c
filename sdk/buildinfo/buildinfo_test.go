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
