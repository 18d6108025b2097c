// Package cluster tests several chunked-uploader nodes behind a real load balancer: three
// hosts with different NODE_IDs on loopback, all delivering to one bucket of the real S3
// test server, behind HAProxy and behind nginx from Debian, each configured with what
// scripts/lb-config.sh generates (the shipped configuration). Clients are the real ones:
// the CLI (bin/chunked-upload), the TypeScript SDK in Node (sdk/js/dist, built by
// `make sdk-js-build`) and plain HTTP.
//
// It needs haproxy, nginx, node and the S3 test service (TEST_S3_*, from
// scripts/test-services.sh env) and fails without them; under -short it is skipped.
//
//	make build sdk-js-build services-start
//	eval "$(bash scripts/test-services.sh env)"
//	cd cmd/e2e && CHUNKED_UPLOADER_BIN_DIR=$PWD/../../bin go test -race -count=1 ./cluster -v
package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/cmd/e2e/internal/lb"
)

const (
	cliBinary = "chunked-upload"
	s3Plugin  = "chunked-uploader-plugin-s3"
)

// binDir holds the host, the s3 plugin and the CLI under test; repoRoot is the repository.
var binDir, repoRoot string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := lb.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		return 1
	}
	repoRoot = root
	if dir := os.Getenv("CHUNKED_UPLOADER_BIN_DIR"); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cluster: CHUNKED_UPLOADER_BIN_DIR:", err)
			return 1
		}
		for _, name := range []string{lb.HostBinary, s3Plugin, cliBinary} {
			if fi, err := os.Stat(filepath.Join(abs, name)); err != nil || fi.Mode().Perm()&0o111 == 0 {
				fmt.Fprintf(os.Stderr, "cluster: CHUNKED_UPLOADER_BIN_DIR=%s has no executable %s (run make build)\n", dir, name)
				return 1
			}
		}
		binDir = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "chunked-uploader-cluster-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Each binary is built in its own module, so the build works with and without go.work.
	for _, b := range []struct{ module, pkg, out string }{
		{"cmd", "./chunked-uploader", lb.HostBinary},
		{"cmd", "./chunked-upload", cliBinary},
		{filepath.Join("plugins", "s3"), ".", s3Plugin},
	} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Dir = filepath.Join(root, b.module)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "cluster: FAIL: go build %s in %s: %v\n%s", b.pkg, b.module, err, out)
			return 1
		}
	}
	binDir = dir
	return m.Run()
}
