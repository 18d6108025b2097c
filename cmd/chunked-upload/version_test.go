package main

import (
	"context"
	"strings"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk/buildinfo"
)

// TestVersion: --version (before any command) prints the build information and exits 0
// without a server or a key.
func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--version"}, {"-version"}, {"--json", "--version"}} {
		var out, errOut strings.Builder
		e := &env{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
		code := run(context.Background(), args, e)
		want := "chunked-upload " + buildinfo.Read().String() + "\n"
		if code != exitOK || out.String() != want || errOut.String() != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 0 and %q", args, code, out.String(), errOut.String(), want)
		}
		if !strings.Contains(out.String(), "revision ") {
			t.Errorf("%q: no revision in %q", args, out.String())
		}
	}
}

// After a command --version is no flag of that command.
func TestVersionAfterCommand(t *testing.T) {
	t.Parallel()
	var out, errOut strings.Builder
	e := &env{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	if code := run(context.Background(), []string{"status", "--version", "id"}, e); code != exitUsage ||
		!strings.Contains(errOut.String(), "flag provided but not defined: -version") {
		t.Fatalf("exit %d, stderr %q; want a usage error", code, errOut.String())
	}
}

// The help text lists --version.
func TestVersionInHelp(t *testing.T) {
	if !strings.Contains(usageText, "--version") {
		t.Fatal("usage text does not mention --version")
	}
}
