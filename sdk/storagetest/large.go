package storagetest

import (
	"bytes"
	"crypto/sha256"
	"hash"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

// heapBound is how much the heap may grow while the Large case streams its object, and
// while Parts/Large sends its parts (see largeWorkers).
//
// A streaming Put holds a few buffers at a time: CopyExact's 1 MiB buffer, and over gRPC
// the client's one reused 1 MiB send buffer, the chunks in gRPC's flow-control windows
// (8 MiB, see sdk's serve.go) and the server's receive buffers, a fresh 1 MiB message per
// chunk (both sides live in this process). Freed chunks stay on
// the heap until the next GC, and how many depends on the heap goal, which grows with
// whatever the test binary keeps live; the case therefore runs with GOGC at gcPercent.
// Measured with the local plugin under -race: about 1 MiB directly and 10-13 MiB over gRPC
// (16-23 MiB when left at GOGC=100). 32 MiB leaves room for GC timing and other platforms,
// and is half of the default 64 MiB object, so an implementation that buffers it fails.
const heapBound = 32 << 20

// gcPercent is the GOGC setting during the Large case, restored afterwards.
const gcPercent = 25

// heapMetric is the heap memory occupied by objects, live or not yet swept: it grows with
// every buffer a Put keeps or allocates, and reading it does not stop the world.
const heapMetric = "/memory/classes/heap/objects:bytes"

// genReader yields n deterministic pseudo-random bytes (a ChaCha8 stream with a fixed
// seed) and, if h is set, hashes them as it goes, without holding them.
type genReader struct {
	off, n int64
	src    *rand.ChaCha8
	h      hash.Hash
}

func newGenReader(n int64) *genReader {
	return &genReader{n: n, src: rand.NewChaCha8(sha256.Sum256([]byte("storagetest large"))), h: sha256.New()}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.n-g.off)]
	g.src.Read(p) // never fails
	g.off += int64(len(p))
	if g.h != nil {
		g.h.Write(p)
	}
	return len(p), nil
}

// heapSampler records the highest heap figure seen while it runs.
type heapSampler struct {
	base, peak uint64
	gogc       int
	stop       chan struct{}
	done       sync.WaitGroup
}

func heapNow() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	gogc := debug.SetGCPercent(gcPercent)
	runtime.GC()
	hs := &heapSampler{base: heapNow(), gogc: gogc, stop: make(chan struct{})}
	hs.peak = hs.base
	hs.done.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			hs.peak = max(hs.peak, heapNow())
			select {
			case <-hs.stop:
				return
			case <-tick.C:
			}
		}
	})
	return hs
}

// finish stops sampling and returns the peak growth over the starting heap.
func (hs *heapSampler) finish() uint64 {
	close(hs.stop)
	hs.done.Wait()
	hs.peak = max(hs.peak, heapNow())
	debug.SetGCPercent(hs.gogc)
	return hs.peak - hs.base
}

// testLarge streams Options.Large bytes from a generator and checks the heap stays far
// below the object size, then checks size and digest, reading back through ReadBack in a
// stream too.
func testLarge(t *testing.T, e *env) {
	if testing.Short() {
		t.Skip("large object skipped under -short")
	}
	size := e.o.Large
	if size == 0 {
		size = defaultLarge
	}
	if size < 2*heapBound {
		t.Logf("Large is %d bytes, less than twice the heap bound %d: the memory check cannot tell streaming from buffering", size, heapBound)
	}
	const key = "large/object.bin"
	gen := newGenReader(size)
	hs := startHeapSampler()
	start := time.Now()
	obj, err := e.s.Put(e.ctx, key, gen, size)
	elapsed := time.Since(start)
	growth := hs.finish()
	if err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, size, err)
	}
	t.Logf("Put %d MiB in %v (%.0f MiB/s), heap grew by at most %.1f MiB (bound %d MiB)",
		size>>20, elapsed.Round(time.Millisecond), float64(size)/(1<<20)/elapsed.Seconds(),
		float64(growth)/(1<<20), heapBound>>20)
	if growth > heapBound {
		t.Errorf("heap grew by %d bytes during a Put of %d bytes, more than %d: the object is buffered", growth, size, heapBound)
	}
	want := gen.h.Sum(nil)
	if obj.Size != size || !bytes.Equal(obj.SHA256, want) {
		t.Errorf("Put returned size %d sha256 %x, want %d and %x", obj.Size, obj.SHA256, size, want)
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
	e.checkList(t, []string{key}, []string{key})
}
