package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Binaries under test. The host and the local plugin come from CHUNKED_UPLOADER_BIN_DIR
// when it is set (the Makefile points it at bin/), otherwise they are built; the CLI is
// always built from this package's source.
var (
	binDir string // holds chunked-uploader and chunked-uploader-plugin-local (the PLUGIN_DIR)
	cliBin string // chunked-upload
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "chunked-upload-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	builds := []build{{filepath.Join(root, "cmd"), "./chunked-upload", filepath.Join(tmp, "chunked-upload")}}
	binDir = tmp
	if dir := os.Getenv("CHUNKED_UPLOADER_BIN_DIR"); dir != "" {
		if binDir, err = filepath.Abs(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	} else {
		builds = append(builds,
			build{filepath.Join(root, "cmd"), "./chunked-uploader", filepath.Join(tmp, "chunked-uploader")},
			build{filepath.Join(root, "plugins", "local"), ".", filepath.Join(tmp, "chunked-uploader-plugin-local")})
	}
	for _, b := range builds {
		if err := b.run(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: building the binaries under test: %v\n", err)
			return 1
		}
	}
	for _, name := range []string{"chunked-uploader", "chunked-uploader-plugin-local"} {
		if fi, err := os.Stat(filepath.Join(binDir, name)); err != nil || fi.Mode().Perm()&0o111 == 0 {
			fmt.Fprintf(os.Stderr, "FAIL: %s is not an executable in %s (%v)\n", name, binDir, err)
			return 1
		}
	}
	cliBin = filepath.Join(tmp, "chunked-upload")
	return m.Run()
}

// build is one go build, run inside its module so that it works with and without go.work.
type build struct{ moduleDir, pkg, out string }

func (b build) run() error {
	cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
	cmd.Dir = b.moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build -o %s %s (in %s): %v\n%s", b.out, b.pkg, b.moduleDir, err, out)
	}
	return nil
}
