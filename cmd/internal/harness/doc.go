// Package harness is the black-box test harness of chunked-uploader's end-to-end,
// reliability, operator and CLI tests: it locates or builds the binaries under test once per
// test binary, starts, stops, kills (SIGKILL) and restarts a host process with its plugin on a
// loopback port with a fresh data directory, reads the host's log, and talks to it over HTTP
// and raw TCP with the response types of the Go client (sdk/client).
//
// It uses the standard library and sdk/client only: tests that need the S3 or SMB SDKs keep
// those helpers in module cmd/e2e.
//
// A test package's TestMain calls Run; tests then call New (or Start) for each host:
//
//	func TestMain(m *testing.M) { os.Exit(harness.Run(m, harness.Config{Plugins: []string{"local"}})) }
//
//	h := harness.Start(t, map[string]string{"STORAGE_BACKEND": "local", "LOCAL_STORAGE_PATH": ...})
//	up := h.InitUpload(t, map[string]any{"filename": "a.bin", "total_size": 10})
//
// With CHUNKED_UPLOADER_BIN_DIR set (the Makefile points it at bin/, built once per make
// test), the host and the plugins are taken from there; otherwise they are built with
// CGO_ENABLED=0 from inside their own modules, so that the build works with and without
// go.work.
package harness
