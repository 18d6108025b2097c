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
	"time"
)

// Pipeline shape: Write's goroutine reads the body one block at a time, taking each block
// from a pool shared by all writes just before the read that fills it. The blocks go in
// groups of up to groupBlocks to a hasher goroutine and to a writer goroutine (see
// fileWriter), which work on them side by side, and return to the pool when both are done.
// So receiving, hashing and the disk overlap, and a part costs about the slowest of them,
// not their sum. The writer writes all the blocks that have arrived (up to writeBatch) in
// one call, so its writes grow to 1.5 MiB when the disk falls behind.
//
// Groups, not single blocks, because each hand-over may wake a goroutine, and on the 2-core
// VMs this project is measured on the wake-ups and thread switches were a fifth of the
// host's CPU during a part PUT: handing over 512 KiB instead of 128 KiB at a time took 7 to
// 11 % off the CPU of a one-part PUT, and a deeper pipe (pipeDepth) lets a group be hashed
// and written while the next two arrive. A group is handed over when it is full, when the
// body ends, and when a read has waited for the body for stallFlush with blocks in the
// group: so a stalled body never keeps blocks it received from the disk.
//
// Memory: at most pipeDepth blocks of one write are out of the pool at a time (3 MiB, only
// while its body arrives faster than the disk or the hasher take it), and a write whose
// body stalls holds the one block its read is waiting to fill (128 KiB) once the blocks
// before it are on disk. The host's memory depends on the number of parts in flight, never
// on their size.
const (
	blockSize   = 128 << 10
	groupBlocks = 4
	pipeDepth   = 24
	writeBatch  = 12
	stallFlush  = 2 * time.Millisecond
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
	release := func(g []*block) {
		for _, b := range g {
			if b.refs.Add(-1) == 0 {
				blockPool.Put(b.buf)
				<-slots
			}
		}
	}
	// Full groups never fill a channel before the pool runs dry. Groups cut short by the
	// stall timer can (a trickling body hands over one block at a time); handOver then
	// waits, holding mu, until the hasher or the writer takes one, and they never take mu.
	const groups = pipeDepth/groupBlocks + 1
	toHash := make(chan []*block, groups)
	toWrite := make(chan []*block, groups)
	sum := make(chan sums, 1)
	go func() {
		h := sha256.New()
		var crc uint32
		for g := range toHash {
			for _, b := range g {
				h.Write(b.data)
				crc = crc32.Update(crc, castagnoli, b.data)
			}
			release(g)
		}
		state, _ := h.(encoding.BinaryMarshaler).MarshalBinary() // never fails
		sum <- sums{sha: h.Sum(nil), state: state, crc: crc}
	}()
	refs := int32(2)
	var toTee chan []*block
	teeDone := make(chan struct{})
	if tee != nil {
		refs++
		toTee = make(chan []*block, groups)
		go func() {
			defer close(teeDone)
			for g := range toTee {
				for _, b := range g {
					tee.Write(b.data) // a hash: never fails
				}
				release(g)
			}
		}()
	} else {
		close(teeDone)
	}
	var failed atomic.Bool // the writer failed: stop reading
	werr := make(chan error, 1)
	go func() {
		var err error
		var held [][]*block
		bufs := make([][]byte, 0, writeBatch)
		for g := range toWrite {
			// Write what has arrived in one call, up to writeBatch blocks: one group at a
			// time while the disk keeps up, larger writes when it falls behind.
			held = append(held[:0], g)
			n := len(g)
		gather:
			for n < writeBatch {
				select {
				case ng, ok := <-toWrite:
					if !ok {
						break gather
					}
					held = append(held, ng)
					n += len(ng)
				default:
					break gather
				}
			}
			if err == nil {
				bufs = bufs[:0]
				for _, hg := range held {
					for _, b := range hg {
						bufs = append(bufs, b.data)
					}
				}
				if err = w.write(bufs, base+held[0][0].off); err != nil {
					failed.Store(true)
				}
			}
			for _, hg := range held {
				release(hg)
			}
			// Keep no reference to the released blocks while waiting for the next.
			clear(held)
			clear(bufs)
		}
		werr <- err
	}()

	// The group being filled, handed over by the reader or, when a read waits for the
	// body, by the stall timer; mu keeps the groups in order and the channels open.
	var (
		mu     sync.Mutex
		group  []*block
		closed bool
	)
	handOver := func() { // with mu held
		if len(group) == 0 || closed {
			return
		}
		toHash <- group
		toWrite <- group
		if toTee != nil {
			toTee <- group
		}
		group = make([]*block, 0, groupBlocks)
	}
	stall := time.AfterFunc(time.Hour, func() {
		mu.Lock()
		handOver()
		mu.Unlock()
	})
	stall.Stop()

	var read int64
	var rerr error
	for read < size && !failed.Load() {
		slots <- struct{}{}
		b := &block{buf: blockPool.Get().(*[blockSize]byte), off: read}
		mu.Lock()
		waiting := len(group) > 0
		mu.Unlock()
		if waiting {
			stall.Reset(stallFlush)
		}
		n, err := io.ReadFull(r, b.buf[:min(blockSize, size-read)])
		if waiting {
			stall.Stop()
		}
		read += int64(n)
		mu.Lock()
		if n > 0 {
			b.data = b.buf[:n]
			b.refs.Store(refs)
			group = append(group, b)
			if len(group) == groupBlocks || read == size {
				handOver()
			}
		} else {
			blockPool.Put(b.buf)
			<-slots
		}
		mu.Unlock()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("%w: body ended after %d of %d bytes", ErrTooShort, read, size)
			}
			rerr = err
			break
		}
	}
	stall.Stop()
	mu.Lock()
	handOver()
	closed = true
	close(toHash)
	close(toWrite)
	if toTee != nil {
		close(toTee)
	}
	mu.Unlock()
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
