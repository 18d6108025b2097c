package localstore_test

import (
	"crypto/rand"
	"crypto/sha256"
	"io"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/plugins/local/internal/localstore"
	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

// Delivery of a 1 GiB object, whole through Put and part-wise in 50 MiB parts with 4 in
// flight (the host's defaults), to the same disk. Run them together, so the figures come
// from one machine state:
//
//	go test -run '^$' -bench 'Deliver' -benchtime 1x -count 3 ./internal/localstore
//
// peak-live-MiB is the largest live heap a garbage collection found while the object was
// written (above what the benchmark held before), peak-heap-MiB the most heap in use.
const (
	benchSize     = 1 << 30
	benchPartSize = 50 << 20
	benchInFlight = 4
)

func BenchmarkDeliverPut(b *testing.B) {
	s := benchStore(b)
	peak := startPeakHeap()
	b.SetBytes(benchSize)
	for b.Loop() {
		if _, err := s.Put(b.Context(), "bench/put.bin", newBlockReader(0, benchSize), benchSize); err != nil {
			b.Fatalf("Put: %v", err)
		}
	}
	peak.report(b)
}

func BenchmarkDeliverParts(b *testing.B) {
	s := benchStore(b)
	spec := sdk.ObjectSpec{Size: benchSize, PartSize: benchPartSize, PartCount: (benchSize + benchPartSize - 1) / benchPartSize}
	sums := make([][]byte, spec.PartCount)
	for n := range sums { // parts start at multiples of the repeated block: two sums in all
		if n == 0 || n == spec.PartCount-1 {
			h := sha256.New()
			_, _ = io.Copy(h, newBlockReader(spec.PartSize*int64(n), spec.PartSizeOf(n)))
			sums[n] = h.Sum(nil)
		} else {
			sums[n] = sums[0]
		}
	}
	peak := startPeakHeap()
	b.SetBytes(benchSize)
	for b.Loop() {
		h, err := s.BeginObject(b.Context(), "bench/parts.bin", spec)
		if err != nil {
			b.Fatal(err)
		}
		receipts := plugintest.PutParts(b, s, h, spec.PartCount, benchInFlight, func(n int) (sdk.PartInfo, io.Reader) {
			p := sdk.PartInfo{Number: n, Size: spec.PartSizeOf(n), SHA256: sums[n]}
			return p, newBlockReader(spec.PartSize*int64(n), p.Size)
		})
		if _, err := s.CommitObject(b.Context(), h, receipts, make([]byte, 32)); err != nil {
			b.Fatalf("CommitObject: %v", err)
		}
	}
	peak.report(b)
}

func benchStore(b *testing.B) *localstore.Store {
	b.Helper()
	s, err := localstore.New(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// block is the random 1 MiB the benchmark's content repeats.
var block = func() []byte {
	b := make([]byte, 1<<20)
	_, _ = rand.Read(b)
	return b
}()

// blockReader yields n bytes of the repeated block from offset off of the content.
type blockReader struct{ off, end int64 }

func newBlockReader(off, n int64) *blockReader { return &blockReader{off: off, end: off + n} }

func (r *blockReader) Read(p []byte) (int, error) {
	if r.off >= r.end {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.end-r.off)]
	m := copy(p, block[r.off%int64(len(block)):])
	r.off += int64(m)
	return m, nil
}

// peakHeap samples the heap until stop: the most in use (live and garbage not yet
// collected; the garbage collector lets it reach about twice the live heap) and the largest
// live heap a collection found.
type peakHeap struct {
	done      chan struct{}
	inUse     atomic.Uint64
	live      atomic.Uint64
	wg        sync.WaitGroup
	startLive uint64
}

func startPeakHeap() *peakHeap {
	runtime.GC()
	p := &peakHeap{done: make(chan struct{}), startLive: liveHeap()}
	p.wg.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			p.inUse.Store(max(p.inUse.Load(), ms.HeapInuse))
			p.live.Store(max(p.live.Load(), liveHeap()))
			select {
			case <-p.done:
				return
			case <-t.C:
			}
		}
	})
	return p
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// report stops sampling and reports the peaks in MiB.
func (p *peakHeap) report(b *testing.B) {
	close(p.done)
	p.wg.Wait()
	b.ReportMetric(float64(p.inUse.Load())/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(p.live.Load()-min(p.live.Load(), p.startLive))/(1<<20), "peak-live-MiB")
}
