// Package opstest tests what operators and plugin authors touch: the deploy scripts
// (deploy-linux.sh, deploy-mac.sh), the shell scripts' lint, and a third-party storage plugin
// built from sdk/README.md in a module of its own, plus plugin pinning (PLUGIN_SHA256) and the
// protocol version check.
//
// The host and the local plugin are built from this repository, or taken from
// CHUNKED_UPLOADER_BIN_DIR when it is set (the Makefile sets it to bin/). shellcheck,
// systemd-analyze (Debian package systemd) and python3 are needed: a test that lacks one is
// skipped, and fails instead when CI is set.
package opstest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

const (
	hostBinary   = "chunked-uploader"
	pluginPrefix = "chunked-uploader-plugin-"

	testAPIKey    = "opstest-api-key-0123456789abcdef"
	testJWTSecret = "opstest-jwt-secret-0123456789abcdef-0123456789abcdef"
)

var (
	// buildDir holds binaries this test binary built; removed by TestMain.
	buildDir  string
	binOnce   sync.Once
	binDirVal string
	binErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	if allPluginsDir != "" {
		os.RemoveAll(allPluginsDir)
	}
	os.Exit(code)
}

// repoRoot is the repository's top directory.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		tb.Fatal(err)
	}
	return root
}

// binDir returns a directory holding the host and the local plugin: CHUNKED_UPLOADER_BIN_DIR,
// or binaries built once for this test run.
func binDir(tb testing.TB) string {
	tb.Helper()
	binOnce.Do(func() {
		if dir := os.Getenv("CHUNKED_UPLOADER_BIN_DIR"); dir != "" {
			binDirVal, binErr = filepath.Abs(dir)
			return
		}
		root := repoRoot(tb)
		buildDir, binErr = os.MkdirTemp("", "opstest-bin-")
		if binErr != nil {
			return
		}
		builds := []struct{ moduleDir, pkg, out string }{
			{filepath.Join(root, "cmd"), "./chunked-uploader", hostBinary},
			{filepath.Join(root, "plugins", "local"), ".", pluginPrefix + "local"},
		}
		for _, b := range builds {
			if binErr = goBuild(b.moduleDir, filepath.Join(buildDir, b.out), b.pkg, nil); binErr != nil {
				return
			}
		}
		binDirVal = buildDir
	})
	if binErr != nil {
		tb.Fatalf("binaries under test: %v", binErr)
	}
	for _, name := range []string{hostBinary, pluginPrefix + "local"} {
		if fi, err := os.Stat(filepath.Join(binDirVal, name)); err != nil || fi.Mode().Perm()&0o111 == 0 {
			tb.Fatalf("%s is not an executable file (CHUNKED_UPLOADER_BIN_DIR=%q; run make build)", filepath.Join(binDirVal, name), os.Getenv("CHUNKED_UPLOADER_BIN_DIR"))
		}
	}
	return binDirVal
}

// goBuild runs go build -trimpath -o out pkg in dir with CGO_ENABLED=0 and the extra env.
func goBuild(dir, out, pkg string, env []string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build -o %s %s (in %s): %v\n%s", filepath.Base(out), pkg, dir, err, b)
	}
	return nil
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
