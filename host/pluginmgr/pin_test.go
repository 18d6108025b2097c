package pluginmgr

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// copyBin copies the plugin binary to a fresh directory with mode perm.
func copyBin(t *testing.T, perm os.FileMode) string {
	t.Helper()
	data, err := os.ReadFile(pluginBin)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "chunked-uploader-plugin-local")
	if err := os.WriteFile(path, data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

func digest(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// A plugin binary that others may change is refused, whatever its digest.
func TestWritableBinaryRefused(t *testing.T) {
	for _, perm := range []os.FileMode{0o775, 0o757} {
		path := copyBin(t, perm)
		m, _ := newManager(t, func(o *Options) { o.Path = path })
		err := m.Start(context.Background())
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "chmod go-w") {
			t.Errorf("mode %04o: %v, want a refusal saying chmod go-w", perm, err)
		}
	}
}

// Only a regular file is run: a named pipe that yields the pinned bytes is refused, so the
// file checked cannot differ from the file started.
func TestPinRefusesNonRegular(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "chunked-uploader-plugin-local")
	if err := syscall.Mkfifo(fifo, 0o700); err != nil {
		t.Fatal(err)
	}
	// A writer, so that opening the pipe does not block.
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	m, _ := newManager(t, func(o *Options) { o.Path = fifo; o.SHA256 = digest(t, pluginBin) })
	if err := m.Start(context.Background()); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("a named pipe as plugin: %v", err)
	}
}

// The pinned file runs, through /proc/self/fd where there is one and from a private copy
// where there is not; the process runs the checked bytes.
func TestPinnedFileRuns(t *testing.T) {
	for _, viaProc := range []bool{true, false} {
		name := map[bool]string{true: "proc", false: "copy"}[viaProc]
		t.Run(name, func(t *testing.T) {
			if !viaProc {
				old := procFD
				procFD = filepath.Join(t.TempDir(), "none")
				t.Cleanup(func() { procFD = old })
			}
			path := copyBin(t, 0o755)
			m, _ := newManager(t, func(o *Options) { o.Path = path; o.SHA256 = digest(t, path) })
			if err := m.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			exe, err := os.Open("/proc/" + strconv.Itoa(m.pid(t)) + "/exe")
			if err != nil {
				t.Fatal(err)
			}
			defer exe.Close()
			h := sha256.New()
			if _, err := exe.WriteTo(h); err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != digest(t, path) {
				t.Fatalf("the running plugin has sha256 %s, want the pinned %s", got, digest(t, path))
			}
			cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(m.pid(t)) + "/cmdline")
			if !strings.HasPrefix(string(cmdline), path+"\x00") {
				t.Errorf("plugin command line %q, want it to start with %s", cmdline, path)
			}
		})
	}
}

// Validate asks the plugin to check its settings without starting the backend.
func TestValidate(t *testing.T) {
	opt := Options{Name: "local", Path: pluginBin, Env: []string{"PATH=" + os.Getenv("PATH")}}
	opt.Settings = map[string]string{"LOCAL_STORAGE_PATH": "relative"}
	if err := Validate(context.Background(), opt); !errors.Is(err, sdk.ErrInvalidConfig) || !strings.Contains(err.Error(), "LOCAL_STORAGE_PATH") {
		t.Fatalf("relative LOCAL_STORAGE_PATH: %v", err)
	}
	root := filepath.Join(t.TempDir(), "not-yet")
	opt.Settings = map[string]string{"LOCAL_STORAGE_PATH": root}
	if err := Validate(context.Background(), opt); err != nil {
		t.Fatalf("valid settings: %v", err)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("validation created %s (%v)", root, err)
	}
}
