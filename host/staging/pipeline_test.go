package staging

import (
	"bytes"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{7}).Read(b)
	return b
}

// A part of many blocks (and on Linux of several flush windows), in reads of every size and
// ending off a block boundary, is stored byte for byte with the right checksum.
func TestWriteLargePart(t *testing.T) {
	d := newDir(t)
	data := randomBytes(32<<20 + 3*blockSize/2 + 123)
	readers := map[string]io.Reader{
		"half":     iotest.HalfReader(bytes.NewReader(data)),
		"data+eof": iotest.DataErrReader(bytes.NewReader(data)),
		// Pauses longer than stallFlush inside groups: the stall timer hands over partial
		// groups while the reader goes on, and the bytes must stay in order.
		"pauses": &pausingReader{r: bytes.NewReader(data), rng: rand.New(rand.NewPCG(1, 2))},
	}
	for name, r := range readers {
		t.Run(name, func(t *testing.T) {
			s, err := d.Write("u1", 0, r, int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			if s.SHA256 != hexSum(data) {
				t.Fatalf("sha256 = %s, want %s", s.SHA256, hexSum(data))
			}
			if want := crc32.Checksum(data, castagnoli); s.CRC32C != want {
				t.Fatalf("crc32c = %08x, want %08x", s.CRC32C, want)
			}
			if err := s.Commit(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(d.PartPath("u1", 0))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("stored part differs (%d bytes, err %v)", len(got), err)
			}
		})
	}
}

// pausingReader returns reads of random sizes up to 200 KiB, and before one read in 16
// waits three times stallFlush.
type pausingReader struct {
	r   io.Reader
	rng *rand.Rand
}

func (p *pausingReader) Read(b []byte) (int, error) {
	if p.rng.IntN(16) == 0 {
		time.Sleep(3 * stallFlush)
	}
	return p.r.Read(b[:min(len(b), 1+p.rng.IntN(200<<10))])
}

// stallingReader yields its data, then blocks until release is closed, then fails.
type stallingReader struct {
	data    []byte
	stalled chan<- struct{}
	release <-chan struct{}
	once    sync.Once
}

var errReleased = errors.New("released")

func (r *stallingReader) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	r.once.Do(func() { r.stalled <- struct{}{} })
	<-r.release
	return 0, errReleased
}

// Buffers are taken per read: a write whose body stalls holds at most the block its read
// waits to fill, whatever it received before (issue 10: a body that sent 4 MiB and stalled
// held 3 MiB of pipeline buffers taken up front). The body stalls two blocks into a group
// (see groupBlocks), so the blocks of the group it received must be handed over by the
// stall timer, not kept for the group to fill.
func TestStalledWritesHoldOneBlock(t *testing.T) {
	d := newDir(t)
	const (
		writers = 48
		sent    = 4<<20 + 2*blockSize + 1000 // ends inside a block, two blocks into a group
	)
	data := randomBytes(sent)
	stalled := make(chan struct{}, writers)
	release := make(chan struct{})
	errs := make(chan error, writers)
	before := heapInUse()
	for n := range writers {
		r := &stallingReader{data: data, stalled: stalled, release: release}
		go func() {
			_, err := d.Write("u1", n, r, 50<<20)
			errs <- err
		}()
	}
	for range writers {
		<-stalled
	}
	// What each write received before its body stalled drains to the disk; then only the
	// blocks the stalled reads wait to fill stay out of the pool (plus slack for goroutines
	// and files). The old pipeline held 3 MiB each for as long as the body stalled.
	limit := uint64(writers) * (blockSize + 64<<10)
	held := heapInUse() - before
	for deadline := time.Now().Add(30 * time.Second); held > limit && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		held = heapInUse() - before
	}
	close(release)
	for range writers {
		if err := <-errs; !errors.Is(err, errReleased) {
			t.Errorf("Write of a broken body: err = %v, want %v", err, errReleased)
		}
	}
	if held > limit {
		t.Errorf("%d stalled writes hold %d KiB of heap, want at most %d KiB (one %d KiB block each)",
			writers, held>>10, limit>>10, blockSize>>10)
	}
	if fs := files(t, d); len(fs) != 0 {
		t.Fatalf("left behind: %v", fs)
	}
}

// heapInUse returns the heap in use after two collections (so that sync.Pool holds nothing).
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// When the file cannot be written, copyExact returns the write error and stops reading the
// body soon after, instead of receiving the whole part for nothing.
func TestCopyExactStopsOnWriteError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path) // read-only: every write fails
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 64 << 20
	body := &countingReader{r: io.LimitReader(zeros{}, size)}
	if _, err := copyExact(f, 0, body, size, nil); err == nil {
		t.Fatal("copyExact into a read-only file succeeded")
	}
	if limit := int64(pipeDepth+2) * blockSize; body.n > limit {
		t.Errorf("read %d bytes of the body after the write failed, want at most %d", body.n, limit)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
