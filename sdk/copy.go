package sdk

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// CopyBufferSize is the buffer CopyExact uses. It also bounds the data chunks on the wire.
const CopyBufferSize = 1 << 20

// CopyExact copies exactly size bytes from r to w and returns their SHA-256. It reads r
// until io.EOF: fewer or more than size bytes give an error wrapping ErrSizeMismatch, and
// any read or write error is returned wrapped. Only when it returns nil may the caller make
// the written data visible.
//
// When r is the reader Serve hands to Storage.Put (pass it unwrapped to benefit), the
// bytes were already hashed and verified on arrival, so CopyExact does not hash them again
// and returns that digest.
func CopyExact(w io.Writer, r io.Reader, size int64) ([]byte, error) {
	if size < 0 {
		return nil, fmt.Errorf("%w: negative size %d", ErrSizeMismatch, size)
	}
	if sr, ok := r.(*streamReader); ok {
		n, err := sr.writeTo(w)
		if err != nil {
			return nil, fmt.Errorf("copy after %d bytes: %w", n, err)
		}
		return sr.sum, nil // the stream reader checked the size and the digest
	}
	if sr, ok := r.(*stagedReader); ok {
		n, err := sr.writeTo(w)
		if err != nil {
			return nil, fmt.Errorf("copy after %d bytes: %w", n, err)
		}
		return sr.sum, nil // the staged reader checked the size and the CRC-32C
	}
	h := sha256.New()
	dst := io.MultiWriter(w, h)
	buf := make([]byte, CopyBufferSize)
	n, err := io.CopyBuffer(dst, io.LimitReader(r, size), buf)
	if err != nil {
		return nil, fmt.Errorf("copy after %d bytes: %w", n, err)
	}
	if n < size {
		return nil, fmt.Errorf("%w: got %d bytes, expected %d", ErrSizeMismatch, n, size)
	}
	// The declared size is reached: r must end here.
	if err := ExpectEOF(r); err != nil {
		return nil, fmt.Errorf("copy after %d bytes: %w", n, err)
	}
	return h.Sum(nil), nil
}

// ExpectEOF checks that r, which yielded the bytes it declared, ends there: it reads
// r until io.EOF and returns nil when no byte came before it. A byte more gives an error
// wrapping ErrSizeMismatch, any other read error is returned as it is, and a reader that
// keeps answering (0, nil) gets io.ErrNoProgress after 100 reads, as bufio.Reader does.
// CopyExact and the host's sender call it; a backend that reads its input without
// CopyExact calls it before it commits.
func ExpectEOF(r io.Reader) error {
	var one [1]byte
	for range 100 {
		m, err := r.Read(one[:])
		switch {
		case m > 0:
			return fmt.Errorf("%w: more bytes than declared", ErrSizeMismatch)
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		}
	}
	return io.ErrNoProgress
}
