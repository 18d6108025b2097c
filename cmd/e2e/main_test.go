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
		for _, name := range []string{hostBinary, pluginPrefix + "local"} {
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

// buildBinaries builds the host and the local plugin into dir. Each is built
// from inside its own module so that the build works with and without go.work.
func buildBinaries(dir string) error {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return err
	}
	builds := []struct {
		moduleDir, pkg, out string
	}{
		{filepath.Join(root, "cmd"), "./chunked-uploader", hostBinary},
		{filepath.Join(root, "plugins", "local"), ".", pluginPrefix + "local"},
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
