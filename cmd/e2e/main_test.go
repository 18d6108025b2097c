package e2e

import (
	"os"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

func TestMain(m *testing.M) {
	os.Exit(harness.Run(m, harness.Config{Plugins: []string{"local", "s3", "smb"}}))
}
