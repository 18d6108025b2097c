package staging

import (
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// Pipeline shape: Write's goroutine reads the body one block at a time, taking each block
// from a pool shared by all writes just before the read that fills it. Every block goes at
// once to a hasher goroutine and to a writer goroutine (see fileWriter), which work on it
// side by side, and returns to the pool when both are done. So receiving, hashing and the
// disk overlap, and a part costs about the slowest of them, not their sum. The writer
// writes all the blocks that have arrived (up to writeBatch) in one call, so its writes grow
// from one block to 1 MiB when the disk falls behind.
//
// Memory: at most pipeDepth blocks of one write are out of the pool at a time (2 MiB, only
// while its body arrives faster than the disk or the hasher take it), and a write whose
// body stalls holds the one block its read is waiting to fill (128 KiB) once the blocks
// before it are on disk. The host's memory depends on the number of parts in flight, never
// on their size.
const (
	blockSize  = 128 << 10
	pipeDepth  = 16
	writeBatch = 8
)

var blockPool = sync.Pool{New: func() any { return new([blockSize]byte) }}

// block is one read of the body, shared by the hasher and the writer.
type block struct {
	buf  *[blockSize]byte
	data []byte // the bytes read, a prefix of buf
	off  int64  // offset of data in the part
	refs atomic.Int32
}

// sums are the digests of a part's bytes.
type sums struct {
	sha   []byte // SHA-256
	state []byte // the SHA-256's state before its finalization (encoding.BinaryMarshaler)
	crc   uint32 // CRC-32C
}

// copyExact copies exactly size bytes from r to f at offset base, hashing them on the way,
// makes them durable (see fileWriter.finish) and returns their digests. With tee set, it
// also writes the bytes to tee, on a goroutine of its own. It returns an error wrapping
// ErrTooShort or ErrTooLong when r does not end after exactly size bytes.
func copyExact(f *os.File, base int64, r io.Reader, size int64, tee io.Writer) (sums, error) {
	w := newFileWriter(f)
	slots := make(chan struct{}, pipeDepth)
	release := func(b *block) {
		if b.refs.Add(-1) == 0 {
			blockPool.Put(b.buf)
			<-slots
		}
	}
	toHash := make(chan *block, pipeDepth)
	toWrite := make(chan *block, pipeDepth)
	sum := make(chan sums, 1)
	go func() {
		h := sha256.New()
		var crc uint32
		for b := range toHash {
			h.Write(b.data)
			crc = crc32.Update(crc, castagnoli, b.data)
			release(b)
		}
		state, _ := h.(encoding.BinaryMarshaler).MarshalBinary() // never fails
		sum <- sums{sha: h.Sum(nil), state: state, crc: crc}
	}()
	refs := int32(2)
	var toTee chan *block
	teeDone := make(chan struct{})
	if tee != nil {
		refs++
		toTee = make(chan *block, pipeDepth)
		go func() {
			defer close(teeDone)
			for b := range toTee {
				tee.Write(b.data) // a hash: never fails
				release(b)
			}
		}()
	} else {
		close(teeDone)
	}
	var failed atomic.Bool // the writer failed: stop reading
	werr := make(chan error, 1)
	go func() {
		var err error
		batch := make([]*block, 0, writeBatch)
		bufs := make([][]byte, 0, writeBatch)
		for b := range toWrite {
			// Write what has arrived in one call, up to writeBatch blocks: one block at a
			// time while the disk keeps up, larger writes when it falls behind.
			batch = append(batch[:0], b)
		gather:
			for len(batch) < writeBatch {
				select {
				case nb, ok := <-toWrite:
					if !ok {
						break gather
					}
					batch = append(batch, nb)
				default:
					break gather
				}
			}
			if err == nil {
				bufs = bufs[:0]
				for _, x := range batch {
					bufs = append(bufs, x.data)
				}
				if err = w.write(bufs, base+batch[0].off); err != nil {
					failed.Store(true)
				}
			}
			for _, x := range batch {
				release(x)
			}
			// Keep no reference to the released blocks while waiting for the next.
			clear(batch)
			clear(bufs)
		}
		werr <- err
	}()

	var read int64
	var rerr error
	for read < size && !failed.Load() {
		slots <- struct{}{}
		b := &block{buf: blockPool.Get().(*[blockSize]byte), off: read}
		n, err := io.ReadFull(r, b.buf[:min(blockSize, size-read)])
		read += int64(n)
		if n > 0 {
			b.data = b.buf[:n]
			b.refs.Store(refs)
			toHash <- b
			toWrite <- b
			if toTee != nil {
				toTee <- b
			}
		} else {
			blockPool.Put(b.buf)
			<-slots
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("%w: body ended after %d of %d bytes", ErrTooShort, read, size)
			}
			rerr = err
			break
		}
	}
	close(toHash)
	close(toWrite)
	if toTee != nil {
		close(toTee)
	}
	digest := <-sum
	<-teeDone
	if err := <-werr; err != nil {
		return sums{}, err
	}
	if rerr != nil {
		return sums{}, rerr
	}
	if err := expectEOF(r, size); err != nil {
		return sums{}, err
	}
	if err := w.finish(base, size); err != nil {
		return sums{}, err
	}
	return digest, nil
}

// expectEOF checks that r has nothing left after size bytes.
func expectEOF(r io.Reader, size int64) error {
	var one [1]byte
	for {
		m, err := r.Read(one[:])
		if m > 0 {
			return fmt.Errorf("%w: more than %d bytes", ErrTooLong, size)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
