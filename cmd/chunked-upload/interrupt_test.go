package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
	"github.com/chunked-uploader/chunked-uploader/sdk/client"
)

// TestE2EInterruptAndResume: SIGINT during an upload exits 130 with the resume command, keeps
// the parts on the server, and that command delivers the right bytes.
func TestE2EInterruptAndResume(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	const size = 64 * mib
	file, sum := writeRandom(t, t.TempDir(), "big.bin", size)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := s.cliCmd(t, ctx, nil, "upload", file, "--concurrency", "1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// SIGINT at the first progress line that shows bytes sent, so that the server keeps some
	// parts and misses others.
	var lines []string
	signalled := false
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if !signalled && strings.HasPrefix(sc.Text(), "uploading") && !strings.HasPrefix(sc.Text(), "uploading   0%") {
			signalled = true
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	out := strings.Join(lines, "\n")
	if ee, ok := errors.AsType[*exec.ExitError](err); !ok || ee.ExitCode() != 130 {
		t.Fatalf("after SIGINT: %v, want exit 130; stderr:\n%s", err, out)
	}
	id := strings.Fields(strings.TrimPrefix(lines[0], "upload id "))[0]
	if want := "\n  chunked-upload resume " + id + " " + file + "\n"; !strings.Contains(out+"\n", want) {
		t.Fatalf("stderr lacks the resume command %q:\n%s", want, out)
	}

	// The upload is still there, part way, with nothing delivered.
	r := s.cli(t, nil, "status", id, "--json")
	var st client.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 0 {
		t.Fatalf("status: exit %d, %v: %s%s", r.code, err, r.stdout, r.stderr)
	}
	if st.Status != client.StatusPending || st.UploadedParts == 0 || st.UploadedParts >= st.TotalParts || st.TotalParts != 64 {
		t.Fatalf("after the interrupt: status %s, %d of %d parts; want pending, some parts uploaded, not all", st.Status, st.UploadedParts, st.TotalParts)
	}
	t.Logf("interrupted after %d of %d parts", st.UploadedParts, st.TotalParts)
	// Parts are delivered in the background into a hidden unfinished file; nothing is
	// visible under its own name before complete.
	entries, _ := os.ReadDir(filepath.Join(s.uploads, "files"))
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			t.Errorf("file delivered before completion: %s", e.Name())
		}
	}

	r = s.cli(t, nil, "resume", id, file, "--json")
	res := s.checkDelivered(t, r, "files", "big.bin", sum, size)
	if res.FileID != id || !strings.Contains(r.stderr, "resuming upload "+id) {
		t.Errorf("resume: id %s, stderr %s", res.FileID, r.stderr)
	}
	// Resuming a delivered upload is harmless and reports the same file.
	if r2 := s.cli(t, nil, "resume", id, file, "--json"); r2.code != 0 || r2.stdout != r.stdout {
		t.Errorf("second resume: exit %d, %s (want %s)", r2.code, r2.stdout, r.stdout)
	}
}

// TestE2EExitCodes: auth failures exit 3, unknown uploads 4, other failures 1; the API key
// is never printed.
func TestE2EExitCodes(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	file, _ := writeRandom(t, t.TempDir(), "x.bin", 10)
	other, _ := writeRandom(t, t.TempDir(), "y.bin", 11)
	r := s.cli(t, nil, "upload", file, "--json")
	var res client.Result
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("upload: %v: %s%s", err, r.stdout, r.stderr)
	}
	c, err := client.New(s.base, harness.APIKey)
	if err != nil {
		t.Fatal(err)
	}
	pending, err := c.Init(t.Context(), "p.bin", 10, client.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const wrongKey = "wrong-key-abcdefghijklmnop"
	unknown := "00000000-0000-0000-0000-000000000000"
	tests := map[string]struct {
		env      []string
		args     []string
		wantCode int
		wantErr  string
	}{
		"upload, wrong key":        {[]string{"API_KEY=" + wrongKey}, []string{"upload", file}, exitAuth, "invalid_api_key"},
		"status, wrong key flag":   {nil, []string{"--api-key", wrongKey, "status", res.FileID}, exitAuth, "invalid_api_key"},
		"resume, wrong key":        {[]string{"API_KEY=" + wrongKey}, []string{"resume", res.FileID, file}, exitAuth, "invalid_api_key"},
		"status, unknown id":       {nil, []string{"status", unknown}, exitNotFound, "upload_not_found"},
		"resume, unknown id":       {nil, []string{"resume", unknown, file}, exitNotFound, "upload_not_found"},
		"cancel, unknown id":       {nil, []string{"cancel", unknown}, exitNotFound, "upload_not_found"},
		"resume, other size":       {nil, []string{"resume", pending.FileID, other}, exitFailed, "size differs"},
		"cancel, delivered":        {nil, []string{"cancel", res.FileID}, exitFailed, "upload_complete"},
		"upload, missing file":     {nil, []string{"upload", file + ".missing"}, exitFailed, "no such file"},
		"upload, bad name":         {nil, []string{"upload", file, "--path", "../up"}, exitFailed, "invalid_filename"},
		"server down":              {[]string{"CHUNKED_UPLOADER_URL=http://127.0.0.1:1"}, []string{"health"}, exitFailed, "connection refused"},
		"cancel pending":           {nil, []string{"cancel", pending.FileID}, exitOK, ""},
		"status after cancel":      {nil, []string{"status", pending.FileID}, exitNotFound, "upload_not_found"},
		"no API key, no .env file": {[]string{"API_KEY="}, []string{"status", res.FileID}, exitUsage, "no API key"},
	}
	order := []string{"upload, wrong key", "status, wrong key flag", "resume, wrong key", "status, unknown id",
		"resume, unknown id", "cancel, unknown id", "resume, other size", "cancel, delivered", "upload, missing file",
		"upload, bad name", "server down", "cancel pending", "status after cancel", "no API key, no .env file"}
	for _, name := range order {
		tc := tests[name]
		r := s.cli(t, tc.env, tc.args...)
		if r.code != tc.wantCode || !strings.Contains(r.stderr, tc.wantErr) {
			t.Errorf("%s: exit %d (want %d), stderr %q (want %q)", name, r.code, tc.wantCode, r.stderr, tc.wantErr)
		}
		if strings.Contains(r.stdout+r.stderr, wrongKey) || strings.Contains(r.stdout+r.stderr, harness.APIKey) {
			t.Errorf("%s: the output shows an API key:\n%s%s", name, r.stdout, r.stderr)
		}
	}
}
