// Package reliability holds black-box reliability tests of chunked-uploader: crashes and
// hangs of the storage plugin, crashes and restarts of the host, graceful shutdown, the
// cleanup sweeper, cancel during a part upload, webhook retries across restarts,
// concurrency, a small load test and hostile input: held connections (slowloris), stalled
// bodies, webhook targets (SSRF) and receivers that do not answer, misleading filenames.
//
// Like the end-to-end tests of package e2e, and with the same harness (cmd/internal/harness),
// every test runs the real host binary as a separate process on a loopback port with a
// fresh working directory, and talks to it over HTTP and raw TCP only.
//
// TestMain has the harness build the host (cmd/chunked-uploader), the local plugin
// (plugins/local) and the fault-injection plugin (host/pluginmgr/testdata/faultplugin) with
// CGO_ENABLED=0. With CHUNKED_UPLOADER_BIN_DIR set, the host and the local plugin are taken
// from there (copied into a temporary directory next to a freshly built fault plugin, since
// PLUGIN_DIR must hold the host's plugins).
//
//	go test -count=1 ./e2e/reliability/ -v
//	CHUNKED_UPLOADER_BIN_DIR=../bin RELIABILITY_REPORT=/tmp/load.json go test ./e2e/reliability/
//
// RELIABILITY_REPORT, when set, is the path of a JSON file the load test writes its
// figures to (uploads per second, part latency percentiles).
package reliability
