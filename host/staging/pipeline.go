package staging

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Pipeline shape: the request goroutine reads, a hasher goroutine hashes, a writer goroutine
// writes (see blockWriter), so reading, hashing, writing and the disk all overlap.
// Memory per part write in flight is pipeBuffers x pipeBufferSize (3 MiB), from a pool
// shared by all requests, so the host's memory depends on the number of parts in flight,
// never on their size.
const (
	pipeBuffers    = 3
	pipeBufferSize = 1 << 20
	writebackEvery = 8 << 20
)

var bufferPool = sync.Pool{New: func() any { return new([pipeBufferSize]byte) }}

// copyExact copies size bytes from r to f, hashing them, and checks r ends there.
func copyExact(f *os.File, r io.Reader, size int64) (string, error) {
	free := make(chan []byte, pipeBuffers)
	for range pipeBuffers {
		free <- bufferPool.Get().(*[pipeBufferSize]byte)[:]
	}
	defer func() {
		// Every buffer is back in free once the writer ended.
		for range pipeBuffers {
			bufferPool.Put((*[pipeBufferSize]byte)(<-free))
		}
	}()
	toHash := make(chan []byte, pipeBuffers)
	full := make(chan []byte, pipeBuffers)
	sum := make(chan []byte, 1)
	h := sha256.New()
	go func() {
		for b := range toHash {
			h.Write(b)
			full <- b
		}
		close(full)
		sum <- h.Sum(nil)
	}()
	werr := make(chan error, 1)
	go func() {
		bw := newBlockWriter(f)
		var err error
		for b := range full {
			if err == nil {
				err = bw.write(b)
			}
			free <- b[:cap(b)]
		}
		werr <- err
	}()

	var read int64
	var rerr error
	for read < size {
		b := <-free
		n, err := io.ReadFull(r, b[:min(int64(len(b)), size-read)])
		read += int64(n)
		toHash <- b[:n]
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("%w: body ended after %d of %d bytes", ErrTooShort, read, size)
			}
			rerr = err
			break
		}
	}
	close(toHash)
	digest := <-sum
	if err := <-werr; err != nil {
		return "", err
	}
	if rerr != nil {
		return "", rerr
	}
	var one [1]byte
	for {
		m, err := r.Read(one[:])
		if m > 0 {
			return "", fmt.Errorf("%w: more than %d bytes", ErrTooLong, size)
		}
		if errors.Is(err, io.EOF) {
			return hex.EncodeToString(digest), nil
		}
		if err != nil {
			return "", err
		}
	}
}
