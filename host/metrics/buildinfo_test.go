package metrics

import (
	"slices"
	"strings"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk/buildinfo"
)

// TestBuildInfo: /metrics carries chunked_uploader_build_info 1 with the build's version,
// revision and Go version as labels.
func TestBuildInfo(t *testing.T) {
	src := sources("")
	src.Build = buildinfo.Info{Module: "m", Version: "v1.2.3", Revision: "8459316c", Time: "2026-12-01T12:00:00Z", GoVersion: "go1.26.8"}
	samples := scrape(t, New(src))
	want := `chunked_uploader_build_info{go_version="go1.26.8",revision="8459316c",version="v1.2.3"} 1`
	if !slices.Contains(samples, want) {
		t.Fatalf("no %s among the samples:\n%s", want, strings.Join(samples, "\n"))
	}
}

// Without Build the running binary's own build information is used.
func TestBuildInfoOfRunningBinary(t *testing.T) {
	in := buildinfo.Read()
	samples := scrape(t, New(sources("node-a")))
	want := `chunked_uploader_build_info{go_version="` + in.GoVersion + `",node="node-a",revision="` + in.Revision + `",version="` + in.Version + `"} 1`
	if !slices.Contains(samples, want) {
		t.Fatalf("no %s among the samples:\n%s", want, strings.Join(samples, "\n"))
	}
}
