package main

import (
	"os"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// TestMain prepares the binaries under test: the host and the local plugin
// (CHUNKED_UPLOADER_BIN_DIR, or built), and the CLI, always built from this package's source.
func TestMain(m *testing.M) {
	os.Exit(harness.Run(m, harness.Config{
		Plugins: []string{"local"},
		Extra:   []harness.Build{{ModuleDir: "cmd", Pkg: "./chunked-upload", Out: harness.CLIBinary}},
	}))
}
