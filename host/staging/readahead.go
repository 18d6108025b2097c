package staging

import (
	"errors"
	"io"
	"sync"
)

// readAheadBlock and readAheadDepth shape ReadAhead: reads of 256 KiB, at most 4 of them
// (1 MiB) ahead of the consumer.
const (
	readAheadBlock = 256 << 10
	readAheadDepth = 4
)

var readAheadPool = sync.Pool{New: func() any { return new([readAheadBlock]byte) }}

// ReadAhead returns a reader of r that reads ahead of its consumer, in a goroutine of its
// own, by at most 1 MiB: where r waits for the disk (SectionReader's direct reads, which
// the kernel does not read ahead), the reads and the consumer's work (hashing) run side by
// side instead of one after the other. Its buffers are page-aligned, as direct I/O needs.
// WriteTo hands them to the writer without a copy. Close stops the reading and must be
// called; r is not used once Close returned.
func ReadAhead(r io.Reader) io.ReadCloser {
	a := &readAhead{full: make(chan filled, readAheadDepth), free: make(chan *[readAheadBlock]byte, readAheadDepth),
		stop: make(chan struct{}), done: make(chan struct{})}
	for range readAheadDepth {
		a.free <- readAheadPool.Get().(*[readAheadBlock]byte)
	}
	go a.run(r)
	return a
}

type readAhead struct {
	full chan filled
	free chan *[readAheadBlock]byte
	stop chan struct{}
	done chan struct{} // closed when run returned
	once sync.Once

	cur  filled // being consumed by Read
	rest []byte // of cur.buf
	err  error  // sticky, after the last buffer
}

type filled struct {
	buf *[readAheadBlock]byte
	n   int
	err error
}

func (a *readAhead) run(r io.Reader) {
	defer close(a.done)
	defer close(a.full)
	for {
		var buf *[readAheadBlock]byte
		select {
		case buf = <-a.free:
		case <-a.stop:
			return
		}
		n, err := io.ReadFull(r, buf[:])
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF // a short last block
		}
		if n == 0 && err == nil {
			err = io.ErrNoProgress
		}
		select {
		case a.full <- filled{buf: buf, n: n, err: err}:
		case <-a.stop:
			readAheadPool.Put(buf)
			return
		}
		if err != nil {
			return
		}
	}
}

// next returns the next filled buffer, or ok false after the last one.
func (a *readAhead) next() (filled, bool) {
	f, ok := <-a.full
	return f, ok
}

func (a *readAhead) recycle(buf *[readAheadBlock]byte) { a.free <- buf } // room for readAheadDepth

func (a *readAhead) Read(p []byte) (int, error) {
	for len(a.rest) == 0 {
		if a.cur.buf != nil {
			a.recycle(a.cur.buf)
			a.cur.buf = nil
		}
		if a.err != nil {
			return 0, a.err
		}
		f, ok := a.next()
		if !ok {
			return 0, io.ErrClosedPipe
		}
		a.cur, a.rest, a.err = f, f.buf[:f.n], f.err
	}
	n := copy(p, a.rest)
	a.rest = a.rest[n:]
	return n, nil
}

// WriteTo writes what is left to w, one read-ahead buffer at a time, without copying.
func (a *readAhead) WriteTo(w io.Writer) (int64, error) {
	var total int64
	if len(a.rest) > 0 { // after a Read
		n, err := w.Write(a.rest)
		total += int64(n)
		a.rest = nil
		if err != nil {
			return total, err
		}
	}
	for {
		if a.cur.buf != nil {
			a.recycle(a.cur.buf)
			a.cur.buf = nil
		}
		if a.err != nil {
			if a.err == io.EOF {
				return total, nil
			}
			return total, a.err
		}
		f, ok := a.next()
		if !ok {
			return total, io.ErrClosedPipe
		}
		a.cur, a.err = f, f.err
		if f.n > 0 {
			n, err := w.Write(f.buf[:f.n])
			total += int64(n)
			if err != nil {
				return total, err
			}
		}
	}
}

// Close stops the read-ahead, waits for its goroutine and returns its buffers to the pool.
func (a *readAhead) Close() error {
	a.once.Do(func() {
		close(a.stop)
		<-a.done
		if a.cur.buf != nil {
			readAheadPool.Put(a.cur.buf)
			a.cur.buf = nil
		}
		a.rest, a.err = nil, io.ErrClosedPipe
		for f := range a.full { // buffered and not consumed
			readAheadPool.Put(f.buf)
		}
		for {
			select {
			case buf := <-a.free:
				readAheadPool.Put(buf)
			default:
				return
			}
		}
	})
	return nil
}
