package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
	"github.com/chunked-uploader/chunked-uploader/sdk/client"
)

// cliResult is what one run of the CLI printed and its exit code.
type cliResult struct {
	stdout, stderr string
	code           int
}

// cliCmd prepares the CLI with the server's URL and API key in its environment (env entries
// are added last, so they win) in an empty working directory.
func (s *server) cliCmd(t *testing.T, ctx context.Context, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, harness.Bin(harness.CLIBinary), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + cmd.Dir,
		"CHUNKED_UPLOADER_URL=" + s.base, "API_KEY=" + harness.APIKey}, env...)
	return cmd
}

// cli runs the CLI to its end (at most 2 minutes).
func (s *server) cli(t *testing.T, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := s.cliCmd(t, ctx, env, args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running %v: %v", args, err)
	}
	return cliResult{out.String(), errOut.String(), cmd.ProcessState.ExitCode()}
}

// writeRandom writes size random bytes to dir/name and returns the path and their SHA-256.
func writeRandom(t *testing.T, dir, name string, size int64) (string, string) {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	rng := rand.NewChaCha8([32]byte{byte(size), byte(size >> 8), byte(size >> 16)})
	if _, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(rng, size)); err != nil {
		t.Fatal(err)
	}
	return path, hex.EncodeToString(h.Sum(nil))
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("delivered file: %v", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkDelivered parses a --json result and checks the delivered file: its path under the
// storage root (dir/<id>_name) and its bytes.
func (s *server) checkDelivered(t *testing.T, r cliResult, dir, name, sum string, size int64) client.Result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var res client.Result
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("--json output %q: %v", r.stdout, err)
	}
	want := filepath.Join(s.uploads, filepath.FromSlash(dir), res.FileID+"_"+name)
	if res.FinalPath != want || res.TotalSize != size || res.StorageBackend != "local" {
		t.Errorf("result %+v, want final_path %s and total_size %d", res, want, size)
	}
	if got := fileSHA256(t, want); got != sum || res.ChecksumSHA256 != sum {
		t.Errorf("delivered sha256 %s, server says %s, local file %s", got, res.ChecksumSHA256, sum)
	}
	return res
}

func TestE2EUpload(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	tests := map[string]struct {
		size      int64
		flags     []string
		remoteDir string
		remote    string
	}{
		"empty file":          {0, nil, "files", ""},
		"one byte":            {1, []string{"--path", "videos/2024"}, "videos/2024", ""},
		"exactly one chunk":   {mib, []string{"--path", "a/b/", "--name", "renamed.bin"}, "a/b", "renamed.bin"},
		"five chunks + 1":     {5*mib + 1, []string{"--path", "deep/er", "--concurrency", "3"}, "deep/er", ""},
		"with --checksum":     {2*mib + 7, []string{"--checksum", "--quiet"}, "files", ""},
		"concurrency 1, tiny": {3, []string{"--concurrency", "1"}, "files", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			file, sum := writeRandom(t, t.TempDir(), "data.bin", tc.size)
			r := s.cli(t, nil, append([]string{"upload", file, "--json"}, tc.flags...)...)
			remote := tc.remote
			if remote == "" {
				remote = "data.bin"
			}
			res := s.checkDelivered(t, r, tc.remoteDir, remote, sum, tc.size)
			quiet := strings.Contains(strings.Join(tc.flags, " "), "--quiet")
			if announce := "upload id " + res.FileID; strings.Contains(r.stderr, announce) == quiet {
				t.Errorf("stderr (quiet %v) %q: the upload id line should be there unless --quiet", quiet, r.stderr)
			}
		})
	}
}

// TestE2EHumanOutput checks the default (not --json) output of upload, status and health.
func TestE2EHumanOutput(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	file, sum := writeRandom(t, t.TempDir(), "h.bin", 2*mib+5)
	r := s.cli(t, nil, "upload", file)
	if r.code != 0 || !strings.Contains(r.stdout, "sha256:     "+sum) || !strings.Contains(r.stderr, "uploading 100%") {
		t.Fatalf("upload: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	id := strings.Fields(strings.SplitN(r.stdout, "\n", 2)[0])[1]
	r = s.cli(t, nil, "status", id)
	for _, want := range []string{"file_id:      " + id, "status:       complete", "uploaded:     3 of 3 parts", "sha256:       " + sum, "final_path:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = s.cli(t, nil, "status", id, "--json")
	var st client.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Status != "complete" || len(st.Parts) != 3 {
		t.Errorf("status --json: %v, %+v", err, st)
	}
	r = s.cli(t, nil, "health")
	if r.code != 0 || r.stdout != "server ok; storage local healthy\n" {
		t.Errorf("health: exit %d, %q", r.code, r.stdout)
	}
}
