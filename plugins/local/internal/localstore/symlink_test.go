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

// An unfinished object's data file replaced by a symbolic or a hard link (to a file of the
// same size outside the root) is a lost object: PutPart does not write through the link,
// PartFile names no file and CommitObject does not put the link in place, all with
// ErrNotFound, so that the host starts the object again; the link's target is untouched.
func TestPartialReplacedByLinkIsLost(t *testing.T) {
	for _, kind := range []struct {
		name string
		link func(target, name string) error
	}{{"symbolic", os.Symlink}, {"hard", os.Link}} {
		t.Run(kind.name, func(t *testing.T) { testPartialReplacedByLink(t, kind.link) })
	}
}

func testPartialReplacedByLink(t *testing.T, link func(target, name string) error) {
	root, outside := t.TempDir(), t.TempDir()
	s, err := localstore.New(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	part := bytes.Repeat([]byte("p"), 4096)
	sum := sha256.Sum256(part)
	ctx := context.Background()
	h, err := s.BeginObject(ctx, "dir/obj.bin", sdk.ObjectSpec{Size: 2 * 4096, PartSize: 4096, PartCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	var receipts [][]byte
	for n := range 2 {
		receipt, err := s.PutPart(ctx, h, sdk.PartInfo{Number: n, Size: 4096, SHA256: sum[:]}, bytes.NewReader(part))
		if err != nil {
			t.Fatal(err)
		}
		receipts = append(receipts, receipt)
	}
	partials, _ := filepath.Glob(filepath.Join(root, "dir", ".obj.bin.*.partial"))
	if len(partials) != 1 {
		t.Fatalf("data files: %v, want one", partials)
	}
	victim := filepath.Join(outside, "victim.bin")
	original := bytes.Repeat([]byte("v"), 2*4096)
	if err := os.WriteFile(victim, original, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(partials[0]); err != nil {
		t.Fatal(err)
	}
	if err := link(victim, partials[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutPart(ctx, h, sdk.PartInfo{Number: 1, Size: 4096, SHA256: sum[:]}, bytes.NewReader(part)); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("PutPart into a data file replaced by a link: %v, want ErrNotFound", err)
	}
	if _, err := s.PartFile(ctx, h); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("PartFile of a data file replaced by a link: %v, want ErrNotFound", err)
	}
	if _, err := s.CommitObject(ctx, h, receipts, nil); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("CommitObject of a data file replaced by a link: %v, want ErrNotFound", err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "dir", "obj.bin")); err == nil {
		t.Errorf("the object's name holds a %s after the commit was refused", fi.Mode().Type())
	}
	if got, _ := os.ReadFile(victim); !bytes.Equal(got, original) {
		t.Error("the link's target outside the root was written")
	}
}
