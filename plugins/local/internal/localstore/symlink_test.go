package localstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/plugins/local/internal/localstore"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// A symbolic link planted under the root never leads a write out of it, whole or part-wise.
func TestSymlinkOutOfRootRefused(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "evil")); err != nil {
		t.Fatal(err)
	}
	s, err := localstore.New(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("must not leave the root")
	_, err = s.Put(context.Background(), "evil/x.bin", bytes.NewReader(data), int64(len(data)))
	if !errors.Is(err, sdk.ErrPermission) {
		t.Errorf("Put through a link out of the root: %v, want ErrPermission", err)
	}
	sum := sha256.Sum256(data)
	_, err = s.BeginObject(context.Background(), "evil/y.bin", sdk.ObjectSpec{Size: int64(len(data)), PartSize: 1 << 20, PartCount: 1, SHA256: sum[:]})
	if !errors.Is(err, sdk.ErrPermission) {
		t.Errorf("BeginObject through a link out of the root: %v, want ErrPermission", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("files written outside the root: %v", entries)
	}
	// A link as the object itself is not an object.
	if err := os.WriteFile(filepath.Join(outside, "secret"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "files", "link.bin")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(context.Background(), "files/link.bin"); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Stat of a link: %v, want ErrNotFound", err)
	}
}
