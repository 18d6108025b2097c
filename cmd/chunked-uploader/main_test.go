package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk/buildinfo"
)

// runCmd runs the command in-process with environ and returns its status and output.
func runCmd(t *testing.T, environ []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb strings.Builder
	code = run(args, environ, &out, &errb)
	return code, out.String(), errb.String()
}

// A -env-file that does not exist is refused with exit 2 and its name; the old code
// started without it (with whatever the environment said).
func TestMissingEnvFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "prod.env")
	for _, args := range [][]string{{"-env-file", missing}, {"--env-file=" + missing, "-check-config"}} {
		code, stdout, stderr := runCmd(t, nil, args...)
		if code != 2 || !strings.Contains(stderr, "env file "+missing+" does not exist") || stdout != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and the missing file named", args, code, stdout, stderr)
		}
	}
}

// Without -env-file a missing ./.env is fine: the settings come from the environment (here
// they lack API_KEY, which is what is reported).
func TestDefaultEnvFileMayBeMissing(t *testing.T) {
	t.Chdir(t.TempDir())
	code, _, stderr := runCmd(t, nil)
	if code != 2 || !strings.Contains(stderr, "API_KEY is missing") || strings.Contains(stderr, "env file") {
		t.Fatalf("exit %d, stderr %q; want 2 for the missing API_KEY only", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"--version", "-version"} {
		code, stdout, stderr := runCmd(t, nil, arg)
		if want := "chunked-uploader " + buildinfo.Read().String() + "\n"; code != 0 || stdout != want || stderr != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 0 and %q", arg, code, stdout, stderr, want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"-no-such-flag"}, {"serve"}} {
		if code, _, stderr := runCmd(t, nil, args...); code != 2 || stderr == "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
}
