package localstore_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/chunked-uploader/chunked-uploader/plugins/local/internal/localstore"
	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest"
)

func TestConformance(t *testing.T) {
	var root string // the backend New made last; the suite runs its cases one at a time
	o := storagetest.Options{
		New: func(t *testing.T) sdk.Storage {
			root = t.TempDir()
			s, err := localstore.New(root, nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		// A new instance over the same directory: a plugin restart.
		Reopen: func(t *testing.T) sdk.Storage {
			s, err := localstore.New(root, nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		PartBuffers: 12 << 20, // the direct-I/O writer's 3 x 4 MiB per part in flight
		ReadBack: func(t *testing.T, key string) (io.ReadCloser, error) {
			return os.Open(filepath.Join(root, filepath.FromSlash(key)))
		},
		List: func(t *testing.T) []string {
			var names []string
			err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, err := filepath.Rel(root, p)
				names = append(names, filepath.ToSlash(rel))
				return err
			})
			if err != nil {
				t.Fatalf("walk %s: %v", root, err)
			}
			return names
		},
	}
	t.Run("Direct", func(t *testing.T) { storagetest.Run(t, o) })
	t.Run("GRPC", func(t *testing.T) { storagetest.RunGRPC(t, o) })
	t.Run("Staged", func(t *testing.T) { storagetest.RunStaged(t, o) })
	t.Run("PartFiles", func(t *testing.T) { storagetest.RunPartFiles(t, o) })
}

func TestOpenConfig(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		path    string
		wantErr error  // nil: Open succeeds
		msg     string // part of the error message
	}{
		"missing":        {path: "", wantErr: sdk.ErrInvalidConfig, msg: "LOCAL_STORAGE_PATH is required"},
		"blank":          {path: "   ", wantErr: sdk.ErrInvalidConfig, msg: "LOCAL_STORAGE_PATH is required"},
		"relative":       {path: "data/files", wantErr: sdk.ErrInvalidConfig, msg: "absolute"},
		"dot relative":   {path: "./files", wantErr: sdk.ErrInvalidConfig, msg: "absolute"},
		"a file":         {path: file, wantErr: sdk.ErrInvalidConfig, msg: "not a directory"},
		"below a file":   {path: filepath.Join(file, "sub"), wantErr: sdk.ErrInvalidConfig, msg: "create root"},
		"existing":       {path: base},
		"created":        {path: filepath.Join(base, "new", "deeper")},
		"trailing slash": {path: filepath.Join(base, "slash") + "/"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := sdk.Config{}
			if tc.path != "" {
				cfg[localstore.SettingPath] = tc.path
			}
			st, err := localstore.Open(t.Context(), cfg, nil)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("Open(%q) = %v, want an error wrapping %v mentioning %q", tc.path, err, tc.wantErr, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tc.path, err)
			}
			if fi, err := os.Stat(tc.path); err != nil || !fi.IsDir() {
				t.Fatalf("root %s not created: %v", tc.path, err)
			}
			if err := st.(sdk.HealthChecker).Health(t.Context()); err != nil {
				t.Fatalf("Health: %v", err)
			}
		})
	}
}

func TestNotWritable(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	_, err := localstore.New(dir, nil)
	if !errors.Is(err, sdk.ErrInvalidConfig) || !errors.Is(err, sdk.ErrPermission) {
		t.Fatalf("New on a read-only directory = %v, want an error wrapping ErrInvalidConfig and ErrPermission", err)
	}
}

func TestHealthRootGone(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "root")
	s, err := localstore.New(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Health(t.Context()); err != nil {
		t.Fatalf("Health: %v", err)
	}
	if err := os.Remove(root); err != nil {
		t.Fatal(err)
	}
	if err := s.Health(t.Context()); !errors.Is(err, sdk.ErrUnavailable) || !strings.Contains(err.Error(), root) {
		t.Fatalf("Health with the root gone = %v, want an error wrapping ErrUnavailable naming the root", err)
	}
}

func TestPutEdgeCases(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	s, err := localstore.New(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	put := func(key, content string) (sdk.Object, error) {
		return s.Put(t.Context(), key, strings.NewReader(content), int64(len(content)))
	}

	// A 255-byte file name still fits its temporary name within the limit.
	long := "dir/" + strings.Repeat("é", 127) + "x"
	obj, err := put(long, "long")
	if err != nil {
		t.Fatalf("Put of a 255-byte name: %v", err)
	}
	if want := filepath.Join(root, filepath.FromSlash(long)); obj.Location != want {
		t.Errorf("Location = %q, want %q", obj.Location, want)
	}

	// Delivered files get the mode os.Create gives (0666 before umask), not 0600.
	ref, err := os.Create(filepath.Join(t.TempDir(), "ref"))
	if err != nil {
		t.Fatal(err)
	}
	ref.Close()
	refInfo, err := os.Stat(ref.Name())
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(obj.Location); err != nil || fi.Mode() != refInfo.Mode() {
		t.Errorf("delivered file mode = %v (%v), want %v like os.Create", fi.Mode(), err, refInfo.Mode())
	}

	// A file where a directory is needed fails and leaves the file alone.
	if _, err := put("plain", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := put("plain/below", "y"); err == nil {
		t.Error("Put below a regular file succeeded")
	}
	// A directory where the file should go fails and leaves the directory alone.
	if _, err := put("dir", "z"); err == nil {
		t.Error("Put over a directory succeeded")
	}
	if fi, err := os.Stat(filepath.Join(root, "dir")); err != nil || !fi.IsDir() {
		t.Errorf("directory replaced: %v", err)
	}
	// No temporary file is left by any of this.
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".tmp") {
			t.Errorf("temporary file left: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestKeysChecked(t *testing.T) {
	t.Parallel()
	s, err := localstore.New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"../escape", "/etc/passwd", "a/../../b", `..\x`} {
		if _, err := s.Put(t.Context(), k, strings.NewReader("x"), 1); !errors.Is(err, sdk.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", k, err)
		}
		if _, err := s.Stat(t.Context(), k); !errors.Is(err, sdk.ErrInvalidKey) {
			t.Errorf("Stat(%q) = %v, want ErrInvalidKey", k, err)
		}
		if err := s.Delete(t.Context(), k); !errors.Is(err, sdk.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
}

// The temporary file of an attempt that died (the plugin was killed mid-Put) is replaced
// by the next Put of the same key, so a retry leaves nothing behind.
func TestLeftoverTemporaryReplaced(t *testing.T) {
	root := t.TempDir()
	s, err := localstore.New(root, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(root, "a", ".x.bin.tmp")
	if err := os.WriteFile(left, []byte("half of an earlier attempt"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(context.Background(), "a/x.bin", strings.NewReader("whole"), 5); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "a"))
	if len(entries) != 1 || entries[0].Name() != "x.bin" {
		t.Fatalf("directory holds %v, want only x.bin", entries)
	}
}
