package localstore_test

import (
	"bytes"
	crand "crypto/rand"
	"crypto/sha256"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/plugins/local/internal/localstore"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// object is the content of a part-wise object and how it is cut.
type object struct {
	key      string
	data     []byte
	partSize int64
}

func newObject(t testing.TB, key string, size, partSize int64) object {
	t.Helper()
	b := make([]byte, size)
	_, _ = crand.Read(b)
	return object{key: key, data: b, partSize: partSize}
}

func (o object) spec() sdk.ObjectSpec {
	return sdk.ObjectSpec{Size: int64(len(o.data)), PartSize: o.partSize, PartCount: o.parts()}
}

func (o object) parts() int { return int((int64(len(o.data)) + o.partSize - 1) / o.partSize) }

func (o object) part(n int) []byte {
	off := int64(n) * o.partSize
	return o.data[off:min(off+o.partSize, int64(len(o.data)))]
}

func (o object) info(n int) sdk.PartInfo {
	sum := sha256.Sum256(o.part(n))
	return sdk.PartInfo{Number: n, Size: int64(len(o.part(n))), SHA256: sum[:]}
}

func (o object) sum() []byte {
	s := sha256.Sum256(o.data)
	return s[:]
}

// partStore is the store under test and its root.
type partStore struct {
	*localstore.Store
	root string
}

func newPartStore(t *testing.T) partStore {
	t.Helper()
	root := t.TempDir()
	s, err := localstore.New(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	return partStore{s, root}
}

// reopen returns a new Store on the same root, as a restarted plugin gets.
func (s partStore) reopen(t *testing.T) partStore {
	t.Helper()
	n, err := localstore.New(s.root, nil)
	if err != nil {
		t.Fatal(err)
	}
	return partStore{n, s.root}
}

// files returns the files under the root (relative, slash-separated, sorted).
func (s partStore) files(t *testing.T) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(s.root, p)
		names = append(names, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func (s partStore) begin(t *testing.T, o object) []byte {
	t.Helper()
	h, err := s.BeginObject(t.Context(), o.key, o.spec())
	if err != nil {
		t.Fatalf("BeginObject(%s): %v", o.key, err)
	}
	return h
}

func (s partStore) put(t *testing.T, h []byte, o object, n int) []byte {
	t.Helper()
	r, err := s.PutPart(t.Context(), h, o.info(n), bytes.NewReader(o.part(n)))
	if err != nil {
		t.Fatalf("PutPart(%d): %v", n, err)
	}
	return r
}

// putAll stores every part, in random order, four at a time, and returns the receipts.
func (s partStore) putAll(t *testing.T, h []byte, o object) [][]byte {
	t.Helper()
	receipts := make([][]byte, o.parts())
	order := rand.Perm(o.parts())
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, n := range order {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := s.PutPart(t.Context(), h, o.info(n), bytes.NewReader(o.part(n)))
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

// committed checks that o is stored whole under its key and is the only file there.
func (s partStore) committed(t *testing.T, obj sdk.Object, o object) {
	t.Helper()
	target := filepath.Join(s.root, filepath.FromSlash(o.key))
	if obj.Key != o.key || obj.Size != int64(len(o.data)) || !bytes.Equal(obj.SHA256, o.sum()) || obj.Location != target {
		t.Errorf("object = %+v, want key %s, %d bytes, sha256 %x at %s", obj, o.key, len(o.data), o.sum(), target)
	}
	got, err := os.ReadFile(target)
	if err != nil || !bytes.Equal(got, o.data) {
		t.Fatalf("stored file: %d bytes, %v; want the object's %d bytes", len(got), err, len(o.data))
	}
}

// invisible checks that key holds no object.
func (s partStore) invisible(t *testing.T, key string) {
	t.Helper()
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Stat(%s) = %v, want ErrNotFound: the object must not be visible", key, err)
	}
}

func TestPartsCommit(t *testing.T) {
	t.Parallel()
	tests := map[string]object{
		"aligned parts":   newObject(t, "dir/sub/aligned.bin", 3<<20+5, 1<<20),         // direct I/O
		"unaligned parts": newObject(t, "unaligned.bin", 1_000_003, 100_001),           // buffered
		"one part":        newObject(t, "files/one.bin", 4096, 1<<20),                  // the last part only
		"small parts":     newObject(t, "files/small.bin", 1000, 7),                    // many parts
		"empty":           {key: "files/empty.bin", data: []byte{}, partSize: 1 << 20}, // no part at all
	}
	for name, o := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newPartStore(t)
			h := s.begin(t, o)
			receipts := s.putAll(t, h, o)
			s.invisible(t, o.key)
			obj, err := s.CommitObject(t.Context(), h, receipts, o.sum())
			if err != nil {
				t.Fatalf("CommitObject: %v", err)
			}
			s.committed(t, obj, o)
			if got := s.files(t); !slices.Equal(got, []string{o.key}) {
				t.Errorf("files after commit: %v, want only %s", got, o.key)
			}
			// Committing again reports the object; the handle is finished for the rest.
			again, err := s.CommitObject(t.Context(), h, receipts, o.sum())
			if err != nil || again.Size != obj.Size || again.Location != obj.Location {
				t.Errorf("second CommitObject = %+v, %v; want %+v", again, err, obj)
			}
			if o.parts() > 0 {
				if _, err := s.PutPart(t.Context(), h, o.info(0), bytes.NewReader(o.part(0))); !errors.Is(err, sdk.ErrNotFound) {
					t.Errorf("PutPart after commit = %v, want ErrNotFound", err)
				}
			}
			if err := s.AbortObject(t.Context(), o.key, h); err != nil {
				t.Errorf("AbortObject after commit: %v", err)
			}
			s.committed(t, obj, o)
		})
	}
}

// A commit replaces an existing file under the key, as Put does.
func TestPartsCommitReplaces(t *testing.T) {
	t.Parallel()
	s := newPartStore(t)
	o := newObject(t, "k/obj", 2<<20, 1<<20)
	if _, err := s.Put(t.Context(), o.key, strings.NewReader("old"), 3); err != nil {
		t.Fatal(err)
	}
	h := s.begin(t, o)
	obj, err := s.CommitObject(t.Context(), h, s.putAll(t, h, o), o.sum())
	if err != nil {
		t.Fatal(err)
	}
	s.committed(t, obj, o)
}
