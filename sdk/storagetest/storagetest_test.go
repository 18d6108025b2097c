package storagetest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest"
)

// memStore is a minimal conforming Storage: it keeps the bytes of small objects and only
// the size of large ones, so the Large case stays streaming.
type memStore struct {
	mu   sync.Mutex
	objs map[string][]byte
	size map[string]int64
}

// keepLimit is the largest object memStore keeps the bytes of.
const keepLimit = 8 << 20

func newMemStore() *memStore {
	return &memStore{objs: map[string][]byte{}, size: map[string]int64{}}
}

// ctxReader fails once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (m *memStore) Put(ctx context.Context, key string, r io.Reader, size int64) (sdk.Object, error) {
	var buf bytes.Buffer
	w := io.Discard
	if size <= keepLimit {
		w = &buf
	}
	sum, err := sdk.CopyExact(w, ctxReader{ctx, r}, size)
	if err != nil {
		return sdk.Object{}, fmt.Errorf("mem: put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return sdk.Object{}, fmt.Errorf("mem: put %s: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[key], m.size[key] = buf.Bytes(), size
	return sdk.Object{Key: key, Size: size, SHA256: sum, Location: "mem:" + key}, nil
}

func (m *memStore) Stat(_ context.Context, key string) (sdk.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.size[key]
	if !ok {
		return sdk.Object{}, fmt.Errorf("mem: %s: %w", key, sdk.ErrNotFound)
	}
	return sdk.Object{Key: key, Size: n, Location: "mem:" + key}, nil
}

func (m *memStore) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, key)
	delete(m.size, key)
	return nil
}

// TestMemStore runs the suite against memStore, without ReadBack and List and with them.
func TestMemStore(t *testing.T) {
	var cur *memStore
	bare := storagetest.Options{New: func(t *testing.T) sdk.Storage {
		cur = newMemStore()
		return cur
	}}
	full := bare
	full.ReadBack = func(t *testing.T, key string) (io.ReadCloser, error) {
		cur.mu.Lock()
		defer cur.mu.Unlock()
		b, ok := cur.objs[key]
		if !ok {
			return nil, fmt.Errorf("%s: %w", key, sdk.ErrNotFound)
		}
		if int64(len(b)) != cur.size[key] {
			return nil, fmt.Errorf("%s: bytes not kept", key)
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	full.List = func(t *testing.T) []string {
		cur.mu.Lock()
		defer cur.mu.Unlock()
		return slices.Sorted(maps.Keys(cur.size))
	}
	// Kept in memory, so ReadBack can compare it, and small: the heap check counts it and its
	// buffer's growth (at 8 MiB, 24-30 MiB over gRPC under -race, against a bound of 32).
	full.Large = keepLimit / 2
	t.Run("Bare", func(t *testing.T) { storagetest.Run(t, bare) })
	t.Run("BareGRPC", func(t *testing.T) { storagetest.RunGRPC(t, bare) })
	t.Run("Full", func(t *testing.T) { storagetest.Run(t, full) })
	t.Run("FullGRPC", func(t *testing.T) { storagetest.RunGRPC(t, full) })
}

// fileOptions returns Options for fileStore with limits and the defect bug ("" for none);
// with ReadBack, List and Reopen unless bare.
func fileOptions(limits sdk.PartLimits, bug string, bare bool) storagetest.Options {
	var root, state string // of the store New made last
	o := storagetest.Options{New: func(t *testing.T) sdk.Storage {
		root, state = t.TempDir(), t.TempDir()
		return newFileStore(root, state, limits, bug)
	}}
	if bare {
		return o
	}
	o.ReadBack = func(t *testing.T, key string) (io.ReadCloser, error) {
		f, err := os.Open(filepath.Join(root, filepath.FromSlash(key)))
		if err != nil {
			return nil, err
		}
		if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
			f.Close()
			return nil, fmt.Errorf("%s: not a file", key)
		}
		return f, nil
	}
	o.List = func(t *testing.T) []string {
		var names []string
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(root, p)
			names = append(names, filepath.ToSlash(rel))
			return err
		})
		if err != nil {
			t.Fatalf("walk %s: %v", root, err)
		}
		return names
	}
	o.Reopen = func(t *testing.T) sdk.Storage { return newFileStore(root, state, limits, bug) }
	return o
}

// TestFileStore runs the suite against fileStore: with every option and no part limits,
// and bare (no ReadBack, List or Reopen) with part limits.
func TestFileStore(t *testing.T) {
	full := fileOptions(sdk.PartLimits{}, "", false)
	limited := fileOptions(sdk.PartLimits{MinPartSize: 2 << 20, MaxParts: 3}, "", true)
	limited.Large = 24 << 20
	for _, c := range []struct {
		name string
		o    storagetest.Options
	}{{"Full", full}, {"LimitedBare", limited}} {
		t.Run(c.name, func(t *testing.T) {
			t.Run("Direct", func(t *testing.T) { storagetest.Run(t, c.o) })
			t.Run("GRPC", func(t *testing.T) { storagetest.RunGRPC(t, c.o) })
			t.Run("Staged", func(t *testing.T) { storagetest.RunStaged(t, c.o) })
		})
	}
}
