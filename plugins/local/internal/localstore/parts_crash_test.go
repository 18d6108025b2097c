package localstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/plugins/local/internal/localstore"
	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

// A handle keeps working in a new Store on the same root, as after a plugin restart.
func TestPartsRestart(t *testing.T) {
	t.Parallel()
	s := newPartStore(t)
	o := plugintest.NewObject("files/restart.bin", 4<<20+1, 1<<20)
	h := s.begin(t, o)
	receipts := make([][]byte, o.Parts())
	receipts[0] = s.put(t, h, o, 0)
	receipts[3] = s.put(t, h, o, 3)

	s2 := s.reopen(t)
	for _, n := range []int{4, 1, 2} {
		receipts[n] = s2.put(t, h, o, n)
	}
	resent := s2.put(t, h, o, 0)
	if _, err := s2.CommitObject(t.Context(), h, receipts, o.SHA256()); !errors.Is(err, sdk.ErrStaleReceipt) {
		t.Errorf("CommitObject with a receipt the new process replaced = %v, want ErrStaleReceipt", err)
	}
	receipts[0] = resent
	obj, err := s2.CommitObject(t.Context(), h, receipts, o.SHA256())
	if err != nil {
		t.Fatalf("CommitObject in the new process: %v", err)
	}
	s2.committed(t, obj, o)

	// Abort works across a restart too.
	o2 := plugintest.NewObject("files/abort.bin", 2<<20, 1<<20)
	h2 := s2.begin(t, o2)
	s2.put(t, h2, o2, 1)
	if err := s2.reopen(t).AbortObject(t.Context(), o2.Key, h2); err != nil {
		t.Fatal(err)
	}
	if got := s2.files(t); !slices.Equal(got, []string{o.Key}) {
		t.Errorf("files: %v, want only %s", got, o.Key)
	}
}

// A commit interrupted after the rename (the journal was left) is finished by a retry.
func TestPartsInterruptedCommit(t *testing.T) {
	t.Parallel()
	s := newPartStore(t)
	o := plugintest.NewObject("d/obj.bin", 2<<20, 1<<20)
	h := s.begin(t, o)
	receipts := s.putAll(t, h, o)
	var data string
	for _, f := range s.files(t) {
		if strings.HasSuffix(f, ".partial") {
			data = filepath.Join(s.root, f)
		}
	}
	if err := os.Rename(data, filepath.Join(s.root, o.Key)); err != nil { // what the commit did before dying
		t.Fatal(err)
	}
	obj, err := s.reopen(t).CommitObject(t.Context(), h, receipts, o.SHA256())
	if err != nil {
		t.Fatalf("CommitObject after an interrupted commit: %v", err)
	}
	s.committed(t, obj, o)
	if got := s.files(t); !slices.Equal(got, []string{o.Key}) {
		t.Errorf("files: %v, want only %s (the journal removed)", got, o.Key)
	}
}

// AbortObject without a handle, and BeginObject, remove the unfinished objects of their key
// (the leftovers of a crash before the host recorded a handle), and only those.
func TestPartsLeftovers(t *testing.T) {
	t.Parallel()
	s := newPartStore(t)
	lost := plugintest.NewObject("dir/obj.bin", 2<<20, 1<<20)
	h1 := s.begin(t, lost)
	s.put(t, h1, lost, 0)
	h2 := s.begin(t, lost) // begins anew: the first is aborted
	if _, err := s.PutPart(t.Context(), h1, lost.Info(1), bytes.NewReader(lost.Part(1))); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("PutPart with the handle BeginObject replaced = %v, want ErrNotFound", err)
	}
	s.put(t, h2, lost, 1)

	// Neighbours: another key in the same directory, a key whose name begins alike, and a
	// file of the same name in another directory. None of them may be touched.
	other := plugintest.NewObject("dir/obj.bin2", 2<<20, 1<<20)
	hOther := s.begin(t, other)
	rOther := s.putAll(t, hOther, other)
	if _, err := s.Put(t.Context(), "dir/obj.bin", strings.NewReader("committed"), 9); err != nil {
		t.Fatal(err)
	}
	elsewhere := plugintest.NewObject("else/obj.bin", 10, 10)
	hElse := s.begin(t, elsewhere)
	before := s.files(t)

	// The plugin restarts and the host lost h2: it aborts by key.
	s2 := s.reopen(t)
	if err := s2.AbortObject(t.Context(), lost.Key, nil); err != nil {
		t.Fatalf("AbortObject(key, nil): %v", err)
	}
	var want []string
	for _, f := range before {
		if !strings.HasPrefix(f, "dir/.obj.bin.") {
			want = append(want, f)
		}
	}
	if got := s.files(t); !slices.Equal(got, want) || len(want) != len(before)-2 {
		t.Errorf("files after AbortObject(key, nil):\n%v\nwant\n%v", got, want)
	}
	if _, err := s2.CommitObject(t.Context(), h2, nil, lost.SHA256()); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("CommitObject of the aborted handle = %v, want ErrNotFound", err)
	}
	if err := s2.AbortObject(t.Context(), "nothing/here.bin", nil); err != nil {
		t.Errorf("AbortObject(key, nil) with nothing there: %v", err)
	}
	obj, err := s2.CommitObject(t.Context(), hOther, rOther, other.SHA256())
	if err != nil {
		t.Fatalf("committing the neighbour: %v", err)
	}
	s2.committed(t, obj, other)
	if err := s2.AbortObject(t.Context(), elsewhere.Key, hElse); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(s.root, "dir", "obj.bin")); err != nil || string(got) != "committed" {
		t.Errorf("the object stored under the aborted key: %q, %v", got, err)
	}
}

// An abort cancels the parts of its handle being written, and leaves nothing.
func TestPartsAbortCancelsWrites(t *testing.T) {
	t.Parallel()
	s := newPartStore(t)
	o := plugintest.NewObject("a/obj.bin", 2<<20, 1<<20)
	h := s.begin(t, o)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := s.PutPart(t.Context(), h, o.Info(0), pr)
		done <- err
	}()
	if _, err := pw.Write(o.Part(0)[:1000]); err != nil { // the part is being written
		t.Fatal(err)
	}
	go func() { // keep the stream flowing, as the host's would
		for {
			if _, err := pw.Write(o.Part(0)[1000:2000]); err != nil {
				return
			}
		}
	}()
	if err := s.AbortObject(t.Context(), o.Key, h); err != nil {
		t.Fatalf("AbortObject: %v", err)
	}
	pw.CloseWithError(errBoom)
	if err := <-done; !errors.Is(err, context.Canceled) && !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("the PutPart an abort interrupted = %v, want context.Canceled", err)
	}
	if got := s.files(t); len(got) != 0 {
		t.Errorf("files after abort: %v", got)
	}
}

// A handle that does not come from this store is refused with ErrNotFound, and nothing
// outside the root is touched.
func TestPartsHostileHandles(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	s0, err := localstore.New(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := partStore{s0, root}
	// Files beside the root that a traversing handle would reach.
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".x.0102030405060708.partial", ".x.0102030405060708.journal", "x"} {
		if err := os.WriteFile(filepath.Join(outside, name), []byte("not yours"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o := plugintest.NewObject("dir/x", 10, 10)
	good := s.begin(t, o)
	flipped := bytes.Clone(good)
	flipped[3] ^= 0x40

	// A well-formed handle of an object in another directory: its files do not exist.
	moved := plugintest.ForgeHandle("other/x", 10, 10, 1)
	// The same id and key but another size: the journal's header does not match.
	resized := plugintest.Resize(t, good, 20, 10, 2)

	handles := map[string][]byte{
		"parent":         plugintest.ForgeHandle("../outside/x", 10, 10, 1),
		"absolute":       plugintest.ForgeHandle(outside+"/x", 10, 10, 1),
		"inner parent":   plugintest.ForgeHandle("dir/../../outside/x", 10, 10, 1),
		"backslash":      plugintest.ForgeHandle(`..\outside\x`, 10, 10, 1),
		"bit flipped":    flipped,
		"truncated":      good[:len(good)-3],
		"garbage":        []byte("/etc/passwd"),
		"other dir":      moved,
		"resized":        resized,
		"another object": plugintest.ForgeHandle("dir/x", 10, 10, 1),
	}
	for name, h := range handles {
		part := sdk.PartInfo{Number: 0, Size: 10, SHA256: o.Info(0).SHA256}
		if _, err := s.PutPart(t.Context(), h, part, bytes.NewReader(o.Data)); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("%s: PutPart = %v, want ErrNotFound", name, err)
		}
		if _, err := s.CommitObject(t.Context(), h, [][]byte{{1}}, o.SHA256()); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("%s: CommitObject = %v, want ErrNotFound", name, err)
		}
		if err := s.AbortObject(t.Context(), "dir/x", h); err != nil && !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("%s: AbortObject = %v, want success or ErrNotFound", name, err)
		}
	}
	if err := s.AbortObject(t.Context(), "dir/y", good); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("AbortObject with the handle of another key = %v, want ErrNotFound", err)
	}
	entries, err := os.ReadDir(outside)
	if err != nil || len(entries) != 3 {
		t.Fatalf("outside the root: %v, %v; want the 3 files untouched", entries, err)
	}
	for _, e := range entries {
		if b, _ := os.ReadFile(filepath.Join(outside, e.Name())); string(b) != "not yours" {
			t.Errorf("%s outside the root was changed: %q", e.Name(), b)
		}
	}
	// The store's own object is intact.
	obj, err := s.CommitObject(t.Context(), good, [][]byte{s.put(t, good, o, 0)}, o.SHA256())
	if err != nil {
		t.Fatalf("committing the real object: %v", err)
	}
	s.committed(t, obj, o)
}

func TestPartsRefused(t *testing.T) {
	t.Parallel()
	s := newPartStore(t)
	if _, err := s.BeginObject(t.Context(), "../x", sdk.ObjectSpec{Size: 1, PartSize: 1, PartCount: 1}); !errors.Is(err, sdk.ErrInvalidKey) {
		t.Errorf("BeginObject with a bad key = %v, want ErrInvalidKey", err)
	}
	if err := s.AbortObject(t.Context(), "../x", nil); !errors.Is(err, sdk.ErrInvalidKey) {
		t.Errorf("AbortObject with a bad key = %v, want ErrInvalidKey", err)
	}
	if _, err := s.BeginObject(t.Context(), "x", sdk.ObjectSpec{Size: 10, PartSize: 3, PartCount: 3}); !errors.Is(err, sdk.ErrSizeMismatch) {
		t.Errorf("BeginObject with a wrong part count = %v, want ErrSizeMismatch", err)
	}
	if l := s.PartLimits(); l.MinPartSize != 0 || l.MaxParts < 10_000 {
		t.Errorf("PartLimits = %+v, want no minimum and a generous maximum", l)
	}
	// A file in the way of the key's directory.
	if _, err := s.Put(t.Context(), "file", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BeginObject(t.Context(), "file/below", sdk.ObjectSpec{Size: 1, PartSize: 1, PartCount: 1}); err == nil {
		t.Error("BeginObject below a regular file succeeded")
	}
	o := plugintest.NewObject("p/x.bin", 100, 10)
	h := s.begin(t, o)
	if _, err := s.PutPart(t.Context(), h, sdk.PartInfo{Number: 10, Size: 10, SHA256: o.Info(0).SHA256}, bytes.NewReader(o.Part(0))); !errors.Is(err, sdk.ErrSizeMismatch) {
		t.Errorf("PutPart beyond the last part = %v, want ErrSizeMismatch", err)
	}
}
