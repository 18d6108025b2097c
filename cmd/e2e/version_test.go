package e2e

import (
	"os/exec"
	"regexp"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// Every binary that is run by hand or by a host answers --version with its name and its
// build (operators must be able to tell what runs), and exits 0.
func TestVersionOfEveryBinary(t *testing.T) {
	for _, name := range []string{harness.HostBinary, harness.PluginPrefix + "local", harness.PluginPrefix + "s3", harness.PluginPrefix + "smb"} {
		t.Run(name, func(t *testing.T) {
			out, err := exec.Command(harness.Bin(name), "--version").CombinedOutput()
			if err != nil {
				t.Fatalf("%s --version: %v\n%s", name, err, out)
			}
			if !regexp.MustCompile(`^` + regexp.QuoteMeta(name) + ` version \S+, revision \S+.*go1\.`).Match(out) {
				t.Fatalf("%s --version printed %q", name, out)
			}
		})
	}
}
