package e2e

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

const mib = 1 << 20

// backend describes what is specific to one storage backend: the environment
// that selects and configures it, and how to reach a delivered object. Every
// test that delivers files runs once per entry of backends, with the same
// assertions.
type backend struct {
	name string
	// env returns the backend's variables for a host whose data lives in dir.
	env func(tb testing.TB, dir string) map[string]string
	// open opens the delivered object named by final_path.
	open func(tb testing.TB, s *server, finalPath string) (io.ReadCloser, error)
	// checkFinalPath reports whether final_path names key (such as
	// "videos/2024/<id>_clip.bin") under the backend's root.
	checkFinalPath func(tb testing.TB, s *server, finalPath, key string)
	// objects lists what the backend holds under the host's root (key →
	// size): delivered objects, and also temporaries and partial objects
	// (hidden SMB temporary files; S3 multipart uploads in progress as
	// key + s3MultipartSuffix).
	objects func(tb testing.TB, s *server) map[string]int64
}

var localBackend = backend{
	name: "local",
	env: func(tb testing.TB, dir string) map[string]string {
		return map[string]string{
			"STORAGE_BACKEND":    "local",
			"LOCAL_STORAGE_PATH": filepath.Join(dir, "uploads"),
		}
	},
	open: func(tb testing.TB, s *server, finalPath string) (io.ReadCloser, error) {
		return os.Open(finalPath)
	},
	checkFinalPath: func(tb testing.TB, s *server, finalPath, key string) {
		tb.Helper()
		want := filepath.Join(s.Env["LOCAL_STORAGE_PATH"], filepath.FromSlash(key))
		if finalPath != want {
			tb.Errorf("final_path = %q, want the absolute path %q", finalPath, want)
		}
	},
	objects: func(tb testing.TB, s *server) map[string]int64 {
		tb.Helper()
		return harness.RegularFiles(tb, s.Env["LOCAL_STORAGE_PATH"])
	},
}

// backends are the storage backends the delivery tests run against: the s3
// and smb entries use the shared test services (remote_test.go).
var backends = []backend{localBackend, s3SharedBackend, smbSharedBackend}

// forEachBackend runs f as a parallel subtest per backend.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f(t, b)
		})
	}
}

// server is a harness host with the storage backend it was started with.
type server struct {
	*harness.Host
	backend backend
}

// startServer starts a host with the given backend and extra environment
// (which overrides the defaults) and waits until GET /health answers 200. The
// host is stopped at cleanup; its log is printed if the test failed.
func startServer(tb testing.TB, b backend, overrides map[string]string) *server {
	tb.Helper()
	h := harness.New(tb)
	h.StopTimeout = 10 * time.Second
	h.Setenv(b.env(tb, h.Dir), overrides)
	h.Start(tb)
	return &server{Host: h, backend: b}
}

// readObject reads a delivered object in full.
func (s *server) readObject(tb testing.TB, finalPath string) []byte {
	tb.Helper()
	rc, err := s.backend.open(tb, s, finalPath)
	if err != nil {
		tb.Fatalf("opening the delivered object %q: %v", finalPath, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		tb.Fatalf("reading the delivered object %q: %v", finalPath, err)
	}
	return b
}
