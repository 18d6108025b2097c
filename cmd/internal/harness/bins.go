package harness

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Binary names, as make build writes them to bin/.
const (
	HostBinary   = "chunked-uploader"
	CLIBinary    = "chunked-upload"
	PluginPrefix = "chunked-uploader-plugin-"
)

// Build is one binary built from source: package Pkg of the module in ModuleDir (relative to
// the repository root), written as Out.
type Build struct{ ModuleDir, Pkg, Out string }

// PluginBuild builds plugins/<name>.
func PluginBuild(name string) Build {
	return Build{filepath.Join("plugins", name), ".", PluginPrefix + name}
}

// Config says which binaries a test package needs.
type Config struct {
	// Plugins are the plugins of plugins/ the host needs ("local", "s3", "smb").
	Plugins []string
	// CLI adds the CLI (chunked-upload) to the binaries taken from CHUNKED_UPLOADER_BIN_DIR
	// or built.
	CLI bool
	// Extra are binaries always built from source (such as the fault plugin, which never ships,
	// or the CLI under test), into the plugin directory.
	Extra []Build
}

// FaultPlugin builds the fault-injection plugin (host/pluginmgr/testdata/faultplugin).
var FaultPlugin = Build{"host", "./pluginmgr/testdata/faultplugin", PluginPrefix + "fault"}

// binDir is the directory Run prepared: the host, its plugins and Config.Extra. It is the
// PLUGIN_DIR of every host.
var binDir string

// BinDir is the directory holding the binaries under test, which is also the hosts'
// PLUGIN_DIR. It is set by Run.
func BinDir() string { return binDir }

// Bin is the path of the binary name in BinDir.
func Bin(name string) string { return filepath.Join(binDir, name) }

// Run prepares the binaries of cfg, runs the tests and removes what it built; it returns the
// exit code for os.Exit.
func Run(m *testing.M, cfg Config) int {
	dir, cleanup, err := Prepare(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: preparing the binaries under test: %v\n", err)
		return 1
	}
	defer cleanup()
	binDir = dir
	return m.Run()
}

// Prepare returns a directory holding the host, the plugins of cfg and cfg.Extra, and a
// function that removes whatever Prepare created. With CHUNKED_UPLOADER_BIN_DIR set and no
// Extra, that directory is used as it is; with Extra, the host and plugins are copied from it
// next to the extra binaries (a host's plugins must share one PLUGIN_DIR).
func Prepare(cfg Config) (dir string, cleanup func(), err error) {
	root, err := RepoRoot()
	if err != nil {
		return "", nil, err
	}
	names := []string{HostBinary}
	builds := []Build{{"cmd", "./chunked-uploader", HostBinary}}
	for _, p := range cfg.Plugins {
		names = append(names, PluginPrefix+p)
		builds = append(builds, PluginBuild(p))
	}
	if cfg.CLI {
		names = append(names, CLIBinary)
		builds = append(builds, Build{"cmd", "./chunked-upload", CLIBinary})
	}
	given := os.Getenv("CHUNKED_UPLOADER_BIN_DIR")
	if given != "" {
		abs, err := filepath.Abs(given)
		if err != nil {
			return "", nil, fmt.Errorf("CHUNKED_UPLOADER_BIN_DIR: %w", err)
		}
		for _, name := range names {
			if err := checkExecutable(filepath.Join(abs, name)); err != nil {
				return "", nil, fmt.Errorf("CHUNKED_UPLOADER_BIN_DIR=%s (run make build): %w", given, err)
			}
		}
		if len(cfg.Extra) == 0 {
			return abs, func() {}, nil
		}
		given = abs
	}
	tmp, err := os.MkdirTemp("", "chunked-uploader-test-bin-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(tmp) }
	if given != "" {
		for _, name := range names {
			if err := CopyExecutable(filepath.Join(given, name), filepath.Join(tmp, name)); err != nil {
				cleanup()
				return "", nil, err
			}
		}
		builds = nil
	}
	for _, b := range append(builds, cfg.Extra...) {
		if err := GoBuild(filepath.Join(root, b.ModuleDir), filepath.Join(tmp, b.Out), b.Pkg, nil); err != nil {
			cleanup()
			return "", nil, err
		}
	}
	return tmp, cleanup, nil
}

// GoBuild runs go build -trimpath -o out pkg in moduleDir with CGO_ENABLED=0 and the extra
// env; building from inside each module works with and without go.work.
func GoBuild(moduleDir, out, pkg string, env []string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = moduleDir
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build -o %s %s (in %s): %v\n%s", filepath.Base(out), pkg, moduleDir, err, b)
	}
	return nil
}

// RepoRoot is the repository's root directory: the nearest parent of the working directory
// (a test's package directory) that holds go.work and host/go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "host", "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no parent of the working directory holds go.work and host/go.mod")
		}
		dir = parent
	}
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

// CopyExecutable copies the executable file from to the new file to, mode 0755.
func CopyExecutable(from, to string) error {
	if err := checkExecutable(from); err != nil {
		return err
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
