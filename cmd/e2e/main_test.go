package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

const (
	hostBinary   = "chunked-uploader"
	pluginPrefix = "chunked-uploader-plugin-"
)

// binaries are the executables the tests need in binDir.
var binaries = []string{hostBinary, pluginPrefix + "local", pluginPrefix + "s3", pluginPrefix + "smb"}

// binDir is the directory holding the host and plugin binaries under test. It
// is also the PLUGIN_DIR given to the host.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if dir := os.Getenv("CHUNKED_UPLOADER_BIN_DIR"); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: CHUNKED_UPLOADER_BIN_DIR: %v\n", err)
			return 1
		}
		for _, name := range binaries {
			if err := checkExecutable(filepath.Join(abs, name)); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: CHUNKED_UPLOADER_BIN_DIR=%s: %v\n", dir, err)
				return 1
			}
		}
		binDir = abs
		return m.Run()
	}

	dir, err := os.MkdirTemp("", "chunked-uploader-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: building the binaries under test: %v\n", err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// buildBinaries builds the host and the local, s3 and smb plugins into dir.
// Each is built from inside its own module (the repository's replace
// directives point at the sibling modules), so the build works with and
// without go.work and none of the plugins' dependencies enter this module.
func buildBinaries(dir string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	builds := []struct {
		moduleDir, pkg, out string
	}{
		{filepath.Join(root, "cmd"), "./chunked-uploader", hostBinary},
		{filepath.Join(root, "plugins", "local"), ".", pluginPrefix + "local"},
		{filepath.Join(root, "plugins", "s3"), ".", pluginPrefix + "s3"},
		{filepath.Join(root, "plugins", "smb"), ".", pluginPrefix + "smb"},
	}
	for _, b := range builds {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Dir = b.moduleDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("go build -o %s %s (in %s): %v\n%s", b.out, b.pkg, b.moduleDir, err, out)
		}
	}
	return nil
}

// repoRoot is the repository's root directory: tests run in cmd/e2e.
func repoRoot() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "scripts", "test-services.sh")); err != nil {
		return "", fmt.Errorf("%s does not look like the repository root: %w", root, err)
	}
	return root, nil
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}
