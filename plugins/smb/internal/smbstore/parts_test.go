package smbstore

import (
	"bytes"
	crand "crypto/rand"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hirochachacha/go-smb2"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// partObject is the content of a part-wise object and how it is cut.
type partObject struct {
	key      string
	data     []byte
	partSize int64
}

func newPartObject(key string, size, partSize int64) partObject {
	b := make([]byte, size)
	_, _ = crand.Read(b)
	return partObject{key: key, data: b, partSize: partSize}
}

func (o partObject) parts() int { return int((int64(len(o.data)) + o.partSize - 1) / o.partSize) }

func (o partObject) spec() sdk.ObjectSpec {
	return sdk.ObjectSpec{Size: int64(len(o.data)), PartSize: o.partSize, PartCount: o.parts()}
}

func (o partObject) part(n int) []byte {
	off := int64(n) * o.partSize
	return o.data[off:min(off+o.partSize, int64(len(o.data)))]
}

func (o partObject) info(n int) sdk.PartInfo {
	sum := sha256.Sum256(o.part(n))
	return sdk.PartInfo{Number: n, Size: int64(len(o.part(n))), SHA256: sum[:]}
}

func (o partObject) sum() []byte {
	s := sha256.Sum256(o.data)
	return s[:]
}

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
	t.Helper()
	h, err := st.BeginObject(t.Context(), o.key, o.spec())
	if err != nil {
		t.Fatalf("BeginObject(%s): %v", o.key, err)
	}
	return h
}

func putOne(t *testing.T, st *Store, h []byte, o partObject, n int) []byte {
	t.Helper()
	r, err := st.PutPart(t.Context(), h, o.info(n), bytes.NewReader(o.part(n)))
	if err != nil {
		t.Fatalf("PutPart(%d): %v", n, err)
	}
	return r
}

// putAll stores every part, in random order, four at a time, and returns the receipts.
func putAll(t *testing.T, st *Store, h []byte, o partObject) [][]byte {
	t.Helper()
	receipts := make([][]byte, o.parts())
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, n := range rand.Perm(o.parts()) {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := st.PutPart(t.Context(), h, o.info(n), bytes.NewReader(o.part(n)))
			if err != nil {
				t.Errorf("PutPart(%d): %v", n, err)
			}
			receipts[n] = r
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return receipts
}

// committed checks that o is stored whole under its key.
func (e *partEnv) committed(t *testing.T, obj sdk.Object, o partObject) {
	t.Helper()
	if obj.Key != o.key || obj.Size != int64(len(o.data)) || !bytes.Equal(obj.SHA256, o.sum()) || obj.Location != e.st.cfg.location(o.key) {
		t.Errorf("object = %+v, want key %s, %d bytes, sha256 %x", obj, o.key, len(o.data), o.sum())
	}
	got, err := e.fs.ReadFile(path.Join(e.dir, o.key))
	if err != nil || !bytes.Equal(got, o.data) {
		t.Fatalf("stored file: %d bytes, %v; want the object's %d bytes", len(got), err, len(o.data))
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
		"MiB parts":       newPartObject("dir/sub/mib.bin", 5<<20+5, 1<<20),
		"large parts":     newPartObject("large.bin", 9<<20, 4<<20+1),
		"unaligned parts": newPartObject("files/odd.bin", 1_000_003, 300_001),
		"one part":        newPartObject("files/one.bin", 4096, 1<<20),
		"empty":           {key: "files/empty.bin", data: []byte{}, partSize: 1 << 20},
	}
	for name, o := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newPartEnv(t)
			h := e.begin(t, e.st, o)
			receipts := putAll(t, e.st, h, o)
			e.invisible(t, o.key)
			obj, err := e.st.CommitObject(t.Context(), h, receipts, o.sum())
			if err != nil {
				t.Fatalf("CommitObject: %v", err)
			}
			e.committed(t, obj, o)
			if got := e.files(t); !slices.Equal(got, []string{o.key}) {
				t.Errorf("files after commit: %v, want only %s", got, o.key)
			}
			again, err := e.st.CommitObject(t.Context(), h, receipts, o.sum())
			if err != nil || again.Size != obj.Size || again.Location != obj.Location {
				t.Errorf("second CommitObject = %+v, %v; want %+v", again, err, obj)
			}
			if o.parts() > 0 {
				if _, err := e.st.PutPart(t.Context(), h, o.info(0), bytes.NewReader(o.part(0))); !errors.Is(err, sdk.ErrNotFound) {
					t.Errorf("PutPart after commit = %v, want ErrNotFound", err)
				}
			}
			if err := e.st.AbortObject(t.Context(), o.key, h); err != nil {
				t.Errorf("AbortObject after commit: %v", err)
			}
			e.committed(t, obj, o)
		})
	}
}

// A commit replaces an existing file under the key, as Put does.
func TestPartsCommitReplaces(t *testing.T) {
	e := newPartEnv(t)
	o := newPartObject("k/obj", 2<<20, 1<<20)
	if _, err := e.st.Put(t.Context(), o.key, strings.NewReader("old"), 3); err != nil {
		t.Fatal(err)
	}
	h := e.begin(t, e.st, o)
	obj, err := e.st.CommitObject(t.Context(), h, putAll(t, e.st, h, o), o.sum())
	if err != nil {
		t.Fatal(err)
	}
	e.committed(t, obj, o)
	if got := e.files(t); !slices.Equal(got, []string{o.key}) {
		t.Errorf("files: %v, want only %s", got, o.key)
	}
}
