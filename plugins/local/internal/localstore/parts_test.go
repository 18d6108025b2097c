package localstore_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

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

// failure is a PutPart of part 1 that must fail and leave the part absent.
type failure struct {
	reader func(o object, ctx context.Context, cancel context.CancelFunc) io.Reader
	info   func(o object) sdk.PartInfo // nil: the part's own
	want   error
}

var errBoom = errors.New("boom")

// cancelAfter cancels its context once n bytes were read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	m, err := c.r.Read(p[:min(len(p), max(c.n, 1))])
	c.n -= m
	return m, err
}

var failures = map[string]failure{
	"wrong bytes": {
		reader: func(o object, _ context.Context, _ context.CancelFunc) io.Reader {
			b := bytes.Clone(o.part(1))
			b[len(b)/2] ^= 1
			return bytes.NewReader(b)
		},
		want: sdk.ErrDigestMismatch,
	},
	"wrong size": {
		reader: func(o object, _ context.Context, _ context.CancelFunc) io.Reader {
			return bytes.NewReader(o.part(1)[1:])
		},
		info: func(o object) sdk.PartInfo {
			i := o.info(1)
			i.Size--
			return i
		},
		want: sdk.ErrSizeMismatch,
	},
	"too long": {
		reader: func(o object, _ context.Context, _ context.CancelFunc) io.Reader {
			return io.MultiReader(bytes.NewReader(o.part(1)), strings.NewReader("x"))
		},
		want: sdk.ErrSizeMismatch,
	},
	"cut stream": {
		reader: func(o object, _ context.Context, _ context.CancelFunc) io.Reader {
			return bytes.NewReader(o.part(1)[:len(o.part(1))/2])
		},
		want: sdk.ErrSizeMismatch,
	},
	"stream error": {
		reader: func(o object, _ context.Context, _ context.CancelFunc) io.Reader {
			return io.MultiReader(bytes.NewReader(o.part(1)[:5000]), iotest.ErrReader(errBoom))
		},
		want: errBoom,
	},
	"cancelled": {
		reader: func(o object, _ context.Context, cancel context.CancelFunc) io.Reader {
			return &cancelAfter{r: bytes.NewReader(o.part(1)), n: 300_000, cancel: cancel}
		},
		want: context.Canceled,
	},
}

// A failed write of a part that was stored before leaves it absent: a commit with its
// earlier receipt fails and makes nothing visible, the object can still be aborted, and
// the part can be sent again.
func TestPartsFailedRewrite(t *testing.T) {
	t.Parallel()
	for name, f := range failures {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newPartStore(t)
			o := newObject(t, "dir/obj.bin", 3<<20, 1<<20)
			h := s.begin(t, o)
			receipts := s.putAll(t, h, o)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			info := o.info(1)
			if f.info != nil {
				info = f.info(o)
			}
			if r, err := s.PutPart(ctx, h, info, f.reader(o, ctx, cancel)); !errors.Is(err, f.want) {
				t.Fatalf("PutPart = %x, %v; want an error wrapping %v", r, err, f.want)
			}
			if _, err := s.CommitObject(t.Context(), h, receipts, o.sum()); !errors.Is(err, sdk.ErrStaleReceipt) {
				t.Fatalf("CommitObject with the earlier receipt = %v, want ErrStaleReceipt", err)
			}
			s.invisible(t, o.key)

			receipts[1] = s.put(t, h, o, 1)
			obj, err := s.CommitObject(t.Context(), h, receipts, o.sum())
			if err != nil {
				t.Fatalf("CommitObject after sending part 1 again: %v", err)
			}
			s.committed(t, obj, o)
		})
	}
}

func TestPartsStaleAndMissing(t *testing.T) {
	t.Parallel()
	s := newPartStore(t)
	o := newObject(t, "dir/obj.bin", 5<<20, 1<<20)
	h := s.begin(t, o)
	receipts := s.putAll(t, h, o)
	resent := s.put(t, h, o, 3) // the same bytes again: a new receipt, the old one is stale
	if bytes.Equal(resent, receipts[3]) {
		t.Fatal("a re-sent part got its earlier receipt")
	}
	missing := slices.Clone(receipts)
	missing[2] = nil
	tests := map[string][][]byte{
		"stale receipt":   receipts,
		"missing receipt": missing,
		"too few":         receipts[:4],
		"none":            nil,
	}
	for name, rs := range tests {
		if _, err := s.CommitObject(t.Context(), h, rs, o.sum()); !errors.Is(err, sdk.ErrStaleReceipt) {
			t.Errorf("%s: CommitObject = %v, want ErrStaleReceipt", name, err)
		}
		s.invisible(t, o.key)
	}
	// An object with a part never sent cannot be committed either.
	o2 := newObject(t, "dir/two.bin", 3<<20, 1<<20)
	h2 := s.begin(t, o2)
	r2 := [][]byte{s.put(t, h2, o2, 0), s.put(t, h2, o2, 2), s.put(t, h2, o2, 2)}
	if _, err := s.CommitObject(t.Context(), h2, r2, o2.sum()); !errors.Is(err, sdk.ErrStaleReceipt) {
		t.Errorf("CommitObject with part 1 never sent = %v, want ErrStaleReceipt", err)
	}
	s.invisible(t, o2.key)

	// Both can still be aborted, which leaves nothing.
	for _, a := range []struct {
		key string
		h   []byte
	}{{o.key, h}, {o2.key, h2}} {
		if err := s.AbortObject(t.Context(), a.key, a.h); err != nil {
			t.Fatalf("AbortObject: %v", err)
		}
	}
	if got := s.files(t); len(got) != 0 {
		t.Errorf("files after abort: %v, want none", got)
	}
	for _, hh := range [][]byte{h, h2} {
		if _, err := s.PutPart(t.Context(), hh, o.info(0), bytes.NewReader(o.part(0))); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("PutPart after abort = %v, want ErrNotFound", err)
		}
		if _, err := s.CommitObject(t.Context(), hh, receipts, o.sum()); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("CommitObject after abort = %v, want ErrNotFound", err)
		}
		if err := s.AbortObject(t.Context(), o.key, h); err != nil {
			t.Errorf("second AbortObject: %v", err)
		}
	}
}

// Two writes of the same part at once, with different bytes: one of them is stored, whole,
// and only its receipt commits.
func TestPartsSamePartConcurrently(t *testing.T) {
	t.Parallel()
	s := newPartStore(t)
	a := newObject(t, "dir/obj.bin", 4<<20, 2<<20)
	b := object{key: a.key, data: bytes.Clone(a.data), partSize: a.partSize}
	_, _ = crand.Read(b.data[:b.partSize]) // part 0 differs
	h := s.begin(t, a)
	last := s.put(t, h, a, 1)
	var ra, rb []byte
	var wg sync.WaitGroup
	for range 3 { // a few rounds, to let the two interleave in different ways
		wg.Go(func() { ra = s.put(t, h, a, 0) })
		wg.Go(func() { rb = s.put(t, h, b, 0) })
		wg.Wait()
	}
	_, errA := s.CommitObject(t.Context(), h, [][]byte{ra, last}, a.sum())
	if errA == nil {
		s.committed(t, sdk.Object{Key: a.key, Size: int64(len(a.data)), SHA256: a.sum(), Location: filepath.Join(s.root, a.key)}, a)
		return
	}
	if !errors.Is(errA, sdk.ErrStaleReceipt) {
		t.Fatalf("CommitObject with one writer's receipt = %v, want success or ErrStaleReceipt", errA)
	}
	s.invisible(t, a.key)
	obj, err := s.CommitObject(t.Context(), h, [][]byte{rb, last}, b.sum())
	if err != nil {
		t.Fatalf("CommitObject with the other writer's receipt (the first was stale): %v", err)
	}
	s.committed(t, obj, b)
}

// A handle keeps working in a new Store on the same root, as after a plugin restart.
func TestPartsRestart(t *testing.T) {
	t.Parallel()
	s := newPartStore(t)
	o := newObject(t, "files/restart.bin", 4<<20+1, 1<<20)
	h := s.begin(t, o)
	receipts := make([][]byte, o.parts())
	receipts[0] = s.put(t, h, o, 0)
	receipts[3] = s.put(t, h, o, 3)

	s2 := s.reopen(t)
	for _, n := range []int{4, 1, 2} {
		receipts[n] = s2.put(t, h, o, n)
	}
	resent := s2.put(t, h, o, 0)
	if _, err := s2.CommitObject(t.Context(), h, receipts, o.sum()); !errors.Is(err, sdk.ErrStaleReceipt) {
		t.Errorf("CommitObject with a receipt the new process replaced = %v, want ErrStaleReceipt", err)
	}
	receipts[0] = resent
	obj, err := s2.CommitObject(t.Context(), h, receipts, o.sum())
	if err != nil {
		t.Fatalf("CommitObject in the new process: %v", err)
	}
	s2.committed(t, obj, o)

	// Abort works across a restart too.
	o2 := newObject(t, "files/abort.bin", 2<<20, 1<<20)
	h2 := s2.begin(t, o2)
	s2.put(t, h2, o2, 1)
	if err := s2.reopen(t).AbortObject(t.Context(), o2.key, h2); err != nil {
		t.Fatal(err)
	}
	if got := s2.files(t); !slices.Equal(got, []string{o.key}) {
		t.Errorf("files: %v, want only %s", got, o.key)
	}
}

// A commit interrupted after the rename (the journal was left) is finished by a retry.
func TestPartsInterruptedCommit(t *testing.T) {
	t.Parallel()
	s := newPartStore(t)
	o := newObject(t, "d/obj.bin", 2<<20, 1<<20)
	h := s.begin(t, o)
	receipts := s.putAll(t, h, o)
	var data string
	for _, f := range s.files(t) {
		if strings.HasSuffix(f, ".partial") {
			data = filepath.Join(s.root, f)
		}
	}
	if err := os.Rename(data, filepath.Join(s.root, o.key)); err != nil { // what the commit did before dying
		t.Fatal(err)
	}
	obj, err := s.reopen(t).CommitObject(t.Context(), h, receipts, o.sum())
	if err != nil {
		t.Fatalf("CommitObject after an interrupted commit: %v", err)
	}
	s.committed(t, obj, o)
	if got := s.files(t); !slices.Equal(got, []string{o.key}) {
		t.Errorf("files: %v, want only %s (the journal removed)", got, o.key)
	}
}

// AbortObject without a handle, and BeginObject, remove the unfinished objects of their key
// (the leftovers of a crash before the host recorded a handle), and only those.
func TestPartsLeftovers(t *testing.T) {
	t.Parallel()
	s := newPartStore(t)
	lost := newObject(t, "dir/obj.bin", 2<<20, 1<<20)
	h1 := s.begin(t, lost)
	s.put(t, h1, lost, 0)
	h2 := s.begin(t, lost) // begins anew: the first is aborted
	if _, err := s.PutPart(t.Context(), h1, lost.info(1), bytes.NewReader(lost.part(1))); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("PutPart with the handle BeginObject replaced = %v, want ErrNotFound", err)
	}
	s.put(t, h2, lost, 1)

	// Neighbours: another key in the same directory, a key whose name begins alike, and a
	// file of the same name in another directory. None of them may be touched.
	other := newObject(t, "dir/obj.bin2", 2<<20, 1<<20)
	hOther := s.begin(t, other)
	rOther := s.putAll(t, hOther, other)
	if _, err := s.Put(t.Context(), "dir/obj.bin", strings.NewReader("committed"), 9); err != nil {
		t.Fatal(err)
	}
	elsewhere := newObject(t, "else/obj.bin", 10, 10)
	hElse := s.begin(t, elsewhere)
	before := s.files(t)

	// The plugin restarts and the host lost h2: it aborts by key.
	s2 := s.reopen(t)
	if err := s2.AbortObject(t.Context(), lost.key, nil); err != nil {
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
	if _, err := s2.CommitObject(t.Context(), h2, nil, lost.sum()); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("CommitObject of the aborted handle = %v, want ErrNotFound", err)
	}
	if err := s2.AbortObject(t.Context(), "nothing/here.bin", nil); err != nil {
		t.Errorf("AbortObject(key, nil) with nothing there: %v", err)
	}
	obj, err := s2.CommitObject(t.Context(), hOther, rOther, other.sum())
	if err != nil {
		t.Fatalf("committing the neighbour: %v", err)
	}
	s2.committed(t, obj, other)
	if err := s2.AbortObject(t.Context(), elsewhere.key, hElse); err != nil {
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
	o := newObject(t, "a/obj.bin", 2<<20, 1<<20)
	h := s.begin(t, o)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := s.PutPart(t.Context(), h, o.info(0), pr)
		done <- err
	}()
	if _, err := pw.Write(o.part(0)[:1000]); err != nil { // the part is being written
		t.Fatal(err)
	}
	go func() { // keep the stream flowing, as the host's would
		for {
			if _, err := pw.Write(o.part(0)[1000:2000]); err != nil {
				return
			}
		}
	}()
	if err := s.AbortObject(t.Context(), o.key, h); err != nil {
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

// forgeHandle encodes a handle in partfile's format with any key: a hostile or broken host.
func forgeHandle(key string, size, partSize int64, parts uint32) []byte {
	b := []byte{1, 1, 2, 3, 4, 5, 6, 7, 8}
	b = binary.BigEndian.AppendUint64(b, uint64(size))
	b = binary.BigEndian.AppendUint64(b, uint64(partSize))
	b = binary.BigEndian.AppendUint32(b, parts)
	b = binary.BigEndian.AppendUint16(b, uint16(len(key)))
	b = append(b, key...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
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
	o := newObject(t, "dir/x", 10, 10)
	good := s.begin(t, o)
	flipped := bytes.Clone(good)
	flipped[3] ^= 0x40

	// A well-formed handle of an object in another directory: its files do not exist.
	moved := forgeHandle("other/x", 10, 10, 1)
	// The same id and key but another size: the journal's header does not match.
	resized := bytes.Clone(good)
	binary.BigEndian.PutUint64(resized[9:17], 20)
	binary.BigEndian.PutUint64(resized[17:25], 10)
	binary.BigEndian.PutUint32(resized[25:29], 2)
	resized = append(resized[:len(resized)-4], 0, 0, 0, 0)
	binary.BigEndian.PutUint32(resized[len(resized)-4:], crc32.Checksum(resized[:len(resized)-4], crc32.MakeTable(crc32.Castagnoli)))

	handles := map[string][]byte{
		"parent":         forgeHandle("../outside/x", 10, 10, 1),
		"absolute":       forgeHandle(outside+"/x", 10, 10, 1),
		"inner parent":   forgeHandle("dir/../../outside/x", 10, 10, 1),
		"backslash":      forgeHandle(`..\outside\x`, 10, 10, 1),
		"bit flipped":    flipped,
		"truncated":      good[:len(good)-3],
		"garbage":        []byte("/etc/passwd"),
		"other dir":      moved,
		"resized":        resized,
		"another object": forgeHandle("dir/x", 10, 10, 1),
	}
	for name, h := range handles {
		part := sdk.PartInfo{Number: 0, Size: 10, SHA256: o.info(0).SHA256}
		if _, err := s.PutPart(t.Context(), h, part, bytes.NewReader(o.data)); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("%s: PutPart = %v, want ErrNotFound", name, err)
		}
		if _, err := s.CommitObject(t.Context(), h, [][]byte{{1}}, o.sum()); !errors.Is(err, sdk.ErrNotFound) {
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
	obj, err := s.CommitObject(t.Context(), good, [][]byte{s.put(t, good, o, 0)}, o.sum())
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
	o := newObject(t, "p/x.bin", 100, 10)
	h := s.begin(t, o)
	if _, err := s.PutPart(t.Context(), h, sdk.PartInfo{Number: 10, Size: 10, SHA256: o.info(0).SHA256}, bytes.NewReader(o.part(0))); !errors.Is(err, sdk.ErrSizeMismatch) {
		t.Errorf("PutPart beyond the last part = %v, want ErrSizeMismatch", err)
	}
}
