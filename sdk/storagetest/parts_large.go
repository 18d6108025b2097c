package storagetest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// Shape of the part-wise Large case: parts of largePart bytes (more if the backend's limits
// require), largeWorkers of them in flight at once.
//
// The heap may grow by heapBound plus, for each part in flight, Options.PartBuffers and,
// over gRPC, streamHeap: both ends of the connection live in the test process, and each
// stream holds chunks on both sides and in gRPC's windows. Measured with 8 MiB parts and
// the reference store of this package's tests: 3-5 MiB directly, 35-39 MiB over gRPC; the
// same store holding each part in memory: 48-87 and 70-91 MiB. Parts of 16 MiB make a
// backend that holds its parts in memory exceed the bound by far: four of them are twice
// heapBound.
const (
	largePart    = 16 << 20
	largeWorkers = 4
	streamHeap   = 8 << 20
)

// newPartGen returns a generator of part n of the Large object: every part has its own
// stream, so parts can be generated concurrently and again.
func newPartGen(n int, size int64) *genReader {
	seed := sha256.Sum256(fmt.Appendf(nil, "storagetest large part %d", n))
	return &genReader{n: size, src: rand.NewChaCha8(seed)}
}

// testPartsLarge sends Options.Large bytes from generators, largeWorkers parts at a time,
// and commits them; the heap must grow by no more than the buffers the parts in flight
// may hold meanwhile, far less than the parts. It then checks
// the object's size and digest, reading it back through ReadBack in a stream too.
func testPartsLarge(t *testing.T, e *partEnv) {
	if testing.Short() {
		t.Skip("large object skipped under -short")
	}
	size := e.o.Large
	if size == 0 {
		size = defaultLarge
	}
	ps := max(int64(largePart), e.limits.MinPartSize)
	if e.limits.MaxParts > 0 {
		ps = max(ps, (size+e.limits.MaxParts-1)/e.limits.MaxParts)
	}
	spec := sdk.ObjectSpec{Size: size, PartSize: ps, PartCount: int((size + ps - 1) / ps)}
	perPart := e.o.PartBuffers
	if e.wire != nil {
		perPart += streamHeap
	}
	bound := uint64(heapBound + int64(min(largeWorkers, spec.PartCount))*perPart)
	if uint64(size) <= bound {
		t.Logf("Large is %d bytes, not above the heap bound %d: a backend holding the whole object in memory would pass", size, bound)
	}

	// The digests, before the measurement: the host knows them before it sends a part.
	sums := make([][]byte, spec.PartCount)
	whole := sha256.New()
	for n := range sums {
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(h, whole), newPartGen(n, spec.PartSizeOf(n))); err != nil {
			t.Fatal(err)
		}
		sums[n] = h.Sum(nil)
	}
	want := whole.Sum(nil)

	const key = "parts-large/object.bin"
	e.use(key)
	handle, err := e.ps.BeginObject(e.ctx, key, spec)
	if err != nil {
		t.Fatalf("BeginObject(%q, %d bytes in %d parts of %d): %v", key, size, spec.PartCount, ps, err)
	}
	receipts := make([][]byte, spec.PartCount)
	errs := make([]error, spec.PartCount)
	hs := startHeapSampler()
	start := time.Now()
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(largeWorkers, spec.PartCount) {
		wg.Go(func() {
			for n := range next {
				p := sdk.PartInfo{Number: n, Size: spec.PartSizeOf(n), SHA256: sums[n]}
				receipts[n], errs[n] = e.ps.PutPart(e.ctx, handle, p, newPartGen(n, p.Size))
			}
		})
	}
	for n := range spec.PartCount {
		next <- n
	}
	close(next)
	wg.Wait()
	var obj sdk.Object
	failed := false
	for n, err := range errs {
		if err != nil {
			t.Errorf("PutPart(%q part %d): %v", key, n, err)
			failed = true
		}
	}
	if !failed {
		obj, err = e.ps.CommitObject(e.ctx, handle, receipts, want)
	}
	elapsed := time.Since(start)
	growth := hs.finish()
	if failed {
		t.FailNow()
	}
	if err != nil {
		t.Fatalf("CommitObject(%q): %v", key, err)
	}
	e.stored(key)
	t.Logf("PutPart %d MiB in %d parts of %d MiB, %d at a time, and commit in %v (%.0f MiB/s), heap grew by at most %.1f MiB (bound %d MiB)",
		size>>20, spec.PartCount, ps>>20, min(largeWorkers, spec.PartCount), elapsed.Round(time.Millisecond),
		float64(size)/(1<<20)/elapsed.Seconds(), float64(growth)/(1<<20), bound>>20)
	if growth > bound {
		t.Errorf("heap grew by %d bytes while %d bytes were stored part-wise, more than %d: parts or the object are buffered", growth, size, bound)
	}
	if obj.Key != key || obj.Size != size || !bytes.Equal(obj.SHA256, want) || obj.Location == "" {
		t.Errorf("CommitObject returned %+v, want key %q, size %d, sha256 %x and a location", obj, key, size, want)
	}
	st, err := e.s.Stat(e.ctx, key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	if st.Size != size || (st.SHA256 != nil && !bytes.Equal(st.SHA256, want)) {
		t.Errorf("Stat returned size %d sha256 %x, want %d and %x", st.Size, st.SHA256, size, want)
	}
	if e.o.ReadBack != nil {
		rc, err := e.o.ReadBack(t, key)
		if err != nil {
			t.Fatalf("ReadBack(%q): %v", key, err)
		}
		defer rc.Close()
		h := sha256.New()
		n, err := io.Copy(h, rc)
		if err != nil {
			t.Fatalf("ReadBack(%q): %v", key, err)
		}
		if n != size || !bytes.Equal(h.Sum(nil), want) {
			t.Errorf("ReadBack(%q): %d bytes sha256 %x, want %d and %x", key, n, h.Sum(nil), size, want)
		}
	}
	e.checkClean(t)
}
