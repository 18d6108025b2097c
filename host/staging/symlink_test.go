package staging

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// A symbolic link planted in place of an upload's directory does not lead a part out of
// staging.
func TestWriteRefusesSymlinkedUploadDir(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	d, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "u1")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write("u1", 0, bytes.NewReader([]byte("abc")), 3); err == nil {
		t.Fatal("a part was written through a link out of staging")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("files written outside staging: %v", entries)
	}
}
