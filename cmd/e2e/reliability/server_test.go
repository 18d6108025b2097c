package reliability

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

const mib = 1 << 20

// server is a harness host using the local or the fault plugin.
type server struct {
	*harness.Host
	backend string // "local" or "fault"
}

// newServer prepares a data directory and the environment of a host using backend ("local"
// or "fault"), with overrides applied last. It starts nothing.
func newServer(tb testing.TB, backend string, overrides map[string]string) *server {
	tb.Helper()
	h := harness.New(tb, map[string]string{"STORAGE_BACKEND": backend, "STAGING_RESERVE_MB": "0"})
	h.Client.Timeout = 3 * time.Minute
	switch backend {
	case "local":
		h.Env["LOCAL_STORAGE_PATH"] = filepath.Join(h.Dir, "uploads")
	case "fault":
		h.Env["FAULT_ROOT"] = filepath.Join(h.Dir, "objects")
		h.Env["FAULT_CONTROL"] = filepath.Join(h.Dir, "control")
	default:
		tb.Fatalf("unknown backend %q", backend)
	}
	h.Setenv(overrides)
	for _, k := range []string{"TEMP_STORAGE_PATH", "LOCAL_STORAGE_PATH", "FAULT_ROOT", "FAULT_CONTROL"} {
		if p := h.Env[k]; p != "" {
			if err := os.MkdirAll(p, 0o755); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return &server{Host: h, backend: backend}
}

// startServer prepares a server and starts its host.
func startServer(tb testing.TB, backend string, overrides map[string]string) *server {
	tb.Helper()
	s := newServer(tb, backend, overrides)
	s.Start(tb)
	return s
}

// objectRoot is where the backend puts delivered files.
func (s *server) objectRoot() string {
	if s.backend == "fault" {
		return s.Env["FAULT_ROOT"]
	}
	return s.Env["LOCAL_STORAGE_PATH"]
}

// fault turns a fault mode of the fault plugin on or off through its control directory.
func (s *server) fault(tb testing.TB, mode string, on bool) {
	tb.Helper()
	path := filepath.Join(s.Env["FAULT_CONTROL"], mode)
	if on {
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		tb.Fatal(err)
	}
}

// puts counts the Put calls the fault plugin received for key.
func (s *server) puts(tb testing.TB, key string) int {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(s.Env["FAULT_ROOT"], ".puts"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if line == key {
			n++
		}
	}
	return n
}

// waitUnstaged waits until TEMP_STORAGE_PATH/<id> is gone: a delivery is recorded complete
// a moment before its staged parts are removed.
func (s *server) waitUnstaged(tb testing.TB, id string) {
	tb.Helper()
	if !harness.WaitFor(5*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(s.Staging(), id))
		return errors.Is(err, fs.ErrNotExist)
	}) {
		tb.Errorf("TEMP_STORAGE_PATH/%s still holds %v 5 s after the delivery", id, s.StagedFiles(tb, id))
	}
}

// keptParts lists the part files of upload id as the host keeps them: staged, or held by
// the backend (part-wise delivery removes a part from staging once the backend holds it),
// plus anything else in its staging directory.
func (s *server) keptParts(tb testing.TB, id string) []string {
	tb.Helper()
	names := s.StagedFiles(tb, id)
	st := s.Status(tb, id)
	for _, p := range st.Parts {
		if name := partName(p.Part); p.Delivered && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}
