// Package e2e holds the black-box end-to-end tests of chunked-uploader.
//
// cmd/e2e is a module of its own, so that the clients its tests use to read
// delivered objects back from the real servers (aws-sdk-go-v2, go-smb2) never
// enter the module that builds the host binary. From the repository it imports
// only the black-box harness of module cmd (cmd/internal/harness, through a
// replace directive) and the Go client's wire types it uses: the tests talk to
// the built binaries over HTTP only. Its own cmd/e2e/internal/services reaches
// the S3 test service directly.
//
// Through the harness, the tests build the host (cmd/chunked-uploader) and the
// local, s3 and smb storage plugins (plugins/*) with CGO_ENABLED=0, or use the
// binaries in CHUNKED_UPLOADER_BIN_DIR when that variable is set (the Makefile
// builds into bin/). Each test starts its own host process on a free loopback
// port with a fresh working directory and talks to it over HTTP only, checking
// the behaviour written down in docs/api.md.
//
// The delivery tests run once per storage backend (local, s3, smb) with the
// same assertions. The s3 and smb runs deliver to the shared test services of
// scripts/test-services.sh (named by the TEST_S3_* and TEST_SMB_* variables),
// each host to a bucket or share directory of its own, and read the delivered
// objects back from the servers. Without those variables they fail; under
// -short they skip. TestServerDownDuringDelivery starts private instances of
// the services, which it crashes and freezes.
//
//	bash scripts/test-services.sh start            # from the repository root
//	eval "$(bash scripts/test-services.sh env)"
//	cd cmd/e2e
//	go test -race -count=1 ./... -v                # all tests
//	go test -short ./...                           # no services, no 200 MiB memory test
//	CHUNKED_UPLOADER_BIN_DIR=../../bin go test ./...
package e2e
