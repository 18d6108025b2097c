package smbstore

import (
	"bytes"
	"errors"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/hirochachacha/go-smb2"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

// partObject is a part-wise object of the tests.
type partObject = plugintest.Object

// partEnv is a store under test in a directory of its own on the test share, and the
// test's own session to look at that directory.
type partEnv struct {
	srv server
	fs  *smb2.Share
	dir string
	st  *Store
}

func newPartEnv(t *testing.T) *partEnv {
	t.Helper()
	srv := testServer(t)
	fs := srv.mount(t)
	dir := srv.newDir(t, fs)
	return &partEnv{srv: srv, fs: fs, dir: dir, st: openStore(t, srv.settings(dir))}
}

// reopen returns a new Store on the same directory, as a restarted plugin gets.
func (e *partEnv) reopen(t *testing.T) *Store { return openStore(t, e.srv.settings(e.dir)) }

// files returns the files (not directories) in the store's directory, relative, sorted.
func (e *partEnv) files(t *testing.T) []string {
	t.Helper()
	var names []string
	var visit func(rel string)
	visit = func(rel string) {
		infos, err := e.fs.ReadDir(path.Join(e.dir, rel))
		if errors.Is(err, os.ErrNotExist) && rel == "" {
			return
		}
		if err != nil {
			t.Fatalf("ReadDir %s: %v", path.Join(e.dir, rel), err)
		}
		for _, fi := range infos {
			name := strings.TrimPrefix(path.Join(rel, fi.Name()), "/")
			if fi.IsDir() {
				visit(name)
			} else {
				names = append(names, name)
			}
		}
	}
	visit("")
	slices.Sort(names)
	return names
}

func (e *partEnv) begin(t *testing.T, st *Store, o partObject) []byte {
	return plugintest.Begin(t, st, o)
}

func putOne(t *testing.T, st *Store, h []byte, o partObject, n int) []byte {
	return plugintest.Put(t, st, h, o, n)
}

// putAll stores every part, in random order, four at a time, and returns the receipts.
func putAll(t *testing.T, st *Store, h []byte, o partObject) [][]byte {
	return plugintest.PutAll(t, st, h, o, 4)
}

// committed checks that o is stored whole under its key.
func (e *partEnv) committed(t *testing.T, obj sdk.Object, o partObject) {
	t.Helper()
	if obj.Key != o.Key || obj.Size != int64(len(o.Data)) || !bytes.Equal(obj.SHA256, o.SHA256()) || obj.Location != e.st.cfg.location(o.Key) {
		t.Errorf("object = %+v, want key %s, %d bytes, sha256 %x", obj, o.Key, len(o.Data), o.SHA256())
	}
	got, err := e.fs.ReadFile(path.Join(e.dir, o.Key))
	if err != nil || !bytes.Equal(got, o.Data) {
		t.Fatalf("stored file: %d bytes, %v; want the object's %d bytes", len(got), err, len(o.Data))
	}
}

func (e *partEnv) invisible(t *testing.T, key string) {
	t.Helper()
	if _, err := e.st.Stat(t.Context(), key); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Stat(%s) = %v, want ErrNotFound: the object must not be visible", key, err)
	}
}

func TestPartsCommit(t *testing.T) {
	tests := map[string]partObject{
		"MiB parts":       plugintest.NewObject("dir/sub/mib.bin", 5<<20+5, 1<<20),
		"large parts":     plugintest.NewObject("large.bin", 9<<20, 4<<20+1),
		"unaligned parts": plugintest.NewObject("files/odd.bin", 1_000_003, 300_001),
		"one part":        plugintest.NewObject("files/one.bin", 4096, 1<<20),
		"empty":           plugintest.NewObject("files/empty.bin", 0, 1<<20),
	}
	for name, o := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newPartEnv(t)
			h := e.begin(t, e.st, o)
			receipts := putAll(t, e.st, h, o)
			e.invisible(t, o.Key)
			obj, err := e.st.CommitObject(t.Context(), h, receipts, o.SHA256())
			if err != nil {
				t.Fatalf("CommitObject: %v", err)
			}
			e.committed(t, obj, o)
			if got := e.files(t); !slices.Equal(got, []string{o.Key}) {
				t.Errorf("files after commit: %v, want only %s", got, o.Key)
			}
			again, err := e.st.CommitObject(t.Context(), h, receipts, o.SHA256())
			if err != nil || again.Size != obj.Size || again.Location != obj.Location {
				t.Errorf("second CommitObject = %+v, %v; want %+v", again, err, obj)
			}
			if o.Parts() > 0 {
				if _, err := e.st.PutPart(t.Context(), h, o.Info(0), bytes.NewReader(o.Part(0))); !errors.Is(err, sdk.ErrNotFound) {
					t.Errorf("PutPart after commit = %v, want ErrNotFound", err)
				}
			}
			if err := e.st.AbortObject(t.Context(), o.Key, h); err != nil {
				t.Errorf("AbortObject after commit: %v", err)
			}
			e.committed(t, obj, o)
		})
	}
}

// A commit replaces an existing file under the key, as Put does.
func TestPartsCommitReplaces(t *testing.T) {
	e := newPartEnv(t)
	o := plugintest.NewObject("k/obj", 2<<20, 1<<20)
	if _, err := e.st.Put(t.Context(), o.Key, strings.NewReader("old"), 3); err != nil {
		t.Fatal(err)
	}
	h := e.begin(t, e.st, o)
	obj, err := e.st.CommitObject(t.Context(), h, putAll(t, e.st, h, o), o.SHA256())
	if err != nil {
		t.Fatal(err)
	}
	e.committed(t, obj, o)
	if got := e.files(t); !slices.Equal(got, []string{o.Key}) {
		t.Errorf("files: %v, want only %s", got, o.Key)
	}
}
