package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// commonCases are the cases Run and RunGRPC share.
func commonCases() []testCase {
	return []testCase{
		{"PutStat", testPutStat},
		{"ZeroBytes", testZeroBytes},
		{"OneByteReader", testOneByteReader},
		{"HalfReader", testHalfReader},
		{"DataErrReader", testDataErrReader},
		{"ShortReader", testShortReader},
		{"LongReader", testLongReader},
		{"FailingReader", testFailingReader},
		{"CancelMidStream", testCancelMidStream},
		{"Overwrite", testOverwrite},
		{"NestedKeys", testNestedKeys},
		{"StatMissing", testStatMissing},
		{"DeleteMissing", testDeleteMissing},
		{"DeleteThenStat", testDeleteThenStat},
		{"ConcurrentPuts", testConcurrentPuts},
		{"Large", testLarge},
		{"Health", testHealth},
	}
}

// testPutStat: a multi-chunk object of an odd size round-trips through Put, Stat and ReadBack.
func testPutStat(t *testing.T, e *env) {
	const key = "putstat/object.bin"
	b := data(key, 3<<20+17)
	obj := e.put(t, key, bytes.NewReader(b), b)
	e.checkStored(t, key, b)
	if st, err := e.s.Stat(e.ctx, key); err == nil && st.Location != "" && st.Location != obj.Location {
		t.Errorf("Stat(%q).Location = %q, Put returned %q", key, st.Location, obj.Location)
	}
	e.checkList(t, []string{key}, []string{key})
}

// testZeroBytes: an empty object is an object.
func testZeroBytes(t *testing.T, e *env) {
	const key = "zerobytes/empty.bin"
	e.put(t, key, bytes.NewReader(nil), nil)
	e.checkStored(t, key, nil)
	e.checkList(t, []string{key}, []string{key})
}

// testOneByteReader: a reader returning one byte per Read.
func testOneByteReader(t *testing.T, e *env) {
	const key = "onebyte/object.bin"
	b := data(key, 3000)
	e.put(t, key, iotest.OneByteReader(bytes.NewReader(b)), b)
	e.checkStored(t, key, b)
}

// testHalfReader: a reader returning half of what was asked for.
func testHalfReader(t *testing.T, e *env) {
	const key = "halfreader/object.bin"
	b := data(key, 1<<20+3)
	e.put(t, key, iotest.HalfReader(bytes.NewReader(b)), b)
	e.checkStored(t, key, b)
}

// testDataErrReader: a reader returning io.EOF together with its last bytes.
func testDataErrReader(t *testing.T, e *env) {
	const key = "dataerr/object.bin"
	b := data(key, 64<<10+1)
	e.put(t, key, iotest.DataErrReader(bytes.NewReader(b)), b)
	e.checkStored(t, key, b)
}

// testShortReader: fewer bytes than declared fail with ErrSizeMismatch and leave nothing.
func testShortReader(t *testing.T, e *env) {
	b := data("short", 100_000)
	e.failPut(t, e.ctx, "short/one-missing.bin", bytes.NewReader(b[:len(b)-1]), int64(len(b)), sdk.ErrSizeMismatch)
	e.failPut(t, e.ctx, "short/empty.bin", bytes.NewReader(nil), 10, sdk.ErrSizeMismatch)
	e.failPut(t, e.ctx, "short/half.bin", iotest.HalfReader(bytes.NewReader(b[:len(b)/2])), int64(len(b)), sdk.ErrSizeMismatch)
}

// testLongReader: more bytes than declared fail with ErrSizeMismatch and leave nothing.
func testLongReader(t *testing.T, e *env) {
	b := data("long", 100_001)
	e.failPut(t, e.ctx, "long/one-extra.bin", bytes.NewReader(b), int64(len(b)-1), sdk.ErrSizeMismatch)
	e.failPut(t, e.ctx, "long/zero-declared.bin", bytes.NewReader(b[:1]), 0, sdk.ErrSizeMismatch)
	e.failPut(t, e.ctx, "long/much-more.bin", bytes.NewReader(b), 1000, sdk.ErrSizeMismatch)
}

var errBoom = errors.New("storagetest: reader failed on purpose")

// errAfter returns n bytes of b and errBoom together, then errBoom.
type errAfter struct {
	b []byte
	n int
}

func (r *errAfter) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errBoom
	}
	m := copy(p, r.b[:r.n])
	r.b, r.n = r.b[m:], r.n-m
	if r.n == 0 {
		return m, errBoom
	}
	return m, nil
}

// testFailingReader: a reader failing at once, midway, or together with data gives an
// error and leaves nothing.
func testFailingReader(t *testing.T, e *env) {
	b := data("failing", 2<<20)
	size := int64(len(b))
	e.failPut(t, e.ctx, "failing/at-once.bin", iotest.ErrReader(errBoom), size, nil)
	e.failPut(t, e.ctx, "failing/midway.bin", io.MultiReader(bytes.NewReader(b[:len(b)/2+5]), iotest.ErrReader(errBoom)), size, nil)
	e.failPut(t, e.ctx, "failing/with-data.bin", &errAfter{b: b, n: len(b) - 1}, size, nil)
	e.failPut(t, e.ctx, "failing/timeout.bin", iotest.TimeoutReader(bytes.NewReader(b)), size, nil)
}

// cancelReader yields its data and calls cancel once it has yielded after bytes. It keeps
// yielding data after that: the Storage must notice the cancelled context by itself.
type cancelReader struct {
	r      io.Reader
	n      int
	after  int
	cancel context.CancelFunc
}

func (r *cancelReader) Read(p []byte) (int, error) {
	if r.n >= r.after {
		r.cancel()
	} else if len(p) > r.after-r.n {
		p = p[:r.after-r.n]
	}
	m, err := r.r.Read(p)
	r.n += m
	return m, err
}

// testCancelMidStream: cancelling the context while the data flows, or with the very last
// Read, gives an error wrapping context.Canceled and leaves nothing.
func testCancelMidStream(t *testing.T, e *env) {
	b := data("cancel", 4<<20)
	for key, after := range map[string]int{"cancel/midway.bin": len(b)/2 + 1, "cancel/at-eof.bin": len(b)} {
		ctx, cancel := context.WithCancel(e.ctx)
		r := &cancelReader{r: bytes.NewReader(b), after: after, cancel: cancel}
		e.failPut(t, ctx, key, r, int64(len(b)), context.Canceled)
		cancel()
	}
}

// testOverwrite: a second Put replaces the object, also with shorter content.
func testOverwrite(t *testing.T, e *env) {
	const key = "overwrite/object.bin"
	v1, v2, v3 := data("v1", 100_000), data("v2", 70_000), data("v3", 250_000)
	e.put(t, key, bytes.NewReader(v1), v1)
	e.checkStored(t, key, v1)
	e.put(t, key, bytes.NewReader(v2), v2)
	e.checkStored(t, key, v2)
	e.put(t, key, bytes.NewReader(v3), v3)
	e.checkStored(t, key, v3)
	// A failed overwrite leaves the previous version in place.
	if _, err := e.s.Put(e.ctx, key, bytes.NewReader(v1[:10]), int64(len(v1))); err == nil {
		t.Fatalf("short Put over an existing object succeeded")
	}
	e.checkStored(t, key, v3)
	e.checkList(t, []string{key}, []string{key})
}

// testNestedKeys: deep keys and keys with non-ASCII letters and spaces.
func testNestedKeys(t *testing.T, e *env) {
	keys := []string{
		"a/b/c/d.bin",
		"a/b/c/e.bin",
		"a/b.bin",
		"vidéos/2024/my file.mp4",
		"日本語/ファイル 1.txt",
		"nested/.hidden",
		"nested/name with  two spaces.tar.gz",
	}
	for _, k := range keys {
		b := data(k, 1000+len(k))
		e.put(t, k, bytes.NewReader(b), b)
	}
	for _, k := range keys {
		e.checkStored(t, k, data(k, 1000+len(k)))
	}
	e.checkList(t, keys, keys)
	if err := e.s.Delete(e.ctx, "a/b/c/d.bin"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	e.checkGone(t, "a/b/c/d.bin", keys[1:]...)
	e.checkStored(t, "a/b/c/e.bin", data("a/b/c/e.bin", 1000+len("a/b/c/e.bin")))
}

// testStatMissing: Stat of a missing key, of a "directory" and of a key below an object
// gives ErrNotFound.
func testStatMissing(t *testing.T, e *env) {
	const obj = "statmissing/dir/object.bin"
	b := data(obj, 10)
	e.put(t, obj, bytes.NewReader(b), b)
	for _, k := range []string{"statmissing/none.bin", "statmissing/dir", "statmissing", obj + "/below", "statmissing/dir/object"} {
		if o, err := e.s.Stat(e.ctx, k); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Stat(%q) = %+v, %v; want an error wrapping sdk.ErrNotFound", k, o, err)
		}
	}
}

// testDeleteMissing: deleting what does not exist is not an error and removes nothing else.
func testDeleteMissing(t *testing.T, e *env) {
	const obj = "deletemissing/dir/object.bin"
	b := data(obj, 10)
	e.put(t, obj, bytes.NewReader(b), b)
	for _, k := range []string{"deletemissing/none.bin", "deletemissing/x/y/z.bin", obj + "/below", "deletemissing/dir"} {
		if err := e.s.Delete(e.ctx, k); err != nil {
			t.Errorf("Delete(%q) = %v, want nil", k, err)
		}
	}
	e.checkStored(t, obj, b)
	e.checkList(t, []string{obj}, []string{obj})
}

// testDeleteThenStat: a deleted object is gone, and deleting it again is not an error.
func testDeleteThenStat(t *testing.T, e *env) {
	const key = "deletethenstat/object.bin"
	b := data(key, 5000)
	e.put(t, key, bytes.NewReader(b), b)
	for i := range 2 {
		if err := e.s.Delete(e.ctx, key); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
		e.checkGone(t, key)
	}
}

// testConcurrentPuts: Puts to distinct keys and to one shared key at once all succeed; the
// shared key ends up holding exactly one of the versions.
func testConcurrentPuts(t *testing.T, e *env) {
	const shared, n = "concurrent/shared.bin", 4
	type job struct {
		key string
		b   []byte
	}
	var jobs []job
	var keys []string
	for i := range n {
		k := fmt.Sprintf("concurrent/distinct-%d.bin", i)
		keys = append(keys, k)
		jobs = append(jobs, job{k, data(k, 256<<10+i)})
		jobs = append(jobs, job{shared, data(fmt.Sprint("shared", i), 300<<10+1000*i)})
	}
	keys = append(keys, shared)
	start := make(chan struct{})
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			<-start
			_, errs[i] = e.s.Put(e.ctx, j.key, bytes.NewReader(j.b), int64(len(j.b)))
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put #%d (%s): %v", i, jobs[i].key, err)
		}
	}
	var versions [][]byte
	for _, j := range jobs {
		if j.key != shared {
			e.checkStored(t, j.key, j.b)
		} else {
			versions = append(versions, j.b)
		}
	}
	st, err := e.s.Stat(e.ctx, shared)
	if err != nil {
		t.Fatalf("Stat(%q): %v", shared, err)
	}
	for _, v := range versions {
		if int64(len(v)) == st.Size {
			e.checkStored(t, shared, v) // sizes differ, so Size tells the version
			e.checkList(t, keys, keys)
			return
		}
	}
	t.Errorf("Stat(%q).Size = %d matches none of the versions written", shared, st.Size)
}

// testHealth: a backend that has a health check reports healthy.
func testHealth(t *testing.T, e *env) {
	hc, ok := e.s.(sdk.HealthChecker)
	if !ok {
		t.Skip("the Storage does not implement sdk.HealthChecker")
	}
	if err := hc.Health(e.ctx); err != nil {
		t.Fatalf("Health: %v", err)
	}
}
