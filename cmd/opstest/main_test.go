// Package opstest tests what operators and plugin authors touch: the deploy scripts
// (deploy-linux.sh, deploy-mac.sh), the shell scripts' lint, and a third-party storage plugin
// built from sdk/README.md in a module of its own, plus plugin pinning (PLUGIN_SHA256) and the
// protocol version check.
//
// The host and the local plugin are built from this repository, or taken from
// CHUNKED_UPLOADER_BIN_DIR when it is set (the Makefile sets it to bin/), by the harness. shellcheck,
// systemd-analyze (Debian package systemd) and python3 are needed: a test that lacks one is
// skipped, and fails instead when CI is set.
package opstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

func TestMain(m *testing.M) {
	code := harness.Run(m, harness.Config{Plugins: []string{"local"}})
	if allPluginsDir != "" {
		os.RemoveAll(allPluginsDir)
	}
	os.Exit(code)
}

// repoRoot is the repository's top directory.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	return root
}

// requireTool returns the path of the program name. When it is missing the test is skipped,
// or fails when the environment variable CI is set: CI must install debPackage.
func requireTool(tb testing.TB, name, debPackage string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s not found, and CI is set: CI must install it (Debian package %s)", name, debPackage)
	}
	tb.Skipf("%s not found: install it (Debian package %s) to run this test", name, debPackage)
	return ""
}

// copyFile copies src to dst with mode perm, creating dst's directory.
func copyFile(tb testing.TB, src, dst string, perm os.FileMode) {
	tb.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		tb.Fatal(err)
	}
	writeFile(tb, dst, string(b), perm)
}

// writeFile writes content to path, creating its directory.
func writeFile(tb testing.TB, path, content string, perm os.FileMode) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		tb.Fatal(err)
	}
}
