package storagetest_test

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest"
)

// bugEnv names the defect of TestFileStoreMutant's store; that test does nothing without it.
const bugEnv = "STORAGETEST_FILESTORE_BUG"

// TestFileStoreMutant runs the suite against fileStore with the defect named by bugEnv. It
// is run by TestFileStoreMutants, in a process of its own, and expected to fail.
func TestFileStoreMutant(t *testing.T) {
	bug, ok := os.LookupEnv(bugEnv)
	if !ok {
		return
	}
	o := fileOptions(sdk.PartLimits{}, bug, false)
	t.Run("Direct", func(t *testing.T) { storagetest.Run(t, o) })
	t.Run("GRPC", func(t *testing.T) { storagetest.RunGRPC(t, o) })
}

// failLine matches the report of a failed part-wise case of TestFileStoreMutant.
var failLine = regexp.MustCompile(`(?m)^\s*--- FAIL: TestFileStoreMutant/((?:Direct|GRPC)/Parts/\w+) `)

// TestFileStoreMutants shows that the part-wise cases catch defective backends: for every
// defect of fileStore it runs the cases expected to catch it against the store with that
// defect, directly and over gRPC, in a child process, and checks that they fail. The
// correct store runs every part-wise case the same way first and must pass.
func TestFileStoreMutants(t *testing.T) {
	if _, ok := os.LookupEnv(bugEnv); ok {
		t.Skip("in a child process")
	}
	d, g := "Direct/Parts/", "GRPC/Parts/"
	for _, m := range []struct {
		bug    string
		caught []string // cases that must fail
		heavy  bool     // needs the Large case, which -short skips
	}{
		{bug: ""}, // the correct store: nothing fails
		{bug: bugStaleOK, caught: []string{d + "StaleReceipt", g + "StaleReceipt", d + "Resend", d + "WrongBytes", g + "TamperedPart", d + "Reopen"}},
		{bug: bugAbortLeaks, caught: []string{d + "Abort", g + "Abort", d + "AbortLostHandle", d + "BeginAgain"}},
		{bug: bugNoDigest, caught: []string{d + "WrongBytes"}},
		{bug: bugMemHandle, caught: []string{d + "Reopen", g + "Reopen"}},
		{bug: bugNoBeginAbort, caught: []string{d + "BeginAgain", g + "BeginAgain"}},
		{bug: bugNilAbortNoop, caught: []string{d + "AbortLostHandle", g + "AbortLostHandle", d + "Reopen"}},
		{bug: bugPrefixAbort, caught: []string{d + "AbortLostHandle", g + "AbortLostHandle"}},
		{bug: bugKeepOnFail, caught: []string{d + "WrongBytes", d + "WrongSize", d + "FailingReader", g + "TamperedPart"}},
		{bug: bugCommitOnce, caught: []string{d + "CommitTwice", g + "CommitTwice", d + "Reopen"}},
		{bug: bugNoSpecCheck, caught: []string{d + "WrongSize", g + "WrongSize"}},
		{bug: bugVisibleEarly, caught: []string{d + "CommitMissing", d + "StaleReceipt", g + "StaleReceipt"}},
		{bug: bugAbortCommitted, caught: []string{d + "CommitTwice", g + "CommitTwice"}},
		{bug: bugWrongOffset, caught: []string{d + "RandomOrder", g + "RandomOrder", d + "Concurrent"}},
		{bug: bugHandleErr, caught: []string{d + "UnknownHandle", g + "UnknownHandle", d + "Abort"}},
		{bug: bugNoCountCheck, caught: []string{d + "CommitMissing", g + "CommitMissing"}},
		{bug: bugLastByteLost, caught: []string{d + "RandomOrder", g + "OnePart"}},
		{bug: bugDeclineAll, caught: []string{d + "RandomOrder", g + "Limits"}},
		{bug: bugSumIgnored, caught: []string{d + "RandomOrder", g + "CommitTwice"}},
		{bug: bugBufferParts, caught: []string{d + "Large", g + "Large"}, heavy: true},
	} {
		name := m.bug
		if name == "" {
			name = "none"
		}
		t.Run(name, func(t *testing.T) {
			if m.heavy && testing.Short() {
				t.Skip("needs the Large case, skipped under -short")
			}
			// The correct store runs every case; a defective one the cases meant to catch it.
			run := "^TestFileStoreMutant$/^(Direct|GRPC)$/^Parts$"
			if len(m.caught) > 0 {
				var names []string
				for _, c := range m.caught {
					if n := c[strings.LastIndex(c, "/")+1:]; !slices.Contains(names, n) {
						names = append(names, n)
					}
				}
				run += "/^(" + strings.Join(names, "|") + ")$"
			}
			args := []string{"-test.run=" + run, "-test.count=1"}
			if !m.heavy {
				args = append(args, "-test.short")
			}
			cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
			cmd.Env = append(os.Environ(), bugEnv+"="+m.bug)
			out, err := cmd.CombinedOutput()
			if strings.Contains(string(out), "panic:") {
				t.Fatalf("the suite panicked:\n%s", out)
			}
			var failed []string
			for _, f := range failLine.FindAllStringSubmatch(string(out), -1) {
				failed = append(failed, f[1])
			}
			if m.bug == "" {
				if err != nil || len(failed) > 0 {
					t.Fatalf("the correct store fails %q (%v):\n%s", failed, err, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("the suite passes a store with defect %q:\n%s", m.bug, out)
			}
			t.Logf("defect %q fails %d case(s): %s", m.bug, len(failed), strings.Join(failed, ", "))
			for _, c := range m.caught {
				if !slices.Contains(failed, c) {
					t.Errorf("defect %q is not caught by %s", m.bug, c)
				}
			}
			if len(failed) == 0 {
				t.Errorf("no part-wise case failed:\n%s", out)
			}
		})
	}
}
