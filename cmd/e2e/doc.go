// Package e2e holds the black-box end-to-end tests of chunked-uploader.
//
// The tests build the host (cmd/chunked-uploader) and the local storage plugin
// (plugins/local) with CGO_ENABLED=0, or use the binaries in
// CHUNKED_UPLOADER_BIN_DIR when that variable is set (the Makefile builds into
// bin/). Each test starts its own host process on a free loopback port with a
// fresh working directory and talks to it over HTTP only, checking the
// behaviour written down in docs/api.md.
//
//	go test -race -count=1 ./e2e/ -v          # all tests
//	go test -short ./e2e/                     # without the 200 MiB memory test
//	CHUNKED_UPLOADER_BIN_DIR=../bin go test ./e2e/
package e2e
