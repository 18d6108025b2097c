package upload

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/host/auth"
	"github.com/chunked-uploader/chunked-uploader/host/sqlite"
	"github.com/chunked-uploader/chunked-uploader/host/staging"
)

// Init refuses an upload the staging disk cannot hold with the reserve left free.
func TestInitNeedsSpace(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.StagingReserve = 100 })
	e.svc.free = func() (int64, error) { return 10*testChunk + 100, nil }
	if _, err := e.svc.Init(context.Background(), InitRequest{Filename: "fits.bin", TotalSize: 10 * testChunk}); err != nil {
		t.Fatalf("an upload that fits: %v", err)
	}
	_, err := e.svc.Init(context.Background(), InitRequest{Filename: "big.bin", TotalSize: 10*testChunk + 1})
	wantCode(t, err, host.CodeInsufficientStorage)
}

// tmpfs mounts a file system of size bytes for the test (root only).
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small file system needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// A disk that fills up during a part write answers insufficient_storage and leaves
// nothing half-written: the part stays pending and its temporary file is gone.
func TestDiskFullDuringPart(t *testing.T) {
	dir := tmpfs(t, "1m")
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stage, err := staging.New(filepath.Join(dir, "staging"))
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 400 << 10
	tokens := auth.NewTokens("0123456789abcdef0123456789abcdef")
	svc := New(db, stage, newFake(), tokens, Options{ChunkSize: chunk, TTL: time.Hour, MaxUpload: 1 << 30, MaxParts: 100, CompleteWait: time.Second})
	defer svc.Close()
	svc.free = func() (int64, error) { return 1 << 40, nil } // let init and the pre-check pass: the write must fail
	content := data(3*chunk, 11)
	c, err := svc.Init(context.Background(), InitRequest{Filename: "f.bin", TotalSize: int64(len(content))})
	if err != nil {
		t.Fatal(err)
	}
	put := func(n int) error {
		claims, _ := tokens.Verify(c.Tokens[n])
		_, err := svc.PutPart(context.Background(), PartRequest{UploadID: c.Upload.ID, Part: n, Claims: claims,
			Body: bytes.NewReader(content[n*chunk : (n+1)*chunk]), ContentLength: chunk})
		return err
	}
	if err := put(0); err != nil {
		t.Fatal(err)
	}
	if err := put(1); err != nil {
		t.Fatal(err)
	}
	wantCode(t, put(2), host.CodeInsufficientStorage)
	v, _ := svc.Status(context.Background(), c.Upload.ID, true)
	if v.Upload.UploadedParts != 2 || v.Parts[2].Status != host.PartPending {
		t.Fatalf("after disk full: %+v", v.Parts)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "staging", c.Upload.ID))
	if len(entries) != 2 {
		t.Fatalf("staging holds %d files after the failed write, want the 2 committed parts", len(entries))
	}
	// With the real free-space check, the next attempt is refused before the body is read.
	svc.free = stage.Free
	wantCode(t, put(2), host.CodeInsufficientStorage)
}
