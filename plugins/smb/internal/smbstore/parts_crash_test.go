package smbstore

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

// A handle keeps working in a new Store, as after a plugin restart, and across a broken
// connection.
func TestPartsRestartAndReconnect(t *testing.T) {
	e := newPartEnv(t)
	o := plugintest.NewObject("files/restart.bin", 5<<20+1, 1<<20)
	h := e.begin(t, e.st, o)
	receipts := make([][]byte, o.Parts())
	receipts[0] = putOne(t, e.st, h, o, 0)
	receipts[4] = putOne(t, e.st, h, o, 4)

	st2 := e.reopen(t)
	receipts[1] = putOne(t, st2, h, o, 1)
	st2.mu.Lock()
	_ = st2.cur.conn.Close() // the connection breaks between two parts
	st2.mu.Unlock()
	for _, n := range []int{5, 2, 3} {
		receipts[n] = putOne(t, st2, h, o, n)
	}
	resent := putOne(t, st2, h, o, 0)
	if _, err := st2.CommitObject(t.Context(), h, receipts, o.SHA256()); !errors.Is(err, sdk.ErrStaleReceipt) {
		t.Errorf("CommitObject with a receipt the new process replaced = %v, want ErrStaleReceipt", err)
	}
	receipts[0] = resent
	obj, err := st2.CommitObject(t.Context(), h, receipts, o.SHA256())
	if err != nil {
		t.Fatalf("CommitObject in the new process: %v", err)
	}
	e.committed(t, obj, o)

	o2 := plugintest.NewObject("files/abort.bin", 2<<20, 1<<20)
	h2 := e.begin(t, st2, o2)
	putOne(t, st2, h2, o2, 1)
	if err := e.reopen(t).AbortObject(t.Context(), o2.Key, h2); err != nil {
		t.Fatal(err)
	}
	if got := e.files(t); !slices.Equal(got, []string{o.Key}) {
		t.Errorf("files: %v, want only %s", got, o.Key)
	}
}

// A commit interrupted after the rename (the journal was left) is finished by a retry.
func TestPartsInterruptedCommit(t *testing.T) {
	e := newPartEnv(t)
	o := plugintest.NewObject("d/obj.bin", 2<<20, 1<<20)
	h := e.begin(t, e.st, o)
	receipts := putAll(t, e.st, h, o)
	var data string
	for _, f := range e.files(t) {
		if strings.HasSuffix(f, ".partial") {
			data = f
		}
	}
	if err := e.fs.Rename(path.Join(e.dir, data), path.Join(e.dir, o.Key)); err != nil {
		t.Fatal(err)
	}
	obj, err := e.reopen(t).CommitObject(t.Context(), h, receipts, o.SHA256())
	if err != nil {
		t.Fatalf("CommitObject after an interrupted commit: %v", err)
	}
	e.committed(t, obj, o)
	if got := e.files(t); !slices.Equal(got, []string{o.Key}) {
		t.Errorf("files: %v, want only %s (the journal removed)", got, o.Key)
	}
}

// AbortObject without a handle, and BeginObject, remove the unfinished objects of their key,
// and only those.
func TestPartsLeftovers(t *testing.T) {
	e := newPartEnv(t)
	lost := plugintest.NewObject("dir/obj[1].bin", 2<<20, 1<<20) // "[" is a pattern character of Glob
	h1 := e.begin(t, e.st, lost)
	putOne(t, e.st, h1, lost, 0)
	h2 := e.begin(t, e.st, lost)
	if _, err := e.st.PutPart(t.Context(), h1, lost.Info(1), bytes.NewReader(lost.Part(1))); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("PutPart with the handle BeginObject replaced = %v, want ErrNotFound", err)
	}
	putOne(t, e.st, h2, lost, 1)

	other := plugintest.NewObject("dir/obj[1].bin2", 2<<20, 1<<20)
	hOther := e.begin(t, e.st, other)
	rOther := putAll(t, e.st, hOther, other)
	alike := plugintest.NewObject("dir/obj_1_.bin", 10, 10) // what "?" in the pattern also matches
	hAlike := e.begin(t, e.st, alike)
	if _, err := e.st.Put(t.Context(), lost.Key, strings.NewReader("committed"), 9); err != nil {
		t.Fatal(err)
	}
	before := e.files(t)

	st2 := e.reopen(t)
	if err := st2.AbortObject(t.Context(), lost.Key, nil); err != nil {
		t.Fatalf("AbortObject(key, nil): %v", err)
	}
	var want []string
	for _, f := range before {
		if !strings.HasPrefix(f, "dir/.obj[1].bin.") {
			want = append(want, f)
		}
	}
	if got := e.files(t); !slices.Equal(got, want) || len(want) != len(before)-2 {
		t.Errorf("files after AbortObject(key, nil):\n%v\nwant\n%v", got, want)
	}
	if err := st2.AbortObject(t.Context(), "nothing/here.bin", nil); err != nil {
		t.Errorf("AbortObject(key, nil) with nothing there: %v", err)
	}
	obj, err := st2.CommitObject(t.Context(), hOther, rOther, other.SHA256())
	if err != nil {
		t.Fatalf("committing the neighbour: %v", err)
	}
	e.committed(t, obj, other)
	if err := st2.AbortObject(t.Context(), alike.Key, hAlike); err != nil {
		t.Fatal(err)
	}
	if got, err := e.fs.ReadFile(path.Join(e.dir, lost.Key)); err != nil || string(got) != "committed" {
		t.Errorf("the object stored under the aborted key: %q, %v", got, err)
	}
}

// The same at the top of the share, where the object's directory is the share's root.
func TestPartsLeftoversAtShareRoot(t *testing.T) {
	srv := testServer(t)
	fs := srv.mount(t)
	st := openStore(t, srv.settings(""))
	var rnd [6]byte
	_, _ = crand.Read(rnd[:])
	o := plugintest.NewObject(fmt.Sprintf("cu-test-%x.bin", rnd), 10, 10) // a unique top-level name
	h, err := st.BeginObject(t.Context(), o.Key, o.Spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.AbortObject(context.Background(), o.Key, h) })
	ours := func() []string {
		infos, err := fs.ReadDir("")
		if err != nil {
			t.Fatalf("ReadDir of the share's root: %v", err)
		}
		var names []string
		for _, fi := range infos {
			if strings.HasPrefix(fi.Name(), "."+o.Key+".") {
				names = append(names, fi.Name())
			}
		}
		return names
	}
	if names := ours(); len(names) != 2 {
		t.Fatalf("files of the unfinished object at the share's root: %v; want 2", names)
	}
	if err := openStore(t, srv.settings("")).AbortObject(t.Context(), o.Key, nil); err != nil {
		t.Fatalf("AbortObject(key, nil): %v", err)
	}
	if names := ours(); len(names) != 0 {
		t.Errorf("after AbortObject(key, nil): %v; want nothing", names)
	}
}

// An abort cancels the parts of its handle being written, and leaves nothing.
func TestPartsAbortCancelsWrites(t *testing.T) {
	e := newPartEnv(t)
	o := plugintest.NewObject("a/obj.bin", 4<<20, 2<<20)
	h := e.begin(t, e.st, o)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := e.st.PutPart(t.Context(), h, o.Info(0), pr)
		done <- err
	}()
	if _, err := pw.Write(o.Part(0)[:1000]); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			if _, err := pw.Write(o.Part(0)[1000:2000]); err != nil {
				return
			}
		}
	}()
	if err := e.st.AbortObject(t.Context(), o.Key, h); err != nil {
		t.Fatalf("AbortObject: %v", err)
	}
	pw.CloseWithError(errBoom)
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("the PutPart an abort interrupted = %v, want context.Canceled", err)
	}
	if got := e.files(t); len(got) != 0 {
		t.Errorf("files after abort: %v", got)
	}
}

// A handle that does not come from this store is refused with ErrNotFound, and nothing
// outside the store's directory is touched.
func TestPartsHostileHandles(t *testing.T) {
	srv := testServer(t)
	fs := srv.mount(t)
	base := srv.newDir(t, fs)
	outside := path.Join(base, "outside")
	if err := fs.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".x.0102030405060708.partial", ".x.0102030405060708.journal", "x"} {
		if err := fs.WriteFile(path.Join(outside, name), []byte("not yours"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st := openStore(t, srv.settings(path.Join(base, "root")))
	o := plugintest.NewObject("dir/x", 10, 10)
	good, err := st.BeginObject(t.Context(), o.Key, o.Spec)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good)
	flipped[3] ^= 0x40
	handles := map[string][]byte{
		"parent":         plugintest.ForgeHandle("../outside/x", 10, 10, 1),
		"inner parent":   plugintest.ForgeHandle("dir/../../outside/x", 10, 10, 1),
		"absolute":       plugintest.ForgeHandle("/"+outside+"/x", 10, 10, 1),
		"backslash":      plugintest.ForgeHandle(`..\outside\x`, 10, 10, 1),
		"bit flipped":    flipped,
		"truncated":      good[:len(good)-3],
		"other dir":      plugintest.ForgeHandle("other/x", 10, 10, 1),
		"another object": plugintest.ForgeHandle("dir/x", 10, 10, 1),
		"resized":        plugintest.Resize(t, good, 20, 10, 2), // good's id and key
	}
	for name, h := range handles {
		if _, err := st.PutPart(t.Context(), h, o.Info(0), bytes.NewReader(o.Data)); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("%s: PutPart = %v, want ErrNotFound", name, err)
		}
		if _, err := st.CommitObject(t.Context(), h, [][]byte{{1}}, o.SHA256()); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("%s: CommitObject = %v, want ErrNotFound", name, err)
		}
		if err := st.AbortObject(t.Context(), "dir/x", h); err != nil && !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("%s: AbortObject = %v, want success or ErrNotFound", name, err)
		}
	}
	if err := st.AbortObject(t.Context(), "dir/y", good); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("AbortObject with the handle of another key = %v, want ErrNotFound", err)
	}
	infos, err := fs.ReadDir(outside)
	if err != nil || len(infos) != 3 {
		t.Fatalf("outside the store: %v, %v; want the 3 files untouched", infos, err)
	}
	for _, fi := range infos {
		if b, _ := fs.ReadFile(path.Join(outside, fi.Name())); string(b) != "not yours" {
			t.Errorf("%s outside the store was changed: %q", fi.Name(), b)
		}
	}
	obj, err := st.CommitObject(t.Context(), good, [][]byte{putOne(t, st, good, o, 0)}, o.SHA256())
	if err != nil {
		t.Fatalf("committing the real object: %v", err)
	}
	if got, err := fs.ReadFile(path.Join(base, "root", o.Key)); err != nil || !bytes.Equal(got, o.Data) || obj.Size != 10 {
		t.Errorf("the real object: %q, %v", got, err)
	}
}
