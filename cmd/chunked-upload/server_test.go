package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

const mib = 1 << 20

// server is a running host with the local backend and 1 MiB chunks.
type server struct {
	*harness.Host
	base    string // http://127.0.0.1:port
	uploads string // LOCAL_STORAGE_PATH
}

// startServer starts a host in a fresh directory and waits until /health answers 200. It is
// stopped at cleanup, and its log shown if the test failed.
func startServer(t *testing.T) *server {
	t.Helper()
	h := harness.New(t, map[string]string{"STORAGE_BACKEND": "local"})
	h.StopTimeout = 10 * time.Second
	uploads := filepath.Join(h.Dir, "uploads")
	h.Env["LOCAL_STORAGE_PATH"] = uploads
	h.Start(t)
	return &server{Host: h, base: h.URL(""), uploads: uploads}
}
