package localstore_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/plugins/local/internal/localstore"
	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

// object is a part-wise object of the tests.
type object = plugintest.Object

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

func (s partStore) begin(t *testing.T, o object) []byte { return plugintest.Begin(t, s, o) }

func (s partStore) put(t *testing.T, h []byte, o object, n int) []byte {
	return plugintest.Put(t, s, h, o, n)
}

// putAll stores every part, in random order, four at a time, and returns the receipts.
func (s partStore) putAll(t *testing.T, h []byte, o object) [][]byte {
	return plugintest.PutAll(t, s, h, o, 4)
}

// committed checks that o is stored whole under its key and is the only file there.
func (s partStore) committed(t *testing.T, obj sdk.Object, o object) {
	t.Helper()
	target := filepath.Join(s.root, filepath.FromSlash(o.Key))
	if obj.Key != o.Key || obj.Size != int64(len(o.Data)) || !bytes.Equal(obj.SHA256, o.SHA256()) || obj.Location != target {
		t.Errorf("object = %+v, want key %s, %d bytes, sha256 %x at %s", obj, o.Key, len(o.Data), o.SHA256(), target)
	}
	got, err := os.ReadFile(target)
	if err != nil || !bytes.Equal(got, o.Data) {
		t.Fatalf("stored file: %d bytes, %v; want the object's %d bytes", len(got), err, len(o.Data))
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
		"aligned parts":   plugintest.NewObject("dir/sub/aligned.bin", 3<<20+5, 1<<20), // direct I/O
		"unaligned parts": plugintest.NewObject("unaligned.bin", 1_000_003, 100_001),   // buffered
		"one part":        plugintest.NewObject("files/one.bin", 4096, 1<<20),          // the last part only
		"small parts":     plugintest.NewObject("files/small.bin", 1000, 7),            // many parts
		"empty":           plugintest.NewObject("files/empty.bin", 0, 1<<20),           // no part at all
	}
	for name, o := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newPartStore(t)
			h := s.begin(t, o)
			receipts := s.putAll(t, h, o)
			s.invisible(t, o.Key)
			obj, err := s.CommitObject(t.Context(), h, receipts, o.SHA256())
			if err != nil {
				t.Fatalf("CommitObject: %v", err)
			}
			s.committed(t, obj, o)
			if got := s.files(t); !slices.Equal(got, []string{o.Key}) {
				t.Errorf("files after commit: %v, want only %s", got, o.Key)
			}
			// Committing again reports the object; the handle is finished for the rest.
			again, err := s.CommitObject(t.Context(), h, receipts, o.SHA256())
			if err != nil || again.Size != obj.Size || again.Location != obj.Location {
				t.Errorf("second CommitObject = %+v, %v; want %+v", again, err, obj)
			}
			if o.Parts() > 0 {
				if _, err := s.PutPart(t.Context(), h, o.Info(0), bytes.NewReader(o.Part(0))); !errors.Is(err, sdk.ErrNotFound) {
					t.Errorf("PutPart after commit = %v, want ErrNotFound", err)
				}
			}
			if err := s.AbortObject(t.Context(), o.Key, h); err != nil {
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
	o := plugintest.NewObject("k/obj", 2<<20, 1<<20)
	if _, err := s.Put(t.Context(), o.Key, strings.NewReader("old"), 3); err != nil {
		t.Fatal(err)
	}
	h := s.begin(t, o)
	obj, err := s.CommitObject(t.Context(), h, s.putAll(t, h, o), o.SHA256())
	if err != nil {
		t.Fatal(err)
	}
	s.committed(t, obj, o)
}
