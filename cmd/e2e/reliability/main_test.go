package reliability

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

const (
	hostBinary   = "chunked-uploader"
	pluginPrefix = "chunked-uploader-plugin-"
	faultBinary  = pluginPrefix + "fault"
	localBinary  = pluginPrefix + "local"
)

// binDir holds the host, the local plugin and the fault plugin. It is the PLUGIN_DIR given
// to every host.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "chunked-uploader-reliability-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "reliability: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "reliability: %v\n", err)
		return 1
	}
	if given := os.Getenv("CHUNKED_UPLOADER_BIN_DIR"); given != "" {
		abs, err := filepath.Abs(given)
		if err != nil {
			fmt.Fprintf(os.Stderr, "reliability: CHUNKED_UPLOADER_BIN_DIR: %v\n", err)
			return 1
		}
		for _, name := range []string{hostBinary, localBinary} {
			if err := copyExecutable(filepath.Join(abs, name), filepath.Join(dir, name)); err != nil {
				fmt.Fprintf(os.Stderr, "reliability: CHUNKED_UPLOADER_BIN_DIR=%s: %v\n", given, err)
				return 1
			}
		}
	} else {
		builds := []build{
			{filepath.Join(root, "cmd"), "./chunked-uploader", hostBinary},
			{filepath.Join(root, "plugins", "local"), ".", localBinary},
		}
		if err := buildAll(dir, builds); err != nil {
			fmt.Fprintf(os.Stderr, "reliability: FAIL: building the binaries under test: %v\n", err)
			return 1
		}
	}
	// The fault plugin lives in the host module's testdata so that it never ships: it is
	// always built here.
	if err := buildAll(dir, []build{{filepath.Join(root, "host"), "./pluginmgr/testdata/faultplugin", faultBinary}}); err != nil {
		fmt.Fprintf(os.Stderr, "reliability: FAIL: building the fault plugin: %v\n", err)
		return 1
	}
	binDir = dir
	code := m.Run()
	fmt.Printf("reliability: %d plugin processes killed with SIGKILL while the host served; %d hosts killed with SIGKILL and restarted\n",
		pluginKills.Load(), hostKills.Load())
	return code
}

type build struct{ moduleDir, pkg, out string }

// buildAll builds each package from inside its own module, so that the build works with
// and without go.work.
func buildAll(dir string, builds []build) error {
	for _, b := range builds {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Dir = b.moduleDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build -o %s %s (in %s): %v\n%s", b.out, b.pkg, b.moduleDir, err, out)
		}
	}
	return nil
}

// repoRoot is the repository's root directory: tests run in cmd/e2e/reliability.
func repoRoot() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "host", "pluginmgr", "testdata", "faultplugin", "main.go")); err != nil {
		return "", fmt.Errorf("%s does not look like the repository root: %w", root, err)
	}
	return root, nil
}

func copyExecutable(from, to string) error {
	fi, err := os.Stat(from)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", from)
	}
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
