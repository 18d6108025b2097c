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
	"testing"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// repoRoot is the repository; harness.BinDir() holds the host, the s3 plugin and the CLI under
// test.
var repoRoot string

func TestMain(m *testing.M) {
	root, err := harness.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
	repoRoot = root
	os.Exit(harness.Run(m, harness.Config{Plugins: []string{"s3"}, CLI: true}))
}
